"""Text from data that is not ours: finding control characters and showing them harmlessly.

Every layer uses these: validation refuses control characters and unpaired surrogates in names
and free text, error messages show a key or a file name with them made visible, and the outputs
escape what they print for their medium (docs/robustness.md, "Text from data").
"""

from __future__ import annotations

import re

#: C0 controls (newline and tab included), DEL, C1 controls and UTF-16 surrogates: characters
#: that can move a terminal's cursor, start an escape sequence, break a line of a log or a
#: workflow command, make XML ill-formed, or fail to encode as UTF-8.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
#: The same, but newline and tab allowed (multi-line free text such as a description).
_UNSAFE_IN_PROSE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    if char == "\n":
        return "\\n"
    if char == "\t":
        return "\\t"
    if char == "\r":
        return "\\r"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(text: str) -> str:
    """`text` with every control character and surrogate written as an escape (`\\x1b`, `\\n`)."""
    return _UNSAFE.sub(_escape, text)


def first_unsafe(text: str, *, prose: bool = False) -> int | None:
    """Index of the first control character or surrogate (newline and tab allowed in prose)."""
    found = (_UNSAFE_IN_PROSE if prose else _UNSAFE).search(text)
    return None if found is None else found.start()


def describe_unsafe(text: str, index: int) -> str:
    """`the control character U+001B at character 4` for a validation message."""
    char = text[index]
    kind = "an unpaired surrogate" if "\ud800" <= char <= "\udfff" else "the control character"
    return f"{kind} U+{ord(char):04X} at character {index + 1}"
