"""The CI gate's verdicts: SLOs of a run, and regression of its figures against a baseline result.

Pure functions over result dicts (docs/results.md); the rule is documented in docs/ci.md.

A figure *regressed* when it is worse than the baseline's by more than the tolerance and that is
more than noise. With a 95% interval (`ci95`) on both sides, "more than noise" means the two
intervals are apart by more than the tolerance too: for a figure where higher is worse,

    new.low > base.high x (1 + tolerance)          (and, lower is worse: new.high < base.low x (1 - tolerance))

When the point estimates are worse by more than the tolerance but the intervals are not that far
apart, the comparison is *inconclusive*. When either side has no interval (one replication),
there is no noise information: the point estimates decide, and the check says so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from capsim.analysis.report import overload_failures
from capsim.analysis.stats import t_interval
from capsim.errors import UsageError

Status = Literal["pass", "regressed", "inconclusive"]
InconclusivePolicy = Literal["fail", "pass"]

#: Class figures compared against the baseline: (dotted key, higher is worse).
CLASS_FIGURES: tuple[tuple[str, bool], ...] = (
    ("latency.mean", True),
    ("latency.p50", True),
    ("latency.p95", True),
    ("latency.p99", True),
    ("error_rate", True),
    ("throughput", False),
)
#: Tier figures compared against the baseline.
TIER_FIGURES: tuple[tuple[str, bool], ...] = (
    ("utilization", True),
    ("occupancy", True),
    # A queue's message age (publish to done): a pipeline's own end-to-end latency, which no
    # class latency includes and which a longer linger or a slower consumer call raises
    # without raising any utilization.
    ("age.mean", True),
    ("age.p99", True),
)
#: An error rate that rises by less than this (absolute; 0.01 percentage points) is never a
#: regression: from 0 errors, any error at all would otherwise exceed every relative tolerance.
ERROR_RATE_FLOOR = 1e-4
#: Occupancy above utilization by more than this (a share of the workers) makes occupancy a
#: figure of its own in the regression check.
OCCUPANCY_MARGIN = 1e-3
#: The default relative tolerance of `capsim check --tolerance`.
DEFAULT_TOLERANCE = 0.10


@dataclass(frozen=True)
class RegressionCheck:
    """One figure of one class or tier, compared against the baseline."""

    section: Literal["class", "tier"]
    name: str
    figure: str
    higher_is_worse: bool
    baseline: float
    current: float
    baseline_ci: tuple[float, float] | None
    current_ci: tuple[float, float] | None
    tolerance: float
    status: Status
    reason: str
    limit: float
    noise_limit: float | None = None
    # Paired with the baseline's replications (common random numbers): the 95% interval of
    # the change (current - baseline) over the pairs; None when judged by the two intervals.
    paired_ci: tuple[float, float] | None = None

    @property
    def label(self) -> str:
        """`class browse latency.p99`: what the check is about, in one line."""
        return f"{self.section} {self.name} {self.figure}"

    @property
    def change(self) -> float | None:
        """Relative change from the baseline (+0.25 = 25% higher); None from a zero baseline."""
        if self.baseline == 0:
            return None
        return (self.current - self.baseline) / abs(self.baseline)

    @property
    def noise_known(self) -> bool:
        return self.baseline_ci is not None and self.current_ci is not None

    def as_dict(self) -> dict[str, Any]:
        return {
            "check": self.label,
            "section": self.section,
            "name": self.name,
            "figure": self.figure,
            "status": self.status,
            "baseline": self.baseline,
            "current": self.current,
            "change": self.change,
            "baseline_ci95": list(self.baseline_ci) if self.baseline_ci else None,
            "current_ci95": list(self.current_ci) if self.current_ci else None,
            "tolerance": self.tolerance,
            "limit": self.limit,
            "noise_limit": self.noise_limit,
            "paired": self.paired_ci is not None,
            "change_ci95": list(self.paired_ci) if self.paired_ci else None,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class CheckOutcome:
    """Everything `capsim check` decides: SLO verdicts, regression checks, notes, exit code."""

    scenario: str
    slos: list[dict[str, Any]]
    regressions: list[RegressionCheck] = field(default_factory=list)
    baseline: str | None = None
    tolerance: float = DEFAULT_TOLERANCE
    inconclusive_policy: InconclusivePolicy = "fail"
    notes: list[str] = field(default_factory=list)
    overloaded: list[dict[str, Any]] = field(default_factory=list)

    @property
    def failed_slos(self) -> list[dict[str, Any]]:
        return [slo for slo in self.slos if not slo["passed"]]

    @property
    def regressed(self) -> list[RegressionCheck]:
        return [check for check in self.regressions if check.status == "regressed"]

    @property
    def inconclusive(self) -> list[RegressionCheck]:
        return [check for check in self.regressions if check.status == "inconclusive"]

    @property
    def passed(self) -> bool:
        if self.overloaded or self.failed_slos or self.regressed:
            return False
        return not (self.inconclusive and self.inconclusive_policy == "fail")

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    def check_fails(self, check: RegressionCheck) -> bool:
        """Whether this regression check counts as a failure under the inconclusive policy."""
        return check.status == "regressed" or (
            check.status == "inconclusive" and self.inconclusive_policy == "fail"
        )

    def look_first(self) -> RegressionCheck | None:
        """The regressed figure that most likely broke first: a tier's (a class's latency and
        errors follow from the tiers it visits, so they regress with it), the one that changed
        most; a class's only when no tier's figure regressed."""
        regressed = self.regressed
        tiers = [check for check in regressed if check.section == "tier"]
        return max(tiers or regressed, key=_size_of_change, default=None)

    def headline(self) -> str:
        """One sentence: the verdict and why."""
        parts = []
        deadlocked = [entry for entry in self.overloaded if entry.get("deadlock")]
        for state, entries in (
            ("DEADLOCKED", deadlocked),
            ("OVERLOADED", [entry for entry in self.overloaded if not entry.get("deadlock")]),
        ):
            if entries:
                names = ", ".join(str(entry["tier"]) for entry in entries)
                word = "tier" if len(entries) == 1 else "tiers"
                parts.append(f"{word} {names} {state} (not in steady state)")
        if self.slos:
            failed, total = len(self.failed_slos), len(self.slos)
            if self.overloaded and not failed:
                parts.append(f"0 of {total} SLOs failed on figures that are not steady-state")
            elif total == 1:
                parts.append("the SLO failed" if failed else "the SLO is met")
            else:
                parts.append(
                    f"{failed} of {total} SLOs failed" if failed else f"all {total} SLOs met"
                )
        else:
            parts.append("no SLOs defined")
        if self.baseline is not None:
            parts.append(
                f"{len(self.regressed)} regressed, {len(self.inconclusive)} inconclusive "
                f"(counted as {'failures' if self.inconclusive_policy == 'fail' else 'passes'}) "
                f"of {len(self.regressions)} figures against the baseline "
                f"(tolerance {self.tolerance * 100:g}%)"
            )
            first = self.look_first()
            if first is not None:
                parts.append(f"look first at {first.label} {_signed_change(first)}")
        verdict = "PASS" if self.passed else "FAIL"
        return f"{verdict}: " + "; ".join(parts) + "."

    def as_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "passed": self.passed,
            "exit_code": self.exit_code,
            "headline": self.headline(),
            "slos": self.slos,
            "overloaded": self.overloaded,
            "baseline": self.baseline,
            "tolerance": self.tolerance,
            "inconclusive": self.inconclusive_policy,
            "regressions": [check.as_dict() for check in self.regressions],
            "notes": list(self.notes),
        }


def _size_of_change(check: RegressionCheck) -> float:
    """How far a figure moved from its baseline, relative (absolute from a zero baseline)."""
    change = check.change
    return abs(change) if change is not None else abs(check.current - check.baseline)


def _signed_change(check: RegressionCheck) -> str:
    """`+50.0%`, or the absolute change of a figure whose baseline was zero (`+0.0031 from 0`)."""
    change = check.change
    if change is not None:
        return f"{change * 100:+.1f}%"
    return f"{check.current - check.baseline:+.4g} from 0"


def _lookup(entry: dict[str, Any], dotted: str) -> Any:
    value: Any = entry
    for key in dotted.split("."):
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _interval(entry: dict[str, Any], figure: str) -> tuple[float, float] | None:
    interval = (entry.get("ci95") or {}).get(figure)
    if not isinstance(interval, list | tuple) or len(interval) != 2:
        return None
    low, high = _number(interval[0]), _number(interval[1])
    if low is None or high is None:
        return None
    return (min(low, high), max(low, high))


@dataclass(frozen=True)
class Comparison:
    """The regression rule's answer for one figure.

    `limit`: the worst value within tolerance of the baseline. `noise_limit`: the same bound
    taken from the baseline interval's worse end, which the current interval's better end must
    pass for a regression (None without intervals on both sides).
    """

    status: Status
    reason: str
    limit: float
    noise_limit: float | None


def compare_figure(
    baseline: float,
    current: float,
    *,
    higher_is_worse: bool,
    tolerance: float,
    baseline_ci: tuple[float, float] | None = None,
    current_ci: tuple[float, float] | None = None,
    floor: float = 0.0,
) -> Comparison:
    """The regression rule for one figure.

    Worse beyond tolerance: current > baseline x (1 + tolerance) + floor when higher is worse,
    current < baseline x (1 - tolerance) - floor when lower is worse. Beyond noise: the same
    comparison holds between the far ends of the two 95% intervals (current's best-case end
    against baseline's worst-case end). Without an interval on both sides only the point
    estimates are compared, and the reason says so.
    """
    if higher_is_worse:
        limit = baseline * (1 + tolerance) + floor
        worse = current > limit
    else:
        limit = baseline * (1 - tolerance) - floor
        worse = current < limit
    noise_limit: float | None = None
    if baseline_ci is not None and current_ci is not None:
        noise_limit = (
            baseline_ci[1] * (1 + tolerance) + floor
            if higher_is_worse
            else baseline_ci[0] * (1 - tolerance) - floor
        )
    if not worse:
        return Comparison("pass", "within tolerance", limit, noise_limit)
    if noise_limit is None or baseline_ci is None or current_ci is None:
        if baseline_ci is None and current_ci is None:
            missing = "either run"
        else:
            missing = "the baseline" if baseline_ci is None else "the current run"
        return Comparison(
            "regressed",
            f"worse beyond tolerance; no confidence interval in {missing} (one replication), "
            "so there is no noise information and the point estimates decide",
            limit,
            None,
        )
    end = "low" if higher_is_worse else "high"
    other = "high" if higher_is_worse else "low"
    if (current_ci[0] > noise_limit) if higher_is_worse else (current_ci[1] < noise_limit):
        return Comparison(
            "regressed",
            f"worse beyond tolerance and beyond noise: even the current interval's {end} end is "
            f"worse than the baseline interval's {other} end by more than the tolerance",
            limit,
            noise_limit,
        )
    return Comparison(
        "inconclusive",
        f"worse beyond tolerance but within the noise: the current interval's {end} end is not "
        f"worse than the baseline interval's {other} end by more than the tolerance",
        limit,
        noise_limit,
    )


def compare_paired(
    baseline: float,
    current: float,
    changes: Sequence[float],
    *,
    higher_is_worse: bool,
    tolerance: float,
    floor: float = 0.0,
) -> tuple[Comparison, tuple[float, float]] | None:
    """The regression rule for one figure whose replications pair with the baseline's (the same
    seed and number of replications: common random numbers), or None without an interval.

    `changes` holds, per replication, the current estimate minus the baseline's. Within
    tolerance as `compare_figure` (the point estimates). Beyond noise: the paired 95% interval
    of the change lies wholly beyond the tolerance, `low > tolerance x |baseline| + floor` when
    higher is worse (`high < -(...)` when lower is worse). The noise both runs share cancels
    in each pair, so a change far smaller than either run's own interval can be told from
    chance."""
    interval = t_interval(changes)
    if interval is None:
        return None
    allowed = tolerance * abs(baseline) + floor
    limit = baseline + allowed if higher_is_worse else baseline - allowed
    worse = current > limit if higher_is_worse else current < limit
    shown = f"[{interval[0]:+.4g}, {interval[1]:+.4g}]"
    pairs = f"{len(changes)} replications paired with the baseline's (common random numbers)"
    if not worse:
        return Comparison("pass", "within tolerance", limit, None), interval
    beyond = interval[0] > allowed if higher_is_worse else interval[1] < -allowed
    if beyond:
        reason = (
            f"worse beyond tolerance and beyond noise: the 95% interval of the change over "
            f"{pairs}, {shown}, lies wholly beyond the tolerance ({allowed:.4g})"
        )
        return Comparison("regressed", reason, limit, None), interval
    reason = (
        f"worse beyond tolerance but within the noise: the 95% interval of the change over "
        f"{pairs}, {shown}, reaches within the tolerance ({allowed:.4g})"
    )
    return Comparison("inconclusive", reason, limit, None), interval


def _pairing(current: dict[str, Any], baseline: dict[str, Any]) -> tuple[bool, str | None]:
    """Whether the two results' replications pair (the baseline keeps its per-replication
    figures, same seed, same number of replications, at least 2), and a note when they cannot."""
    runs = int(current.get("replications") or 1)
    base_runs = int(baseline.get("replications") or 1)
    if runs < 2 or base_runs < 2:
        return False, None  # the one-replication note says what to do
    if not isinstance(baseline.get("per_replication"), dict):
        return False, (
            "The baseline keeps no per-replication figures (a result of an older capsim), so "
            "this run's replications cannot be paired with its replications: each figure is "
            "judged by the two 95% intervals alone, which misses changes smaller than the "
            "runs' own noise that pairing would catch. Refresh the baseline (capsim run "
            "SCENARIO --format json --output FILE) to pair them."
        )
    if current.get("seed") != baseline.get("seed") or runs != base_runs:
        return False, (
            f"This run (seed {current.get('seed')}, {runs} replications) does not share its "
            f"random numbers with the baseline (seed {baseline.get('seed')}, {base_runs} "
            "replications), so their replications are not paired: each figure is judged by "
            "the two 95% intervals. Run the check with the baseline's seed and replications "
            "to pair them."
        )
    return True, None


def _paired_changes(
    current: dict[str, Any], baseline: dict[str, Any], key: str, name: str, figure: str
) -> list[float] | None:
    """Per replication, the current figure minus the baseline's (None: not both recorded)."""
    ours = _replications(current, key, name, figure)
    theirs = _replications(baseline, key, name, figure)
    if ours is None or theirs is None or len(ours) != len(theirs):
        return None
    return [a - b for a, b in zip(ours, theirs, strict=True)]


