"""What every capsim command shares: options, progress, output, executors and exit codes.

The command modules (`capsim.cli.simulate`, `calibration`, `capacity`, `forecast`, `gate`) import
from here and from the library; `capsim.cli.app` assembles them into one typer application.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

import capsim
from capsim.cli.interrupts import report_interrupt, sigterm_as_ctrl_c
from capsim.errors import CapsimError, Interrupted, ScenarioError, clip
from capsim.textsafe import visible

if TYPE_CHECKING:
    from capsim.measurements import LoadTest
    from capsim.scenario.schema import Scenario


class OutputFormat(str, Enum):
    """--format of `run`: the views of a result."""

    table = "table"
    json = "json"
    markdown = "markdown"
    csv = "csv"


class Engine(str, Enum):
    """--engine: which engine path runs (auto: the vectorised one when the scenario allows)."""

    auto = "auto"
    events = "events"
    vectorised = "vectorised"


class Executor(str, Enum):
    """--executor: where the simulations run."""

    serial = "serial"
    process = "process"
    dask = "dask"


def color_allowed(stream: Any) -> bool:
    """Colour only on a terminal that can show it: not with NO_COLOR set, nor TERM=dumb."""
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    return bool(getattr(stream, "isatty", lambda: False)())


def stderr_console() -> Console:
    """A console on stderr, coloured only where `color_allowed`. No emoji codes: a name like
    `:fire:` in a message stays as written (and rich's table of codes is not loaded)."""
    return Console(
        stderr=True, no_color=not color_allowed(sys.stderr), highlight=False, emoji=False
    )


def say(console: Console, text: str) -> None:
    """One message line on stderr: text from data in it can send neither a terminal escape
    sequence nor a line break (after which a CI log would read `::error ...` as a command)."""
    console.print(visible(text), markup=False, soft_wrap=True)


class EncodableStream:
    """A text stream that first makes what it is given writable in its encoding (`for_encoding`):
    on an ASCII or Latin-1 terminal capsim's `·`, `—` and `✓` become `-`, `--` and `+` instead of
    a UnicodeEncodeError."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        from capsim.outputs.escape import for_encoding

        return int(self._stream.write(for_encoding(text, self._stream.encoding)))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def ensure_encodable_streams() -> None:
    """Wrap stdout and stderr when their encoding cannot hold every character (not UTF-8)."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        encoding = (getattr(stream, "encoding", None) or "").lower().replace("_", "-")
        if isinstance(stream, EncodableStream) or encoding in ("utf-8", "utf8", "utf-16"):
            continue
        if encoding:
            setattr(sys, name, EncodableStream(stream))


@contextmanager
def exit_codes() -> Iterator[None]:
    """The one place where library errors become messages and exit codes.

    SIGTERM is turned into the same clean stop as Ctrl-C for every command.
    """
    try:
        with _sigterm_interrupts():
            yield
    except ScenarioError as error:
        console = stderr_console()
        count = len(error.problems)
        for problem in error.problems:
            say(console, f"error: {problem.format()}")
        if count > 1:
            console.print(f"{count} problems found.", markup=False)
        raise typer.Exit(error.exit_code) from None
    except Interrupted as error:
        report_interrupt()
        console = stderr_console()
        if error.completed_points:
            say(console, f"{error}. Completed before the interruption:")
            for line in error.completed_points:
                say(console, f"  {line}")
            console.print("partial: the search did not finish; nothing was written.", markup=False)
        else:
            say(console, f"{error}; nothing completed to report.")
        raise typer.Exit(error.exit_code) from None
    except CapsimError as error:
        say(stderr_console(), f"error: {clip(str(error))}")
        raise typer.Exit(error.exit_code) from None
    except KeyboardInterrupt:
        report_interrupt()
        stderr_console().print("interrupted.", markup=False)
        raise typer.Exit(130) from None
    except MemoryError:
        # Past every estimate (a measurement file's JSON, a run under a tight `ulimit -v`): the
        # process could not allocate; a resource limit (exit 3), never a traceback.
        stderr_console().print(
            "error: capsim ran out of memory (the machine's, or a limit set with ulimit or a "
            "container's). Give it more memory, or make the work smaller: a shorter run "
            "(--duration, --replications), smaller measurement files (--max-input refuses "
            "large ones before they are read), fewer tiers or classes.",
            markup=False,
            soft_wrap=True,
        )
        raise typer.Exit(3) from None


@contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM stops a run the way Ctrl-C does (partial results, exit 130), in the main thread."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    previous = signal.signal(signal.SIGTERM, sigterm_as_ctrl_c)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        help="Override a scenario value before validation: PATH=VALUE, VALUE parsed as YAML "
        "(e.g. --set tiers.app.instances=12). Repeatable.",
        metavar="PATH=VALUE",
    ),
]
SeedOption = Annotated[
    int | None, typer.Option("--seed", help="Shortcut for the scenario's `seed`.")
]
ReplicationsOption = Annotated[
    int | None,
    typer.Option("--replications", help="Shortcut for `simulation.replications`.", min=1),
]
DurationOption = Annotated[
    str | None,
    typer.Option("--duration", help="Shortcut for `simulation.duration` (e.g. 10min, 600)."),
]
PercentilesOption = Annotated[
    str | None,
    typer.Option(
        "--percentiles",
        help="Latency percentiles to report beside p50 ... p999, comma-separated "
        "(e.g. 50,99,99.99; 99.99 is reported as p9999). Shortcut for `simulation.percentiles`.",
        metavar="LIST",
    ),
]
ShareOverOption = Annotated[
    list[str] | None,
    typer.Option(
        "--share-over",
        help="Report each class's share of requests slower than this latency (e.g. 300ms) as "
        "`share_over`. Repeatable. Shortcut for `simulation.share_over`.",
        metavar="DURATION",
    ),
]
FormatOption = Annotated[
    OutputFormat, typer.Option("--format", "-f", help="Output format.", case_sensitive=False)
]
def writable_destination(path: Path | None) -> Path | None:
    """An --output checked before anything is simulated (a folder, a read-only file or a missing
    folder would otherwise be found only when the results are written, after the whole run)."""
    from capsim.errors import UsageError
    from capsim.outputs.files import check_destination

    try:
        check_destination(path)
    except UsageError as error:
        raise typer.BadParameter(str(error)) from None
    return path


