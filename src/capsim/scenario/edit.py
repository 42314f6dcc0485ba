"""Writing changed values back into a scenario file's text, keeping its comments and layout."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from capsim.scenario.loader import parse_yaml_text
from capsim.scenario.overrides import apply_override, override_value

_PLAIN_SCALAR = re.compile(r"[^\s,{}\[\]#]+")


def _scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _edit(text: str, dotted: str, value: Any) -> str | None:
    """`text` with the value at `dotted` replaced or inserted; None when that is not simple."""
    document = parse_yaml_text(text)
    path = tuple(dotted.split("."))
    lines = text.splitlines(keepends=True)
    rendered = _scalar_text(value)
    where = document.positions.get(path)
    if where is not None:
        line, column = where
        current = lines[line - 1]
        match = _PLAIN_SCALAR.match(current, column - 1)
        if match is None:
            return None
        lines[line - 1] = current[: match.start()] + rendered + current[match.end() :]
        return "".join(lines)
    parent = document.positions.get(path[:-1])
    parent_key = document.key_positions.get(path[:-1])
    if parent is None or parent_key is None:
        return None
    line, column = parent
    current = lines[line - 1]
    if current[column - 1 : column] == "{":
        # A flow mapping: put the new key first inside the braces.
        lines[line - 1] = f"{current[:column]}{path[-1]}: {rendered}, {current[column:]}"
        return "".join(lines)
    if line == parent_key[0]:
        return None
    indent = " " * (column - 1)
    lines.insert(line - 1, f"{indent}{path[-1]}: {rendered}\n")
    return "".join(lines)


def set_values(text: str, values: Mapping[str, Any]) -> str:
    """The scenario `text` with each dotted path set to its value.

    Values are changed in place where they are written, and new keys are inserted next to their
    siblings, so comments and layout survive. When a change cannot be made that way the whole
    document is written out again from its data (comments are then lost).
    """
    edited: str | None = text
    for dotted, value in values.items():
        edited = _edit(edited, dotted, value) if edited is not None else None
    if edited is not None:
        document = parse_yaml_text(edited)
        if all(_lookup(document.data, dotted) == value for dotted, value in values.items()):
            return edited
    data = parse_yaml_text(text).data
    for dotted, value in values.items():
        data, _ = apply_override(data, f"{dotted}={_scalar_text(value)}")
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def _lookup(data: Any, dotted: str) -> Any:
    node = data
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def apply_set_overrides(text: str, overrides: Sequence[str]) -> str:
    """The scenario `text` with `--set PATH=VALUE` overrides written into it, as the loader
    applies them: a plain value is changed where it is written (comments and layout survive);
    anything else (a list, a mapping, a list index in the path) writes the document out again."""
    if not overrides:
        return text
    expected = parse_yaml_text(text).data
    edited: str | None = text
    for override in overrides:
        expected, _ = apply_override(expected, override)
        dotted, value = override_value(override)
        if edited is not None and isinstance(value, (str, int, float, bool)):
            edited = _edit(edited, dotted, value)
        else:
            edited = None
    if edited is not None and parse_yaml_text(edited).data == expected:
        return edited
    return yaml.safe_dump(expected, sort_keys=False, allow_unicode=True)
