"""Escaping text from data for the medium it is printed in, and plain ASCII for old terminals.

Names and free text are validated (no control characters), but what is printed is escaped all
the same: a saved result read back, a file name or a future field must not be able to add a
Markdown heading, an HTML tag, an XML character a parser refuses, or a terminal escape sequence.
docs/robustness.md, "Text from data", lists what each medium gets.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from capsim.textsafe import visible

# ---- terminals -------------------------------------------------------------------------------


def terminal_data(value: Any) -> Any:
    """`value` with every string in it (mapping keys included) free of control characters.

    Applied to a result before it is drawn as a table or text, so that colour codes are the
    only escape sequences in what reaches a terminal (ESC, BEL, CSI and OSC from data are shown
    as `\\x1b`, `\\x07`, `\\x9b`; a newline as `\\n`).
    """
    if isinstance(value, str):
        return visible(value)
    if isinstance(value, dict):
        return {terminal_data(key): terminal_data(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [terminal_data(item) for item in value]
    return value


#: What capsim's own non-ASCII characters become on a terminal that cannot show them.
ASCII_FALLBACK = {
    "·": "-",
    "—": "--",
    "–": "-",
    "−": "-",
    "…": "...",
    "×": "x",
    "µ": "u",
    "²": "^2",
    "≈": "~",
    "≤": "<=",
    "≥": ">=",
    "∩": "and",
    "✓": "+",
    "✗": "x",
    "✅": "[PASS]",
    "❌": "[FAIL]",
    "→": "->",
    "━": "-",
    "─": "-",
    "│": "|",
    "┃": "|",
}
_TRANSLATION = str.maketrans(ASCII_FALLBACK)


def _box(match: re.Match[str]) -> str:
    return "+"


_BOX = re.compile("[\u2500-\u257f]")


def for_encoding(text: str, encoding: str | None) -> str:
    """`text` as it can be written to a stream of `encoding` without an error.

    Unchanged when the encoding holds every character (UTF-8); otherwise capsim's own symbols
    become ASCII (`·` -> `-`, `—` -> `--`, `✓` -> `+`), box drawing becomes `-`, `|` and `+`,
    accented letters lose their accents, and anything left becomes `?`.
    """
    codec = encoding or "utf-8"
    try:
        text.encode(codec)
        return text
    except UnicodeEncodeError:
        pass
    except LookupError:
        codec = "ascii"
    simpler = _BOX.sub(_box, text.translate(_TRANSLATION))
    simpler = "".join(
        char if ord(char) < 128 else unicodedata.normalize("NFKD", char) for char in simpler
    )
    simpler = "".join(char for char in simpler if not unicodedata.combining(char))
    return simpler.encode(codec, errors="replace").decode(codec)


# ---- Markdown ----------------------------------------------------------------------------------
#: Inline Markdown that text from data must not form: code spans, emphasis, links and images,
#: strikethrough, table cell boundaries, escapes; "_" only where it could start or end emphasis
#: (not inside a word such as error_rate).
_MARKDOWN_INLINE = re.compile(r"([\\`*\[\]|~])|(?<!\w)_|_(?!\w)")
#: HTML: a tag, comment or declaration starts with "<" then a letter, "/", "!" or "?"; an entity
#: with "&" then a name or "#" and ";". "<=" and "a & b" stay as they are.
_HTML_START = re.compile(r"<(?=[A-Za-z/!?])")
_ENTITY = re.compile(r"&(?=#?\w+;)")
#: What starts a block when it begins a line: a heading, a quote, a list item, a rule, a fence.
_BLOCK_START = re.compile(r"^(\s*)([#>+=-]|\d+(?=[.)]))")


class Markdown(str):
    """Text that is already Markdown, written by capsim itself (`**OVERLOADED**`): not escaped
    again by `markdown_cell`."""


def markdown_cell(text: str) -> str:
    """A table cell: text from data escaped (`markdown_text`), capsim's own Markdown kept."""
    return text if isinstance(text, Markdown) else markdown_text(text)


def markdown_text(text: str, *, line_start: bool = False) -> str:
    """Text from data as literal Markdown on one line (a paragraph, a heading, a table cell).

    No HTML tag, entity, link, image, code span, emphasis or table cell boundary can be formed,
    and control characters are shown as escapes (a newline as `\\n`): the text renders as
    itself, on GitHub and in any viewer that allows HTML. With `line_start` (the text begins a
    line) a heading, quote, list or rule marker at its start is escaped too.
    """
    safe = _ENTITY.sub("&amp;", visible(text))
    safe = _HTML_START.sub("&lt;", safe)
    safe = _MARKDOWN_INLINE.sub(lambda match: "\\" + match.group(), safe)
    return _BLOCK_START.sub(_escape_block_start, safe) if line_start else safe


def _escape_block_start(match: re.Match[str]) -> str:
    indent, marker = match.group(1), match.group(2)
    if marker[0].isdigit():  # "1." starts a list: escape the dot, "1\." (a digit cannot be)
        return f"{indent}{marker}\\"
    return f"{indent}\\{marker}"


def markdown_prose(text: str) -> str:
    """Multi-line free text (a description): each line escaped, line breaks kept as breaks."""
    lines = [markdown_text(line.strip(), line_start=True) for line in text.strip().splitlines()]
    return "  \n".join(line for line in lines if line)


def markdown_code(text: str) -> str:
    """Text from data inside an inline code span: a fence longer than any run of backticks."""
    safe = visible(text)
    longest = max((len(run) for run in re.findall(r"`+", safe)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if safe.startswith("`") or safe.endswith("`") else ""
    return f"{fence}{pad}{safe}{pad}{fence}"


def markdown_link(target: str) -> str:
    """A relative file name as a Markdown link destination: spaces, parentheses and the other
    characters a destination cannot hold raw are percent-encoded."""
    from urllib.parse import quote

    return quote(target, safe="/-_.~")


# ---- XML ---------------------------------------------------------------------------------------
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_text(text: str) -> str:
    """Text that XML 1.0 can hold: characters it forbids are shown as escapes (`\\x1b`).

    ElementTree escapes `<`, `&` and quotes; it does not refuse the control characters and lone
    surrogates that make a document ill-formed, so they are replaced here first.
    """
    return _NOT_XML.sub(lambda match: visible(match.group()), text)