OutputOption = Annotated[
    Path | None,
    typer.Option(
        "--output",
        "-o",
        help="Write results to this file (default: stdout).",
        callback=writable_destination,
    ),
]
ExecutorOption = Annotated[
    Executor | None,
    typer.Option(
        "--executor",
        help="Where the simulations run: serial (this process, one after another), process "
        "(a pool of --workers processes) or dask (a Dask cluster: --scheduler, else a local "
        "one). Default: serial, or dask when --scheduler is given. Results are byte-identical.",
        case_sensitive=False,
    ),
]
WorkersOption = Annotated[
    int | None,
    typer.Option(
        "--workers",
        help="Processes of --executor process or of the local Dask cluster (default: one per "
        "core); with --scheduler, wait until the cluster has this many workers.",
        min=1,
    ),
]
SchedulerOption = Annotated[
    str | None,
    typer.Option(
        "--scheduler",
        help="Address of a running Dask scheduler (tcp://HOST:PORT) for --executor dask; "
        "default DASK_SCHEDULER_ADDRESS, else a local cluster is started.",
        metavar="tcp://HOST:PORT",
    ),
]
LoadOption = Annotated[
    str | None,
    typer.Option(
        "--load",
        help="Scale every open class's rate (the mix stays as written): a factor (3x, 150%) "
        "or a total open rate (3000/s).",
    ),
]


@contextmanager
def executor_for(
    executor: Executor | None, workers: int | None, scheduler: str | None
) -> Iterator[Any]:
    """The executor a command's simulations run on, open for the whole command."""
    from capsim.engine.executors import open_executor
    from capsim.errors import UsageError

    kind = executor.value if executor is not None else ("dask" if scheduler else "serial")
    if scheduler and kind != "dask":
        raise UsageError(
            f"--scheduler sends simulations to a Dask cluster, but --executor is {kind}; "
            "use --executor dask (or leave --executor out)"
        )
    if workers is not None and kind != "serial" and not scheduler:
        _check_local_workers(workers)
    with open_executor(kind, workers, scheduler) as opened:
        yield opened


