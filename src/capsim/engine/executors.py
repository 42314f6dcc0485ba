"""Where the simulations of one command run: one after another, on a process pool, or on Dask.

An executor evaluates a batch of independent tasks, each one replication of one model
(`run_replication(model, replication, path)`, a pure function), and hands each result back as it
completes. Every replication draws from its own streams of the scenario's SeedSequence tree, so a
result does not depend on where, when or in which order its task ran: the three executors give
byte-identical answers.

Executors are context managers: a command opens one (a pool or a cluster connection costs
seconds to start) and runs all its batches on it. Ctrl-C (KeyboardInterrupt) cancels what is still
pending and stops the workers; the results already handed back stay with the caller.
"""

from __future__ import annotations

import abc
import contextlib
import logging
import os
import queue
import re
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from capsim.engine.result import RunResult
from capsim.errors import SimulationError, UsageError
from capsim.model.types import Model

#: Tests only: a process-pool worker given this replication index kills itself with SIGKILL, as
#: the kernel's out-of-memory killer would (tests/test_limits_hostile.py).
KILL_WORKER_ENV = "CAPSIM_TEST_KILL_REPLICATION"
#: Executor names accepted by `open_executor` (and the CLI's --executor).
EXECUTORS = ("serial", "process", "dask")
#: Seconds a Dask run waits for a cluster with no worker before it gives up (exit 3), and (at
#: most 30) for the scheduler to answer. `CAPSIM_DASK_WORKER_TIMEOUT` changes it.
DEFAULT_WORKER_TIMEOUT = 60.0
#: Seconds between two looks at pending work (and two `tick` calls) while waiting.
POLL_INTERVAL = 0.1

ResultCallback = Callable[[int, RunResult], None]  # (task index, its result)
TaskProgress = Callable[[int, float, str], None]  # (task index, fraction of it done, what)
Tick = Callable[[], None]  # called while waiting for results (keeps progress lines alive)


@dataclass(frozen=True)
class Task:
    """One replication of one model on one engine path."""

    model: Model
    replication: int
    path: str


def run_task(task: Task) -> RunResult:
    """Run one task (what every worker executes; a module-level function, so it pickles)."""
    from capsim.engine.runner import run_replication

    return run_replication(task.model, task.replication, task.path)


class Executor(abc.ABC):
    """Evaluates batches of independent tasks. Subclasses implement `run` and, when they hold
    processes or connections, `close`; `run` calls `on_result` once per task, in any order, and
    on KeyboardInterrupt cancels the rest and re-raises."""

    kind = "serial"
    #: Tasks that can run at the same time.
    workers = 1

    @property
    def running_here(self) -> int:
        """Simulations this machine holds in memory at once (for the pre-flight estimate)."""
        return self.workers

    @abc.abstractmethod
    def run(
        self,
        tasks: Sequence[Task],
        on_result: ResultCallback,
        progress: TaskProgress | None = None,
        tick: Tick | None = None,
    ) -> None:
        """Run every task, calling `on_result(index, result)` as each finishes."""

    def close(self) -> None:  # noqa: B027 (a no-op for executors that hold nothing)
        """Release workers and connections (idempotent)."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SerialExecutor(Executor):
    """Every task in this process, one after another, in order."""

    def run(
        self,
        tasks: Sequence[Task],
        on_result: ResultCallback,
        progress: TaskProgress | None = None,
        tick: Tick | None = None,
    ) -> None:
        from capsim.engine.runner import run_replication

        for index, task in enumerate(tasks):

            def part(fraction: float, what: str, index: int = index) -> None:
                if progress:
                    progress(index, fraction, what)

            on_result(index, run_replication(task.model, task.replication, task.path, part))


def run_pooled_task(task: Task) -> RunResult:
    """`run_task` in a process-pool worker, which the test hook KILL_WORKER_ENV may kill."""
    if os.environ.get(KILL_WORKER_ENV) == str(task.replication):
        os.kill(os.getpid(), signal.SIGKILL)
    return run_task(task)


def _leave_signals_to_the_parent() -> None:
    """Pool workers ignore Ctrl-C (sent to the whole process group) and die on SIGTERM: the
    parent stops them and reports what was completed, without a traceback from each worker."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


