"""`capsim check` as a CI step meets it: exit codes, baselines, noise, JUnit, GitHub Actions."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from capsim.analysis.check import Comparison, check_result, compare_figure, compare_results
from capsim.cli.app import app
from capsim.outputs.github import workflow_annotations

runner = CliRunner()
#: No GitHub Actions environment unless a test sets one (the suite itself may run in Actions).
PLAIN_ENV: dict[str, str | None] = {"GITHUB_ACTIONS": None, "GITHUB_STEP_SUMMARY": None}

#: 40 s replications: a 40% slower service (14 ms at 70% busy) must stand out of the noise of
#: the replications; in 10 s ones its latency interval overlapped the baseline's for 8 of
#: seeds 1..12 (inconclusive, not regressed), in 40 s ones for none of seeds 1..16. Eight of
#: them: with three, the baseline's p99 interval was ±12.8%, wider than the 10% tolerance, and
#: an unchanged scenario under another seed read inconclusive for 1 of 3 seed shifts.
STEADY = """\
name: steady
seed: 1
simulation: {duration: 40s, warmup: 1s, replications: 8}
traffic:
  web: {entry: app, rate: 100/s}
tiers:
  app: {type: service, concurrency: 2, service_time: {dist: exponential, mean: 10ms}}
slos:
  - {class: web, p99: 1s}
  - {tier: app, utilization: 80%}
"""
FAILING = STEADY.replace("p99: 1s", "p99: 5ms")  # line 9: an SLO no run can meet


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def invoke(args: list[str], env: dict[str, str | None] | None = None) -> Result:
    return runner.invoke(app, args, env={**PLAIN_ENV, **(env or {})})


@pytest.fixture
def steady(tmp_path: Path) -> Path:
    return write(tmp_path, "steady.yaml", STEADY)


@pytest.fixture
def baseline(tmp_path: Path, steady: Path) -> Path:
    """The CI recipe's baseline: `capsim run --format json --output baseline.json`."""
    path = tmp_path / "baseline.json"
    result = invoke(["run", str(steady), "--format", "json", "--output", str(path)])
    assert result.exit_code == 0, result.output
    return path


# --- Exit codes -----------------------------------------------------------------------------


def test_every_slo_holding_exits_0(steady: Path) -> None:
    result = invoke(["check", str(steady)])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("PASS: all 2 SLOs met.")


def test_a_failing_slo_exits_1_and_names_it(tmp_path: Path) -> None:
    result = invoke(["check", str(write(tmp_path, "failing.yaml", FAILING))])
    assert result.exit_code == 1
    assert "FAIL  SLO web p99 <= 5ms: observed" in result.stdout
    assert "PASS  SLO app utilization <= 80%" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["check", "missing.yaml"], "missing.yaml"),
        (["check", "{steady}", "--set", "tiers.app.concurency=2"], "did you mean"),
        (["check", "{steady}", "--baseline", "nothing.json"], "cannot read the baseline"),
        (["check", "{steady}", "--baseline", "{garbage}"], "not valid JSON"),
        (["check", "{steady}", "--baseline", "{steady}"], "not valid JSON"),
        (["check", "{steady}", "--baseline", "{list}"], "not a capsim result: "),
        (["check", "{steady}", "--tolerance", "lots"], "--tolerance"),
        (["check", "{steady}", "--tolerance", "10"], "write 10% for 10 percent"),
        (["check", "{steady}", "--inconclusive", "maybe"], "maybe"),
        (["check", "{steady}", "--junit", "no-such-folder/junit.xml"], "does not exist"),
    ],
)
def test_bad_input_exits_2_with_a_message(
    tmp_path: Path, steady: Path, args: list[str], message: str
) -> None:
    paths = {
        "steady": str(steady),
        "garbage": str(write(tmp_path, "garbage.json", "{not json")),
        "list": str(write(tmp_path, "list.json", "[1, 2]")),
    }
    result = invoke([arg.format(**paths) for arg in args])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output


# --- Regression against a baseline ----------------------------------------------------------


def test_the_same_run_against_its_own_baseline_passes(steady: Path, baseline: Path) -> None:
    result = invoke(["check", str(steady), "--baseline", str(baseline)])
    assert result.exit_code == 0, result.output
    assert "0 regressed, 0 inconclusive" in result.stdout


