"""The docs' quoted outputs, checked against real runs and rewritten from them.

A quoted output is a command the docs show with what it printed, in one of two forms:

* a ```bash block of `capsim` commands followed by a plain ``` block: what the block's last
  command printed;
* a ```console block (or a plain one that starts with `$ `): each `$ capsim ...` line (with its `\\` continuation lines) is followed by
  what it printed.

Each command runs as written (its seed is the scenario's: every figure reproduces exactly), from
a scratch folder holding a copy of the repository's `scenarios/`, with `capsim` as
`python -m capsim`, on a terminal COLUMNS wide. A quote holds when it is the command's output
(trailing spaces aside); a quote with lines of `...` shows only some lines: each other line must
be, in order, the output's line of the same shape (its words, with every number masked: a
table's row, a verdict). `--write` replaces each quote's lines by the real ones (a quote with
`...` keeps its choice of lines).

A quote whose command reads files that are not in the repository (a user's traces, a scenario a
test writes) is marked in the Markdown, right above the block, with
`<!-- illustrative: REASON -->`; it is listed, not run.

    python tools/docquotes.py            # check every quote: exit 1 when one does not hold
    python tools/docquotes.py --write    # rewrite the quotes from real runs
    python tools/docquotes.py --page docs/getting-started.md --write
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
#: The terminal width the quotes are printed at (the tables fit it).
COLUMNS = 110
#: Commands whose quotes run long (a search, a series of runs): checked in the slow set.
EXPENSIVE = {"forecast", "size", "saturate", "sweep", "report", "calibrate", "backtest"}
ELISION = "..."
_ILLUSTRATIVE = re.compile(r"<!--\s*illustrative:\s*(.+?)\s*-->\s*\n\s*$", re.S)
_BLOCK = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.S | re.M)
_NUMBER = re.compile(r"[-+]?\d[\d,]*(?:\.\d+)?(?:e[-+]?\d+)?\s*(?:ms|us|µs|min|s|h|d|%|x)?")


@dataclass
class Quote:
    """One command the docs quote with its output."""

    page: Path
    line: int  # of the first output line in the page (1-based)
    command: list[str]  # the command's words, `capsim` first
    before: list[list[str]]  # commands of the same block run before it (their output unquoted)
    output: list[str]  # the quoted lines
    start: int  # character offsets of the quoted lines in the page
    end: int
    illustrative: str | None = None  # why it is not run, when it is marked so

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(REPO)}:{self.line}"

    @property
    def expensive(self) -> bool:
        return len(self.command) > 1 and self.command[1] in EXPENSIVE

    @property
    def elided(self) -> bool:
        return any(line.strip() == ELISION for line in self.output)


def _words(text: str) -> list[str]:
    return shlex.split(text, comments=True)


def _marked(text: str, block_start: int) -> str | None:
    found = _ILLUSTRATIVE.search(text[:block_start][-400:])
    return found.group(1) if found else None


def _console_quotes(page: Path, text: str, block: re.Match[str]) -> Iterator[Quote]:
    body_start = block.start(2)
    lines = block.group(2).splitlines(keepends=True)
    offset, i, before = body_start, 0, []
    while i < len(lines):
        line = lines[i]
        if not line.startswith("$ "):
            offset += len(line)
            i += 1
            continue
        command = line[2:]
        offset += len(line)
        i += 1
        while command.rstrip().endswith("\\") and i < len(lines):
            command = command.rstrip()[:-1] + " " + lines[i]
            offset += len(lines[i])
            i += 1
        start, output = offset, []
        while i < len(lines) and not lines[i].startswith("$ "):
            output.append(lines[i].rstrip("\n"))
            offset += len(lines[i])
            i += 1
        words = _words(command)
        if words and words[0] == "capsim" and output:
            line_no = text.count("\n", 0, start) + 1
            marked = _marked(text, block.start())
            yield Quote(page, line_no, words, list(before), output, start, offset, marked)
        if words and words[0] == "capsim":
            before.append(words)


def quotes(page: Path) -> list[Quote]:
    """Every quoted output of a Markdown page, in page order."""
    text = page.read_text(encoding="utf-8")
    blocks = list(_BLOCK.finditer(text))
    found: list[Quote] = []
    for block, after in zip(blocks, [*blocks[1:], None][: len(blocks)], strict=True):
        language = block.group(1).strip()
        if language == "console" or (not language and block.group(2).startswith("$ ")):
            found.extend(_console_quotes(page, text, block))
            continue
        if language != "bash" or after is None or after.group(1).strip():
            continue
        if text[block.end() : after.start()].strip():
            continue  # prose between them: the plain block is not this one's output
        commands = [_words(line) for line in block.group(2).splitlines()]
        commands = [words for words in commands if words]
        if not commands or any(words[0] != "capsim" for words in commands):
            continue
        output = after.group(2).splitlines()
        line_no = text.count("\n", 0, after.start(2)) + 1
        marked = _marked(text, block.start())
        found.append(
            Quote(page, line_no, commands[-1], commands[:-1], output, after.start(2),
                  after.end(2), marked)
        )  # fmt: skip
    return found


def all_quotes() -> list[Quote]:
    return [quote for page in PAGES for quote in quotes(page)]


def printed(quote: Quote, folder: Path) -> tuple[int, list[str]]:
    """Run the quote's command (after the commands of its block before it) in `folder`: its
    exit code and what it printed (stdout; stderr when it printed nothing else, as an error)."""
    env = {**os.environ, "COLUMNS": str(COLUMNS), "NO_COLOR": "1", "TERM": "dumb"}
    env.pop("GITHUB_ACTIONS", None)
    done = None
    makers = [words for words in quote.before if _writes_a_file(words)]
    for words in [*makers, quote.command]:
        done = subprocess.run(
            [sys.executable, "-m", "capsim", *words[1:]],
            cwd=folder,
            capture_output=True,
            text=True,
            env=env,
            timeout=3600,
        )
    assert done is not None
    text = done.stdout if done.stdout.strip() else done.stderr
    return done.returncode, [line.rstrip() for line in text.rstrip("\n").splitlines()]


def _writes_a_file(words: list[str]) -> bool:
    """Whether a command writes a file a later one may read (its own output is not quoted)."""
    return any(word in ("-o", "--output", "--write") for word in words)


def scratch() -> tempfile.TemporaryDirectory[str]:
    """A folder holding a copy of the repository's scenarios, where the quotes run."""
    folder = tempfile.TemporaryDirectory(prefix="docquotes-")
    shutil.copytree(REPO / "scenarios", Path(folder.name) / "scenarios")
    return folder