def idle_cores() -> int:
    """Cores of this machine that nothing is using: the cores less the load average of the
    last minute, rounded down (0 where the load average is unknown)."""
    import os

    try:
        load = os.getloadavg()[0]
    except OSError:
        return 0
    return max(int((os.cpu_count() or 1) - load), 0)


def search_executor(
    executor: Executor | None, workers: int | None, scheduler: str | None, idle: int
) -> tuple[Executor | None, int | None]:
    """A search's executor and workers when the user gave none: a process pool of the `idle`
    cores when at least two are idle (its points then run together, with byte-identical
    results), else as given (serial). Anything the user gave stands."""
    if executor is not None or workers is not None or scheduler or idle < 2:
        return executor, workers
    return Executor.process, idle


#: The most worker processes capsim starts on this machine: per core, and at least.
WORKERS_PER_CORE, LEAST_WORKERS_LIMIT = 4, 64


def _check_local_workers(workers: int) -> None:
    """Refuse (exit 3) more local worker processes than this machine can hold: `--workers
    100000` started thousands of Python processes at once, swamping a shared machine."""
    import os

    from capsim.errors import ResourceLimitError

    cores = os.cpu_count() or 1
    limit = max(WORKERS_PER_CORE * cores, LEAST_WORKERS_LIMIT)
    if workers > limit:
        raise ResourceLimitError(
            f"--workers {workers:,} would start {workers:,} processes on this machine of "
            f"{cores} core(s); at most {limit} run here ({WORKERS_PER_CORE} per core, at least "
            f"{LEAST_WORKERS_LIMIT}): give fewer, or run them on a Dask cluster with --scheduler"
        )


def with_load(model: Any, load: str | None) -> tuple[Any, float]:
    """`model` with its open traffic scaled by `--load` (unchanged without it), and the factor."""
    if load is None:
        return model, 1.0
    from capsim.analysis.points import open_rate, scale_open_traffic
    from capsim.analysis.sizing import parse_load
    from capsim.errors import UsageError

    rate = open_rate(model)
    if not rate > 0:
        # A factor would change nothing while the result said `load: 2.0`.
        raise UsageError(
            f"--load {load}: --load scales the open classes' rates, and this scenario has none "
            "(every class is closed: users with think_time); change the users instead, e.g. "
            "--set traffic.NAME.users=80"
        )
    factor = parse_load(load, rate)
    return scale_open_traffic(model, factor), factor


def table_width(output: Path | None) -> int:
    """Tables fit the terminal they are printed on; a file gets the default width."""
    from capsim.outputs.fit import DEFAULT_WIDTH, terminal_width

    return terminal_width() if output is None else DEFAULT_WIDTH


def statistics_overrides(percentiles: str | None, share_over: list[str] | None) -> list[str]:
    """The `--set` overrides equivalent to --percentiles and --share-over, checked first so a
    mistake is reported against the option the user typed."""
    from capsim.errors import UsageError
    from capsim.units import UnitError, parse_duration

    extra: list[str] = []
    if percentiles is not None:
        values: list[float] = []
        for part in percentiles.split(","):
            try:
                value = float(part.strip().removesuffix("%"))
            except ValueError:
                value = math.nan
            if not 0.0 < value < 100.0:
                raise UsageError(
                    f"--percentiles {percentiles!r}: {part.strip()!r} is not a percentile; give "
                    "numbers strictly between 0 and 100 separated by commas, e.g. 50,99,99.99"
                )
            values.append(value)
        extra.append(f"simulation.percentiles=[{', '.join(repr(v) for v in values)}]")
    if share_over:
        limits: list[float] = []
        for text in share_over:
            try:
                limit = parse_duration(text)
            except UnitError as error:
                raise UsageError(
                    f"--share-over {text!r}: {error}; give a latency such as 300ms"
                ) from None
            if not limit > 0:
                raise UsageError(f"--share-over {text!r}: the latency must be above 0, e.g. 300ms")
            limits.append(limit)
        extra.append(f"simulation.share_over=[{', '.join(repr(v) for v in limits)}]")
    return extra


def emit(text: str, output: Path | None) -> None:
    """Print `text` on stdout (`output` None, `-` or /dev/stdout) or write it to `output`."""
    from capsim.outputs import write_output
    from capsim.outputs.files import is_stdout

    text = text if text.endswith("\n") else text + "\n"
    if output is None or is_stdout(output):
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        write_output(text, output)


