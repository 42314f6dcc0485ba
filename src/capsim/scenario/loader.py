"""Safe YAML loading into plain Python data, keeping the file position of every key and value.

The YAML is composed into nodes with PyYAML's SafeLoader machinery (libyaml's C composer for
small texts where it reads exactly what the Python one does, see `FAST_MAX_CHARS`; the Python
one otherwise and for every error) and the values are built here, so that every node's position
is known and the YAML 1.1 surprises are decided in one place:

* booleans are only ``true`` / ``false`` (any case); ``yes``, ``no``, ``on``, ``off`` stay text;
* integers are decimal even with a leading zero (``010`` is ten), ``0x`` hex and ``0b`` binary are
  accepted, ``12:30`` (base 60) stays text;
* floats follow YAML 1.2: ``1e3`` and ``1.0e3`` are numbers, ``.inf`` and ``.nan`` are read as
  floats so that validation can reject them with a clear message;
* mapping keys are always the key's text (a tier named ``no`` is ``"no"``);
* duplicate keys, unknown tags (``!!python/...``), recursive aliases and documents that expand
  beyond `MAX_NODES` nodes are errors; merge keys (``<<: *defaults``) are supported.
"""

from __future__ import annotations

import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from capsim.errors import Problem, ScenarioError
from capsim.safeio import InputError, read_capped
from capsim.textsafe import visible

MAX_FILE_BYTES = 10 * 1024 * 1024
MAX_NODES = 100_000

PathKey = tuple[str | int, ...]
Position = tuple[int, int]

_TAG = "tag:yaml.org,2002:"
_FLOAT_MAX = int(sys.float_info.max)
_NULL_RE = re.compile(r"^(?:~|null|Null|NULL|)$")
_BOOL = {"true": True, "false": False}
_INT_RE = re.compile(r"^[-+]?[0-9][0-9_]*$")
_HEX_RE = re.compile(r"^[-+]?0x[0-9a-fA-F_]+$")
_BIN_RE = re.compile(r"^[-+]?0b[01_]+$")
_FLOAT_RE = re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)?$")
_INF_RE = re.compile(r"^([-+]?)\.(?:inf|Inf|INF)$")
_NAN_RE = re.compile(r"^\.(?:nan|NaN|NAN)$")
_SURROGATE = re.compile("[\ud800-\udfff]")


def format_path(path: PathKey) -> str:
    """``('tiers', 'app', 'calls', 0, 'tier')`` -> ``tiers.app.calls[0].tier``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


@dataclass
class Document:
    """Plain data read from a YAML file, with the 1-based (line, column) of every node.

    `positions` locates each value by its key path; `key_positions` locates the key itself (the
    right place to point at for an unknown key).
    """

    data: Any
    file: str
    positions: dict[PathKey, Position] = field(default_factory=dict)
    key_positions: dict[PathKey, Position] = field(default_factory=dict)


_PLAIN = "tag:capsim,2026:plain"


class _TooManyNodes(Exception):
    """The document holds more than MAX_NODES nodes before any alias is expanded."""

    def __init__(self, mark: Any) -> None:
        super().__init__()
        self.mark = mark


class _Loader(yaml.SafeLoader):
    """SafeLoader that marks untagged plain scalars, so that capsim decides what they mean,
    and stops composing at the MAX_NODES-th node: the pure-Python parser reads a few hundred
    thousand nodes a second, so a 10 MiB flood of them would take a minute to be refused."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.composed = 0

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is yaml.ScalarNode and implicit[0]:
            return _PLAIN
        return super().resolve(kind, value, implicit)

    def compose_node(self, parent: Any, index: Any) -> Any:
        if not self.check_event(yaml.AliasEvent):
            self.composed += 1
            if self.composed > MAX_NODES:
                raise _TooManyNodes(self.peek_event().start_mark)
        return super().compose_node(parent, index)


def _mark(node: yaml.Node) -> Position:
    return node.start_mark.line + 1, node.start_mark.column + 1


