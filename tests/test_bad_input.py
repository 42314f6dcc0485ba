"""Bad scenarios are rejected with every problem listed: where, which key, what, and the remedy."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from capsim.errors import Problem, ScenarioError
from capsim.scenario import load_scenario, loader, validate_file


def write(folder: Path, text: str, name: str = "shop.yaml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def problems(folder: Path, text: str, overrides: tuple[str, ...] = ()) -> list[Problem]:
    found = validate_file(write(folder, text), overrides)
    assert found, "the scenario was expected to be invalid"
    return found


def only(folder: Path, text: str) -> Problem:
    found = problems(folder, text)
    assert len(found) == 1, [p.format() for p in found]
    return found[0]


def where(problem: Problem) -> tuple[int, int, str]:
    return problem.line, problem.column, problem.path


VALID = """
name: shop
traffic:
  browse: {entry: app, rate: 100/s}
tiers:
  app:
    service_time: 20ms
    concurrency: 4
"""


# ---- the file and its YAML ---------------------------------------------------------------------
def test_malformed_yaml_points_at_the_line_and_column(tmp_path: Path) -> None:
    problem = only(tmp_path, "name: shop\ntiers: [a, b\nx: 1\n")
    assert problem.message.startswith("invalid YAML:")
    assert problem.line == 3 and problem.column == 2


def test_tabs_for_indentation_get_a_hint(tmp_path: Path) -> None:
    problem = only(tmp_path, "name: shop\ntiers:\n\tapp: 1\n")
    assert "indent with spaces" in problem.message and problem.line == 3


def test_an_empty_file_says_what_a_scenario_needs(tmp_path: Path) -> None:
    problem = only(tmp_path, "# nothing yet\n\n")
    assert "the file is empty" in problem.message and "name, traffic and tiers" in problem.message


def test_a_file_that_is_not_utf8_is_located(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: caf\xe9\n".encode("latin-1"))
    (problem,) = validate_file(path)
    assert "not UTF-8" in problem.message and "save it as UTF-8" in problem.message
    assert (problem.line, problem.column) == (1, 10)


def test_a_control_character_is_located(tmp_path: Path) -> None:
    problem = only(tmp_path, "name: shop\ndescription: a\x07b\n")
    assert (problem.line, problem.column) == (2, 15)
    assert "control character U+0007" in problem.message


def test_the_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    problem = only(tmp_path, "- name: shop\n- tiers: {}\n")
    assert "top level of a scenario must be a mapping" in problem.message
    assert "not a list" in problem.message


def test_a_scalar_where_a_mapping_belongs(tmp_path: Path) -> None:
    problem = only(
        tmp_path, VALID.replace("  app:\n    service_time: 20ms\n    concurrency: 4", "  app: 5")
    )
    assert where(problem) == (5, 8, "tiers.app")
    assert problem.message == "expected a mapping (key: value pairs), got the number 5"


def test_a_list_where_a_mapping_belongs(tmp_path: Path) -> None:
    problem = only(tmp_path, VALID.replace("  browse: {entry: app, rate: 100/s}", "  - browse"))
    assert problem.path == "traffic" and problem.line == 3
    assert "expected a mapping" in problem.message and "a list" in problem.message


def test_duplicate_keys_are_an_error_not_last_wins(tmp_path: Path) -> None:
    problem = only(tmp_path, VALID + "    concurrency: 40\n")
    assert where(problem) == (8, 5, "tiers.app.concurrency")
    assert "duplicate key 'concurrency' (first given on line 7)" in problem.message


def test_an_alias_bomb_stops_with_a_clear_error(tmp_path: Path) -> None:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    for level in range(1, 9):
        previous, name = chr(ord("a") + level - 1), chr(ord("a") + level)
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{previous}"] * 9) + "]")
    problem = only(tmp_path, "\n".join(lines) + "\n")
    assert "expands to more than 100,000 values" in problem.message
    assert "remove the anchors" in problem.message


def test_a_recursive_alias_is_an_error(tmp_path: Path) -> None:
    problem = only(tmp_path, "name: &a [*a]\n")
    assert "recursive alias" in problem.message


def test_python_tags_are_refused(tmp_path: Path) -> None:
    problem = only(
        tmp_path, VALID.replace("name: shop", "name: !!python/object/apply:os.system [ls]")
    )
    assert where(problem) == (1, 7, "name")
    assert "'!!python/object/apply:os.system' is not allowed" in problem.message


def test_a_missing_file_and_a_directory_are_clear(tmp_path: Path) -> None:
    (missing,) = validate_file(tmp_path / "nope.yaml")
    assert (
        missing.format()
        == f"{tmp_path / 'nope.yaml'}: cannot read the file: No such file or directory; check "
        "the path"
    )
    (folder,) = validate_file(tmp_path)
    assert "it is a folder; give the path of a scenario file" in folder.message


def test_a_huge_file_is_refused_before_parsing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(loader, "MAX_FILE_BYTES", 100)
    problem = only(tmp_path, VALID + "# " + "x" * 200 + "\n")
    assert "it is larger than 100 bytes, the most a scenario may be" in problem.message


def test_two_documents_in_one_file_are_refused(tmp_path: Path) -> None:
    problem = only(tmp_path, VALID + "---\nname: other\n")
    assert "exactly one document" in problem.message


# ---- keys and values ---------------------------------------------------------------------------
def test_an_unknown_key_suggests_the_closest_valid_one(tmp_path: Path) -> None:
    problem = only(tmp_path, VALID + "    instancs: 8\n")
    assert problem.format() == (
        f"{tmp_path / 'shop.yaml'}:8:5: tiers.app.instancs: unknown key 'instancs'; "
        "did you mean 'instances'?"
    )


def test_an_unknown_key_with_no_close_match_lists_the_valid_keys(tmp_path: Path) -> None:
    problem = only(tmp_path, VALID.replace("name: shop", "name: shop\nflavour: vanilla"))
    assert problem.path == "flavour" and "valid keys: version, name, description" in problem.message


def test_a_fractional_count_names_the_key_and_an_example(tmp_path: Path) -> None:
    problem = only(tmp_path, VALID.replace("concurrency: 4", "concurrency: 2.5"))
    assert problem.format() == (
        f"{tmp_path / 'shop.yaml'}:7:18: tiers.app.concurrency: 2.5 is not a whole number; "
        "concurrency must be a positive integer such as 4"
    )


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("0", "0 is not positive; concurrency must be a positive integer"),
        ("-3", "-3 is negative"),
        ("four", "expected a number, got the text 'four'"),
        ("'4'", "expected a number, got the text '4'"),
        ("true", "true is a boolean, not a number"),
    ],
)
def test_counts_must_be_positive_whole_numbers(tmp_path: Path, value: str, fragment: str) -> None:
    problem = only(tmp_path, VALID.replace("concurrency: 4", f"concurrency: {value}"))
    assert problem.path == "tiers.app.concurrency" and fragment in problem.message


@pytest.mark.parametrize(
    ("line", "path", "fragment"),
    [
        ("service_time: -20ms", "tiers.app.service_time", "'-20ms' is negative"),
        ("service_time: .nan", "tiers.app.service_time", "not a finite number"),
        ("service_time: .inf", "tiers.app.service_time", "not a finite number"),
        ("service_time: yes", "tiers.app.service_time", "'yes' is not a duration"),
        ("service_time: true", "tiers.app.service_time", "got the boolean true"),
        ("service_time: 20 parsecs", "tiers.app.service_time", "unknown duration unit 'parsecs'"),
        ("service_time: 12:30", "tiers.app.service_time", "'12:30' is not a duration"),
        ("timeout: 0s", "tiers.app.timeout", "is not greater than 0"),
    ],
)
def test_bad_durations(tmp_path: Path, line: str, path: str, fragment: str) -> None:
    text = VALID.replace("service_time: 20ms", "service_time: 20ms\n    " + line)
    if line.startswith("service_time"):
        text = VALID.replace("service_time: 20ms", line)
    problem = only(tmp_path, text)
    assert problem.path == path and fragment in problem.message, problem.message
    assert problem.line == (7 if line.startswith("timeout") else 6)


@pytest.mark.parametrize(
    ("rate", "fragment"),
    [
        ("-5/s", "'-5/s' is not greater than 0"),
        (".nan", "not a finite number"),
        ("800/week", "unknown rate unit '/week'"),
        ("[1, 2]", "expected a rate greater than 0 such as 800/s, got a list"),
    ],
)
def test_bad_rates(tmp_path: Path, rate: str, fragment: str) -> None:
    problem = only(tmp_path, VALID.replace("rate: 100/s", f"rate: {rate}"))
    assert where(problem)[2] == "traffic.browse.rate"
    assert fragment in problem.message
    assert problem.line == 3


@pytest.mark.parametrize(
    ("call", "path", "fragment"),
    [
        (
            "{tier: app2, probability: 1.2}",
            "tiers.app.calls[0].probability",
            "1.2 is outside [0, 1]",
        ),
        ("{tier: app2, probability: -0.1}", "tiers.app.calls[0].probability", "outside [0, 1]"),
        ("{one_of: {app2: 0.5, app3: 0.6}}", "tiers.app.calls[0].one_of", "sum to 1.1"),
        ("{tier: app2, repeat: 0}", "tiers.app.calls[0].repeat", "0 is not positive"),
        ("{tyer: app2}", "tiers.app.calls[0]", "this mapping is not a call"),
        ("7", "tiers.app.calls[0]", "expected a call, got the number 7"),
        ("{parallel: [app2, 3]}", "tiers.app.calls[0].parallel[1]", "expected a call"),
    ],
)
def test_bad_calls(tmp_path: Path, call: str, path: str, fragment: str) -> None:
    text = (
        VALID
        + f"    calls: [{call}]\n  app2: {{service_time: 1ms}}\n  app3: {{service_time: 1ms}}\n"
    )
    problem = only(tmp_path, text)
    assert problem.path == path and fragment in problem.message, problem.format()
    assert problem.line == 8


def test_probability_messages_show_the_offending_value(tmp_path: Path) -> None:
    text = VALID + "    calls: [{tier: app, probability: 1.2}]\n"
    problem = problems(tmp_path, text)[0]
    assert "1.2" in problem.message and "[0, 1]" in problem.message


def test_an_unknown_distribution_lists_the_valid_ones(tmp_path: Path) -> None:
    problem = only(tmp_path, VALID.replace("20ms", "{dist: weibul, mean: 20ms}"))
    assert where(problem) == (6, 26, "tiers.app.service_time.dist")
    assert problem.message == (
        "unknown distribution 'weibul' (valid: constant, exponential, lognormal, gamma, "
        "uniform, empirical)"
    )


@pytest.mark.parametrize(
    ("dist", "path", "fragment"),
    [
        ("{mean: 20ms}", "tiers.app.service_time", "missing key 'dist'"),
        (
            "{dist: lognormal, p50: 20ms, p99: 10ms}",
            "tiers.app.service_time.p99",
            "p99 must be greater than p50",
        ),
        ("{dist: lognormal, p50: 20ms}", "tiers.app.service_time", "needs both p50 and p99"),
        ("{dist: lognormal, mean: 20ms, cv: 1, p99: 1s}", "tiers.app.service_time", "not both"),
        ("{dist: gamma, mean: 20ms}", "tiers.app.service_time.cv", "missing required key 'cv'"),
        ("{dist: gamma, mean: 20ms, cv: -1}", "tiers.app.service_time.cv", "greater than 0"),
        ("{dist: exponential, mean: 0s}", "tiers.app.service_time.mean", "not greater than 0"),
        ("{dist: uniform, min: 15ms, max: 5ms}", "tiers.app.service_time.max", "min <= max"),
        ("{dist: empirical, samples: []}", "tiers.app.service_time.samples", "must not be empty"),
        ("{dist: empirical}", "tiers.app.service_time", "exactly one of samples"),
        (
            "{dist: empirical, samples: [1ms, -2ms]}",
            "tiers.app.service_time.samples[1]",
            "negative",
        ),
    ],
)
def test_bad_distributions(tmp_path: Path, dist: str, path: str, fragment: str) -> None:
    problem = only(tmp_path, VALID.replace("20ms", dist))
    assert problem.path == path and fragment in problem.message, problem.format()
    assert problem.line == 6


def test_an_empirical_file_must_exist_inside_the_scenario_folder(tmp_path: Path) -> None:
    (tmp_path / "secret.csv").write_text("1\n")
    inner = tmp_path / "inner"
    inner.mkdir()
    outside = only(inner, VALID.replace("20ms", "{dist: empirical, file: ../secret.csv}"))
    assert outside.path == "tiers.app.service_time.file" and outside.line == 6
    assert "outside the scenario's folder" in outside.message
    missing = only(inner, VALID.replace("20ms", "{dist: empirical, file: gone.csv}"))
    assert missing.path == "tiers.app.service_time.file"
    assert "no samples file 'gone.csv'" in missing.message
    (inner / "bad.csv").write_text("1ms\n2 lightyears\n")
    unreadable = only(inner, VALID.replace("20ms", "{dist: empirical, file: bad.csv}"))
    assert "bad.csv line 2" in unreadable.message


def test_an_unknown_tier_type_lists_the_valid_ones(tmp_path: Path) -> None:
    problem = only(
        tmp_path, VALID.replace("service_time: 20ms", "type: servce\n    service_time: 20ms")
    )
    assert where(problem) == (6, 11, "tiers.app.type")
    assert "unknown tier type 'servce'; did you mean 'service'?" in problem.message
    assert "valid: service, load_balancer, cache, cdn, database, queue" in problem.message


def test_an_unknown_balancing_suggests_one(tmp_path: Path) -> None:
    problem = only(tmp_path, VALID + "    balancing: roundrobin\n")
    assert problem.path == "tiers.app.balancing"
    assert "did you mean 'round_robin'?" in problem.message


@pytest.mark.parametrize("kind", ["service", "database", "queue"])
def test_service_time_is_required_where_it_has_no_default(tmp_path: Path, kind: str) -> None:
    text = VALID + f"  worker:\n    type: {kind}\n"
    problem = only(tmp_path, text)
    assert where(problem) == (8, 3, "tiers.worker.service_time")
    assert problem.message == "missing required key 'service_time', e.g. service_time: 25ms"


def test_a_load_balancer_needs_backends(tmp_path: Path) -> None:
    problem = only(tmp_path, VALID + "  lb: {type: load_balancer}\n")
    assert (
        problem.path == "tiers.lb.backends" and "missing required key 'backends'" in problem.message
    )


# ---- traffic, simulation, top level ------------------------------------------------------------
def test_a_class_cannot_be_open_and_closed(tmp_path: Path) -> None:
    problem = only(tmp_path, VALID.replace("rate: 100/s", "rate: 100/s, users: 5, think_time: 1s"))
    assert problem.path == "traffic.browse.users"
    assert "either rate (open workload) or users (closed workload), not both" in problem.message


def test_users_need_a_think_time(tmp_path: Path) -> None:
    problem = only(tmp_path, VALID.replace("rate: 100/s", "users: 5"))
    assert problem.path == "traffic.browse.users" and "think_time" in problem.message


def test_a_class_needs_a_workload(tmp_path: Path) -> None:
    problem = only(tmp_path, VALID.replace(", rate: 100/s", ""))
    assert problem.path == "traffic.browse" and "needs rate:" in problem.message


def test_profile_points_must_be_in_order(tmp_path: Path) -> None:
    text = VALID.replace("rate: 100/s}", "profile: [{at: 5min, rate: 1/s}, {at: 1min, rate: 2/s}]}")
    problem = only(tmp_path, text)
    assert problem.path == "traffic.browse.profile[1].at"
    assert "in order of `at`" in problem.message


@pytest.mark.parametrize(
    ("text", "path", "fragment"),
    [
        ("version: 2", "version", "version must be 1"),
        ("seed: -1", "seed", "seed must be a whole number of 0 or more"),
        ("seed: 1.5", "seed", "1.5 is not a whole number"),
        ("simulation: {duration: 0s}", "simulation.duration", "not greater than 0"),
        ("simulation: {warmup: -1s}", "simulation.warmup", "negative"),
        ("simulation: {replications: 0}", "simulation.replications", "positive integer"),
    ],
)
def test_bad_top_level_settings(tmp_path: Path, text: str, path: str, fragment: str) -> None:
    problem = only(tmp_path, VALID + text + "\n")
    assert problem.path == path and fragment in problem.message, problem.format()


def test_name_traffic_and_tiers_are_required(tmp_path: Path) -> None:
    found = problems(tmp_path, "description: nothing else\n")
    assert [p.path for p in found] == ["name", "traffic", "tiers"]
    assert all(p.line == 1 for p in found)
    assert "e.g. name: web-shop" in found[0].message


# ---- meaning -----------------------------------------------------------------------------------
def test_unknown_references_suggest_the_closest_name(tmp_path: Path) -> None:
    text = """
    name: shop
    traffic:
      browse: {entry: ap, rate: 1}
    tiers:
      app:
        service_time: 1ms
        calls: [cahce, {tier: dbb}, {one_of: {dB: 0.5}}]
        classes: {brwse: {service_time: 2ms}}
      cache: {type: cache, hit_ratio: 0.5, on_miss: datbase}
      lb: {type: load_balancer, backends: apps}
      database: {type: database, service_time: 1ms}
    slos:
      - {class: browze, p99: 1s}
      - {tier: ap, utilization: 50%}
    """
    found = [p.format().split(": ", 1)[1] for p in problems(tmp_path, text)]
    assert found == [
        "traffic.browse.entry: unknown tier 'ap'; did you mean 'app'? (tiers: app, cache, lb, database)",
        "tiers.app.calls[0]: unknown tier 'cahce'; did you mean 'cache'? (tiers: app, cache, lb, database)",
        "tiers.app.calls[1].tier: unknown tier 'dbb' (tiers: app, cache, lb, database)",
        "tiers.app.calls[2].one_of.dB: unknown tier 'dB' (tiers: app, cache, lb, database)",
        "tiers.app.classes.brwse: unknown class 'brwse'; did you mean 'browse'? (classes: browse)",
        "tiers.cache.on_miss: unknown tier 'datbase'; did you mean 'database'? (tiers: app, cache, lb, database)",
        "tiers.lb.backends: unknown tier 'apps'; did you mean 'app'? (tiers: app, cache, lb, database)",
        "slos[0].class: unknown class 'browze'; did you mean 'browse'? (classes: browse)",
        "slos[1].tier: unknown tier 'ap'; did you mean 'app'? (tiers: app, cache, lb, database)",
    ]


def test_a_cache_that_misses_needs_on_miss(tmp_path: Path) -> None:
    text = (
        VALID
        + "  cache: {type: cache, hit_ratio: {model: lru, capacity: 10, keys: 100, zipf: 1}}\n"
    )
    problem = only(tmp_path, text)
    assert where(problem) == (8, 3, "tiers.cache")
    assert "has no on_miss" in problem.message and "add on_miss: TIER" in problem.message


def test_a_cache_that_always_hits_needs_no_on_miss(tmp_path: Path) -> None:
    text = (
        VALID
        + "  cache: {type: cache, hit_ratio: {model: lru, capacity: 100, keys: 100, zipf: 1}}\n"
    )
    assert validate_file(write(tmp_path, text)) == []


def test_a_certain_call_cycle_is_reported_with_its_path(tmp_path: Path) -> None:
    text = """
    name: loop
    traffic: {browse: {entry: app, rate: 1}}
    tiers:
      app: {service_time: 1ms, calls: [db]}
      db: {type: database, service_time: 1ms, calls: [{tier: app, probability: 100%}]}
    """
    problem = only(tmp_path, text)
    assert problem.path == "tiers.app.calls[0]" and problem.line == 4
    assert problem.message.startswith(
        "call cycle app -> db -> app: every call in it has probability 1"
    )


def test_a_cycle_that_may_exit_is_allowed(tmp_path: Path) -> None:
    text = """
    name: retry
    traffic: {browse: {entry: app, rate: 1}}
    tiers:
      app: {service_time: 1ms, calls: [db]}
      db: {type: database, service_time: 1ms, calls: [{tier: app, probability: 0.1}]}
    """
    assert validate_file(write(tmp_path, text)) == []


def test_a_cycle_with_infinite_expected_visits_is_reported(tmp_path: Path) -> None:
    text = """
    name: storm
    traffic: {browse: {entry: app, rate: 1}}
    tiers:
      app: {service_time: 1ms, calls: [{tier: db, probability: 0.5, repeat: 3}]}
      db: {type: database, service_time: 1ms, calls: [{tier: app, probability: 0.9}]}
    """
    problem = only(tmp_path, text)
    assert "expected number of visits is infinite" in problem.message
    assert "(app -> db -> app)" in problem.message


def test_slo_statistics_are_checked(tmp_path: Path) -> None:
    text = (
        VALID
        + "slos:\n  - {class: browse, p98: 300ms}\n  - {tier: app, p99: 1s}\n  - {class: browse, utilization: 50%}\n"
    )
    found = problems(tmp_path, text)
    assert [where(p) for p in found] == [
        (9, 21, "slos[0].p98"),
        (10, 17, "slos[1].p99"),
        (11, 21, "slos[2].utilization"),
    ]
    assert "did you mean 'p99'?" in found[0].message
    assert "a tier SLO takes utilization" in found[1].message
    assert "utilization is a tier statistic" in found[2].message


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = VALID.replace("concurrency: 4", "concurrency: 2.5\n    instancs: 3").replace(
        "rate: 100/s", "rate: -1/s"
    )
    with pytest.raises(ScenarioError) as caught:
        load_scenario(write(tmp_path, text))
    assert [p.path for p in caught.value.problems] == [
        "traffic.browse.rate",
        "tiers.app.concurrency",
        "tiers.app.instancs",
    ]
    assert str(caught.value).count("\n") == 2


# ---- no input gives a traceback ----------------------------------------------------------------
_PATHS = [
    "name",
    "seed",
    "simulation",
    "simulation.duration",
    "traffic",
    "traffic.browse",
    "traffic.browse.rate",
    "traffic.browse.profile",
    "tiers",
    "tiers.app",
    "tiers.app.type",
    "tiers.app.service_time",
    "tiers.app.calls",
    "tiers.app.classes",
    "tiers.db.hit_ratio",
    "slos",
]
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["20ms", "-1s", "1e3", "800/s", "85%", "app", "db", "cache", "lognormal", ""]),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(
            st.sampled_from(["dist", "mean", "tier", "one_of", "parallel", "type", "rate", "x"]),
            inner,
            max_size=3,
        ),
    ),
    max_leaves=8,
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(path=st.sampled_from(_PATHS), value=_VALUES)
def test_any_mutated_scenario_gives_problems_never_a_traceback(
    tmp_path: Path, path: str, value: object
) -> None:
    import json

    scenario = write(tmp_path, VALID)
    found = validate_file(scenario, [f"{path}={json.dumps(value)}"])
    assert all(isinstance(p, Problem) and p.message for p in found)


def test_validate_still_names_unknown_tiers_and_classes_when_the_schema_fails(tmp_path):
    # One run of `capsim validate` shows schema problems and broken references together.
    from capsim.scenario import validate_file

    path = tmp_path / "mixed.yaml"
    path.write_text(
        "name: mixed\n"
        "traffic:\n"
        "  browse: {entry: ap, rate: 800/s, users: 3}\n"
        "tiers:\n"
        "  app:\n"
        "    type: servce\n"
        "    calls: [{one_of: {cach: 0.5}}]\n"
        "slos:\n"
        "  - {class: brwse, p99: 300ms}\n"
    )
    problems = {(p.line, p.path): p.message for p in validate_file(path)}
    assert "did you mean 'app'" in problems[(3, "traffic.browse.entry")]
    assert "not both" in problems[(3, "traffic.browse.users")]
    assert "did you mean 'service'" in problems[(6, "tiers.app.type")]
    assert "unknown tier 'cach'" in problems[(7, "tiers.app.calls[0].one_of.cach")]
    assert "did you mean 'browse'" in problems[(9, "slos[0].class")]
