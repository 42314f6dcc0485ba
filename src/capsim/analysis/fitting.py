"""Statistical fits for calibration: service-time distributions by maximum likelihood, means
with Student-t intervals, and the Universal Scalability Law by non-linear least squares.

Goodness-of-fit rule (docs/calibration.md#choosing-a-distribution): among exponential,
lognormal and gamma fitted by maximum likelihood, the lowest AIC whose Kolmogorov-Smirnov test
does not reject at `KS_LEVEL`; when every one is rejected, the empirical distribution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: KS test level: a family is rejected when its p-value is below this.
KS_LEVEL = 0.01
#: Below this coefficient of variation the samples are treated as a constant.
CONSTANT_CV = 0.02
#: Fewer samples than this are kept as an empirical distribution (too few to choose a family).
MIN_FIT_SAMPLES = 30
#: The most samples a fit looks at (a seeded random subset beyond it), and the most quantiles an
#: empirical distribution keeps.
MAX_FIT_SAMPLES = 20_000
EMPIRICAL_POINTS = 200


@dataclass(frozen=True)
class MeanEstimate:
    mean: float
    low: float
    high: float
    count: int


def mean_interval(samples: np.ndarray, level: float = 0.95) -> MeanEstimate:
    """The sample mean with its Student-t confidence interval."""
    from scipy import stats

    count = int(samples.size)
    mean = float(samples.mean()) if count else math.nan
    if count < 2:
        return MeanEstimate(mean=mean, low=math.nan, high=math.nan, count=count)
    half = (
        float(stats.t.ppf(0.5 + level / 2, count - 1))
        * float(samples.std(ddof=1))
        / math.sqrt(count)
    )
    return MeanEstimate(
        mean=mean,
        low=max(mean - half, 0.0) if mean >= 0 else mean - half,
        high=mean + half,
        count=count,
    )


@dataclass(frozen=True)
class DistributionFit:
    """The chosen distribution: `family`, its scenario form `spec` (times in seconds) and the
    evidence: AIC and KS p-value of every candidate, and why this one won."""

    family: str
    spec: dict[str, Any]
    mean: MeanEstimate
    cv: float
    candidates: dict[str, dict[str, float]] = field(default_factory=dict)
    reason: str = ""


def fit_service_time(samples: np.ndarray, seed: int = 0) -> DistributionFit:
    from scipy import stats

    samples = np.asarray(samples, dtype=float)
    samples = samples[np.isfinite(samples) & (samples >= 0)]
    mean = mean_interval(samples)
    if samples.size == 0:
        raise ValueError("no samples to fit")
    cv = (
        float(samples.std(ddof=1) / samples.mean())
        if samples.size > 1 and samples.mean() > 0
        else 0.0
    )
    if samples.size > 1 and cv < CONSTANT_CV:
        return DistributionFit(
            family="constant",
            spec={"dist": "constant", "value": mean.mean},
            mean=mean,
            cv=cv,
            reason=f"cv {cv:.3g} < {CONSTANT_CV}: constant",
        )
    if samples.size < MIN_FIT_SAMPLES:
        return _empirical(
            samples,
            mean,
            cv,
            {},
            f"{samples.size} samples < {MIN_FIT_SAMPLES}: too few to choose a family",
        )
    positive = samples[samples > 0]
    if positive.size > MAX_FIT_SAMPLES:
        positive = np.random.default_rng(seed).choice(positive, MAX_FIT_SAMPLES, replace=False)
    candidates: dict[str, dict[str, float]] = {}
    specs: dict[str, dict[str, Any]] = {}
    n = positive.size

    scale = float(positive.mean())
    candidates["exponential"] = {
        "aic": 2 * 1 - 2 * float(stats.expon.logpdf(positive, scale=scale).sum()),
        "ks_p": float(stats.kstest(positive, "expon", args=(0, scale)).pvalue),
    }
    specs["exponential"] = {"dist": "exponential", "mean": scale}

    logs = np.log(positive)
    mu, sigma = float(logs.mean()), float(logs.std())
    if sigma > 0:
        candidates["lognormal"] = {
            "aic": 2 * 2
            - 2 * float(stats.lognorm.logpdf(positive, sigma, scale=math.exp(mu)).sum()),
            "ks_p": float(stats.kstest(positive, "lognorm", args=(sigma, 0, math.exp(mu))).pvalue),
        }
        specs["lognormal"] = {
            "dist": "lognormal",
            "mean": math.exp(mu + sigma**2 / 2),
            "cv": math.sqrt(math.expm1(sigma**2)),
        }

    shape, _, gamma_scale = stats.gamma.fit(positive, floc=0)
    candidates["gamma"] = {
        "aic": 2 * 2 - 2 * float(stats.gamma.logpdf(positive, shape, scale=gamma_scale).sum()),
        "ks_p": float(stats.kstest(positive, "gamma", args=(shape, 0, gamma_scale)).pvalue),
    }
    specs["gamma"] = {"dist": "gamma", "mean": shape * gamma_scale, "cv": 1 / math.sqrt(shape)}

    ranked = sorted(candidates, key=lambda name: candidates[name]["aic"])
    for name in ranked:
        if candidates[name]["ks_p"] >= KS_LEVEL:
            why = f"lowest AIC of those the KS test does not reject at {KS_LEVEL} (p = {candidates[name]['ks_p']:.3g}, n = {n})"
            if name != ranked[0]:
                why += f"; {ranked[0]} had a lower AIC but KS rejected it"
            return DistributionFit(
                family=name, spec=specs[name], mean=mean, cv=cv, candidates=candidates, reason=why
            )
    return _empirical(
        samples,
        mean,
        cv,
        candidates,
        f"the KS test rejects every family at {KS_LEVEL} (n = {n}): empirical",
    )


def _empirical(
    samples: np.ndarray,
    mean: MeanEstimate,
    cv: float,
    candidates: dict[str, dict[str, float]],
    why: str,
) -> DistributionFit:
    if samples.size > EMPIRICAL_POINTS:
        points = np.quantile(samples, (np.arange(EMPIRICAL_POINTS) + 0.5) / EMPIRICAL_POINTS)
    else:
        points = np.sort(samples)
    return DistributionFit(
        family="empirical",
        spec={"dist": "empirical", "samples": [float(x) for x in points]},
        mean=mean,
        cv=cv,
        candidates=candidates,
        reason=why,
    )


# --- Universal Scalability Law ----------------------------------------------------------------


@dataclass(frozen=True)
class UslFit:
    """X(N) = lambda N / (1 + sigma (N - 1) + kappa N (N - 1)), with 95% intervals."""

    lam: float
    sigma: float
    kappa: float
    intervals: dict[str, tuple[float, float]]
    peak_concurrency: float
    peak_throughput: float
    r_squared: float
    points: int
    concurrency: tuple[float, ...]
    throughput: tuple[float, ...]

    def throughput_at(self, concurrency: float | np.ndarray) -> Any:
        return usl(np.asarray(concurrency, dtype=float), self.lam, self.sigma, self.kappa)


def usl(n: np.ndarray, lam: float, sigma: float, kappa: float) -> np.ndarray:
    return lam * n / (1 + sigma * (n - 1) + kappa * n * (n - 1))


def _peak(lam: float, sigma: float, kappa: float) -> tuple[float, float]:
    if kappa <= 0 or sigma >= 1:
        return math.inf, (lam / sigma if sigma > 0 else math.inf)
    peak = math.sqrt((1 - sigma) / kappa)
    return peak, float(usl(np.array([peak]), lam, sigma, kappa)[0])


def fit_usl(
    concurrency: np.ndarray, throughput: np.ndarray, seed: int = 0, bootstrap: int = 400
) -> UslFit:
    """Weighted least-squares USL fit (relative errors). Intervals: lambda, sigma, kappa from the fit's covariance (Student
    t, n - 3 degrees of freedom); N* and X_max from a residual bootstrap (percentile interval)."""
    from scipy import optimize, stats

    n = np.asarray(concurrency, dtype=float)
    x = np.asarray(throughput, dtype=float)
    if n.size < 4 or np.unique(n).size < 3:
        raise ValueError(
            f"a USL fit needs at least 4 steps at 3 or more concurrency levels (found {n.size} at {np.unique(n).size})"
        )
    lowest = int(np.argmin(n))
    lam0 = max(float(x[lowest] / n[lowest]), 1e-9)
    bounds = ([0.0, 0.0, 0.0], [np.inf, 1.0, np.inf])
    # Throughput noise grows with throughput, so each step is weighted by 1/X (relative errors):
    # the low-concurrency steps, which fix lambda, are not drowned by the large ones.
    weights = np.maximum(np.abs(x), 1e-9)
    params, covariance = optimize.curve_fit(
        usl, n, x, p0=[lam0, 0.01, 1e-4], sigma=weights, bounds=bounds, maxfev=20000
    )
    lam, sigma, kappa = map(float, params)
    fitted = usl(n, lam, sigma, kappa)
    residuals = x - fitted
    relative = residuals / weights
    total = float(((x - x.mean()) ** 2).sum())
    r_squared = 1 - float((residuals**2).sum()) / total if total > 0 else 1.0
    dof = max(n.size - 3, 1)
    t = float(stats.t.ppf(0.975, dof))
    errors = np.sqrt(np.clip(np.diag(covariance), 0, None))
    intervals = {
        name: (max(value - t * error, low), value + t * error)
        for name, value, error, low in zip(
            ("lambda", "sigma", "kappa"), params, errors, (0.0, 0.0, 0.0), strict=True
        )
    }
    peak, peak_x = _peak(lam, sigma, kappa)
    rng = np.random.default_rng(seed)
    peaks, maxima = [], []
    for _ in range(bootstrap):
        sample = fitted * (1 + rng.choice(relative, relative.size, replace=True))
        try:
            again, _ = optimize.curve_fit(
                usl,
                n,
                sample,
                p0=params,
                sigma=np.maximum(np.abs(sample), 1e-9),
                bounds=bounds,
                maxfev=5000,
            )
        except (RuntimeError, ValueError):
            continue
        p, m = _peak(*map(float, again))
        peaks.append(p)
        maxima.append(m)
    if peaks:
        intervals["peak_concurrency"] = (
            float(np.percentile(peaks, 2.5)),
            float(np.percentile(peaks, 97.5)),
        )
        intervals["peak_throughput"] = (
            float(np.percentile(maxima, 2.5)),
            float(np.percentile(maxima, 97.5)),
        )
    return UslFit(
        lam=lam,
        sigma=sigma,
        kappa=kappa,
        intervals=intervals,
        peak_concurrency=peak,
        peak_throughput=peak_x,
        r_squared=r_squared,
        points=int(n.size),
        concurrency=tuple(map(float, n)),
        throughput=tuple(map(float, x)),
    )
