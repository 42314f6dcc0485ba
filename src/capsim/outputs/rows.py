"""The rows of the class, tier and SLO tables, built once for every view that shows them.

The terminal table, the Markdown result, the Markdown report and the HTML report differ only in
how they draw a cell (rich styles, `**bold**`, a css class); what a row holds, in which order,
under which header and whether it is a number (right-aligned) is decided here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from capsim.outputs import cells

Entry = dict[str, Any]


@dataclass(frozen=True)
class Field:
    """One column of a table: its header, how a row's cell is written, and its kind."""

    header: str
    cell: Callable[[str, Entry], str]
    numeric: bool = True  # a figure: right-aligned; else text from data or words
    prose: bool = False  # free text (an SLO objective): may wrap at spaces
    marks: bool = False  # the cell that says whether the row is ok (a status, a verdict)


@dataclass(frozen=True)
class Row:
    """The cells of one row and whether its subject is well (a stable tier, a met SLO): the
    views mark the status or verdict cell of a row that is not."""

    cells: list[str]
    ok: bool


@dataclass(frozen=True)
class Rows:
    """A table's columns and rows, ready for a renderer."""

    fields: list[Field]
    rows: list[Row]

    @property
    def header(self) -> list[str]:
        return [field.header for field in self.fields]

    @property
    def numeric(self) -> list[int]:
        """Indexes of the right-aligned columns."""
        return [index for index, field in enumerate(self.fields) if field.numeric]


def _build(fields: list[Field], entries: list[tuple[str, Entry]], ok: str | None = None) -> Rows:
    rows = [
        Row([field.cell(name, entry) for field in fields], ok is None or bool(entry[ok]))
        for name, entry in entries
    ]
    return Rows(fields, rows)


def _name(name: str, entry: Entry) -> str:
    return name


def _latency(statistic: str) -> Callable[[str, Entry], str]:
    """The cell of a class's latency statistic, marked when from a low sample."""
    return lambda _, entry: cells.percentile(entry, "latency", statistic)


def _share_over(key: str) -> Callable[[str, Entry], str]:
    """The cell of a class's share of requests slower than the limit `key`."""
    return lambda _, entry: cells.share(entry.get("share_over", {}).get(key))


#: Where a report's class table starts its percentiles: the mean first.
REPORT_PERCENTILES = ("mean", *cells.SHOWN_PERCENTILES)


def class_rows(data: dict[str, Any], shown: tuple[str, ...] = cells.SHOWN_PERCENTILES) -> Rows:
    """One row per request class: offered, throughput, errors, the latency statistics `shown`
    (and every percentile asked for beyond them), and a share per latency limit counted."""
    percentiles, shares = cells.percentile_columns(data, shown), cells.share_columns(data)
    fields = [
        Field("class", _name, numeric=False),
        Field("offered", lambda _, entry: cells.rate(entry["offered_rate"])),
        Field("throughput", lambda _, entry: cells.rate(entry["throughput"])),
        Field("errors", lambda _, entry: cells.errors(entry)),
        *(Field(name, _latency(name)) for name in percentiles),
        *(Field(header, _share_over(key)) for key, header in shares),
    ]
    return _build(fields, list(data.get("classes", {}).items()))


#: The tier figures every tier table shows, between the tier's name (and type) and its status.
TIER_FIGURES = [
    Field("utilization", lambda _, entry: cells.percent(entry["utilization"])),
    Field("occupancy", lambda _, entry: cells.percent(entry.get("occupancy"))),
    Field("throughput", lambda _, entry: cells.rate(entry["throughput"])),
    Field("queue mean", lambda _, entry: cells.number(entry["queue_length"]["mean"])),
    Field("wait p99", lambda _, entry: cells.percentile(entry, "wait", "p99")),
    Field("rejected", lambda _, entry: cells.count(entry["rejected"])),
]
#: A report's tier table also says what each tier is and how many workers it has.
TIER_DESCRIPTION = [
    Field("type", lambda _, entry: str(entry.get("kind", "")), numeric=False),
    Field("workers", lambda _, entry: cells.count(entry.get("workers"))),
]
TIER_STATUS = Field("status", lambda _, entry: cells.tier_status(entry), numeric=False, marks=True)


def tier_rows(data: dict[str, Any], *, described: bool = False) -> Rows:
    """One row per tier: its figures and status (`stable`, or overloaded: the row is not ok);
    `described` adds the tier's type and workers after its name (the report's table)."""
    fields = [
        Field("tier", _name, numeric=False),
        *(TIER_DESCRIPTION if described else []),
        *TIER_FIGURES,
        TIER_STATUS,
    ]
    return _build(fields, _tiers_and_groups(data), "stable")


def _tiers_and_groups(data: dict[str, Any]) -> list[tuple[str, Entry]]:
    """Each tier, followed for a database with replicas by a row per station group
    (`db · primary`, `db · replicas`: docs/results.md, "Database groups") with the figures a
    group has: utilization, occupancy, throughput, workers and its status."""
    entries: list[tuple[str, Entry]] = []
    for name, entry in data.get("tiers", {}).items():
        entries.append((name, entry))
        for group, figures in (entry.get("groups") or {}).items():
            group_entry: Entry = {
                **figures,
                "queue_length": {"mean": None},
                "wait": {},
                "rejected": None,
                "kind": "",
            }
            entries.append((f"{name} · {group}", group_entry))
    return entries


#: The verdict words of a result (shouted) and of a report (a pass is said quietly).
RESULT_VERDICTS, REPORT_VERDICTS = cells.RESULT_VERDICTS, cells.REPORT_VERDICTS


def slo_rows(data: dict[str, Any], verdicts: tuple[str, str] = RESULT_VERDICTS) -> Rows:
    """One row per SLO: its verdict (`verdicts`: pass and fail words), the objective, the
    observed figure and the limit in the unit of its statistic."""
    passed, failed = verdicts
    fields = [
        Field("verdict", lambda _, v: passed if v["passed"] else failed, numeric=False, marks=True),
        Field("objective", lambda _, v: str(v["slo"]), numeric=False, prose=True),
        Field("observed", lambda _, v: cells.slo_observed(v)),
        Field("limit", lambda _, v: cells.slo_limit(v)),
    ]
    return _build(fields, [("", verdict) for verdict in data.get("slos", [])], "passed")
