"""One row builder for the class, tier and SLO tables: every view shows the same cells."""

from __future__ import annotations

import pytest

from capsim.analysis import Report, summarise
from capsim.outputs import cells, render_markdown, render_table
from capsim.outputs.rows import REPORT_VERDICTS, class_rows, slo_rows, tier_rows
from runkit import shop_model
from test_outputs import SLOS, deterministic_run


@pytest.fixture
def report() -> Report:
    return summarise(
        shop_model(SLOS), [deterministic_run(i) for i in range(3)], capsim_version="0.1.0"
    )


def test_an_overloaded_tier_is_a_row_that_is_not_ok(report: Report) -> None:
    tiers = tier_rows(report.data)
    by_name = {row.cells[0]: row for row in tiers.rows}
    assert tiers.header == [
        "tier",
        "utilization",
        "occupancy",
        "throughput",
        "queue mean",
        "wait p99",
        "rejected",
        "status",
    ]
    assert tiers.numeric == [1, 2, 3, 4, 5, 6]
    assert by_name["db"].ok is False and by_name["db"].cells[-1] == cells.OVERLOADED
    assert by_name["app"].ok is True and by_name["app"].cells[-1] == "stable"


def test_a_report_describes_its_tiers_and_starts_its_percentiles_with_the_mean(
    report: Report,
) -> None:
    tiers = tier_rows(report.data, described=True)
    assert tiers.header[:3] == ["tier", "type", "workers"] and tiers.numeric[0] == 2
    classes = class_rows(report.data, ("mean", *cells.SHOWN_PERCENTILES))
    assert classes.header[:5] == ["class", "offered", "throughput", "errors", "mean"]
    assert all(len(row.cells) == len(classes.header) for row in classes.rows)


def test_the_table_and_the_markdown_show_the_same_cells(report: Report) -> None:
    table = render_table(report, color=False, width=400)
    markdown = render_markdown(report)
    for rows in (class_rows(report.data), tier_rows(report.data), slo_rows(report.data)):
        for row in rows.rows:
            table_line = next(line for line in table.splitlines() if row.cells[1] in line)
            markdown_line = next(line for line in markdown.splitlines() if row.cells[1] in line)
            for cell in row.cells:
                assert cell in table_line
                assert cell in markdown_line.replace("\\*", "*")
    assert f"**{cells.OVERLOADED}**" in markdown


def test_a_report_says_a_pass_quietly(report: Report) -> None:
    words = [row.cells[0] for row in slo_rows(report.data, REPORT_VERDICTS).rows]
    assert set(words) <= {"✓ pass", "✗ FAIL"} and "✗ FAIL" in words


def test_the_shared_names_are_spelled_once():
    """Tier types and latency statistics come from `capsim.vocabulary` in every layer."""
    from typing import get_args

    from capsim.model.types import STATISTICS, TierKind
    from capsim.outputs import cells
    from capsim.scenario import schema
    from capsim.vocabulary import LATENCY_STATISTICS, TIER_TYPES

    assert get_args(TierKind) == TIER_TYPES == schema.TIER_TYPES
    assert STATISTICS is LATENCY_STATISTICS is schema.LATENCY_STATISTICS
    assert cells.percentile_columns({}, LATENCY_STATISTICS) == list(LATENCY_STATISTICS)