def test_a_slower_service_regresses_and_exits_1(steady: Path, baseline: Path) -> None:
    result = invoke(
        [
            "check",
            str(steady),
            "--baseline",
            str(baseline),
            "--format",
            "json",
            "--set",
            "tiers.app.service_time={dist: exponential, mean: 14ms}",
        ]
    )
    assert result.exit_code == 1
    outcome = json.loads(result.stdout)
    status = {check["check"]: check["status"] for check in outcome["regressions"]}
    assert status["class web latency.mean"] == "regressed"
    assert status["tier app utilization"] == "regressed"
    assert status["class web throughput"] == "pass"  # the offered load did not change
    assert outcome["slos"][0]["passed"] is True  # the SLOs alone would have passed


def test_noisy_but_equal_runs_are_inconclusive_and_the_policy_decides(
    steady: Path, baseline: Path
) -> None:
    # Another seed of the same scenario: every difference is noise. With no tolerance at all,
    # any figure that came out worse is beyond tolerance, yet none is beyond the noise.
    args = ["check", str(steady), "--baseline", str(baseline), "--seed", "2", "--tolerance", "0"]
    failing = invoke([*args, "--format", "json"])
    outcome = json.loads(failing.stdout)
    statuses = {check["status"] for check in outcome["regressions"]}
    assert statuses == {"pass", "inconclusive"}
    assert failing.exit_code == 1
    assert outcome["inconclusive"] == "fail"

    text = invoke(args).stdout
    assert "0 regressed" in text and "(counted as failures)" in text
    assert "INCONCLUSIVE  " in text  # which figures came out worse is the seeds' noise

    passing = invoke([*args, "--inconclusive", "pass"])
    assert passing.exit_code == 0, passing.output
    assert "(counted as passes)" in passing.stdout
    assert "inconclusive counts as pass" in passing.stdout


def test_noise_never_counts_as_a_regression_at_the_default_tolerance(
    steady: Path, baseline: Path
) -> None:
    for seed in ("3", "4", "5"):
        result = invoke(["check", str(steady), "--baseline", str(baseline), "--seed", seed])
        assert result.exit_code == 0, result.output


def test_a_bare_10_meant_as_ten_percent_is_refused_rather_than_read_as_1000_percent(
    steady: Path, baseline: Path
) -> None:
    # `--tolerance 10` read as a fraction would allow any figure to grow elevenfold: a gate
    # that passes every regression. A plain number above 1 is refused with both spellings.
    slower = ["--set", "tiers.app.service_time={dist: exponential, mean: 14ms}"]
    bare = invoke(["check", str(steady), "--baseline", str(baseline), "--tolerance", "10", *slower])
    assert bare.exit_code == 2, bare.output
    assert "write 10% for 10 percent, or 1000%" in bare.output
    percent = invoke(["check", str(steady), "--baseline", str(baseline), "--tolerance", "10%"])
    fraction = invoke(["check", str(steady), "--baseline", str(baseline), "--tolerance", "0.1"])
    assert "(tolerance 10%)" in percent.stdout and "(tolerance 10%)" in fraction.stdout
    wide = invoke(["check", str(steady), "--baseline", str(baseline), "--tolerance", "150%"])
    assert wide.exit_code == 0 and "(tolerance 150%)" in wide.stdout


def test_without_replications_the_point_estimates_decide_and_the_output_says_so(
    steady: Path, baseline: Path
) -> None:
    result = invoke(
        [
            "check",
            str(steady),
            "--baseline",
            str(baseline),
            "--replications",
            "1",
            "--set",
            "tiers.app.service_time={dist: exponential, mean: 14ms}",
        ]
    )
    assert result.exit_code == 1
    assert "no noise information" in result.stdout
    assert "current run had one replication" in result.stdout


# --- The rule, figure by figure -------------------------------------------------------------


def test_the_rule_compares_the_far_ends_of_the_intervals() -> None:
    def rule(
        current: float,
        baseline_ci: tuple[float, float] | None = None,
        current_ci: tuple[float, float] | None = None,
    ) -> Comparison:
        return compare_figure(
            100,
            current,
            higher_is_worse=True,
            tolerance=0.1,
            baseline_ci=baseline_ci,
            current_ci=current_ci,
        )

    assert rule(109).status == "pass"
    regressed = rule(125, baseline_ci=(95, 105), current_ci=(120, 130))
    assert regressed.status == "regressed"  # 120 > 105 x 1.1
    inconclusive = rule(125, baseline_ci=(90, 110), current_ci=(100, 150))
    assert inconclusive.status == "inconclusive"  # 100 < 110 x 1.1
    assert inconclusive.noise_limit == pytest.approx(121)
    lonely = rule(125, baseline_ci=(95, 105))
    assert lonely.status == "regressed" and "no noise information" in lonely.reason