def shape(line: str) -> str:
    """A line's words with every number (and its unit) masked: what a row is, not its figures."""
    return " ".join(_NUMBER.sub("#", line).split())


def differences(quote: Quote, real: list[str]) -> list[str]:
    """How the quote differs from the real output (empty when it holds)."""
    quoted = [line.rstrip() for line in quote.output]
    if not quote.elided:
        if quoted == real:
            return []
        return [f"quoted {len(quoted)} line(s), printed {len(real)}; first difference: "
                + next((f"{q!r} != {r!r}" for q, r in zip(quoted, real, strict=False) if q != r),
                       "one is longer")]  # fmt: skip
    problems, position = [], 0
    for line in quoted:
        if line.strip() == ELISION:
            continue
        match = _find(real, shape(line), position)
        if match is None:
            problems.append(f"no line shaped like {line.strip()!r} after line {position}")
            continue
        if real[match] != line:
            problems.append(f"{line.strip()!r} is now {real[match].strip()!r}")
        position = match + 1
    return problems


def _find(lines: list[str], wanted: str, start: int) -> int | None:
    return next((i for i in range(start, len(lines)) if shape(lines[i]) == wanted), None)


def rewritten(quote: Quote, real: list[str]) -> list[str]:
    """The quote's lines from the real output (a quote with `...` keeps its choice of lines)."""
    if not quote.elided:
        return real
    lines, position = [], 0
    for line in quote.output:
        if line.strip() == ELISION:
            lines.append(line)
            continue
        match = _find(real, shape(line.rstrip()), position)
        if match is None:
            raise ValueError(
                f"{quote.where}: no line shaped like {line.strip()!r}: rewrite by hand"
            )
        lines.append(real[match])
        position = match + 1
    return lines


def write(page: Path, replacements: list[tuple[Quote, list[str]]]) -> None:
    text = page.read_text(encoding="utf-8")
    for quote, lines in sorted(replacements, key=lambda pair: -pair[0].start):
        ending = "\n" if text[quote.start : quote.end].endswith("\n") else ""
        text = text[: quote.start] + "\n".join(lines) + ending + text[quote.end :]
    page.write_text(text, encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="rewrite the quotes from real runs")
    parser.add_argument("--page", action="append", type=Path, help="only this page (repeatable)")
    parser.add_argument("--cheap", action="store_true", help="only the quotes of quick commands")
    options = parser.parse_args()
    pages = [page.resolve() for page in options.page] if options.page else PAGES
    failed = 0
    with scratch() as folder:
        for page in pages:
            replacements = []
            for quote in quotes(page):
                if quote.illustrative:
                    print(f"{quote.where}: illustrative ({quote.illustrative}): not run")
                    continue
                if options.cheap and quote.expensive:
                    continue
                _, real = printed(quote, Path(folder))
                problems = differences(quote, real)
                if options.write and problems:
                    replacements.append((quote, rewritten(quote, real)))
                    print(f"{quote.where}: rewritten")
                elif problems:
                    failed += 1
                    print(f"{quote.where}: {'; '.join(problems)}")
                else:
                    print(f"{quote.where}: holds")
            if replacements:
                write(page, replacements)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