class _Builder:
    """Builds plain values from composed nodes, counting every node built (aliases included)."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.count = 0
        self.positions: dict[PathKey, Position] = {}
        self.key_positions: dict[PathKey, Position] = {}
        self.active: set[int] = set()
        self.problems: list[Problem] = []

    def fail(self, message: str, node: yaml.Node, path: PathKey) -> ScenarioError:
        line, column = _mark(node)
        return ScenarioError(
            [
                Problem(
                    message=message,
                    file=self.file,
                    line=line,
                    column=column,
                    path=format_path(path),
                )
            ]
        )

    def note(self, message: str, node: yaml.Node, path: PathKey) -> None:
        """Record a problem and go on, so that one run reports every problem of this kind."""
        self.problems.extend(self.fail(message, node, path).problems)

    def build(self, node: yaml.Node, path: PathKey) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise self.fail(
                f"the document expands to more than {MAX_NODES:,} values (aliases included); "
                "a scenario never needs that many: remove the anchors (&name) and aliases (*name)",
                node,
                path,
            )
        self.positions.setdefault(path, _mark(node))
        if id(node) in self.active:
            raise self.fail(
                "an alias refers to the node that contains it (a recursive alias)", node, path
            )
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node, path)
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                if node.tag != _TAG + "seq":
                    return self._bad_tag(node, path)
                return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
            if isinstance(node, yaml.MappingNode):
                if node.tag != _TAG + "map":
                    return self._bad_tag(node, path)
                return self.mapping(node, path)
        finally:
            self.active.discard(id(node))
        raise self.fail(
            f"unsupported YAML node {type(node).__name__}", node, path
        )  # pragma: no cover

    def _bad_tag(self, node: yaml.Node, path: PathKey) -> None:
        self.note(
            f"the YAML tag '{node.tag.replace(_TAG, '!!')}' is not allowed in a scenario (no code or custom types); "
            "remove it and write a plain value",
            node,
            path,
        )

    def mapping(self, node: yaml.MappingNode, path: PathKey) -> dict[str, Any]:
        result: dict[str, Any] = {}
        seen: dict[str, yaml.Node] = {}
        merged: list[yaml.Node] = []
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise self.fail(
                    "a mapping key must be a plain name, not a list or a mapping", key_node, path
                )
            if key_node.tag in (_TAG + "merge", _PLAIN) and key_node.value == "<<":
                merged.append(value_node)
                continue
            key = str(key_node.value)
            if self.lone_surrogate(key_node, path):
                continue
            if key in seen:
                first_line = seen[key].start_mark.line + 1
                self.note(
                    f"duplicate key {key!r} (first given on line {first_line}); "
                    "YAML would silently keep only the last one: keep one of them",
                    key_node,
                    (*path, key),
                )
                continue
            seen[key] = key_node
            self.key_positions[(*path, key)] = _mark(key_node)
            result[key] = self.build(value_node, (*path, key))
        for value_node in merged:
            sources = (
                value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
            )
            for source in sources:
                if not isinstance(source, yaml.MappingNode):
                    raise self.fail("a merge key (<<) must refer to a mapping", source, path)
                for key, value in self.mapping(source, path).items():
                    result.setdefault(key, value)
        return result

    def lone_surrogate(self, node: yaml.ScalarNode, path: PathKey) -> bool:
        """Note a scalar holding an unpaired surrogate (a `"\\ud800"` escape): no text can hold
        one, it cannot even be written as UTF-8, so it is refused here, before anything uses it."""
        found = _SURROGATE.search(str(node.value))
        if found is None:
            return False
        self.note(
            f"'{visible(str(node.value))[:80]}' holds an unpaired surrogate U+{ord(found.group()):04X} (a lone "
            "\\uD800-\\uDFFF escape); write the character itself, or its pair of escapes",
            node,
            path,
        )
        return True

    def scalar(self, node: yaml.ScalarNode, path: PathKey) -> Any:
        if self.lone_surrogate(node, path):
            return None
        if node.tag == _PLAIN:
            return self.implicit(node.value)
        if node.tag in (_TAG + "str", "!"):
            return node.value
        return self._tagged(node, path)

    def _tagged(self, node: yaml.ScalarNode, path: PathKey) -> Any:
        """An explicitly tagged scalar: only the core tags are allowed."""
        short = node.tag[len(_TAG) :] if node.tag.startswith(_TAG) else None
        if short == "str":
            return node.value
        if short in ("int", "float", "bool", "null"):
            value: Any = self.implicit(node.value)
            kinds: dict[str, tuple[type, ...]] = {
                "int": (int,),
                "float": (int, float),
                "bool": (bool,),
                "null": (type(None),),
            }
            matches = isinstance(value, kinds[short])
            if matches and not (short != "bool" and isinstance(value, bool)):
                return float(value) if short == "float" else value
            self.note(f"{node.value!r} is not a valid !!{short}", node, path)
            return None
        return self._bad_tag(node, path)

    @staticmethod
    def implicit(text: str) -> Any:
        """The value of a plain scalar under capsim's rules (see the module docstring)."""
        if _NULL_RE.match(text):
            return None
        lowered = text.lower()
        if lowered in _BOOL:
            return _BOOL[lowered]
        if _INT_RE.match(text):
            digits = text.replace("_", "")
            # Beyond Python's int-from-text limit a number is far beyond any float: infinite.
            return _finite_int(int(digits, 10)) if len(digits) < 400 else float(digits)
        if _HEX_RE.match(text):
            return _finite_int(int(text.replace("_", ""), 16))
        if _BIN_RE.match(text):
            return _finite_int(int(text.replace("_", ""), 2))
        if _FLOAT_RE.match(text) and any(ch.isdigit() for ch in text):
            return float(text.replace("_", ""))
        match = _INF_RE.match(text)
        if match:
            return float("-inf") if match.group(1) == "-" else float("inf")
        if _NAN_RE.match(text):
            return float("nan")
        return text