def _replications(data: dict[str, Any], key: str, name: str, figure: str) -> list[float] | None:
    """One figure's per-replication values in a result (`per_replication`), or None when any is
    missing or is not a number (a result written by hand, or cut)."""
    values = _lookup(data.get("per_replication") or {}, key)
    values = values.get(name) if isinstance(values, dict) else None
    values = values.get(figure) if isinstance(values, dict) else None
    if not isinstance(values, list) or len(values) != int(data.get("replications") or 1):
        return None
    numbers = [_number(v) for v in values]
    return None if any(n is None for n in numbers) else [n for n in numbers if n is not None]


def compare_results(
    current: dict[str, Any], baseline: dict[str, Any], tolerance: float = DEFAULT_TOLERANCE
) -> tuple[list[RegressionCheck], list[str]]:
    """Compare every figure present in both results; return the checks and notes to show."""
    if tolerance < 0:
        raise UsageError(f"--tolerance must be at least 0, got {tolerance:g}")
    checks: list[RegressionCheck] = []
    notes: list[str] = []
    paired, pairing_note = _pairing(current, baseline)
    if pairing_note:
        notes.append(pairing_note)
    sections: Sequence[tuple[Literal["class", "tier"], str, tuple[tuple[str, bool], ...]]] = (
        ("class", "classes", CLASS_FIGURES),
        ("tier", "tiers", TIER_FIGURES),
    )
    for section, key, figures in sections:
        ours: dict[str, Any] = current.get(key) or {}
        theirs: dict[str, Any] = baseline.get(key) or {}
        for name in ours:
            if name not in theirs:
                notes.append(f"{section} '{name}' is not in the baseline; nothing to compare.")
        for name in theirs:
            if name not in ours:
                notes.append(f"{section} '{name}' of the baseline is gone from the current run.")
        for name, entry in ours.items():
            if name not in theirs:
                continue
            for figure, higher_is_worse in figures:
                if figure == "occupancy" and not _held_longer(entry, theirs[name]):
                    continue  # the same figure as utilization: compared once
                base_value = _number(_lookup(theirs[name], figure))
                value = _number(_lookup(entry, figure))
                if base_value is None or value is None:
                    continue
                base_ci = _interval(theirs[name], figure)
                ci = _interval(entry, figure)
                lacking = _interval_missing(baseline, base_ci, current, ci)
                if lacking:
                    notes.append(
                        f"{section} {name} {figure} is not compared: the {lacking} has several "
                        "replications but no interval for it (a result of an older capsim); "
                        "refresh it to compare this figure."
                    )
                    continue
                floor = ERROR_RATE_FLOOR if figure == "error_rate" else 0.0
                changes = _paired_changes(current, baseline, key, name, figure) if paired else None
                judged = (
                    compare_paired(
                        base_value,
                        value,
                        changes,
                        higher_is_worse=higher_is_worse,
                        tolerance=tolerance,
                        floor=floor,
                    )
                    if changes is not None
                    else None
                )
                comparison, paired_ci = judged if judged is not None else (None, None)
                if comparison is None:
                    comparison = compare_figure(
                        base_value,
                        value,
                        higher_is_worse=higher_is_worse,
                        tolerance=tolerance,
                        baseline_ci=base_ci,
                        current_ci=ci,
                        floor=floor,
                    )
                checks.append(
                    RegressionCheck(
                        section=section,
                        name=name,
                        figure=figure,
                        higher_is_worse=higher_is_worse,
                        baseline=base_value,
                        current=value,
                        baseline_ci=base_ci,
                        current_ci=ci,
                        tolerance=tolerance,
                        status=comparison.status,
                        reason=comparison.reason,
                        limit=comparison.limit,
                        noise_limit=comparison.noise_limit,
                        paired_ci=paired_ci,
                    )
                )
    notes.extend(renamed_stream_notes(current, baseline))
    notes.extend(_noisier_than_tolerance(checks, tolerance))
    without = [
        side
        for side, data in (("baseline", baseline), ("current run", current))
        if int(data.get("replications") or 1) < 2
    ]
    if without:
        notes.append(
            f"The {' and the '.join(without)} had one replication, so there are no confidence "
            "intervals: regressions are judged on point estimates alone, without noise "
            "information. Set simulation.replications (or --replications) to 3 or more."
        )
    return checks, notes


