"""A failed gate says where to look first.

A database 50% slower makes every class that reads it slower too: the gate's list of regressed
figures had seven class latencies before the database's utilization, and its verdict line only
counted them ("8 regressed"). The verdict now names the regressed tier figure that changed most,
since the latencies follow from the tiers a class visits; a class's figure only when no tier's
regressed.
"""

from __future__ import annotations

from capsim.analysis.check import CheckOutcome, RegressionCheck


def regressed(section: str, name: str, figure: str, baseline: float, current: float) -> RegressionCheck:
    return RegressionCheck(
        section=section,  # type: ignore[arg-type]
        name=name,
        figure=figure,
        higher_is_worse=True,
        baseline=baseline,
        current=current,
        baseline_ci=None,
        current_ci=None,
        tolerance=0.1,
        status="regressed",
        reason="beyond tolerance",
        limit=baseline * 1.1,
    )


def outcome(*checks: RegressionCheck) -> CheckOutcome:
    return CheckOutcome(scenario="video", slos=[], regressions=list(checks), baseline="base.json")


def test_a_slower_database_is_named_before_the_latencies_it_caused() -> None:
    gate = outcome(
        regressed("class", "browse", "latency.p99", 0.040, 0.088),  # +120%: the symptom
        regressed("class", "play", "latency.p99", 0.050, 0.070),
        regressed("tier", "api", "utilization", 0.50, 0.56),
        regressed("tier", "meta_db", "utilization", 0.40, 0.60),
    )
    assert gate.look_first() is gate.regressions[3]
    assert gate.headline().endswith("look first at tier meta_db utilization +50.0%.")


def test_with_only_class_figures_regressed_the_largest_change_is_named() -> None:
    gate = outcome(
        regressed("class", "play", "latency.p99", 0.050, 0.070),
        regressed("class", "upload", "error_rate", 0.0, 0.004),
        regressed("class", "browse", "latency.p99", 0.040, 0.088),
    )
    assert "look first at class browse latency.p99 +120.0%" in gate.headline()


def test_a_gate_with_nothing_regressed_names_nothing() -> None:
    gate = outcome()
    assert gate.look_first() is None
    assert "look first" not in gate.headline()
