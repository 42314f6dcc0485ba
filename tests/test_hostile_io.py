"""Hostile inputs and output paths (issue 13), through the command line as a user runs it.

Each class of problem is tested with several shapes of input: output paths that are devices,
FIFOs, symlinks or standard output; inputs that never end; text from data that tries to inject
into terminals, Markdown, XML and GitHub workflow commands; malformed result files; filesystem
errors; terminals that are not UTF-8. docs/robustness.md says what is guaranteed.
"""

from __future__ import annotations

import contextlib
import json
import os
import pty
import re
import resource
import signal
import stat
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from childprocess import sigint_at_its_default

#: The description: valid free text (several lines) that would be HTML and Markdown if not escaped.
DESCRIPTION = "The <b>web shop</b> | checkout path.\n# All good\n<img src=x onerror=alert(1)>\n"


def scenario_text(
    name: str = "shop", description: str = DESCRIPTION, klass: str = "browse", tier: str = "app"
) -> str:
    """A small scenario that runs in well under a second; any text goes in JSON's quoting."""
    name, description, klass, tier = (json.dumps(t) for t in (name, description, klass, tier))
    return f"""\
name: {name}
description: {description}
traffic:
  {klass}: {{entry: {tier}, rate: 50/s}}
tiers:
  {tier}:
    service_time: 20ms
    concurrency: 4
slos:
  - {{class: {klass}, p99: 300ms}}
simulation: {{duration: 1s, warmup: 0s, replications: 1}}
"""


SCENARIO = scenario_text()
#: Memory a capsim process may map: far below what an unbounded read of /dev/zero would take.
MEMORY_CAP = 1536 * 1024 * 1024


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


def _limit_memory_and_take_sigint() -> None:
    _limit_memory()
    sigint_at_its_default()


