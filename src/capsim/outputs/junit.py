"""JUnit XML of a check: one test case per SLO and per regression check, for CI test reports."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from capsim.analysis.check import CheckOutcome, RegressionCheck
from capsim.outputs import cells
from capsim.outputs.escape import xml_text


def _interval(interval: tuple[float, float] | None, figure: str) -> str:
    if interval is None:
        return "none (one replication)"
    return f"[{_figure(interval[0], figure)}, {_figure(interval[1], figure)}]"


def _figure(value: float | None, figure: str) -> str:
    """A figure in its unit: a time for latencies, a percentage for ratios, a rate otherwise."""
    if value is None:
        return cells.MISSING
    times = ("mean", "p50", "p90", "p95", "p99", "p999")
    if figure.startswith(("latency.", "age.")) or figure in times:
        return cells.time(value)
    if figure in ("error_rate", "utilization", "occupancy"):
        return f"{value * 100:.4g}%"
    if figure == "throughput":
        return cells.rate(value)
    return f"{value:.6g}"


def slo_message(verdict: dict[str, Any]) -> str:
    """`browse p99 <= 300ms: observed 412ms, limit 300ms`."""
    observed = cells.statistic_figure(verdict.get("statistic"), verdict["observed"])
    low = " (low sample: a percentile from too few requests)" if verdict.get("low_sample") else ""
    text = f"{verdict['slo']}: observed {observed}{low}, limit {cells.slo_limit(verdict)}"
    if verdict.get("none_completed"):  # a latency from unfinished requests alone fails
        text += f"; fails: {verdict['reason']}"
    return text


def overload_message(failure: dict[str, Any]) -> str:
    """`tier orders OVERLOADED: ...`: the overload failure of a run, with its figures (a
    stopped pool says DEADLOCKED: no capacity figure would fix it)."""
    if failure.get("deadlock"):
        return (
            f"tier {failure['tier']} DEADLOCKED: not in steady state at the end of the measured "
            f"window ({cells.overload_details(failure)}); a deadlocked tier fails the run "
            "whatever the SLOs say"
        )
    text = (
        f"tier {failure['tier']} OVERLOADED: not in steady state at the end of the measured "
        f"window ({cells.overload_details(failure)})"
    )
    capacity = failure.get("capacity")
    if isinstance(capacity, int | float):
        text += f"; its capacity is about {cells.rate(capacity)}"
    return text + "; an overloaded tier fails the run whatever the SLOs say"


def regression_message(check: RegressionCheck) -> str:
    """What changed, against what, with both intervals and the rule's reason."""
    change = check.change
    change_text = "from zero" if change is None else f"{change * 100:+.1f}%"
    bound = "at most" if check.higher_is_worse else "at least"
    noise = ""
    if check.noise_limit is not None:
        end = "low" if check.higher_is_worse else "high"
        noise = f" (the interval's {end} end must pass {_figure(check.noise_limit, check.figure)} to regress)"
    return (
        f"{check.label} {check.status}: {_figure(check.current, check.figure)} against baseline "
        f"{_figure(check.baseline, check.figure)} ({change_text}; tolerance "
        f"{check.tolerance * 100:g}%: {bound} {_figure(check.limit, check.figure)}); "
        f"95% interval now {_interval(check.current_ci, check.figure)}{noise}, baseline "
        f"{_interval(check.baseline_ci, check.figure)}; {check.reason}"
    )


def _make_well_formed(root: ET.Element) -> None:
    """Replace, in every attribute and text, the characters XML 1.0 cannot hold (see xml_text)."""
    for element in root.iter():
        for key, value in element.attrib.items():
            element.set(key, xml_text(value))
        if element.text:
            element.text = xml_text(element.text)


def render_junit(outcome: CheckOutcome, *, scenario_path: str = "") -> str:
    """JUnit XML: suite `slos`, suite `steady_state` (a failed case per overloaded tier) when a
    tier is overloaded and, with a baseline, suite `regression`.

    An inconclusive check is a failure under `--inconclusive fail` and a skipped case (with the
    reason) under `--inconclusive pass`, so CI reports show it either way.
    """
    root = ET.Element("testsuites", name=f"capsim check {outcome.scenario}")
    totals = {"tests": 0, "failures": 0, "skipped": 0}

    slo_suite = ET.SubElement(root, "testsuite", name="slos")
    slo_failures = 0
    for verdict in outcome.slos:
        case = ET.SubElement(
            slo_suite,
            "testcase",
            classname=f"capsim.{outcome.scenario}.slo",
            name=str(verdict["slo"]),
        )
        if scenario_path:
            case.set("file", scenario_path)
            if verdict.get("line"):
                case.set("line", str(verdict["line"]))
        message = slo_message(verdict)
        if not verdict["passed"]:
            slo_failures += 1
            failure = ET.SubElement(case, "failure", message=message, type="slo")
            failure.text = message
        else:
            ET.SubElement(case, "system-out").text = message
    slo_suite.set("tests", str(len(outcome.slos)))
    slo_suite.set("failures", str(slo_failures))
    slo_suite.set("errors", "0")
    slo_suite.set("skipped", "0")
    totals["tests"] += len(outcome.slos)
    totals["failures"] += slo_failures

    if outcome.overloaded:
        suite = ET.SubElement(root, "testsuite", name="steady_state")
        for entry in outcome.overloaded:
            case = ET.SubElement(
                suite,
                "testcase",
                classname=f"capsim.{outcome.scenario}.steady_state",
                name=f"tier {entry['tier']} in steady state",
            )
            if scenario_path:
                case.set("file", scenario_path)
            if entry.get("line"):
                case.set("line", str(int(entry["line"])))
            message = overload_message(entry)
            failure = ET.SubElement(case, "failure", message=message, type="overloaded")
            failure.text = message
        count = str(len(outcome.overloaded))
        suite.set("tests", count)
        suite.set("failures", count)
        suite.set("errors", "0")
        suite.set("skipped", "0")
        totals["tests"] += len(outcome.overloaded)
        totals["failures"] += len(outcome.overloaded)

    if outcome.baseline is not None:
        suite = ET.SubElement(root, "testsuite", name="regression")
        failures = skipped = 0
        for check in outcome.regressions:
            case = ET.SubElement(
                suite,
                "testcase",
                classname=f"capsim.{outcome.scenario}.regression",
                name=check.label,
            )
            message = regression_message(check)
            if outcome.check_fails(check):
                failures += 1
                failure = ET.SubElement(case, "failure", message=message, type=check.status)
                failure.text = message
            elif check.status == "inconclusive":
                skipped += 1
                ET.SubElement(case, "skipped", message=message)
            else:
                ET.SubElement(case, "system-out").text = message
        suite.set("tests", str(len(outcome.regressions)))
        suite.set("failures", str(failures))
        suite.set("errors", "0")
        suite.set("skipped", str(skipped))
        totals["tests"] += len(outcome.regressions)
        totals["failures"] += failures
        totals["skipped"] += skipped

    for key, value in totals.items():
        root.set(key, str(value))
    root.set("errors", "0")
    _make_well_formed(root)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
