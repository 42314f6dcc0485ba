"""`--set PATH=VALUE` overrides: change the parsed scenario before it is validated."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from capsim.errors import Problem, ScenarioError
from capsim.scenario.loader import Document, PathKey, format_path, parse_yaml_text
from capsim.scenario.schema import suggest

#: Top-level mappings whose keys are names the scenario defines (a tier, a traffic class):
#: `--set` may change a named entry or add a whole one, but not invent one by a deeper path.
_NAMED_SECTIONS = {"tiers": "tier", "traffic": "traffic class"}


def _split(override: str) -> tuple[list[str], str]:
    if "=" not in override:
        raise ValueError("an override is PATH=VALUE, e.g. tiers.app.instances=12")
    path_text, value_text = override.split("=", 1)
    parts = [p.strip() for p in path_text.strip().split(".")]
    if not path_text.strip() or any(not p for p in parts):
        raise ValueError("the PATH before '=' is a dotted key path such as tiers.app.instances")
    return [piece for part in parts for piece in _indexed(part)], value_text


#: A key followed by list indexes in brackets: `calls[0]`, `profile[2][1]`.
_BRACKETS = re.compile(r"([^\[\]]+)((?:\[\d+\])+)")


def _indexed(part: str) -> list[str]:
    """`calls[0]` as the two steps `calls`, `0` (the paths messages show, written back); any
    other part as it is."""
    match = _BRACKETS.fullmatch(part)
    if match is None:
        return [part]
    return [match.group(1), *re.findall(r"\d+", match.group(2))]


def _parse_value(text: str) -> Any:
    if not text.strip():
        return ""
    try:
        return parse_yaml_text(text, "<value>").data
    except ScenarioError as error:
        reason = "; ".join(p.message for p in error.problems)
        raise ValueError(f"the VALUE is not valid YAML: {reason}") from None


def override_value(override: str) -> tuple[str, Any]:
    """(dotted path, value) of one PATH=VALUE override. Raises ValueError."""
    parts, value_text = _split(override)
    return ".".join(parts), _parse_value(value_text)


def apply_override(data: Any, override: str) -> tuple[Any, PathKey]:
    """`data` with one PATH=VALUE override applied; the path it set. Raises ValueError."""
    parts, value_text = _split(override)
    value = _parse_value(value_text)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ValueError("the scenario's top level is not a mapping")
    node: Any = data
    path: list[str | int] = []
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ValueError(
                    f"{format_path(tuple(path))} is a list of {len(node)}; "
                    f"use an index 0..{len(node) - 1} after it, not {part!r}"
                )
            key: Any = int(part)
        elif isinstance(node, dict):
            key = part
        else:
            raise ValueError(
                f"{format_path(tuple(path))} is not a mapping, so it has no key {part!r}"
            )
        path.append(key)
        if last:
            node[key] = value
        else:
            child = node[key] if (isinstance(node, list) or key in node) else None
            if child is None:
                _refuse_unknown_name(path, node)
                child = {}
                node[key] = child
            node = child
    return data, tuple(path)


def _refuse_unknown_name(path: list[str | int], section: Any) -> None:
    """Refuse a path that reaches below a tier or class the scenario does not define when its
    name is close to one it does: `tiers.ap.instances=4` is a typo of `app`, not a new tier
    with only `instances`. A name like none of them makes a new entry key by key
    (`tiers.db.service_time=3ms`), or whole (`tiers.cache2={type: cache, ...}`).
    """
    if len(path) != 2 or path[0] not in _NAMED_SECTIONS or not isinstance(section, dict):
        return
    kind, name = _NAMED_SECTIONS[str(path[0])], str(path[1])
    names = sorted(str(n) for n in section)
    hint = suggest(name, names)
    if not hint:
        return
    valid = ", ".join(f"{path[0]}.{n}.<key>" for n in names) or f"none (no {kind} is defined)"
    raise ValueError(
        f"unknown {kind} {name!r}{hint} valid paths here are {valid}"
        f" (add a new {kind} whole: {path[0]}.{name}={{...}})"
    )


def apply_overrides(
    document: Document, overrides: Sequence[str]
) -> tuple[dict[PathKey, str], list[Problem]]:
    """Apply every override to `document` in place.

    Returns the override text that set each path (so later problems can name the override) and
    a Problem for each override that could not be applied.
    """
    origins: dict[PathKey, str] = {}
    problems: list[Problem] = []
    if document.data is not None and not isinstance(document.data, dict):
        # The file itself is wrong: let validation say so, located in the file.
        return origins, problems
    for override in overrides:
        try:
            document.data, path = apply_override(document.data, override)
        except ValueError as error:
            problems.append(Problem(str(error), f"--set {override}"))
            continue
        for table in (document.positions, document.key_positions, origins):
            for stale in [p for p in table if p[: len(path)] == path]:
                del table[stale]
        origins[path] = override
    return origins, problems
