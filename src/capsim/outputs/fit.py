"""Terminal tables that fit a width: too many columns split over several tables, no figure cut.

Rich shrinks a table wider than the console by truncating its cells ("8.15…"). A capacity
planner must never read a cut number, so every view builds its tables here: figure columns never
wrap or truncate, and when the columns do not fit side by side they are split over as many tables
as needed, each repeating the key columns (the row labels) and titled "(continued)".
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from rich import box
from rich.cells import cell_len
from rich.console import JustifyMethod
from rich.markup import escape
from rich.table import Table
from rich.text import Text

#: Width of a table when stdout is not a terminal and COLUMNS is not set (files, pipes, CI logs).
DEFAULT_WIDTH = 120
#: The narrowest width capsim lays tables out for.
MIN_WIDTH = 40

Cell = str | Text


@dataclass(frozen=True)
class Column:
    """One column: its header, alignment, and whether its cells are prose that may wrap."""

    header: str
    justify: JustifyMethod = "right"
    prose: bool = False  # free text (an SLO objective): wraps at spaces instead of splitting
    group: str | None = None  # columns of one group stay in one table (a class's figures)


def terminal_width() -> int:
    """The width to lay tables out for: the terminal's, else $COLUMNS, else DEFAULT_WIDTH."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return max(int(columns), MIN_WIDTH)
    if sys.stdout.isatty():
        return max(shutil.get_terminal_size((DEFAULT_WIDTH, 24)).columns, MIN_WIDTH)
    return DEFAULT_WIDTH


def _text_width(cell: Cell, prose: bool) -> int:
    text = cell.plain if isinstance(cell, Text) else cell
    lines = text.splitlines() or [""]
    if prose:
        return max((cell_len(word) for line in lines for word in line.split()), default=0)
    return max(cell_len(line) for line in lines)


def _column_width(index: int, column: Column, rows: Sequence[Sequence[Cell]]) -> int:
    """The narrowest this column can be with no figure cut (prose: its longest word)."""
    cells = [column.header, *(row[index] for row in rows)]
    return max(_text_width(cell, column.prose) for cell in cells)


def _table_width(widths: Sequence[int]) -> int:
    # SIMPLE_HEAVY with padding (0, 1): one space of padding each side of a cell, and one
    # (blank) edge or divider character before, between and after the columns.
    return sum(width + 2 for width in widths) + len(widths) + 1


def _groups(
    columns: Sequence[Column], widths: Sequence[int], keys: int, width: int
) -> list[list[int]]:
    """The non-key columns in runs of the same `group`; a run too wide to share one table with
    the key columns is split into single columns after all."""
    runs: list[list[int]] = []
    for index in range(keys, len(columns)):
        group = columns[index].group
        if runs and group is not None and columns[runs[-1][0]].group == group:
            runs[-1].append(index)
        else:
            runs.append([index])
    keyed = list(range(keys))
    fitting: list[list[int]] = []
    for run in runs:
        too_wide = _table_width([widths[i] for i in keyed + run]) > width
        fitting += [[i] for i in run] if too_wide else [run]
    return fitting


def split_columns(
    columns: Sequence[Column], rows: Sequence[Sequence[Cell]], width: int, keys: int = 1
) -> list[list[int]]:
    """The column indexes of each table: the first `keys` in all, the rest greedily by group."""
    widths = [_column_width(i, c, rows) for i, c in enumerate(columns)]
    key_part = list(range(keys))
    parts: list[list[int]] = []
    current: list[int] = []
    for group in _groups(columns, widths, keys, width):
        candidate = key_part + current + group
        if current and _table_width([widths[i] for i in candidate]) > width:
            parts.append(key_part + current)
            current = list(group)
        else:
            current += group
    if current or not parts:
        parts.append(key_part + current)
    return parts


def _plain(cell: Cell) -> Text:
    return cell if isinstance(cell, Text) else Text(cell)


def fitted_tables(
    title: str,
    columns: Sequence[Column],
    rows: Sequence[Sequence[Cell]],
    width: int,
    keys: int = 1,
) -> list[Table]:
    """Tables showing every column of `rows`, none wider than `width` unless one column is.

    Titles, headers and cells are plain text: data in them is never read as rich markup.
    """
    tables = []
    for number, part in enumerate(split_columns(columns, rows, width, keys)):
        heading = title if number == 0 else f"{title} (continued)"
        table = Table(
            title=escape(heading),
            box=box.SIMPLE_HEAVY,
            title_justify="left",
            padding=(0, 1),
            min_width=min(cell_len(heading), width),  # the title on one line
        )
        for index in part:
            column = columns[index]
            table.add_column(
                escape(column.header),
                justify=column.justify,
                no_wrap=not column.prose,
                overflow="fold",
            )
        for row in rows:
            # A string is shown as it is, never read as markup (`[red]`, `[link=...]`).
            table.add_row(*(_plain(row[index]) for index in part))
        tables.append(table)
    return tables