def color_for(output: Path | None) -> bool:
    """Colour codes in a table: only on stdout, only on a terminal that shows colour."""
    from capsim.outputs.files import is_stdout

    return (output is None or is_stdout(output)) and color_allowed(sys.stdout)


def size_option(text: str, option: str) -> float:
    """A size option (--max-memory 4GiB) in bytes, or a usage error naming `option`."""
    from capsim.errors import UsageError
    from capsim.units import UnitError, parse_size

    try:
        size = parse_size(text)
    except UnitError as error:
        raise UsageError(f"{option} {text!r}: {error}; give a size such as 4GiB") from None
    if not size > 0:
        raise UsageError(f"{option} {text!r}: the size must be greater than 0, e.g. 4GiB")
    return size


#: Seconds between two plain progress lines when stderr is not a terminal (CI logs);
#: `CAPSIM_PROGRESS_INTERVAL` changes it.
PROGRESS_INTERVAL = 10.0


def _progress_interval() -> float:
    from capsim.errors import UsageError

    text = os.environ.get("CAPSIM_PROGRESS_INTERVAL")
    if text is None:
        return PROGRESS_INTERVAL
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise UsageError(
            f"CAPSIM_PROGRESS_INTERVAL={text!r} is not a number of seconds (0 or more), e.g. 30"
        )
    return value


def _clock(seconds: float) -> str:
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}m{rest:02d}s" if minutes else f"{rest}s"


def _shown(fraction: float) -> float:
    """The share of the work shown, rounded down to a whole percent: 100% only at the end. A
    search's last runs (saturate's verification at the scenario's own run length, reported at
    0.999) once read "100% done" for the minute they took."""
    done = min(max(fraction, 0.0), 1.0)
    return done if done >= 1.0 else math.floor(done * 100) / 100


class Progress:
    """Progress on stderr: a rich bar on a terminal (after a second); elsewhere (a CI log) a
    plain line at most every PROGRESS_INTERVAL seconds, the first after one interval."""

    def __init__(self, command: str = "") -> None:
        self.command = command
        # A bar only on a terminal that can redraw it (not TERM=dumb: it moves the cursor).
        self.terminal = sys.stderr.isatty() and os.environ.get("TERM") != "dumb"
        self.interval = _progress_interval()
        self.started = time.monotonic()
        self.printed = self.started
        self.lines = 0
        self.bar: Any = None
        self.task: Any = None

    def __call__(self, fraction: float, what: str) -> None:
        if not self.terminal:
            self._line(fraction, what)
            return
        if self.bar is None:
            if time.monotonic() - self.started < 1.0:
                return
            from rich import progress as rich_progress

            self.bar = rich_progress.Progress(
                rich_progress.TextColumn("{task.description}"),
                rich_progress.BarColumn(),
                rich_progress.TextColumn("{task.percentage:>3.0f}%"),
                rich_progress.TimeRemainingColumn(),
                console=stderr_console(),
                transient=True,
            )
            self.bar.start()
            self.task = self.bar.add_task(what, total=1.0)
        self.bar.update(self.task, completed=_shown(fraction), description=what)

    def _line(self, fraction: float, what: str) -> None:
        now = time.monotonic()
        if now - self.printed < self.interval or fraction >= 1.0:
            return  # the end is said by the closing line
        self.printed = now
        self.lines += 1
        done = _shown(fraction)
        name = f"capsim {self.command}" if self.command else "capsim"
        sys.stderr.write(
            f"{name}: {visible(what)} — {done:.0%} done, {_clock(now - self.started)} elapsed\n"
        )
        sys.stderr.flush()

    def close(self, stopped: bool = False) -> None:
        """Stop the bar; after progress lines, a closing line: finished, or `stopped` (an
        interrupt or an error ended the work, which the next lines on stderr say)."""
        if self.bar is not None:
            self.bar.stop()
        if self.lines:
            name = f"capsim {self.command}" if self.command else "capsim"
            elapsed = _clock(time.monotonic() - self.started)
            ended = "stopped" if stopped else "finished evaluating"
            sys.stderr.write(f"{name}: {ended} after {elapsed}\n")
            sys.stderr.flush()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, kind: type[BaseException] | None, *exc: object) -> None:
        self.close(stopped=kind is not None)