def test_lower_throughput_is_worse_and_a_tiny_error_rate_is_not_a_regression() -> None:
    down = compare_figure(
        100, 80, higher_is_worse=False, tolerance=0.1, baseline_ci=(99, 101), current_ci=(79, 81)
    )
    assert down.status == "regressed"
    assert compare_figure(100, 130, higher_is_worse=False, tolerance=0.1).status == "pass"
    base = {"replications": 1, "classes": {"web": {"error_rate": 0.0}}}
    now = {"replications": 1, "classes": {"web": {"error_rate": 0.00005}}}
    checks, _ = compare_results(now, base, 0.1)
    assert [c.status for c in checks] == ["pass"]


def test_figures_missing_on_either_side_are_noted_not_failed() -> None:
    base = {"replications": 3, "classes": {"old": {"throughput": 1.0}}, "tiers": {}}
    now = {"replications": 3, "classes": {"new": {"throughput": 1.0}}, "tiers": {}}
    outcome = check_result(now, baseline=base, baseline_name="b.json")
    assert outcome.passed
    assert any("'new' is not in the baseline" in note for note in outcome.notes)
    assert any("'old' of the baseline is gone" in note for note in outcome.notes)


# --- JUnit, Markdown, GitHub Actions --------------------------------------------------------


def test_junit_has_one_case_per_slo_and_check_and_counts_the_failures(
    tmp_path: Path, baseline: Path
) -> None:
    failing = write(tmp_path, "failing.yaml", FAILING)
    junit = tmp_path / "out" / "junit.xml"
    junit.parent.mkdir()
    result = invoke(
        [
            "check",
            str(failing),
            "--baseline",
            str(baseline),
            "--junit",
            str(junit),
            "--set",
            "tiers.app.service_time={dist: exponential, mean: 14ms}",
        ]
    )
    assert result.exit_code == 1
    root = ET.parse(junit).getroot()
    suites = {suite.get("name"): suite for suite in root.iter("testsuite")}
    slos, regression = suites["slos"], suites["regression"]
    assert len(slos.findall("testcase")) == 2
    assert slos.get("failures") == "1"
    failure = slos.find("testcase/failure")
    assert failure is not None
    assert "observed" in failure.get("message", "") and "limit 5ms" in failure.get("message", "")
    regressed = [c for c in regression.findall("testcase") if c.find("failure") is not None]
    assert len(regression.findall("testcase")) == 7  # 6 class figures + 1 tier
    assert regression.get("failures") == str(len(regressed)) and regressed
    assert "95% interval now [" in regressed[0].find("failure").get("message", "")  # type: ignore[union-attr]
    assert root.get("failures") == str(1 + len(regressed))
    assert root.get("tests") == "9"


def test_inconclusive_under_the_pass_policy_is_a_skipped_case(
    tmp_path: Path, steady: Path, baseline: Path
) -> None:
    junit = tmp_path / "junit.xml"
    invoke(
        [
            "check",
            str(steady),
            "--baseline",
            str(baseline),
            "--seed",
            "2",
            "--tolerance",
            "0",
            "--inconclusive",
            "pass",
            "--junit",
            str(junit),
        ]
    )
    root = ET.parse(junit).getroot()
    assert root.get("failures") == "0"
    assert int(root.get("skipped", "0")) >= 1


def test_annotations_appear_only_under_github_actions(tmp_path: Path) -> None:
    failing = write(tmp_path, "failing.yaml", FAILING)
    quiet = invoke(["check", str(failing)])
    assert "::error" not in quiet.stdout
    loud = invoke(["check", str(failing)], env={"GITHUB_ACTIONS": "true"})
    assert loud.exit_code == 1
    errors = [line for line in loud.stdout.splitlines() if line.startswith("::error")]
    assert len(errors) == 1
    assert re.match(rf"::error file={re.escape(str(failing))},line=9,title=.*::web p99", errors[0])


