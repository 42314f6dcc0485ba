"""`--set PATH=VALUE` overrides: change the parsed scenario before it is validated."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from capsim.errors import Problem, ScenarioError
from capsim.scenario.loader import Document, PathKey, format_path, parse_yaml_text
from capsim.scenario.schema import suggest

#: Top-level mappings whose keys are names the scenario defines (a tier, a traffic class):
#: `--set` may change a named entry or add a whole one, but not invent one by a deeper path.
_NAMED_SECTIONS = {"tiers": "tier", "traffic": "traffic class"}


class ShortcutOverride(str):
    """The override a shortcut option stands for (`--duration 10min` is
    `simulation.duration=10min`) that remembers the option as the user typed it, so that its
    problems name the option, not a `--set` the user never wrote."""

    typed: str

    def __new__(cls, override: str, typed: str) -> ShortcutOverride:
        made = super().__new__(cls, override)
        made.typed = typed
        return made


def as_typed(override: str) -> str:
    """`override` as the user typed it: `--set PATH=VALUE`, or the shortcut option."""
    return override.typed if isinstance(override, ShortcutOverride) else f"--set {override}"


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


class InTheWay(ValueError):
    """An override's path cannot go on through the scenario's value at `path` (a scalar or a
    list where it needs a mapping, or a list without that index)."""

    def __init__(self, message: str, path: PathKey) -> None:
        super().__init__(message)
        self.path = path


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
                raise InTheWay(
                    f"{format_path(tuple(path))} is a list of {len(node)}; "
                    f"use an index 0..{len(node) - 1} after it, not {part!r}",
                    tuple(path),
                )
            key: Any = int(part)
        elif isinstance(node, dict):
            key = part
        else:
            raise InTheWay(
                f"{format_path(tuple(path))} is not a mapping, so it has no key {part!r}",
                tuple(path),
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


def _where_written(error: ValueError, document: Document) -> str:
    """The override's problem; when the file's own value is in its way (`simulation: 5s` where
    `--duration` needs a mapping), also where the file writes that value."""
    if not isinstance(error, InTheWay) or error.path not in document.positions:
        return str(error)
    line, column = document.positions[error.path]
    where = format_path(error.path)
    return (
        f"{error}; the scenario writes {where} at {document.file}:{line}:{column}: change it "
        f"there, or set it whole (--set {where}=...)"
    )


@dataclass(frozen=True)
class NewEntry:
    """A tier or traffic class the scenario does not define, made key by key by an override
    (`--set tiers.nope.instances=2`): most often a name mistyped beyond what `suggest` finds."""

    section: str  # "tiers" or "traffic"
    name: str
    rest: str  # the override after the name: `instances=2`
    defined: tuple[str, ...]  # the names the scenario defines there

    def note(self) -> str:
        kind = _NAMED_SECTIONS[self.section]
        kinds = "traffic classes" if kind == "traffic class" else f"{kind}s"
        if self.defined:
            listed = ", ".join(self.defined)
            instead = (
                f"its {kinds} are {listed}: set one of theirs (e.g. "
                f"{self.section}.{self.defined[0]}.{self.rest}), or give"
            )
        else:
            instead = f"it defines no {kinds}: give"
        return (
            f"the scenario has no {kind} {self.name!r}, so this --set made a new {kind} with only "
            f"the keys it sets ({instead} a new {kind} whole: {self.section}.{self.name}={{...}})"
        )


@dataclass
class Applied:
    """What applying the overrides did: how each path set is named in problems (`--set
    PATH=VALUE`, or the shortcut option typed), the overrides that could not be applied, and
    the tiers and classes the overrides made key by key."""

    origins: dict[PathKey, str] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    new_entries: dict[PathKey, NewEntry] = field(default_factory=dict)

    def explained(self, problems: Sequence[Problem]) -> list[Problem]:
        """`problems`, the first one within each entry an override made key by key saying that
        the scenario has no such tier or class, and which it has."""
        found = list(problems)
        for key, entry in self.new_entries.items():
            prefix = format_path(key)
            for i, problem in enumerate(found):
                if problem.path == prefix or problem.path.startswith(prefix + "."):
                    found[i] = replace(problem, message=f"{problem.message}; {entry.note()}")
                    break
        return found


def _new_entry(data: Any, override: str) -> NewEntry | None:
    """The tier or class `override` makes key by key, when it reaches below one the scenario
    does not define (None when it sets an existing one, or a whole new one)."""
    try:
        parts, value_text = _split(override)
    except ValueError:
        return None
    if len(parts) < 3 or parts[0] not in _NAMED_SECTIONS or not isinstance(data, dict):
        return None
    section = data.get(parts[0])
    if not isinstance(section, dict) or parts[1] in section:
        return None
    rest = ".".join(parts[2:]) + "=" + value_text
    return NewEntry(parts[0], parts[1], rest, tuple(sorted(map(str, section))))


def apply_overrides(document: Document, overrides: Sequence[str]) -> Applied:
    """Apply every override to `document` in place.

    Returns how each path set is named in later problems (the override as typed), a Problem
    for each override that could not be applied, and the tiers and classes made key by key.
    """
    applied = Applied()
    if document.data is not None and not isinstance(document.data, dict):
        # The file itself is wrong: let validation say so, located in the file.
        return applied
    for override in overrides:
        new = _new_entry(document.data, override)
        try:
            document.data, path = apply_override(document.data, override)
        except ValueError as error:
            applied.problems.append(Problem(_where_written(error, document), as_typed(override)))
            continue
        for table in (document.positions, document.key_positions, applied.origins):
            for stale in [p for p in table if p[: len(path)] == path]:
                del table[stale]
        applied.origins[path] = as_typed(override)
        if new is not None:
            # What the new entry lacks is located at the override that made it.
            applied.origins[path[:2]] = as_typed(override)
            applied.new_entries[path[:2]] = new
    return applied
