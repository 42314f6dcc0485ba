"""Statistics for summaries: Student t intervals, robust trends, and the queue-growth rule."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: Below this many points a queue trace says nothing about a trend.
MIN_TRACE_POINTS = 8
#: A queue must grow by at least this many requests over the window to count as growing.
MIN_GROWTH = 5.0
#: Growth over the window must exceed this many times the scatter around the trend.
NOISE_FACTOR = 4.0
#: Growth over the window must exceed this fraction of the trace's median level.
LEVEL_FACTOR = 0.5
#: At most this many trace points enter the pairwise-slope (Theil-Sen) estimate.
_MAX_SLOPE_POINTS = 200
#: Above this many degrees of freedom the t quantile comes from a Cornish-Fisher expansion.
_SERIES_LIMIT = 200


def _t_two_sided_probability(t: float, df: int) -> float:
    """P(|T| < t) for Student's t with integer `df` (Abramowitz & Stegun 26.7.3 and 26.7.4)."""
    theta = math.atan(t / math.sqrt(df))
    sin, cos = math.sin(theta), math.cos(theta)
    cos2 = cos * cos
    if df % 2 == 1:
        total, term = 0.0, 1.0
        if df > 1:
            total = 1.0
            for k in range(3, df - 1, 2):
                term *= (k - 1) / k * cos2
                total += term
            total *= sin * cos
        return 2.0 / math.pi * (theta + total)
    total, term = 1.0, 1.0
    for k in range(2, df - 1, 2):
        term *= (k - 1) / k * cos2
        total += term
    return sin * total


