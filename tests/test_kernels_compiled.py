"""The compiled multi-worker kernel answers exactly what the Python kernel answers.

The array heap loop that numba compiles is also plain Python, so its logic is checked on every
machine; where numba is installed (the `fast` and `test` extras) the jitted loop is checked too.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from capsim.engine import kernels
from capsim.engine.kernels import (
    fifo_multi,
    fifo_multi_compiled,
    fifo_multi_python,
    fifo_reference,
    load_compiled,
)


def _loops() -> list[kernels.CompiledLoop]:
    """The array loop as Python, and jitted when numba is importable."""
    loops: list[kernels.CompiledLoop] = [kernels._heap_loop_arrays]
    jitted = load_compiled()
    if jitted is not None:
        loops.append(jitted)
    return loops


def _stream(workers: int, load: float, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    arrivals = np.cumsum(rng.exponential(1.0 / (load * workers), n))
    service = rng.exponential(1.0, n)
    return arrivals, service


@pytest.mark.parametrize("workers", [2, 3, 8, 16, 33])
@pytest.mark.parametrize("load", [0.3, 0.75, 0.95, 1.3])
def test_the_array_heap_loop_gives_the_python_kernels_start_and_free_times_bit_for_bit(
    workers: int, load: float
):
    arrivals, service = _stream(workers, load, 2_000, seed=workers)
    free = np.full(workers, -math.inf)
    expected_start, expected_free = fifo_multi_python(arrivals, service, free)
    for loop in _loops():
        start, new_free = fifo_multi_compiled(loop, arrivals, service, free)
        assert np.array_equal(start, expected_start)
        assert np.array_equal(new_free, expected_free)


def test_carrying_free_times_across_chunks_gives_the_same_answer_on_both_kernels():
    arrivals, service = _stream(8, 0.9, 5_000, seed=11)
    reference, _ = fifo_reference(arrivals, service, np.zeros(8))
    for loop in _loops():
        free = np.zeros(8)
        pieces = []
        for part in np.array_split(np.arange(arrivals.size), 7):
            start, free = fifo_multi_compiled(loop, arrivals[part], service[part], free)
            pieces.append(start)
        assert np.array_equal(np.concatenate(pieces), reference)


def test_zero_service_times_and_ties_are_served_in_arrival_order_alike():
    arrivals = np.repeat(np.arange(50, dtype=np.float64), 3)
    service = np.tile([0.0, 1.5, 0.0], 50)
    expected_start, expected_free = fifo_multi_python(arrivals, service, np.zeros(2))
    for loop in _loops():
        start, free = fifo_multi_compiled(loop, arrivals, service, np.zeros(2))
        assert np.array_equal(start, expected_start)
        assert np.array_equal(free, expected_free)


def test_an_empty_batch_leaves_the_workers_as_they_were():
    free = np.array([1.0, 2.0, 3.0])
    for loop in _loops():
        start, new_free = fifo_multi_compiled(loop, np.zeros(0), np.zeros(0), free)
        assert start.size == 0
        assert np.array_equal(new_free, free)


def test_fifo_multi_answers_the_same_before_and_after_switching_to_the_compiled_loop(
    monkeypatch: pytest.MonkeyPatch,
):
    arrivals, service = _stream(4, 0.85, 4_000, seed=3)
    python_start, python_free = fifo_multi(arrivals, service, np.zeros(4))
    monkeypatch.setattr(kernels._Accelerator, "tried", True)
    monkeypatch.setattr(kernels._Accelerator, "loop", kernels._heap_loop_arrays)
    assert kernels.compiled_in_use()
    start, free = fifo_multi(arrivals, service, np.zeros(4))
    assert np.array_equal(start, python_start)
    assert np.array_equal(free, python_free)


def test_the_python_loop_switches_only_after_enough_work_and_capsim_numba_0_keeps_it(
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setattr(kernels._Accelerator, "tried", False)
    monkeypatch.setattr(kernels._Accelerator, "loop", None)
    monkeypatch.setattr(kernels._Accelerator, "looped", 0)
    monkeypatch.setenv("CAPSIM_NUMBA", "0")
    arrivals, service = _stream(2, 0.99, 2_000, seed=5)
    fifo_multi(arrivals, service, np.zeros(2))
    assert not kernels._Accelerator.tried  # little work so far: nothing loaded
    assert kernels._Accelerator.looped > 0
    monkeypatch.setattr(kernels._Accelerator, "looped", kernels.COMPILE_AFTER)
    fifo_multi(arrivals, service, np.zeros(2))
    assert kernels._Accelerator.tried and not kernels.compiled_in_use()