class CapacityFormat(str, Enum):
    """--format of the capacity commands (saturate, size, sweep, compare, forecast)."""

    table = "table"
    json = "json"
    markdown = "markdown"
    csv = "csv"


CapacityFormatOption = Annotated[
    CapacityFormat, typer.Option("--format", "-f", help="Output format.", case_sensitive=False)
]
#: Replications per point of the capacity searches (`saturate`, `size`, `forecast`): with
#: fewer than 2 there is no 95% interval and each objective is judged on noise alone.
SEARCH_REPLICATIONS = 3

#: The most replications a search point may ask for: far beyond any --max-requests, and a count
#: that every figure computed from it holds as a float (a 400-digit count overflowed one).
MAX_SEARCH_REPLICATIONS = 1_000_000_000
SearchReplications = Annotated[
    int,
    typer.Option(
        "--replications",
        help="Replications per search point (common random numbers across points).",
        min=1,
        max=MAX_SEARCH_REPLICATIONS,
    ),
]
SearchDuration = Annotated[
    str | None,
    typer.Option(
        "--duration",
        help="Simulated duration of each search point (default: about 30,000 requests, at "
        "most the scenario's duration). The verification run uses the scenario's own.",
    ),
]
MaxRequests = Annotated[
    float,
    typer.Option(
        "--max-requests",
        help="Refuse (exit 3) any one run that would simulate more requests than this.",
        min=1,
        show_default="100,000,000",
    ),
]


def search_duration(text: str | None) -> float | None:
    """--duration of a search point in seconds (None: the search chooses), or a usage error."""
    from capsim.errors import UsageError
    from capsim.units import UnitError, parse_duration

    if text is None:
        return None
    try:
        value = parse_duration(text)
    except UnitError as error:
        raise UsageError(f"--duration: {error}") from None
    if value <= 0:
        raise UsageError(f"--duration {text!r} must be greater than 0")
    return value


def announce(note: str) -> None:
    """A `note:` line on stderr (a search telling what it is about to do)."""
    stderr_console().print(f"note: {note}", markup=False, soft_wrap=True)


def load_model(
    scenario: Path,
    set_: list[str] | None,
    seed: int | None,
    percentiles: str | None = None,
    share_over: list[str] | None = None,
) -> Any:
    """The model of a scenario with --set, --seed, --percentiles and --share-over applied."""
    overrides = [
        *(set_ or []),
        *capsim.simulation_overrides(seed=seed),
        *statistics_overrides(percentiles, share_over),
    ]
    return capsim.build_model(capsim.load_scenario(scenario, overrides))


def usl_saturation(
    scenario: Scenario,
    source: str,
    tests: list[LoadTest],
    peak_throughput: float | None,
    known: dict[str, Any] | None = None,
    command: str = "fit-usl",
) -> dict[str, Any]:
    """capsim saturate on `scenario` (the class the tests drove, when they name one), beside
    the USL's X_max (`capsim.analysis.usl.saturation_beside_usl`). `known`: the search's
    answer for the whole scenario when it was already run (capsim report's load curve);
    `command` names the progress lines. Shared by `fit-usl --scenario` and `report --usl`."""
    from capsim.analysis.saturate import find_saturation
    from capsim.analysis.usl import saturation_beside_usl

    def saturate(restricted: Scenario) -> dict[str, Any]:
        if known is not None and restricted is scenario:
            return known
        model = capsim.build_model(restricted)
        with Progress(command) as progress:
            return find_saturation(model, capsim_version=capsim.__version__, progress=progress)

    return saturation_beside_usl(scenario, source, tests, peak_throughput, saturate)


def show_result(
    data: dict[str, Any],
    fmt: str,
    output: Path | None,
    render: Callable[..., str],
) -> None:
    """A capacity command's result (saturate, size, sweep, compare, forecast): its warnings on
    stderr, then `render(data, fmt, color=..., width=...)` written to `output` or stdout."""
    from capsim.analysis.stats import sanitise

    clean: dict[str, Any] = sanitise(data)  # type: ignore[assignment]
    console = stderr_console()
    for note in clean.get("warnings", []):
        say(console, f"warning: {note}")
    emit(render(clean, fmt, color=color_for(output), width=table_width(output)), output)