def _noisier_than_tolerance(checks: list[RegressionCheck], tolerance: float) -> list[str]:
    """A note naming the figures whose baseline interval alone is wider than the tolerance:
    noise moves them beyond it often, and each time they read inconclusive with no change.
    Error rates are left out (their floor, not the tolerance, decides near zero)."""
    wide = [
        (check, half)
        for check in checks
        if check.figure != "error_rate" and check.baseline_ci is not None and check.baseline
        if (half := (check.baseline_ci[1] - check.baseline_ci[0]) / 2 / abs(check.baseline))
        > tolerance
    ]
    if not wide:
        return []
    listed = ", ".join(f"±{half:.1%} for {c.section} {c.name} {c.figure}" for c, half in wide)
    return [
        f"The baseline's 95% interval is wider than the {tolerance:.0%} tolerance: {listed}. "
        "On noise alone such a figure often moves beyond the tolerance and reads inconclusive "
        "(a failure under --inconclusive fail) with nothing changed. Narrow the intervals "
        "(they shrink about as 1/sqrt(duration x replications)) until they are well inside "
        "the tolerance, in the baseline and in the check, or raise --tolerance above them."
    ]


def renamed_stream_notes(
    current: dict[str, Any], baseline: dict[str, Any], reference: str = "the baseline"
) -> list[str]:
    """A note per section where names left and others came (`reference`: what the baseline is
    called, "A" in `capsim compare`): perhaps a rename, which changes random numbers.

    Random streams are keyed by a tier's or class's name (engine/streams.py), not by its place
    in the scenario, so reordering `tiers:` or adding a tier nothing calls changes nobody's
    numbers; but a tier or class renamed draws other numbers, and the requests it serves carry
    that noise to the tiers after it. Only meaningful under the same seed.
    """
    if current.get("seed") != baseline.get("seed"):
        return []
    notes: list[str] = []
    for section, key in (("class", "classes"), ("tier", "tiers")):
        ours = list(current.get(key) or {})
        theirs = list(baseline.get(key) or {})
        came = [name for name in ours if name not in theirs]
        left = [name for name in theirs if name not in ours]
        if came and left:
            notes.append(_renamed_note(section, key, came, left, reference))
    return notes