class _InterruptsBetweenPolls:
    """Holds Ctrl-C and SIGTERM back while a pool's locks may be held, and raises them as
    KeyboardInterrupt at the next safe point (`raise_if_caught`, called between two polls).

    Python raises KeyboardInterrupt between any two bytecodes of the main thread. Raised inside
    `concurrent.futures.wait` (while it holds the futures' locks) or inside `Queue.get`, it leaves
    a lock held for ever, and the pool's manager thread, which cancels those futures when the
    interpreter exits, waits on it: the run printed its partial results and never exited. Only
    signals whose handler raises (Python's own, or the CLI's SIGTERM-as-Ctrl-C) are held back;
    an ignored or default disposition is left as it is, and so is everything off the main thread.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.caught: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _InterruptsBetweenPolls:
        if threading.current_thread() is threading.main_thread():
            for signum in self.SIGNALS:
                handler = signal.getsignal(signum)
                if callable(handler):
                    self._previous[signum] = signal.signal(signum, self._remember)
        return self

    def _remember(self, signum: int, frame: Any) -> None:
        self.caught = signum

    def raise_if_caught(self) -> None:
        if self.caught is not None:
            raise KeyboardInterrupt

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


class ProcessExecutor(Executor):
    """Tasks on a pool of worker processes of this machine, started at the first batch."""

    kind = "process"

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers or os.cpu_count() or 1
        self._pool: Any = None

    def _started(self) -> Any:
        if self._pool is None:
            from concurrent.futures import ProcessPoolExecutor

            self._pool = ProcessPoolExecutor(
                max_workers=self.workers, initializer=_leave_signals_to_the_parent
            )
        return self._pool

    def run(
        self,
        tasks: Sequence[Task],
        on_result: ResultCallback,
        progress: TaskProgress | None = None,
        tick: Tick | None = None,
    ) -> None:
        from concurrent.futures import FIRST_COMPLETED, wait
        from concurrent.futures.process import BrokenProcessPool

        if len(tasks) == 1:
            # One simulation gains nothing from another process, and here it reports progress.
            SerialExecutor().run(tasks, on_result, progress, tick)
            return
        pool = self._started()
        finished = 0
        workers = _WorkerWatch(pool)
        with _InterruptsBetweenPolls() as interrupts:
            try:
                futures: dict[Any, int] = {}
                for i, task in enumerate(tasks):
                    futures[pool.submit(run_pooled_task, task)] = i
                    interrupts.raise_if_caught()
                # Submitting started the workers: remember them now, before one can die and the
                # broken pool forget it (its exit code names the death).
                workers.look()
                pending = set(futures)
                while pending:
                    done, pending = wait(
                        pending, timeout=POLL_INTERVAL, return_when=FIRST_COMPLETED
                    )
                    workers.look()
                    for future in sorted(done, key=futures.__getitem__):
                        on_result(futures[future], future.result())
                        finished += 1
                    if tick:
                        tick()
                    interrupts.raise_if_caught()
            except BrokenProcessPool:
                workers.look()
                self._stop()
                raise SimulationError(
                    _death_message(workers.exitcode(), finished, len(tasks))
                ) from None
            except BaseException:
                self._stop()
                raise

    def _stop(self) -> None:
        """Terminate the workers at once (a ProcessPoolExecutor only waits for them otherwise)."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        # NOTE: reads the pool's private table of processes; Python 3.14's terminate_workers()
        # does the same publicly.
        processes = list(getattr(pool, "_processes", {}).values())
        results = getattr(pool, "_result_queue", None)
        for process in processes:
            if process.is_alive():
                process.terminate()
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.join(timeout=5)
        # A worker terminated while sending its result leaves half a message in the pipe, and
        # the pool's manager thread waits for the rest as long as a write end is open: this
        # process holds the last one. Closing it ends that wait (EOF, the pool marked broken),
        # so the interpreter's exit, which joins that thread, does not hang.
        writer = getattr(results, "_writer", None)
        if writer is not None:
            writer.close()

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)