def capsim(
    *args: str,
    cwd: Path,
    env: dict[str, str] | None = None,
    stdin: int | None = subprocess.DEVNULL,
    timeout: float = 60,
) -> subprocess.CompletedProcess[bytes]:
    """`python -m capsim ARGS` in `cwd`, under a memory cap; output as bytes."""
    return subprocess.run(
        [sys.executable, "-m", "capsim", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        stdin=stdin,
        capture_output=True,
        timeout=timeout,
        preexec_fn=_limit_memory,
    )


def no_traceback(completed: subprocess.CompletedProcess[bytes]) -> None:
    assert b"Traceback" not in completed.stderr, completed.stderr.decode("utf-8", "replace")


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    path = tmp_path / "shop.yaml"
    path.write_text(SCENARIO, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved result of SCENARIO (made once: tests only read it)."""
    folder = tmp_path_factory.mktemp("baseline")
    (folder / "shop.yaml").write_text(SCENARIO, encoding="utf-8")
    path = folder / "baseline.json"
    done = capsim("run", "shop.yaml", "-f", "json", "-o", str(path), cwd=folder)
    assert done.returncode == 0, done.stderr
    return path


def read_fifo_in_background(fifo: Path) -> tuple[threading.Thread, list[bytes]]:
    received: list[bytes] = []

    def read() -> None:
        with open(fifo, "rb") as stream:
            received.append(stream.read())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    return reader, received


# ---- output paths --------------------------------------------------------------------------
#: Every option that writes a file: (arguments before the path, the option, what it writes).
WRITERS = [
    pytest.param(["run", "{shop}", "-f", "json"], "-o", b'"capsim_version"', id="run -o"),
    pytest.param(["check", "{shop}"], "--junit", b"<testsuites", id="check --junit"),
    pytest.param(["check", "{shop}"], "--markdown", b"capsim check", id="check --markdown"),
    pytest.param(
        ["report", "{shop}", "--no-curve", "-f", "html"], "-o", b"<!DOCTYPE html>", id="report -o"
    ),
]


def _writer_args(before: list[str], option: str, target: str, shop: Path) -> list[str]:
    return [arg.format(shop=shop) for arg in before] + [option, target]


@pytest.mark.parametrize(("before", "option", "marker"), WRITERS)
def test_dev_null_is_written_and_stays_a_device(
    shop: Path, before: list[str], option: str, marker: bytes
) -> None:
    done = capsim(*_writer_args(before, option, "/dev/null", shop), cwd=shop.parent)
    no_traceback(done)
    assert done.returncode == 0, done.stderr
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    assert os.stat("/dev/null").st_rdev == os.makedev(1, 3)


def _each_writer(extra: object, quick: str = "run -o") -> list[object]:
    """Every writer with `extra`: in the quick run for `quick` only, for all in the slow one."""
    return [
        pytest.param(
            *writer.values,
            extra,
            id=f"{writer.id}-{extra}",
            marks=() if writer.id == quick else pytest.mark.slow,
        )
        for writer in WRITERS
    ]


def _every_writer(extra: object) -> list[object]:
    return [pytest.param(*writer.values, extra, id=f"{writer.id}-{extra}") for writer in WRITERS]


@pytest.mark.parametrize(
    ("before", "option", "marker", "target"), _every_writer("-") + _each_writer("/dev/stdout")
)
def test_standard_output_reaches_stdout(
    shop: Path, before: list[str], option: str, marker: bytes, target: str
) -> None:
    done = capsim(*_writer_args(before, option, target, shop), cwd=shop.parent)
    no_traceback(done)
    assert done.returncode == 0, done.stderr
    assert marker in done.stdout
    assert os.path.islink("/dev/stdout")
    assert not (shop.parent / "-").exists()


@pytest.mark.parametrize(("before", "option", "marker"), WRITERS)
def test_a_fifo_is_written_into_not_replaced(
    shop: Path, before: list[str], option: str, marker: bytes
) -> None:
    fifo = shop.parent / "results.pipe"
    os.mkfifo(fifo)
    reader, received = read_fifo_in_background(fifo)
    done = capsim(*_writer_args(before, option, str(fifo), shop), cwd=shop.parent)
    reader.join(timeout=30)
    no_traceback(done)
    assert done.returncode == 0, done.stderr
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert received and marker in received[0]


@pytest.mark.parametrize(
    ("before", "option", "marker", "dangling"),
    _every_writer(False) + _each_writer(True, quick="check --junit"),
)
def test_a_symlink_keeps_pointing_at_its_target_which_is_written(
    shop: Path, before: list[str], option: str, marker: bytes, dangling: bool
) -> None:
    target = shop.parent / "kept" / "real.out"
    target.parent.mkdir()
    if not dangling:
        target.write_bytes(b"old contents")
    link = shop.parent / "link.out"
    link.symlink_to(target)
    done = capsim(*_writer_args(before, option, str(link), shop), cwd=shop.parent)
    no_traceback(done)
    assert done.returncode == 0, done.stderr
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert marker in target.read_bytes()
    assert sorted(p.name for p in target.parent.iterdir()) == ["real.out"]


def test_a_markdown_report_refuses_a_destination_with_no_room_for_images(shop: Path) -> None:
    for target in ("-", "/dev/null"):
        done = capsim(
            "report", str(shop), "--no-curve", "-f", "markdown", "-o", target, cwd=shop.parent
        )
        no_traceback(done)
        assert done.returncode == 2
        assert b"-o must be a file path" in done.stderr
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


# ---- unbounded reads -----------------------------------------------------------------------
def _endless_fifo(folder: Path, name: str) -> tuple[Path, threading.Event]:
    """A FIFO a thread keeps writing to until told to stop (or the reader goes away)."""
    fifo = folder / name
    os.mkfifo(fifo)
    stop = threading.Event()

    def feed() -> None:
        try:
            with open(fifo, "wb") as stream:
                while not stop.is_set():
                    stream.write(b"y\n" * 65536)
        except (BrokenPipeError, OSError):
            pass

    threading.Thread(target=feed, daemon=True).start()
    return fifo, stop


@contextlib.contextmanager
def _endless_input(kind: str, folder: Path, name: str) -> Iterator[str]:
    """The path of an input that never ends (or claims 3 GB), made in `folder` as `name`."""
    if kind == "/dev/zero":
        yield "/dev/zero"
    elif kind == "symlink to /dev/zero":
        (folder / name).symlink_to("/dev/zero")
        yield str(folder / name)
    elif kind == "sparse 3 GB file":
        with open(folder / name, "wb") as stream:
            stream.truncate(3 * 1024**3)
        yield str(folder / name)
    elif kind == "FIFO fed endlessly":
        fifo, stop = _endless_fifo(folder, name)
        yield str(fifo)
        stop.set()


ENDLESS = ["/dev/zero", "symlink to /dev/zero", "sparse 3 GB file", "FIFO fed endlessly"]
#: (the command with {input} where the endless file goes, the cap its message names).
READERS = [
    pytest.param(["run", "{input}"], "10 MiB", "scenario.yaml", id="scenario"),
    pytest.param(
        ["check", "{shop}", "--baseline", "{input}"], "64 MiB", "base.json", id="baseline"
    ),
    pytest.param(["compare", "{input}", "{shop}"], "64 MiB", "a.json", id="compare input"),
]


#: In the quick run: every kind of endless input for scenarios, two for the others.
QUICK_ENDLESS = {"scenario": ENDLESS, "baseline": ENDLESS[::3], "compare input": ENDLESS[1:3]}


@pytest.mark.parametrize(
    ("command", "cap", "name", "kind"),
    [
        pytest.param(
            *reader.values,
            kind,
            id=f"{reader.id}-{kind}",
            marks=() if kind in QUICK_ENDLESS[str(reader.id)] else pytest.mark.slow,
        )
        for reader in READERS
        for kind in ENDLESS
    ],
)
def test_an_endless_input_stops_at_its_cap(
    shop: Path, command: list[str], cap: str, name: str, kind: str
) -> None:
    with _endless_input(kind, shop.parent, name) as path:
        # A reader without the cap never ends (or holds gigabytes): the time limit only tells
        # such a hang from a loaded machine.
        done = capsim(
            *[arg.format(shop=shop, input=path) for arg in command], cwd=shop.parent, timeout=300
        )
        no_traceback(done)
        assert done.returncode == 2, done.stderr
        assert f"larger than {cap}".encode() in done.stderr


def test_standard_input_fed_endlessly_stops_at_the_cap(shop: Path) -> None:
    feeder = subprocess.Popen(
        [sys.executable, "-c", "import sys\nwhile True: sys.stdout.buffer.write(b'y\\n' * 65536)"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        for source in ("-", "/dev/stdin"):
            done = capsim("run", source, cwd=shop.parent, stdin=feeder.stdout.fileno())  # type: ignore[union-attr]
            no_traceback(done)
            assert done.returncode == 2
            assert b"larger than 10 MiB" in done.stderr
    finally:
        feeder.kill()
        feeder.wait()


@pytest.mark.parametrize("kind", ["sparse 3 GB file", "FIFO fed endlessly", "symlink to /dev/zero"])
def test_an_endless_samples_file_is_refused(shop: Path, kind: str) -> None:
    with _endless_input(kind, shop.parent, "samples.csv") as path:
        scenario = shop.parent / "empirical.yaml"
        scenario.write_text(
            SCENARIO.replace(
                "service_time: 20ms", "service_time: {dist: empirical, file: samples.csv}"
            ),
            encoding="utf-8",
        )
        done = capsim("validate", str(scenario), cwd=shop.parent)
        no_traceback(done)
        assert done.returncode == 2, path
        reason = b"outside the scenario's folder" if "zero" in kind else b"larger than 10 MiB"
        assert reason in done.stderr


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_read_that_waits_can_be_interrupted(shop: Path, sig: signal.Signals) -> None:
    """A FIFO whose writer sends a little and then nothing: capsim waits, and a signal stops it."""
    fifo = shop.parent / "slow.yaml"
    os.mkfifo(fifo)
    holder: list[object] = []

    def trickle() -> None:
        stream = open(fifo, "wb")  # noqa: SIM115 (held open so that the reader keeps waiting)
        stream.write(b"name: shop\n")
        stream.flush()
        holder.append(stream)

    threading.Thread(target=trickle, daemon=True).start()
    process = subprocess.Popen(
        [sys.executable, "-m", "capsim", "run", str(fifo)],
        cwd=shop.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=_limit_memory_and_take_sigint,
    )
    time.sleep(2.0)
    process.send_signal(sig)
    # The writer never closes the FIFO: a reader the signal did not stop waits for ever, which
    # the time limit tells from a loaded machine.
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert b"Traceback" not in stderr


# ---- injection through text from data ------------------------------------------------------
HOSTILE_TEXT = [
    "shop\n::error ::injected",
    "shop\n::add-mask::x",
    "shop\r\n::stop-commands::token",
    "shop\x1b]52;c;aGVsbG8=\x07",
    "shop\x1b[2J\x1b]0;title\x07",
    "shop\x9b31m",
    "shop\ud800",
    "shop\x00",
]


@pytest.mark.parametrize("text", HOSTILE_TEXT)
def test_names_and_free_text_with_control_characters_are_refused_where_they_are(
    tmp_path: Path, text: str
) -> None:
    """Scenario name, description, class and tier names: one file per place, one validate run."""
    files = {
        "name.yaml": scenario_text(name=text),
        "class.yaml": scenario_text(klass=text),
        "tier.yaml": scenario_text(tier=text),
    }
    if "\n" not in text:  # a description may span lines; other control characters are refused
        files["description.yaml"] = scenario_text(description=text)
    for name, content in files.items():
        (tmp_path / name).write_text(content, encoding="utf-8")
    done = capsim("validate", *files, cwd=tmp_path)
    no_traceback(done)
    assert done.returncode == 2
    stderr = done.stderr.decode("utf-8")  # strict: no lone surrogate got through
    for name in files:
        assert re.search(rf"^error: {re.escape(name)}:\d+:\d+: ", stderr, re.M), (name, stderr)
    assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f]", stderr)
    assert not any(line.startswith("::") for line in stderr.splitlines())


def test_a_name_with_a_line_break_or_tab_is_not_a_name(tmp_path: Path) -> None:
    """The name pattern matches the whole name: `app` followed by a newline is not `app`."""
    files = []
    for index, name in enumerate(["app\n", "app\r", "app\t", "app\n\n", "\napp", "a\npp"]):
        path = tmp_path / f"tier{index}.yaml"
        path.write_text(scenario_text(tier=name), encoding="utf-8")
        files.append(path.name)
    done = capsim("validate", *files, cwd=tmp_path)
    no_traceback(done)
    assert done.returncode == 2
    stderr = done.stderr.decode("utf-8")
    for name in files:
        assert re.search(rf"^error: {name}:\d+:\d+: .* is not a valid name", stderr, re.M), name


#: Names a saved result may carry without a control character: printed, they must stay text.
PRINTABLE_HOSTILE = [
    "<img src=x onerror=alert(1)>",
    "# All good",
    "[click](javascript:alert(1))",
    "a|b`c*d_e_",
]


def _baseline_with_class(baseline: Path, name: str, folder: Path) -> Path:
    data = json.loads(baseline.read_text(encoding="utf-8"))
    data["classes"][name] = data["classes"]["browse"]
    data["scenario"] = name
    path = folder / "hostile.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def _workflow_commands(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith("::")]


@pytest.mark.parametrize("name", PRINTABLE_HOSTILE)
def test_names_read_back_from_a_baseline_are_escaped_in_every_check_output(
    baseline: Path, shop: Path, name: str
) -> None:
    hostile = _baseline_with_class(baseline, name, shop.parent)
    summary = shop.parent / "summary.md"
    junit = shop.parent / "junit.xml"
    done = capsim(
        "check", str(shop), "--baseline", str(hostile), "--junit", str(junit),
        "--tolerance", "1000%", "-f", "markdown",
        cwd=shop.parent,
        env={"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)},
    )  # fmt: skip
    no_traceback(done)
    assert done.returncode in (0, 1), done.stderr
    for text in (done.stdout.decode("utf-8"), summary.read_text(encoding="utf-8")):
        assert "<img" not in text and not re.search(r"(?<!\\)\]\(javascript", text)
        assert not re.search(r"^\s*#+ All good", text, re.M)
        assert all(re.match(r"::(error|warning) file=", c) for c in _workflow_commands(text))
    ET.parse(junit)  # well-formed


@pytest.mark.parametrize(
    "file_name",
    ["a\n::error ::injected.json", "b\x1b]0;title\x07.json", "c[bold red]x[reverse].json"],
)
def test_file_names_are_text_in_the_terminal_and_in_workflow_logs(
    baseline: Path, shop: Path, file_name: str
) -> None:
    copy = shop.parent / file_name
    copy.write_bytes(baseline.read_bytes())
    for args in (
        ["compare", str(baseline), str(copy)],
        ["check", str(shop), "--baseline", str(copy), "--tolerance", "1000%"],
    ):
        done = capsim(*args, cwd=shop.parent, env={"GITHUB_ACTIONS": "true", "NO_COLOR": "1"})
        no_traceback(done)
        assert done.returncode in (0, 1), done.stderr
        out = done.stdout.decode("utf-8")
        assert "\x1b" not in out and "\x07" not in out
        assert all(re.match(r"::(error|warning) file=", c) for c in _workflow_commands(out))
        assert "[bold red]x[reverse]" in out or "\\n" in out or "\\x1b" in out


@pytest.mark.parametrize(
    "name",
    ["\n::error ::x", "\x1b]52;c;aGk=\x07", "\ud800", "<img src=x onerror=alert(1)>", "# All good"],
)
def test_junit_and_annotations_hold_any_name_well_formed(name: str) -> None:
    """What validation refuses, the renderers still escape (a library user may build results)."""
    from capsim.analysis.check import check_result
    from capsim.outputs.github import render_summary, workflow_annotations
    from capsim.outputs.junit import render_junit

    verdict = {"slo": f"{name} p99 <= 1s", "passed": False, "observed": 2.0, "limit": 1.0}
    outcome = check_result({"scenario": name, "slos": [verdict], "classes": {}, "tiers": {}})
    xml = render_junit(outcome, scenario_path=f"{name}.yaml")
    root = ET.fromstring(xml.encode("utf-8"))
    assert root.tag == "testsuites" and root.get("failures") == "1"
    for line in workflow_annotations(outcome, f"{name}.yaml"):
        assert "\n" not in line and "\r" not in line and line.startswith("::error file=")
    summary = render_summary(outcome)
    summary.encode("utf-8")
    assert "<img" not in summary and not re.search(r"^#+ All good", summary, re.M)
    assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f]", summary)


def test_the_description_is_shown_escaped_in_both_reports(shop: Path) -> None:
    markdown, html = shop.parent / "r.md", shop.parent / "r.html"
    for output in (markdown, html):
        done = capsim("report", str(shop), "--no-curve", "-o", str(output), cwd=shop.parent)
        no_traceback(done)
        assert done.returncode == 0, done.stderr
    text = markdown.read_text(encoding="utf-8")
    assert "web shop" in text and "checkout path" in text
    assert "<img" not in text and "<b>" not in text and not re.search(r"^# All good", text, re.M)
    page = html.read_text(encoding="utf-8")
    assert "&lt;img src=x onerror=alert(1)&gt;" in page and "<img" not in page
    assert "The &lt;b&gt;web shop&lt;/b&gt; | checkout path." in page


def test_set_errors_do_not_echo_line_breaks_or_escapes(shop: Path) -> None:
    overrides = ["tiers.app\n::error ::x=1", "tiers..instances=\n::add-mask::y", "a\x1b]0;t\x07.=1"]
    arguments = [argument for override in overrides for argument in ("--set", override)]
    done = capsim("validate", str(shop), *arguments, cwd=shop.parent)
    no_traceback(done)
    assert done.returncode == 2
    stderr = done.stderr.decode("utf-8")
    assert stderr.count("error: --set ") == 2, stderr  # the first one applies: its key is wrong
    assert not any(line.startswith("::") for line in stderr.splitlines())
    assert "\x1b" not in stderr and "\x07" not in stderr


# ---- malformed result files ----------------------------------------------------------------
def _malformed(baseline: Path) -> dict[str, bytes]:
    good = json.loads(baseline.read_text(encoding="utf-8"))
    text = json.dumps(good)
    return {
        "a list": b"[1, 2, 3]",
        "a string": b'"classes"',
        "not JSON": b"{classes: 1",
        "empty": b"",
        "classes a list": json.dumps({**good, "classes": [1]}).encode(),
        "a class a number": json.dumps({**good, "classes": {"browse": 3}}).encode(),
        "latency text": text.replace('"p99": ', '"p99": "fast", "x": ', 1).encode(),
        "ci95 not a pair": json.dumps(
            {
                **good,
                "classes": {"browse": {**good["classes"]["browse"], "ci95": {"throughput": [1]}}},
            }
        ).encode(),
        "missing tiers": json.dumps({k: v for k, v in good.items() if k != "tiers"}).encode(),
        "huge integer": text.replace(
            '"replications": 1', '"replications": 1' + "0" * 5000, 1
        ).encode(),
        "huge latency": text.replace('"p99": ', '"p99": 1' + "0" * 400 + ', "x": ', 1).encode(),
        "1e400": text.replace('"p99": ', '"p99": 1e400, "x": ', 1).encode(),
        "Infinity": text.replace('"p99": ', '"p99": Infinity, "x": ', 1).encode(),
        "NaN": text.replace('"p99": ', '"p99": NaN, "x": ', 1).encode(),
        "-Infinity": text.replace('"duration": ', '"duration": -Infinity, "x": ', 1).encode(),
        "100,000 deep": b'{"classes": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        "100,000 deep objects": b'{"a": ' * 100_000 + b"1" + b"}" * 100_000,
        "not UTF-8": text.replace('"shop"', '"caf\\u00e9"')
        .encode()
        .replace(b"caf\\u00e9", b"caf\xe9"),
        "replications text": json.dumps({**good, "replications": "3"}).encode(),
        "replications zero": json.dumps({**good, "replications": 0}).encode(),
        "slos not a list": json.dumps({**good, "slos": {"a": 1}}).encode(),
        "a name with a newline": text.replace('"browse"', '"browse\\n::error ::x"').encode(),
        "a lone surrogate": text.replace('"browse"', '"\\ud800"').encode(),
        "another command": json.dumps({"command": "sweep", "classes": {}, "tiers": {}}).encode(),
    }


MALFORMED = [
    "a list", "a string", "not JSON", "empty", "classes a list", "a class a number",
    "latency text", "ci95 not a pair", "missing tiers", "huge integer", "huge latency", "1e400",
    "Infinity", "NaN", "-Infinity", "100,000 deep", "100,000 deep objects", "not UTF-8",
    "replications text", "replications zero", "slos not a list", "a name with a newline",
    "a lone surrogate", "another command",
]  # fmt: skip


#: In the quick run; the others in the slow one.
QUICK_MALFORMED = {
    "a list", "not JSON", "a class a number", "ci95 not a pair", "huge integer", "1e400",
    "Infinity", "100,000 deep", "not UTF-8", "replications text", "a lone surrogate",
}  # fmt: skip


@pytest.mark.parametrize(
    "shape",
    [pytest.param(s, marks=() if s in QUICK_MALFORMED else pytest.mark.slow) for s in MALFORMED],
)
def test_a_malformed_baseline_is_not_a_capsim_result(
    baseline: Path, shop: Path, shape: str
) -> None:
    bad = shop.parent / "bad.json"
    bad.write_bytes(_malformed(baseline)[shape])
    done = capsim("check", str(shop), "--baseline", str(bad), "-f", "json", cwd=shop.parent)
    no_traceback(done)
    assert done.returncode == 2, (shape, done.stderr)
    assert f"not a capsim result: {bad}: ".encode() in done.stderr, done.stderr
    assert len(done.stderr) < 2000


@pytest.mark.parametrize(
    "shape",
    [
        "NaN", "100,000 deep objects", "a lone surrogate",
        *(pytest.param(s, marks=pytest.mark.slow) for s in ("a list", "1e400", "not UTF-8")),
    ],
)  # fmt: skip
def test_a_malformed_compare_input_is_not_a_capsim_result(
    baseline: Path, shop: Path, shape: str
) -> None:
    bad = shop.parent / "bad.json"
    bad.write_bytes(_malformed(baseline)[shape])
    done = capsim("compare", str(baseline), str(bad), "-f", "json", cwd=shop.parent)
    no_traceback(done)
    assert done.returncode == 2, (shape, done.stderr)
    assert f"not a capsim result: {bad}: ".encode() in done.stderr


def test_extreme_but_finite_figures_give_finite_json(baseline: Path, shop: Path) -> None:
    data = json.loads(baseline.read_text(encoding="utf-8"))
    for entry in data["classes"].values():
        entry["latency"] = {key: 1e-308 for key in entry["latency"]}
        entry["throughput"] = 1.7e308
    extreme = shop.parent / "extreme.json"
    extreme.write_text(json.dumps(data), encoding="utf-8")
    check = capsim("check", str(shop), "--baseline", str(extreme), "-f", "json", cwd=shop.parent)
    compare = capsim("compare", str(extreme), str(baseline), "-f", "json", cwd=shop.parent)
    other = json.loads(
        json.dumps(data).replace("1e-308", "-1e308").replace("1.7e+308", "-1.7e+308")
    )
    (shop.parent / "negative.json").write_text(json.dumps(other), encoding="utf-8")
    opposite = capsim("compare", str(extreme), "negative.json", "-f", "json", cwd=shop.parent)
    for done in (check, compare, opposite):
        no_traceback(done)
        assert done.returncode in (0, 1), done.stderr
        json.loads(done.stdout, parse_constant=lambda name: pytest.fail(f"{name} in the JSON"))


# ---- filesystem errors ---------------------------------------------------------------------
def _fs_error_path(kind: str, folder: Path) -> tuple[str, bytes]:
    """A path that fails in the way `kind` says, and words of the reason shown."""
    if kind == "name too long":
        return str(folder / ("x" * 300 + ".yaml")), b"File name too long"
    if kind == "symlink loop":
        (folder / "loop-a").symlink_to(folder / "loop-b")
        (folder / "loop-b").symlink_to(folder / "loop-a")
        return str(folder / "loop-a"), b"Too many levels of symbolic links"
    if kind == "a folder":
        (folder / "sub").mkdir()
        return str(folder / "sub"), b"folder"
    if kind == "under a file":
        (folder / "plain").write_text("x", encoding="utf-8")
        return str(folder / "plain" / "child.yaml"), b"Not a directory"
    assert kind == "missing"
    return str(folder / "nothing.yaml"), b"No such file"


FS_ERRORS = ["name too long", "symlink loop", "a folder", "under a file", "missing"]


INPUT_ROLES = {
    "scenario": ["run", "{path}"],
    "baseline": ["check", "{shop}", "--baseline", "{path}"],
    "compare input": ["compare", "{path}", "{baseline}"],
}


@pytest.mark.parametrize(
    ("kind", "role"),
    [
        pytest.param(
            kind,
            role,
            id=f"{role}-{kind}",
            marks=() if role == "scenario" or kind in FS_ERRORS[:2] else pytest.mark.slow,
        )
        for role in INPUT_ROLES
        for kind in FS_ERRORS
    ],
)
def test_filesystem_errors_on_inputs_name_the_path_and_the_reason(
    shop: Path, baseline: Path, kind: str, role: str
) -> None:
    path, reason = _fs_error_path(kind, shop.parent)
    for args in ([a.format(path=path, shop=shop, baseline=baseline) for a in INPUT_ROLES[role]],):
        done = capsim(*args, cwd=shop.parent)
        no_traceback(done)
        assert done.returncode == 2, (args, done.stderr)
        assert reason in done.stderr, done.stderr
        assert os.path.basename(path)[:50].encode() in done.stderr


@pytest.mark.parametrize("kind", ["name too long", "symlink loop", "a folder", "under a file"])
def test_filesystem_errors_on_outputs_name_the_path_and_the_reason(shop: Path, kind: str) -> None:
    path, _reason = _fs_error_path(kind, shop.parent)
    option = "-o" if kind in ("name too long", "a folder") else "--junit"
    command = "run" if option == "-o" else "check"
    for args in ([command, str(shop), option, path],):
        done = capsim(*args, cwd=shop.parent)
        no_traceback(done)
        assert done.returncode == 2, (args, done.stderr)
        assert os.path.basename(path)[:50].encode() in done.stderr


@pytest.mark.parametrize("kind", ["name too long", "symlink loop", "a folder"])
def test_filesystem_errors_on_samples_files_name_the_path(shop: Path, kind: str) -> None:
    path, _ = _fs_error_path(kind, shop.parent)
    relative = os.path.relpath(path, shop.parent)
    scenario = shop.parent / "empirical.yaml"
    scenario.write_text(
        SCENARIO.replace(
            "service_time: 20ms", f"service_time: {{dist: empirical, file: {json.dumps(relative)}}}"
        ),
        encoding="utf-8",
    )
    done = capsim("run", str(scenario), cwd=shop.parent)
    no_traceback(done)
    assert done.returncode == 2, done.stderr
    assert b"samples file" in done.stderr and relative[:50].encode() in done.stderr


def _without_root_privileges(*args: str, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    """capsim as root without the capabilities that bypass file permissions (or as is, when not
    root: permissions apply anyway)."""
    command = [sys.executable, "-m", "capsim", *args]
    if os.geteuid() == 0:
        command = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", *command]
    return subprocess.run(command, cwd=cwd, capture_output=True, timeout=60, env=os.environ.copy())


@pytest.mark.skipif(
    os.geteuid() == 0 and not Path("/usr/bin/setpriv").exists(), reason="no setpriv"
)
def test_permission_denied_names_the_path_and_the_reason(shop: Path, baseline: Path) -> None:
    locked = shop.parent / "locked"
    locked.mkdir()
    secret = locked / "shop.yaml"
    secret.write_text(SCENARIO, encoding="utf-8")
    secret.chmod(0o000)
    readonly = shop.parent / "readonly"
    readonly.mkdir()
    baseline_copy = readonly / "base.json"
    baseline_copy.write_bytes(baseline.read_bytes())
    baseline_copy.chmod(0o000)
    readonly.chmod(0o555)
    try:
        cases = [
            (["run", str(secret)], str(secret)),
            (["check", str(shop), "--baseline", str(baseline_copy)], str(baseline_copy)),
            (["compare", str(baseline_copy), str(baseline)], str(baseline_copy)),
            (["run", str(shop), "-o", str(readonly / "out.json")], str(readonly / "out.json")),
            (["check", str(shop), "--junit", str(readonly / "j.xml")], str(readonly / "j.xml")),
        ]
        for args, named in cases:
            done = _without_root_privileges(*args, cwd=shop.parent)
            no_traceback(done)
            assert done.returncode == 2, (args, done.stderr)
            # (typer checks a scenario argument itself: "path '...' is not readable")
            assert re.search(rb"Permission denied|is not readable", done.stderr), done.stderr
            assert named.encode() in done.stderr
    finally:
        readonly.chmod(0o755)


# ---- terminals that are not UTF-8, and colour --------------------------------------------------
ENCODINGS = [
    pytest.param({"PYTHONIOENCODING": "ascii"}, id="PYTHONIOENCODING=ascii"),
    pytest.param(
        {
            "LANG": "C",
            "LC_ALL": "C",
            "PYTHONUTF8": "0",
            "PYTHONCOERCECLOCALE": "0",
            "PYTHONIOENCODING": "",
        },
        id="LANG=C without coercion",
    ),
    pytest.param({"PYTHONIOENCODING": "latin-1"}, id="latin-1"),
]
VIEWS = [
    ["run", "{shop}"],
    ["check", "{shop}", "-f", "markdown"],
    ["compare", "{baseline}", "{baseline}"],
    ["run", "{shop}", "-f", "markdown"],
    ["solve", "{shop}"],
]


@pytest.mark.parametrize(
    ("environment", "views"),
    [
        pytest.param(*environment.values, VIEWS, id=environment.id)
        if environment.id == "PYTHONIOENCODING=ascii"
        else pytest.param(*environment.values, VIEWS[:2], id=environment.id)
        for environment in ENCODINGS
    ],
)
def test_tables_and_markdown_fall_back_to_ascii(
    shop: Path, baseline: Path, environment: dict[str, str], views: list[list[str]]
) -> None:
    env = {k: v for k, v in environment.items() if v}
    for view in views:
        args = [arg.format(shop=shop, baseline=baseline) for arg in view]
        done = subprocess.run(
            [sys.executable, "-m", "capsim", *args],
            cwd=shop.parent,
            capture_output=True,
            timeout=60,
            env={**{k: v for k, v in os.environ.items() if k not in environment}, **env},
        )
        no_traceback(done)
        assert done.returncode == 0, (view, done.stderr)
        text = done.stdout.decode(environment.get("PYTHONIOENCODING") or "ascii")
        assert "·" not in text and "shop" in text
        assert done.stderr.decode("ascii", "strict") is not None


def _on_a_terminal(args: list[str], cwd: Path, env: dict[str, str]) -> bytes:
    """Run capsim with stdout on a pseudo-terminal; what it printed there."""
    leader, follower = pty.openpty()
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "capsim", *args],
            cwd=cwd,
            stdout=follower,
            stderr=subprocess.DEVNULL,
            env={**{k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "TERM")}, **env},
        )
        os.close(follower)
        output = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break
            if not chunk:
                break
            output += chunk
        process.wait(timeout=60)
        return output
    finally:
        os.close(leader)


@pytest.mark.parametrize(
    ("env", "colour"),
    [
        ({"TERM": "xterm-256color"}, True),
        ({"TERM": "dumb"}, False),
        ({"TERM": "xterm-256color", "NO_COLOR": "1"}, False),
    ],
)
def test_colour_only_on_a_terminal_that_wants_it(
    shop: Path, env: dict[str, str], colour: bool
) -> None:
    output = _on_a_terminal(["run", str(shop)], shop.parent, env)
    assert b"browse" in output
    assert (b"\x1b[" in output) is colour


# ---- the Markdown report's files -----------------------------------------------------------
def test_image_links_with_spaces_and_parentheses_resolve(shop: Path) -> None:
    from urllib.parse import unquote

    output = shop.parent / "my report (v2) [final].md"
    done = capsim("report", str(shop), "--no-curve", "-o", str(output), cwd=shop.parent)
    assert done.returncode == 0, done.stderr
    links = re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", output.read_text(encoding="utf-8"))
    assert links and all(" " not in link and "(" not in link for link in links)
    assert all((shop.parent / unquote(link)).is_file() for link in links)


def _scenario_named(folder: Path, name: str, traffic_class: str) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(scenario_text(name=name, klass=traffic_class), encoding="utf-8")
    return path


def test_concurrent_reports_to_the_same_file_never_mix(tmp_path: Path) -> None:
    """Two runs writing report.md at once: the Markdown left and its images come from one run."""
    first = _scenario_named(tmp_path, "first", "alpha")
    second = _scenario_named(tmp_path, "second", "omega")
    for _ in range(1):
        processes = [
            subprocess.Popen(
                [sys.executable, "-m", "capsim", "report", str(s), "--no-curve", "-o", "report.md"],
                cwd=tmp_path,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            for s in (first, second)
        ]
        for process in processes:
            _, stderr = process.communicate(timeout=120)
            assert process.returncode == 0, stderr
        text = (tmp_path / "report.md").read_text(encoding="utf-8")
        owner = "alpha" if "| alpha |" in text else "omega"
        cdf = (tmp_path / "report-latency-cdf.svg").read_text(encoding="utf-8")
        assert f'data-series="{owner}"' in cdf
        assert not [p for p in tmp_path.iterdir() if p.name.startswith(".capsim-")]