def _renamed_note(section: str, key: str, came: list[str], left: list[str], reference: str) -> str:
    def listed(names: list[str]) -> str:
        return ", ".join(f"'{name}'" for name in names)

    refresh = (
        "refresh the baseline in the same change"
        if reference == "the baseline"
        else "judge the difference with that in mind"
    )
    return (
        f"{section} {listed(came)} in place of {listed(left)} of {reference}: capsim keys each "
        f"{section}'s random numbers by its name, so a {section} renamed draws other random "
        f"numbers than in {reference}, and its figures and those of the {key} its requests "
        f"reach differ by noise as well as by any change; {refresh}."
    )


def _interval_missing(
    baseline: dict[str, Any],
    base_ci: tuple[float, float] | None,
    current: dict[str, Any],
    ci: tuple[float, float] | None,
) -> str | None:
    """The side ("baseline", "current run") that ran several replications yet carries no
    interval for a figure: judging it on point estimates would fail the gate on noise."""
    for side, data, interval in (("baseline", baseline, base_ci), ("current run", current, ci)):
        if interval is None and int(data.get("replications") or 1) >= 2:
            return side
    return None


def _held_longer(*tiers: dict[str, Any]) -> bool:
    """Whether a tier's workers are held longer than they work (blocking calls, a queue's
    consumers) in either result: then occupancy, what saturates it, is a figure of its own."""
    for tier in tiers:
        held, work = _number(tier.get("occupancy")), _number(tier.get("utilization"))
        if held is not None and work is not None and held - work > OCCUPANCY_MARGIN:
            return True
    return False


