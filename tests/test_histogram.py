"""Streaming histograms: percentiles within 1% of the exact ones, in memory that never grows."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from capsim.engine.histogram import Histogram, Recorder


@pytest.mark.parametrize(
    "samples",
    [
        np.random.default_rng(1).exponential(0.02, 200_000),
        np.random.default_rng(2).lognormal(-4.0, 1.5, 200_000),
        np.random.default_rng(3).uniform(1e-6, 5e-6, 50_000),
        np.concatenate([np.zeros(60_000), np.random.default_rng(4).exponential(3.0, 40_000)]),
    ],
    ids=["exponential", "heavy-lognormal", "microseconds", "atom-at-zero"],
)
def test_percentiles_are_within_one_percent_of_the_exact_sample_percentiles(samples):
    histogram = Histogram()
    histogram.add(samples)
    for q in (0.5, 0.9, 0.95, 0.99, 0.999):
        exact = float(np.quantile(samples, q, method="inverted_cdf"))
        estimate = histogram.quantile(q)
        assert estimate == pytest.approx(exact, rel=0.01, abs=1e-12), q
    assert histogram.mean == pytest.approx(samples.mean(), rel=1e-12)
    assert histogram.max == samples.max()
    assert histogram.n == samples.size


def test_memory_is_the_same_for_ten_values_or_a_million():
    small, large = Histogram(), Histogram()
    small.add(np.arange(10) * 1e-3)
    large.add(np.random.default_rng(0).exponential(1.0, 1_000_000))
    assert small.counts.nbytes == large.counts.nbytes < 100_000


def test_merging_equals_adding_everything_to_one():
    rng = np.random.default_rng(5)
    parts = [rng.exponential(0.01, 10_000) for _ in range(4)]
    one = Histogram()
    one.add(np.concatenate(parts))
    merged = Histogram.merged([_filled(p) for p in parts])
    assert np.array_equal(one.counts, merged.counts)
    assert merged.n == one.n and merged.max == one.max
    assert merged.total == pytest.approx(one.total, rel=1e-12)


def test_a_recorder_flushes_single_values_in_batches():
    recorder = Recorder(limit=100)
    for value in np.linspace(0.001, 0.1, 1_000):
        recorder.record(float(value))
    histogram = recorder.flush()
    assert histogram.n == 1_000
    assert recorder.buffer == []


def test_an_empty_histogram_has_no_percentiles_and_survives_pickling():
    empty = Histogram()
    assert np.isnan(empty.quantile(0.99))
    copy = pickle.loads(pickle.dumps(_filled(np.array([0.5, 1.5]))))
    assert copy.n == 2 and copy.quantile(0.99) == pytest.approx(1.5, rel=0.01)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(min_value=0.0, max_value=1e5, allow_nan=False), min_size=1, max_size=300))
def test_quantiles_are_monotone_and_bounded_by_the_data(values):
    histogram = _filled(np.array(values))
    estimates = histogram.quantiles([0.01, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999])
    assert estimates == sorted(estimates)
    assert min(values) * 0.99 - 1e-9 <= estimates[0]
    assert estimates[-1] <= max(values)


def _filled(values: np.ndarray) -> Histogram:
    histogram = Histogram()
    histogram.add(values)
    return histogram


def test_a_value_a_rounding_above_a_limit_is_at_the_limit_not_over_it():
    histogram = Histogram(limits=(0.005,))
    histogram.add(np.array([0.004999999999938609, 0.005, 0.005000000000009663, 0.0050001]))
    assert histogram.share_over(0.005) == 0.25  # only 5.0001 ms is slower than 5 ms
