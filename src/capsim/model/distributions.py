"""Time distributions: vectorised samplers that also know their analytic moments."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

DISTRIBUTION_KINDS = ("constant", "exponential", "lognormal", "gamma", "uniform", "empirical")

# z-score of the 99th percentile of the standard normal, for lognormal fitted from p50 and p99.
_Z99 = 2.3263478740408408


@dataclass(frozen=True, eq=False)
class Distribution:
    """A non-negative random time in seconds.

    `params` depend on `kind`: constant (value,), exponential (mean,), lognormal (mu_ln,
    sigma_ln) of the underlying normal, gamma (shape, scale), uniform (low, high), empirical ().
    Empirical samples are in `samples` and are resampled with replacement.
    """

    kind: str
    params: tuple[float, ...]
    samples: np.ndarray | None = field(default=None, repr=False)

    # ---- construction -------------------------------------------------------------------
    @staticmethod
    def constant(value: float) -> Distribution:
        return Distribution("constant", (float(value),))

    @staticmethod
    def exponential(mean: float) -> Distribution:
        return Distribution("exponential", (float(mean),))

    @staticmethod
    def lognormal(mean: float, cv: float) -> Distribution:
        """Lognormal with the given mean and coefficient of variation (sd / mean)."""
        sigma2 = math.log1p(cv * cv)
        return Distribution("lognormal", (math.log(mean) - sigma2 / 2.0, math.sqrt(sigma2)))

    @staticmethod
    def lognormal_from_percentiles(p50: float, p99: float) -> Distribution:
        """Lognormal whose median is `p50` and whose 99th percentile is `p99` (p99 > p50 > 0)."""
        mu = math.log(p50)
        sigma = (math.log(p99) - mu) / _Z99
        return Distribution("lognormal", (mu, sigma))

    @staticmethod
    def gamma(mean: float, cv: float) -> Distribution:
        shape = 1.0 / (cv * cv)
        return Distribution("gamma", (shape, mean / shape))

    @staticmethod
    def uniform(low: float, high: float) -> Distribution:
        return Distribution("uniform", (float(low), float(high)))

    @staticmethod
    def empirical(samples: np.ndarray | list[float]) -> Distribution:
        values = np.asarray(samples, dtype=float)
        return Distribution("empirical", (), values)

    # ---- sampling -----------------------------------------------------------------------
    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """`n` independent draws as a float64 array."""
        kind, p = self.kind, self.params
        if kind == "constant":
            return np.full(n, p[0])
        if kind == "exponential":
            return rng.exponential(p[0], n)
        if kind == "lognormal":
            # numpy takes the parameters of the underlying normal, not the mean of the lognormal.
            return rng.lognormal(p[0], p[1], n)
        if kind == "gamma":
            return rng.gamma(p[0], p[1], n)
        if kind == "uniform":
            return rng.uniform(p[0], p[1], n)
        if kind == "empirical":
            assert self.samples is not None
            return self.samples[rng.integers(0, self.samples.size, n)]
        raise ValueError(f"unknown distribution kind {kind!r}")

    @property
    def is_constant(self) -> bool:
        return self.kind == "constant"

    # ---- moments ------------------------------------------------------------------------
    def moment(self, k: int) -> float:
        """E[X^k] for k = 1, 2, 3; infinity when it is beyond floating point (a constant of
        1e300 s has a finite mean and an infinite second moment)."""
        try:
            return self._moment(k)
        except OverflowError:
            return math.inf

    def _moment(self, k: int) -> float:
        kind, p = self.kind, self.params
        if kind == "constant":
            return p[0] ** k
        if kind == "exponential":
            return math.factorial(k) * p[0] ** k
        if kind == "lognormal":
            mu, sigma = p
            return math.exp(k * mu + 0.5 * k * k * sigma * sigma)
        if kind == "gamma":
            shape, scale = p
            value = scale**k
            for i in range(k):
                value *= shape + i
            return value
        if kind == "uniform":
            low, high = p
            if high == low:
                return low**k
            return (high ** (k + 1) - low ** (k + 1)) / ((k + 1) * (high - low))
        if kind == "empirical":
            assert self.samples is not None
            return float(np.mean(self.samples**k))
        raise ValueError(f"unknown distribution kind {kind!r}")

    @property
    def mean(self) -> float:
        return self.moment(1)

    @property
    def variance(self) -> float:
        m = self.mean
        return max(self.moment(2) - m * m, 0.0)

    @property
    def cv(self) -> float:
        """Coefficient of variation (sd / mean); 0 for a zero-mean constant."""
        m = self.mean
        return math.sqrt(self.variance) / m if m > 0 else 0.0

    def describe(self) -> str:
        """A short text for reports: ``exponential(mean=20ms)``."""
        return f"{self.kind}(mean={self.mean * 1e3:.4g}ms, cv={self.cv:.3g})"

    def scaled(self, factor: float) -> Distribution:
        """The same shape with every draw multiplied by `factor`."""
        kind, p = self.kind, self.params
        if kind in ("constant", "exponential"):
            return Distribution(kind, (p[0] * factor,))
        if kind == "lognormal":
            return Distribution(kind, (p[0] + math.log(factor), p[1]))
        if kind == "gamma":
            return Distribution(kind, (p[0], p[1] * factor))
        if kind == "uniform":
            return Distribution(kind, (p[0] * factor, p[1] * factor))
        assert self.samples is not None
        return Distribution(kind, (), self.samples * factor)


ZERO = Distribution.constant(0.0)