def implicit_value(text: str) -> Any:
    """What capsim's loader reads a plain (unquoted) scalar `text` as: a number, a boolean,
    None, or the text itself."""
    return _Builder.implicit(text)


def _finite_int(value: int) -> int | float:
    """An integer beyond the range of a float is infinite, so validation says it is not finite."""
    if abs(value) > _FLOAT_MAX:
        return math.inf if value > 0 else -math.inf
    return value


#: The longest plain key YAML reads (a "simple key" ends within 1024 characters).
YAML_KEY_LIMIT = 1024


def _after_a_long_key(error: yaml.MarkedYAMLError) -> bool:
    """Whether the error is a ':' too far along its line to end a key: what YAML says of a
    name longer than `YAML_KEY_LIMIT` ("mapping values are not allowed here")."""
    mark = error.problem_mark
    return (
        error.problem == "mapping values are not allowed here"
        and mark is not None
        and mark.column > YAML_KEY_LIMIT
    )


def _syntax_problem(error: yaml.YAMLError, file: str) -> Problem:
    if isinstance(error, yaml.MarkedYAMLError):
        mark = error.problem_mark or error.context_mark
        parts = [p for p in (error.context, error.problem) if p]
        message = "invalid YAML: " + "; ".join(parts)
        if error.problem and "'\\t'" in error.problem:
            message += " (YAML does not allow tabs for indentation: indent with spaces)"
        elif error.problem and "expected a single document" in message:
            message += " (a scenario file holds exactly one document: remove the extra '---')"
        elif _after_a_long_key(error):
            message += (
                f" (YAML reads a key only up to {YAML_KEY_LIMIT:,} characters before its ':', "
                "and this one is longer: shorten the name)"
            )
        if mark is not None:
            return Problem(message=message, file=file, line=mark.line + 1, column=mark.column + 1)
        return Problem(message, file)
    return Problem(f"invalid YAML: {error}", file)


#: Texts up to this many characters are composed by libyaml (PyYAML's C parser, when it is built
#: with it), about ten times faster than the pure-Python parser. Such a text cannot hold
#: MAX_NODES nodes (a node takes at least two thirds of a character: `[?,?]` makes three nodes of
#: each `?,`), so the composer needs no node count, which libyaml's cannot keep.
FAST_MAX_CHARS = MAX_NODES // 3
#: Texts holding one of these take the Python path: libyaml accepts a tab between flow items and
#: a `?` inside a plain scalar in a flow collection (`{mean?: 1}`), both refused by PyYAML, and
#: reads a byte-order mark past the start differently.
_NOT_FAST = ("\t", "?", "\ufeff")


class _FastLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """libyaml's composer, marking untagged plain scalars as `_Loader` does."""

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is yaml.ScalarNode and implicit[0]:
            return _PLAIN
        return super().resolve(kind, value, implicit)