def _normal_quantile(p: float) -> float:
    """Inverse standard normal CDF (Acklam's rational approximation, refined by one Newton step)."""
    a = (-39.69683028665376, 220.9460984245205, -275.9285104469687,
         138.3577518672690, -30.66479806614716, 2.506628277459239)  # fmt: skip
    b = (-54.47609879822406, 161.5858368580409, -155.6989798598866,
         66.80131188771972, -13.28068155288572)  # fmt: skip
    c = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838,
         -2.549732539343734, 4.374664141464968, 2.938163982698783)  # fmt: skip
    d = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996, 3.754408661907416)
    low = 0.02425
    if p < low:
        q = math.sqrt(-2 * math.log(p))
        x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / (
            (((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1
        )
    elif p > 1 - low:
        return -_normal_quantile(1 - p)
    else:
        q = p - 0.5
        r = q * q
        x = (
            (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5])
            * q
            / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1)
        )
    error = 0.5 * math.erfc(-x / math.sqrt(2)) - p
    return x - error * math.sqrt(2 * math.pi) * math.exp(x * x / 2)


def student_t_quantile(p: float, df: int) -> float:
    """The p-quantile (0.5 < p < 1) of Student's t with `df` degrees of freedom.

    Exact (bisection on the closed-form CDF) up to 200 degrees of freedom, a fourth-order
    Cornish-Fisher expansion beyond, where it agrees to better than 1e-9.
    """
    if df < 1:
        raise ValueError(f"degrees of freedom must be at least 1, got {df}")
    if not 0.5 < p < 1.0:
        raise ValueError(f"p must be in (0.5, 1), got {p}")
    if df > _SERIES_LIMIT:
        z = _normal_quantile(p)
        z2 = z * z
        g1 = (z2 + 1) * z / 4
        g2 = ((5 * z2 + 16) * z2 + 3) * z / 96
        g3 = (((3 * z2 + 19) * z2 + 17) * z2 - 15) * z / 384
        g4 = ((((79 * z2 + 776) * z2 + 1482) * z2 - 1920) * z2 - 945) * z / 92160
        return z + g1 / df + g2 / df**2 + g3 / df**3 + g4 / df**4
    target = 2 * p - 1
    low, high = 0.0, 1.0
    while _t_two_sided_probability(high, df) < target:
        high *= 2
    for _ in range(200):
        middle = (low + high) / 2
        if _t_two_sided_probability(middle, df) < target:
            low = middle
        else:
            high = middle
        if high - low < 1e-12 * high:
            break
    return (low + high) / 2


def t_interval(estimates: Sequence[float], confidence: float = 0.95) -> tuple[float, float] | None:
    """Student t interval for the mean of independent per-replication estimates.

    None when fewer than two estimates exist or any of them is missing (NaN): an interval over
    the replications that happened to have data would be biased towards them.
    """
    values = np.asarray(estimates, dtype=np.float64)
    if values.size < 2 or not np.all(np.isfinite(values)):
        return None
    mean = float(values.mean())
    half = (
        student_t_quantile((1 + confidence) / 2, values.size - 1)
        * float(values.std(ddof=1))
        / math.sqrt(values.size)
    )
    return (mean - half, mean + half)


def clamped(
    interval: tuple[float, float] | None, low: float = 0.0, high: float = math.inf
) -> tuple[float, float] | None:
    """`interval` cut to the values its figure can take, [low, high] (docs/results.md, "ci95"):
    a t interval is symmetric about the mean, so a share near 0 or 1, or a time near 0, can
    reach past what is possible (a utilization up to 116%, an error rate down to -0.3%)."""
    if interval is None:
        return None
    return (min(max(interval[0], low), high), max(min(interval[1], high), low))


def median(values: np.ndarray) -> float:
    """`np.median` of a 1-D float array, the same number (NaN if it holds one), without its
    first call importing `numpy.ma` (about 8 ms of every `capsim run`, for a few medians)."""
    n = values.size
    if n == 0:
        return float(np.median(values))  # NaN and numpy's warning, as before
    middle = n // 2
    part = np.partition(values, [middle - 1, middle] if n % 2 == 0 else middle)
    if np.isnan(part.max()):
        return math.nan
    if n % 2:
        return float(part[middle])
    return float((part[middle - 1] + part[middle]) / 2.0)


def theil_sen_slope(x: np.ndarray, y: np.ndarray) -> float:
    """Median of the pairwise slopes: a trend estimate that a few spikes cannot move."""
    if x.size > _MAX_SLOPE_POINTS:
        keep = np.linspace(0, x.size - 1, _MAX_SLOPE_POINTS).round().astype(np.int64)
        x, y = x[keep], y[keep]
    i, j = np.triu_indices(x.size, k=1)
    dx = x[j] - x[i]
    usable = dx > 0
    if not usable.any():
        return 0.0
    return median((y[j] - y[i])[usable] / dx[usable])


@dataclass(frozen=True)
class Trend:
    """The trend of one queue trace over the measurement window."""

    slope: float  # requests per second (Theil-Sen)
    growth: float  # slope x window: requests the queue grew by
    noise: float  # robust scatter around the trend (1.4826 x MAD of residuals)
    level: float  # median queue length
    first: float  # mean of the first quarter
    last: float  # mean of the last quarter

    @property
    def growing(self) -> bool:
        """A clear, sustained rise: large against the scatter and the level, last part above first."""
        return (
            self.growth >= MIN_GROWTH
            and self.growth >= NOISE_FACTOR * self.noise
            and self.growth >= LEVEL_FACTOR * self.level
            and self.last - self.first >= 0.5 * self.growth
        )


def queue_trend(times: np.ndarray, trace: np.ndarray) -> Trend | None:
    """Fit the trend of a queue-length trace sampled at `times`; None when it is too short."""
    y = np.asarray(trace, dtype=np.float64)
    x = np.asarray(times, dtype=np.float64)
    if y.size < MIN_TRACE_POINTS or x.size != y.size or not np.all(np.isfinite(y)):
        return None
    span = float(x[-1] - x[0])
    if span <= 0:
        return None
    slope = theil_sen_slope(x, y)
    intercept = median(y - slope * x)
    residuals = y - (intercept + slope * x)
    noise = 1.4826 * median(np.abs(residuals - median(residuals)))
    quarter = max(2, y.size // 4)
    return Trend(
        slope=slope,
        growth=slope * span,
        noise=noise,
        level=median(y),
        first=float(y[:quarter].mean()),
        last=float(y[-quarter:].mean()),
    )


def _final_trend(times: np.ndarray, trace: np.ndarray) -> tuple[Trend, np.ndarray] | None:
    """The trend of the final quarter of a trace (at least MIN_TRACE_POINTS samples), and the
    samples before it; None when the trace is too short to have both."""
    y = np.asarray(trace, dtype=np.float64)
    if y.size < 2 * MIN_TRACE_POINTS:
        return None
    final = max(MIN_TRACE_POINTS, y.size // 4)
    trend = queue_trend(np.asarray(times, dtype=np.float64)[-final:], y[-final:])
    return None if trend is None else (trend, y[:-final])


def final_quarter_trend(times: np.ndarray, trace: np.ndarray) -> Trend | None:
    """The trend of the final quarter of a trace alone (None when the trace is too short)."""
    found = _final_trend(times, trace)
    return None if found is None else found[0]


def rising_at_end(times: np.ndarray, trace: np.ndarray) -> Trend | None:
    """The backlog clearly rises over the final quarter of the window, beyond what the queue's
    own scatter before it explains (an overload that began late in the window): that final
    quarter's trend, or None.

    The final quarter's trend is `growing` (Trend.growing on those samples alone) and its
    growth is at least NOISE_FACTOR x the standard deviation of the trace before it: a queue in
    steady state does not climb four of its standard deviations within a quarter.
    """
    found = _final_trend(times, trace)
    if found is None:
        return None
    trend, before = found
    if trend.growing and trend.growth >= NOISE_FACTOR * float(np.std(before)):
        return trend
    return None


def settled_at_end(trace: np.ndarray, trend: Trend) -> bool:
    """A trace that rose over the window (`trend`, growing) has settled by its end: its final
    quarter's mean is above the quarter before it by less than an eighth of the window's
    growth (half of the quarter's share of it that a queue still growing at that slope would
    add) or than twice the standard error of that difference, whichever is larger. A queue
    that steps up to a higher steady level when the load steps up (a failover, a profile's
    plateau) rises over the window and then hovers; one that grows keeps rising into the
    final quarter."""
    y = np.asarray(trace, dtype=np.float64)
    quarter = y.size // 4
    if quarter < MIN_TRACE_POINTS:
        return False
    last, before = y[-quarter:], y[-2 * quarter : -quarter]
    error = math.sqrt((float(last.var(ddof=1)) + float(before.var(ddof=1))) / quarter)
    return float(last.mean() - before.mean()) < max(trend.growth / 8.0, 2.0 * error)


def falling_at_end(times: np.ndarray, trace: np.ndarray) -> bool:
    """The backlog is clearly falling over the final quarter of the window (it drains).

    The final quarter of the trace (at least MIN_TRACE_POINTS samples) has a Theil-Sen trend
    that falls by at least MIN_GROWTH requests and by at least NOISE_FACTOR x the scatter
    around that trend. A queue that grows, or hovers, is never falling by this rule.
    """
    found = _final_trend(times, trace)
    if found is None:
        return False
    trend = found[0]
    return -trend.growth >= max(MIN_GROWTH, NOISE_FACTOR * trend.noise)


#: A slow rise is judged on this many equal batches of a replication's trace.
SLOW_BATCHES = 6
#: The pooled rise over the replications must exceed this many of its standard errors.
SLOW_GROWTH_Z = 6.0


@dataclass(frozen=True)
class Rise:
    """How much a queue trace's last third stands above its first third, with its noise."""

    rise: float  # mean of the last third - mean of the first third (requests)
    variance: float  # variance of `rise` for a queue in steady state (batch means)
    span: float  # seconds between the centres of the two thirds


def trace_rise(times: np.ndarray, trace: np.ndarray) -> Rise | None:
    """The rise of a trace's last third over its first, and the variance a steady queue's rise
    would have: the trace is cut into SLOW_BATCHES equal batches, and the scatter of the batch
    means around their own straight line (a growing queue's growth is not noise) is the
    scatter of a batch mean; a third is SLOW_BATCHES / 3 batches, so the rise's variance is
    2 x that scatter^2 / (SLOW_BATCHES / 3). None when the trace is too short."""
    y = np.asarray(trace, dtype=np.float64)
    x = np.asarray(times, dtype=np.float64)
    size = y.size // SLOW_BATCHES
    if size < 2 or x.size != y.size or not np.all(np.isfinite(y)):
        return None
    y, x = y[: size * SLOW_BATCHES], x[: size * SLOW_BATCHES]
    means = y.reshape(SLOW_BATCHES, size).mean(axis=1)
    centres = x.reshape(SLOW_BATCHES, size).mean(axis=1)
    slope, intercept = np.polyfit(centres, means, 1)
    residuals = means - (intercept + slope * centres)
    scatter = float(np.sum(residuals**2)) / (SLOW_BATCHES - 2)
    third = SLOW_BATCHES // 3
    rise = float(means[-third:].mean() - means[:third].mean())
    span = float(centres[-third:].mean() - centres[:third].mean())
    return Rise(rise=rise, variance=2.0 * scatter / third, span=span)


def slow_growth(rises: Sequence[Rise]) -> float | None:
    """The growth rate (requests per second) of a queue whose replications rise together
    beyond their noise: the summed rise is at least MIN_GROWTH requests a replication and
    SLOW_GROWTH_Z standard errors (the replications' variances summed); None otherwise."""
    if not rises:
        return None
    total = sum(r.rise for r in rises)
    error = math.sqrt(sum(r.variance for r in rises))
    if total < MIN_GROWTH * len(rises) or total < SLOW_GROWTH_Z * error:
        return None
    return total / sum(r.span for r in rises)


def net_growth_is_clear(admitted: int, completed: int) -> bool:
    """Admitted requests outran completed ones by more than counting noise could explain.

    For a stable queue admissions and completions differ by the change in queue length, a few
    requests; for an overloaded one by (arrival rate - capacity) x window. The margin is four
    Poisson standard deviations of the admissions, so slight overloads are left to the trace.
    """
    net = admitted - completed
    return net >= max(MIN_GROWTH, 4.0 * math.sqrt(max(admitted, 0)))


def finite_or_none(value: float | None) -> float | None:
    """A float for JSON: NaN and infinities become None (null)."""
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def sanitise(value: object) -> object:
    """Recursively replace NaN/inf floats by None and numpy scalars by Python numbers."""
    if isinstance(value, dict):
        return {key: sanitise(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [sanitise(item) for item in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return finite_or_none(float(value))
    return value