def _at_tier_lines(
    overloaded: list[dict[str, Any]], tier_lines: Mapping[str, int]
) -> list[dict[str, Any]]:
    """Each overload failure with : where its tier is defined (when known)."""
    return [
        {**entry, "line": tier_lines[entry["tier"]]} if tier_lines.get(entry["tier"]) else entry
        for entry in overloaded
    ]


def check_result(
    current: dict[str, Any],
    *,
    baseline: dict[str, Any] | None = None,
    baseline_name: str | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    inconclusive: InconclusivePolicy = "fail",
    tier_lines: Mapping[str, int] | None = None,
) -> CheckOutcome:
    """The gate's verdict on a run's result, against a baseline result when one is given.

    `tier_lines` (tier name -> its line in the scenario file) puts each overloaded tier's
    failure at the tier's definition, as a failed SLO is put at the SLO's line.
    """
    if inconclusive not in ("fail", "pass"):
        raise UsageError(f"--inconclusive must be fail or pass, got {inconclusive!r}")
    regressions: list[RegressionCheck] = []
    notes: list[str] = []
    if baseline is not None:
        regressions, notes = compare_results(current, baseline, tolerance)
        if baseline.get("scenario") != current.get("scenario"):
            notes.append(
                f"The baseline is of scenario '{baseline.get('scenario')}', the current run of "
                f"'{current.get('scenario')}'."
            )
    return CheckOutcome(
        scenario=str(current.get("scenario", "")),
        slos=list(current.get("slos", [])),
        overloaded=_at_tier_lines(overload_failures(current), tier_lines or {}),
        regressions=regressions,
        baseline=baseline_name if baseline is not None else None,
        tolerance=tolerance,
        inconclusive_policy=inconclusive,
        notes=notes,
    )
