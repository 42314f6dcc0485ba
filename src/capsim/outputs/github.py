"""GitHub Actions output of a check: a Markdown summary and `::error` workflow annotations."""

from __future__ import annotations

from capsim.analysis.check import CheckOutcome
from capsim.outputs import cells
from capsim.outputs.escape import markdown_code, markdown_text
from capsim.outputs.junit import overload_message, regression_message, slo_message
from capsim.textsafe import visible


def _verdict(passed: bool) -> str:
    passes, fails = cells.REPORT_VERDICTS
    return passes if passed else fails


def _escape_data(text: str) -> str:
    """Escape a workflow command's message (GitHub's toolkit `escapeData`)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    """Escape a workflow command's property value (GitHub's toolkit `escapeProperty`)."""
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def workflow_annotations(outcome: CheckOutcome, scenario_path: str) -> list[str]:
    """One `::error` line per overloaded tier (at the tier's line), per failed SLO (at its line) and
    per failed regression check.

    An inconclusive check counted as a pass gets a `::warning` instead, and so does an SLO that
    passed on a percentile estimated from too few requests (`low_sample`).
    """
    file = _escape_property(visible(scenario_path))
    lines = []
    for entry in outcome.overloaded:
        where = f"file={file}" + (f",line={int(entry['line'])}" if entry.get("line") else "")
        state = "DEADLOCKED" if entry.get("deadlock") else "OVERLOADED"
        title = _escape_property(f"tier {entry['tier']} {state}")
        lines.append(f"::error {where},title={title}::{_escape_data(overload_message(entry))}")
    for verdict in outcome.failed_slos:
        where = f"file={file}"
        if verdict.get("line"):
            where += f",line={int(verdict['line'])}"
        title = _escape_property(f"SLO failed: {verdict['slo']}")
        lines.append(f"::error {where},title={title}::{_escape_data(slo_message(verdict))}")
    for verdict in outcome.slos:
        if verdict["passed"] and verdict.get("low_sample"):
            where = f"file={file}" + (
                f",line={int(verdict['line'])}" if verdict.get("line") else ""
            )
            title = _escape_property(f"SLO judged on a low sample: {verdict['slo']}")
            lines.append(f"::warning {where},title={title}::{_escape_data(slo_message(verdict))}")
    for check in outcome.regressions:
        if check.status == "pass":
            continue
        level = "error" if outcome.check_fails(check) else "warning"
        title = _escape_property(f"{check.status}: {check.label}")
        lines.append(
            f"::{level} file={file},title={title}::{_escape_data(regression_message(check))}"
        )
    return lines


def _cell(text: str) -> str:
    return markdown_text(text)


def render_summary(outcome: CheckOutcome) -> str:
    """The check as GitHub-flavoured Markdown: the verdict, SLOs and the regression table."""
    icon = "✅" if outcome.passed else "❌"
    lines = [
        f"## {icon} capsim check: {markdown_text(outcome.scenario)}",
        "",
        f"**{markdown_text(outcome.headline())}**",
        "",
    ]
    for entry in outcome.overloaded:
        lines.append(f"- ❌ {_cell(overload_message(entry))}")
    if outcome.overloaded:
        lines.append("")
    if outcome.slos:
        lines += ["| SLO | verdict | observed | limit |", "| --- | --- | ---: | ---: |"]
        for verdict in outcome.slos:
            lines.append(
                f"| {_cell(str(verdict['slo']))} | {_verdict(verdict['passed'])} "
                f"| {cells.slo_observed(verdict)} | {cells.slo_limit(verdict)} |"
            )
        if any(verdict.get("low_sample") for verdict in outcome.slos):
            lines += ["", f"\\{cells.LOW_SAMPLE_NOTE}"]
        lines.append("")
    if outcome.baseline is not None:
        policy = "fail" if outcome.inconclusive_policy == "fail" else "pass"
        lines += [
            f"Against baseline {markdown_code(outcome.baseline)}, tolerance {outcome.tolerance * 100:g}%; "
            f"inconclusive checks count as a **{policy}**.",
            "",
        ]
        flagged = [check for check in outcome.regressions if check.status != "pass"]
        if flagged:
            lines += ["| figure | status | detail |", "| --- | --- | --- |"]
            for check in flagged:
                status = check.status.upper() if outcome.check_fails(check) else check.status
                lines.append(
                    f"| {_cell(check.label)} | {status} | {_cell(regression_message(check))} |"
                )
        else:
            lines.append(f"All {len(outcome.regressions)} figures are within tolerance.")
        lines.append("")
    for note in outcome.notes:
        lines.append(f"> {markdown_text(note)}")
    return "\n".join(lines).rstrip() + "\n"