class _WorkerWatch:
    """Remembers the worker processes of a ProcessPoolExecutor as they start, so that when the
    pool breaks (a worker died: the kernel's out-of-memory killer, a signal, a crash) the exit
    code of the dead one can be told. The pool keeps them in `_processes` (not public API) and
    forgets them once broken; Process objects keep their exit code."""

    def __init__(self, pool: Any) -> None:
        self.pool = pool
        self.seen: dict[int, Any] = {}
        self.look()

    def look(self) -> None:
        for process in list(getattr(self.pool, "_processes", {}).values()):
            self.seen.setdefault(id(process), process)

    def exitcode(self) -> int | None:
        """The exit code of the worker that died, None when unknown. Once one dies the pool
        terminates the others (SIGTERM), so a code other than SIGTERM's names the first death."""
        self._wait_for_every_exit()
        codes = [p.exitcode for p in self.seen.values() if p.exitcode not in (None, 0)]
        codes.sort(key=lambda code: code == -signal.SIGTERM)
        return codes[0] if codes else None

    def _wait_for_every_exit(self, seconds: float = 5.0) -> None:
        """Wait until each (terminated) worker's exit is known. A dead worker's pipe closes a
        moment before the kernel reports its exit status, and the pool's own thread may be
        reaping it at the same time: without this wait its code can still read None while a
        sibling's SIGTERM is already known, and the message would name the wrong signal."""
        deadline = time.monotonic() + seconds
        for process in self.seen.values():
            while process.exitcode is None and time.monotonic() < deadline:
                process.join(timeout=0.05)


def _death_message(exitcode: int | None, done: int, count: int) -> str:
    if exitcode is None:
        how = "died"
    elif exitcode < 0:
        name = signal.Signals(-exitcode).name if -exitcode in _SIGNALS else str(-exitcode)
        how = f"was killed by signal {-exitcode} ({name})"
        if -exitcode == signal.SIGKILL:
            how += ", as the kernel's out-of-memory killer does,"
    else:
        how = f"exited with code {exitcode}"
    return (
        f"a worker process of the pool {how} while running a replication; {done} of {count} "
        "replication(s) had completed and nothing is reported. Give each worker more memory: "
        "run fewer at once (fewer --workers) or --executor serial, or lower --max-memory so "
        "that capsim refuses runs this large before they start."
    )


_SIGNALS = {int(s) for s in signal.Signals}


#: A local cluster's workers are forked from a forkserver that imported Dask once, instead of
#: each starting a new interpreter (Dask's default, spawn): about 2 s less to start two workers
#: on a busy 2-core machine, and no fork of this multi-threaded process (which fork would do).
_LOCAL_CLUSTER_CONFIG = {"distributed.worker.multiprocessing-method": "forkserver"}


def _preload_the_engine(distributed: Any) -> None:
    """Have the forkserver import the engine too, so that no worker imports it on its own."""
    import multiprocessing

    distributed.utils.get_mp_context()  # sets Dask's own preload list (once per process) ...
    multiprocessing.get_context("forkserver").set_forkserver_preload(  # ... which this extends
        ["distributed", "capsim.engine.runner", "capsim.engine.events", "capsim.engine.vectorised"]
    )


def _model_on_worker(model: Model) -> Model:
    """The model, as the result of a task (so the cluster can compute it again if it is lost)."""
    return model


def _token() -> str:
    return os.urandom(6).hex()


def _worker_timeout() -> float:
    text = os.environ.get("CAPSIM_DASK_WORKER_TIMEOUT")
    if text is None:
        return DEFAULT_WORKER_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise UsageError(
            f"CAPSIM_DASK_WORKER_TIMEOUT={text!r} is not a number of seconds greater than 0"
        )
    return value