def _compose_fast(text: str) -> tuple[bool, yaml.Node | None]:
    """(True, the document's node) when libyaml composes `text` without complaint; else
    (False, None), and the pure-Python parser reads it again, so that every error (its
    message, its line and column) is exactly the one that parser gives. Texts holding one of
    `_NOT_FAST` take the Python path from the start."""
    if not yaml.__with_libyaml__ or len(text) > FAST_MAX_CHARS or any(c in text for c in _NOT_FAST):
        return False, None
    loader = _FastLoader(text)
    try:
        node = loader.get_single_node()
    except Exception:  # any refusal: the Python parser reads it again, decides and says why
        return False, None
    finally:
        loader.dispose()
    if node is not None and _holds_empty_plain_scalar(node):
        return False, None
    return True, node


def _holds_empty_plain_scalar(root: yaml.Node) -> bool:
    """Whether a node under `root` is an empty plain scalar (`{a: , b: 1}`, `a:`): libyaml
    places one in a flow collection at the next token where PyYAML places it at the end of
    the `:`, and its position is the one an error about that value points at."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.ScalarNode):
            if node.value == "" and not node.style:  # plain: libyaml says "", PyYAML None
                return True
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
        elif isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                stack.append(key)
                stack.append(value)
    return False


def parse_yaml_text(text: str, file: str = "<scenario>") -> Document:
    """Plain data from YAML text, with positions; raises ScenarioError with file:line:col."""
    composed, node = _compose_fast(text)
    if not composed:
        node = _compose(text, file)
    if node is None:
        return Document(None, file)
    builder = _Builder(file)
    try:
        data = builder.build(node, ())
    except RecursionError:
        raise ScenarioError(
            [Problem("the YAML is nested too deeply to be a scenario", file)]
        ) from None
    if builder.problems:
        raise ScenarioError(builder.problems)
    return Document(
        data=data, file=file, positions=builder.positions, key_positions=builder.key_positions
    )


def _compose(text: str, file: str) -> yaml.Node | None:
    """The document's node by the pure-Python parser, stopped at MAX_NODES nodes."""
    try:
        loader = _Loader(text)
    except yaml.reader.ReaderError as error:
        before = text[: error.position]
        line, column = before.count("\n") + 1, error.position - (before.rfind("\n") + 1) + 1
        message = (
            f"the file holds the control character U+{error.character:04X}, which YAML does not "
            "allow; remove it"
        )
        raise ScenarioError(
            [Problem(message=message, file=file, line=line, column=column)]
        ) from None
    try:
        node = loader.get_single_node()
    except yaml.YAMLError as error:
        raise ScenarioError([_syntax_problem(error, file)]) from None
    except RecursionError:
        raise ScenarioError(
            [Problem("the YAML is nested too deeply to be a scenario", file)]
        ) from None
    except _TooManyNodes as error:
        message = (
            f"the document holds more than {MAX_NODES:,} values; a scenario never needs that "
            "many: read long profiles and samples from a file (profile: {file: rates.csv}, "
            "samples file:)"
        )
        line, column = error.mark.line + 1, error.mark.column + 1
        raise ScenarioError(
            [Problem(message=message, file=file, line=line, column=column)]
        ) from None
    finally:
        loader.dispose()
    return node


def read_yaml_file(path: str | Path) -> Document:
    """Read and parse a scenario file; every failure is a ScenarioError naming the file.

    At most `MAX_FILE_BYTES` + 1 bytes are read, whatever size the file reports (a device, a
    FIFO or standard input as `-` never end): see `capsim.safeio`.
    """
    file = str(path)
    try:
        raw = read_capped(file, MAX_FILE_BYTES, "a scenario")
    except InputError as error:
        raise ScenarioError([Problem(f"cannot read the file: {error.reason}", file)]) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        before = raw[: error.start]
        line = before.count(b"\n") + 1
        column = error.start - (before.rfind(b"\n") + 1) + 1
        raise ScenarioError(
            [
                Problem(
                    message=f"the file is not UTF-8 text (byte 0x{raw[error.start]:02x}); save it as UTF-8",
                    file=file,
                    line=line,
                    column=column,
                )
            ]
        ) from None
    if not text.strip() or _only_comments(text):
        raise ScenarioError(
            [Problem("the file is empty; a scenario needs at least name, traffic and tiers", file)]
        )
    return parse_yaml_text(text, file)


def _only_comments(text: str) -> bool:
    return all(not line.strip() or line.lstrip().startswith("#") for line in text.splitlines())
