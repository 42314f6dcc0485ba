"""Writing changed values back into a scenario file's text, keeping its comments and layout."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from capsim.scenario.loader import parse_yaml_text
from capsim.scenario.overrides import apply_override, override_value
from capsim.scenario.writer import dump_yaml

_PLAIN_SCALAR = re.compile(r"[^\s,{}\[\]#]+")
_COMMENT = re.compile(r"(^|\s)#")  # a YAML comment starts with # at the start or after a blank


def _scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):  # YAML flow style, not Python's repr
        return "{" + ", ".join(f"{k}: {_scalar_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_scalar_text(v) for v in value) + "]"
    return str(value)


def _with_comment(line: str, end: int, comment: str | None) -> str:
    """`line` whose text after column `end` loses its comment, replaced by `comment` if given.

    A comment beside a value describes that value: once capsim changes the value, the old
    comment is stale, so it goes.
    """
    rest = line[end:]
    newline = "\n" if rest.endswith("\n") else ""
    body = rest.rstrip("\n")
    found = _COMMENT.search(body)
    if found is not None:
        body = body[: found.start()]  # what follows the value on its line (a flow mapping's rest)
    note = f"  # {comment}" if comment else ""
    return line[:end] + body.rstrip() + note + newline


def _edit(text: str, dotted: str, value: Any, comment: str | None = None) -> str | None:
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
        edited = current[: match.start()] + rendered + current[match.end() :]
        lines[line - 1] = _with_comment(edited, match.start() + len(rendered), comment)
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
    note = f"  # {comment}" if comment else ""
    lines.insert(line - 1, f"{indent}{path[-1]}: {rendered}{note}\n")
    return "".join(lines)


def set_values(
    text: str,
    values: Mapping[str, Any],
    comments: Mapping[str, str] | None = None,
    header: str | None = None,
) -> str:
    """The scenario `text` with each dotted path set to its value.

    Values are changed in place where they are written, and new keys are inserted next to their
    siblings, so comments and layout survive; the comment beside a changed value is replaced by
    `comments[path]` (or dropped: it described the old value). `header` becomes a comment line
    at the top. When a change cannot be made that way the whole document is written out again
    from its data (comments are then lost, the header is kept).
    """
    notes = comments or {}
    top = "".join(f"# {line}\n" for line in header.splitlines()) if header else ""
    edited: str | None = text
    for dotted, value in values.items():
        edited = _edit(edited, dotted, value, notes.get(dotted)) if edited is not None else None
    if edited is not None:
        document = parse_yaml_text(edited)
        if all(_lookup(document.data, dotted) == value for dotted, value in values.items()):
            return _with_header(edited, top)
    data = parse_yaml_text(text).data
    for dotted, value in values.items():
        data, _ = apply_override(data, f"{dotted}={_scalar_text(value)}")
    return _with_header(dump_yaml(data), top)


def _with_header(text: str, header: str) -> str:
    """`header` at the top of `text`, after an editor's schema modeline if the file has one."""
    if text.startswith("# yaml-language-server:"):
        first, _, rest = text.partition("\n")
        return f"{first}\n{header}{rest}"
    return header + text


def _lookup(data: Any, dotted: str) -> Any:
    node = data
    for part in dotted.split("."):
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return None
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
    return dump_yaml(expected)