class DaskExecutor(Executor):
    """Tasks on a Dask cluster: the one at `scheduler` (tcp://HOST:PORT), else a LocalCluster of
    `workers` processes with one thread each, started here and stopped by `close`.

    Each model travels once per batch, as a task that its replications depend on, with
    everything it needs (empirical samples are arrays in the model, not paths): workers need only
    capsim installed. A worker that dies has its tasks run again elsewhere by the scheduler.
    """

    kind = "dask"

    def __init__(self, workers: int | None = None, scheduler: str | None = None) -> None:
        try:
            import distributed
        except ImportError:
            raise UsageError(
                "--executor dask needs Dask's distributed package, which is not installed; "
                "install it with: pip install 'capsim[dask]'"
            ) from None
        self._distributed = distributed
        self.worker_timeout = _worker_timeout()
        # Dask logs a lost connection with a traceback; capsim says what happened itself.
        # (Dask's own configuration gives some child loggers levels of their own.)
        self._log_levels = {
            name: logging.getLogger(name).level
            for name in ("distributed", "distributed.client", "distributed.core")
        }
        for name in self._log_levels:
            logging.getLogger(name).setLevel(logging.CRITICAL)
        self.scheduler = scheduler
        self._cluster: Any = None
        if scheduler is None:
            import warnings

            import dask

            with warnings.catch_warnings(), dask.config.set(_LOCAL_CLUSTER_CONFIG):
                # "Port 8787 is already in use": another cluster's dashboard, harmless here.
                warnings.simplefilter("ignore", UserWarning)
                _preload_the_engine(distributed)
                self._cluster = distributed.LocalCluster(
                    n_workers=workers or os.cpu_count() or 1,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                    silence_logs=logging.CRITICAL,
                )
            address = self._cluster.scheduler_address
        else:
            address = scheduler
            _answers_as_a_scheduler(address, min(self.worker_timeout, 30.0))
        try:
            self._client: Any = distributed.Client(
                address, timeout=min(self.worker_timeout, 30.0), set_as_default=False
            )
        except ValueError as error:  # an address Dask cannot parse (a port beyond 65535 ...)
            self.close()
            raise UsageError(
                f"--scheduler {address!r} is not the address of a Dask scheduler ({error}); "
                "write tcp://HOST:PORT, e.g. tcp://10.0.0.5:8786"
            ) from None
        except (OSError, TimeoutError) as error:
            self.close()
            raise SimulationError(
                f"cannot reach the Dask scheduler at {address}: {error}. Start one with "
                "`dask scheduler` (and workers with `dask worker ADDRESS`), or check --scheduler "
                "and DASK_SCHEDULER_ADDRESS."
            ) from None
        if scheduler is not None and workers:
            self._wait_for_workers(workers)
        self.workers = max(self._worker_count(), 1)

    @property
    def running_here(self) -> int:
        return self.workers if self._cluster is not None else 1

    def _worker_count(self) -> int:
        """Threads of the workers the scheduler has now. Asked with a deadline: a scheduler that
        does not answer within it is lost (a call without one could wait for ever)."""
        try:
            threads = self._client.nthreads(callback_timeout=self.worker_timeout + 10.0)
        except (OSError, TimeoutError) as error:
            raise SimulationError(
                f"the Dask scheduler at {self._address()} did not answer "
                f"({type(error).__name__}: {error or 'no answer in time'}); the run could not "
                "complete. Is the scheduler still running?"
            ) from None
        return sum(int(count) for count in threads.values())

    def _wait_for_workers(self, count: int) -> None:
        try:
            self._client.wait_for_workers(count, timeout=self.worker_timeout)
        except TimeoutError:
            have = len(self._client.scheduler_info().get("workers", {}))
            self.close()
            raise SimulationError(
                f"the Dask cluster at {self.scheduler} has {have} worker(s), and --workers asked "
                f"to wait for {count}; none more joined within {self.worker_timeout:g} s "
                "(CAPSIM_DASK_WORKER_TIMEOUT). Start more with `dask worker ADDRESS`."
            ) from None

    def run(
        self,
        tasks: Sequence[Task],
        on_result: ResultCallback,
        progress: TaskProgress | None = None,
        tick: Tick | None = None,
    ) -> None:
        client = self._client
        futures: dict[Any, int] = {}
        with _InterruptsBetweenPolls() as interrupts:
            try:
                self._submit_and_collect(tasks, futures, on_result, tick, interrupts)
            except BaseException:
                if futures:
                    # A lost scheduler cannot cancel anything: the stop goes on regardless.
                    with contextlib.suppress(Exception):
                        client.cancel(list(futures), force=True)
                raise

    def _submit_and_collect(
        self,
        tasks: Sequence[Task],
        futures: dict[Any, int],
        on_result: ResultCallback,
        tick: Tick | None,
        interrupts: _InterruptsBetweenPolls,
    ) -> None:
        from capsim.engine.runner import run_replication

        client = self._client
        # Each model travels once, as a task of its own that its replications depend on:
        # the scheduler keeps its spec, so a worker that dies with it loses nothing (data
        # scattered from here would be lost with its only holder, and with it every task).
        unique = {id(task.model): task.model for task in tasks}
        models = {
            key: client.submit(_model_on_worker, model, pure=False, key=f"capsim-model-{_token()}")
            for key, model in unique.items()
        }
        for i, task in enumerate(tasks):
            future = client.submit(
                run_replication,
                models[id(task.model)],
                task.replication,
                task.path,
                pure=False,
                key=f"capsim-replication-{task.replication}-{_token()}",
            )
            futures[future] = i
            interrupts.raise_if_caught()
        self._collect(futures, on_result, tick, interrupts)

    def _collect(
        self,
        futures: dict[Any, int],
        on_result: ResultCallback,
        tick: Tick | None,
        interrupts: _InterruptsBetweenPolls,
    ) -> None:
        # Futures finish on the client's thread; this thread waits on a queue, which Ctrl-C
        # interrupts, and looks at the cluster's workers while nothing finishes.
        finished: queue.Queue[Any] = queue.Queue()
        for future in futures:
            future.add_done_callback(finished.put)
        remaining = len(futures)
        idle_since: float | None = None
        while remaining:
            try:
                future = finished.get(timeout=1.0)
            except queue.Empty:
                idle_since = self._watch_workers(idle_since)
            else:
                remaining -= 1
                idle_since = None
                on_result(futures[future], self._result(future))
            if tick:
                tick()
            interrupts.raise_if_caught()

    def _result(self, future: Any) -> RunResult:
        from distributed import KilledWorker

        try:
            result: RunResult = future.result()
        except KilledWorker:
            raise SimulationError(
                "the Dask workers running one of the simulations kept dying (the scheduler "
                "stopped retrying it after distributed.scheduler.allowed-failures deaths); the "
                "run could not complete. A worker that runs out of memory is killed: give the "
                "workers more memory (dask worker --memory-limit) or make one replication "
                "lighter (a shorter simulation.duration)."
            ) from None
        except (self._distributed.client.FutureCancelledError, OSError) as error:
            first = (str(error).splitlines() or [""])[0]
            raise SimulationError(
                f"lost the Dask cluster at {self._address()} while simulating ({first}); the "
                "run could not complete. Is the scheduler still running?"
            ) from None
        return result

    def _watch_workers(self, idle_since: float | None) -> float | None:
        """Raise SimulationError when the cluster has had no worker for the worker timeout."""
        if self._client.status not in ("running", "connecting"):
            raise SimulationError(
                f"lost the connection to the Dask scheduler at {self._address()}; the run "
                "could not complete. Is the scheduler still running?"
            )
        if self._worker_count():
            return None
        now = time.monotonic()
        if idle_since is None:
            return now
        if now - idle_since > self.worker_timeout:
            raise SimulationError(
                f"the Dask cluster at {self._address()} has had no worker for "
                f"{self.worker_timeout:g} s (CAPSIM_DASK_WORKER_TIMEOUT) while simulations were "
                "waiting: its workers died or never joined. Start workers with "
                f"`dask worker {self._address()}` and run again."
            )
        return idle_since

    def _address(self) -> str:
        return str(self.scheduler or self._client.scheduler.address)

    def _close_cluster(self) -> None:
        cluster, self._cluster = self._cluster, None
        if cluster is not None:
            cluster.close()

    def close(self) -> None:
        client = getattr(self, "_client", None)
        self._client = None
        if client is not None:
            client.close()
        self._close_cluster()
        for name, level in self._log_levels.items():
            logging.getLogger(name).setLevel(level)


