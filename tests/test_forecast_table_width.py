"""A capacity plan of a real platform fits the terminal without losing a tier.

A document platform's plan sizes seven tiers; the plan table's capacity cell ("lb 1 instances,
api 3 instances, ... ocr 2 instances") is wider than a 120-column CI log, and the table cut it
short ("... ingest 3 consum") and the dates with it ("2027"): the OCR's count, the most
expensive tier, was not in the plan at all. Nothing in a table may be cut (docs/cli.md).
"""

from __future__ import annotations

from typing import Any

from capsim.outputs.forecast import render_forecast

SIZED = {
    "lb": 1,
    "api": 3,
    "cache": 1,
    "searchidx": 1,
    "docdb": 1,
    "ingest": 3,
    "ocr": 2,
}


def _step(day: str, load: float, ocr: int) -> dict[str, Any]:
    tiers: dict[str, Any] = {
        name: {"sized": "instances", "instances": count} for name, count in SIZED.items()
    }
    tiers["ingest"] = {"sized": "consumers", "instances": 3, "consumers": 3}
    tiers["ocr"] = {"sized": "instances", "instances": ocr}
    return {
        "date": day,
        "why": "step",
        "load": load,
        "rate": 550.0 * load,
        "tiers": tiers,
        "cost_per_hour": 5.29,
        "cost_per_month": 3861.7,
        "verified": True,
        "error": None,
    }


FORECAST: dict[str, Any] = {
    "scenario": "docproc",
    "from": "2027-01-01",
    "until": "2028-01-01",
    "offered_rate": 550.0,
    "growth": {"monthly": 0.05, "source": "--growth 5%/month", "fit": None},
    "events": [],
    "currency": "USD",
    "tiers": {name: {"saturation_rate": None, "saturates_on": None} for name in SIZED},
    "first_slo_breach": {"date": None, "slo": None, "rate": None, "determined": True},
    "plan": [_step("2027-01-01", 1.0, 2), _step("2027-07-01", 1.34, 3)],
    "notes": [],
}


def test_every_tier_of_the_plan_and_every_date_is_in_the_table() -> None:
    table = render_forecast(FORECAST, "table", width=120)
    assert max(len(line) for line in table.splitlines()) <= 120
    assert "…" not in table
    words = table.split()
    assert "2027-01-01" in words and "2027-07-01" in words
    for name in SIZED:
        assert words.count(name) >= 2 + 1, name  # each plan step names it (and the tiers table)
    assert "consumers," in words
    # The OCR, last in the cell, is there with its count in each step.
    counts = [words[i + 1] for i, word in enumerate(words) if word == "ocr"][1:]
    assert counts == ["2", "3"]