def test_the_step_summary_is_appended_and_the_markdown_file_written(
    tmp_path: Path, steady: Path, baseline: Path
) -> None:
    summary = tmp_path / "step_summary.md"
    summary.write_text("earlier step\n")
    markdown = tmp_path / "check.md"
    result = invoke(
        ["check", str(steady), "--baseline", str(baseline), "--markdown", str(markdown)],
        env={"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)},
    )
    assert result.exit_code == 0, result.output
    assert "::error" not in result.stdout
    text = summary.read_text()
    assert text.startswith("earlier step\n## ✅ capsim check: steady")
    assert "| web p99 <= 1s | ✓ pass |" in text
    assert "All 7 figures are within tolerance." in markdown.read_text()


def test_annotation_messages_escape_what_github_would_misread() -> None:
    outcome = check_result(
        {
            "scenario": "s",
            "classes": {},
            "slos": [
                {
                    "slo": "a, b: 50%",
                    "passed": False,
                    "observed": 0.9,
                    "limit": 0.5,
                    "line": 3,
                    "statistic": "utilization",
                    "tier": "a",
                }
            ],
        }
    )
    (line,) = workflow_annotations(outcome, "dir/s,1.yaml")
    assert line.startswith(
        "::error file=dir/s%2C1.yaml,line=3,title=SLO failed%3A a%2C b%3A 50%25::"
    )


# --- A pipeline's queues: message age is a figure of its own -----------------------------------

PIPELINE = """\
name: pipeline
seed: 1
simulation: {duration: 20s, warmup: 2s, replications: 3}
traffic:
  events: {entry: api, rate: 100/s}
tiers:
  api: {type: service, concurrency: 4, service_time: 2ms, calls: [store]}
  store:
    type: queue
    consumers: 2
    service_time: 10ms
    batch: {size: 50, linger: 100ms}
"""


def test_a_longer_batch_linger_that_ages_every_message_fails_the_gate(tmp_path: Path) -> None:
    # Lingering 500 ms instead of 100 ms: batches of 1 + 10 messages become batches of 50
    # filled in about 490 ms, so the mean age goes from about 100 x (1 + 10 / 2) / 11 + 10 =
    # 65 ms to about 490 / 2 + 10 = 255 ms, while the consumers get *less* busy (fuller
    # batches): no class latency or utilization rises, only the queue's own message age.
    scenario = write(tmp_path, "pipeline.yaml", PIPELINE)
    saved = tmp_path / "baseline.json"
    made = invoke(["run", str(scenario), "--format", "json", "--output", str(saved)])
    assert made.exit_code == 0, made.output
    ages = json.loads(saved.read_text())["tiers"]["store"]["ci95"]
    assert 0.055 < ages["age.mean"][0] < ages["age.mean"][1] < 0.075

    same = invoke(["check", str(scenario), "--baseline", str(saved), "--seed", "2"])
    assert same.exit_code == 0, same.output  # another seed: noise, never a regression

    slower = ["--set", "tiers.store.batch={size: 50, linger: 500ms}"]
    result = invoke(["check", str(scenario), "--baseline", str(saved), *slower])
    assert result.exit_code == 1, result.output
    assert re.search(r"REGRESSED  tier store age\.mean regressed: 2[3-5]\d\.\dms", result.stdout)
    assert "REGRESSED  tier store age.p99" in result.stdout
    assert "REGRESSED  tier store utilization" not in result.stdout


def test_a_baseline_without_age_intervals_is_noted_rather_than_judged_on_point_estimates(
    tmp_path: Path,
) -> None:
    # A baseline saved by a capsim that gave no interval for message age, with 3 replications:
    # comparing the bare point estimates would fail pull requests on noise.
    scenario = write(tmp_path, "pipeline.yaml", PIPELINE)
    saved = tmp_path / "baseline.json"
    invoke(["run", str(scenario), "--format", "json", "--output", str(saved)])
    old = json.loads(saved.read_text())
    for stat in ("age.mean", "age.p99"):
        del old["tiers"]["store"]["ci95"][stat]
    saved.write_text(json.dumps(old))
    result = invoke(["check", str(scenario), "--baseline", str(saved), "--seed", "2"])
    assert result.exit_code == 0, result.output
    assert "tier store age.p99 is not compared: the baseline has several replications" in (
        result.stdout
    )