#: A scheduler address Dask can connect to: [tcp|tls|ws|wss|ucx://]HOST[:PORT], IPv6 in brackets.
_SCHEDULER_ADDRESS = re.compile(
    r"^(?:(?:tcp|tls|ws|wss|ucx)://)?(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+)(?::(\d{1,5}))?$"
)


def _checked_address(address: str) -> str:
    match = _SCHEDULER_ADDRESS.match(address.strip())
    if not match:
        raise UsageError(
            f"--scheduler {address!r} is not the address of a Dask scheduler; write "
            "tcp://HOST:PORT, e.g. tcp://10.0.0.5:8786 (tls://, ws:// and wss:// work too)"
        )
    if match.group(1) is not None and not 0 < int(match.group(1)) <= 65535:
        # Dask would try such a port until its connect timeout and then say it timed out.
        raise UsageError(
            f"--scheduler {address!r}: port {int(match.group(1))} is not a TCP port (1 to "
            "65535); a Dask scheduler listens on 8786 unless told otherwise"
        )
    return address.strip()


def _answers_as_a_scheduler(address: str, seconds: float) -> None:
    """Raise SimulationError unless the server at a tcp:// `address` completes Dask's handshake
    within `seconds`.

    Dask's Client bounds only the TCP connect: a server that accepts the connection and never
    answers (a silent port, an HTTP server such as the scheduler's dashboard) holds it for ever,
    and another protocol's answer is read as a frame length (a MemoryError of exabytes, then a
    minute's wait in the half-made client's `__del__`). Other schemes need their security
    settings and are left to the Client.
    """
    if "://" in address and not address.startswith("tcp://"):
        return
    import asyncio

    from distributed.comm import connect

    async def handshake() -> None:
        comm = await connect(address, timeout=seconds)
        await comm.close()

    failure: list[BaseException] = []

    def attempt() -> None:
        # A thread of its own: the caller may already run an event loop (a notebook).
        try:
            asyncio.run(asyncio.wait_for(handshake(), seconds))
        except Exception as error:  # whatever fails here, no scheduler answered
            failure.append(error)

    thread = threading.Thread(target=attempt, name="capsim-dask-probe", daemon=True)
    thread.start()
    thread.join(seconds + 5.0)
    error = failure[0] if failure else (TimeoutError() if thread.is_alive() else None)
    if error is None:
        return
    if isinstance(error, TimeoutError):
        raise SimulationError(
            f"the server at {address} accepted the connection but did not answer as a Dask "
            f"scheduler within {seconds:g} s; is it the scheduler's port (8786 unless told "
            "otherwise; 8787 is its dashboard)? Check --scheduler and DASK_SCHEDULER_ADDRESS."
        ) from None
    if isinstance(error, OSError):
        raise SimulationError(
            f"cannot reach the Dask scheduler at {address}: {error}. Start one with "
            "`dask scheduler` (and workers with `dask worker ADDRESS`), or check --scheduler "
            "and DASK_SCHEDULER_ADDRESS."
        ) from None
    raise SimulationError(
        f"the server at {address} answered, but not as a Dask scheduler "
        f"({type(error).__name__}); is it the scheduler's port (8786 unless told otherwise; "
        "8787 is its dashboard)? Check --scheduler and DASK_SCHEDULER_ADDRESS."
    ) from None


def open_executor(
    kind: str = "serial", workers: int | None = None, scheduler: str | None = None
) -> Executor:
    """The executor named `kind`; for Dask, `scheduler` defaults to DASK_SCHEDULER_ADDRESS."""
    if workers is not None and workers < 1:
        raise UsageError(f"--workers {workers}: give at least 1")
    if kind == "serial":
        return SerialExecutor()
    if kind == "process":
        return ProcessExecutor(workers)
    if kind == "dask":
        address = scheduler or os.environ.get("DASK_SCHEDULER_ADDRESS") or None
        return DaskExecutor(workers, _checked_address(address) if address else None)
    raise UsageError(f"--executor {kind!r} is not one of {', '.join(EXECUTORS)}")


__all__ = [
    "EXECUTORS",
    "KILL_WORKER_ENV",
    "DaskExecutor",
    "Executor",
    "ProcessExecutor",
    "SerialExecutor",
    "Task",
    "open_executor",
    "run_task",
]
