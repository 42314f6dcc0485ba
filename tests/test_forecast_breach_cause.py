"""A forecast says when an SLO breaks, or that a tier saturates first with every SLO met.

saturate caps the highest load meeting every SLO at the lower bound of the saturation rate (no
rate at or past saturation is a safe answer). A document platform's forecast then read "first
SLO breach: 2027-08-05 (ocr utilization <= 80%, above 777.5/s)": the OCR was at 73% there, and
what happened that day was the ingestion queue saturating. Management was told the wrong tier
and the wrong cause.
"""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from capacitykit import mmc_scenario
from capsim.cli.app import app

runner = CliRunner()


def forecast(path: Path, fmt: str) -> str:
    result = runner.invoke(
        app,
        ["forecast", str(path), "--from", "2027-01-01", "--growth", "10%/month",
         "--horizon", "12mo", "--no-plan", "--format", fmt],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return result.stdout


def test_a_pool_that_saturates_with_its_slo_still_met_is_named_as_saturating(
    tmp_path: Path,
) -> None:
    # An M/M/4 pool of 10 ms at 200/s; a p99 of 10 s holds right up to saturation (400/s).
    path = mmc_scenario(tmp_path, rate=200, duration="20s", slos="  - {class: requests, p99: 10s}")
    breach = json.loads(forecast(path, "json"))["first_slo_breach"]
    assert breach["date"] is not None
    assert breach["saturation"] == "server"
    assert breach["slo"] == "requests p99 <= 10s"  # still the nearest its limit there
    line = next(x for x in forecast(path, "table").splitlines() if "first SLO breach" in x)
    assert "none before saturation" in line and "server saturates" in line


def test_an_slo_that_breaks_below_saturation_is_the_breach(tmp_path: Path) -> None:
    # The same pool's p99 reaches 60 ms near 330/s (Erlang C), well below 400/s.
    path = mmc_scenario(tmp_path, rate=200, duration="20s")
    breach = json.loads(forecast(path, "json"))["first_slo_breach"]
    assert breach["saturation"] is None
    assert breach["slo"] == "requests p99 <= 60ms"
    line = next(x for x in forecast(path, "table").splitlines() if "first SLO breach" in x)
    assert "requests p99 <= 60ms, above" in line and "saturates" not in line
