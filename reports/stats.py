"""Summary statistics over seeds (mean, std, Student-t 95% CI), Welch's difference CI, Spearman's rho.

scipy is not a dependency. The t distribution is computed exactly for integer degrees of freedom
from its closed form (Abramowitz & Stegun 26.7.3-26.7.4); for the non-integer degrees of freedom
of Welch's test it goes through the regularized incomplete beta function (continued fraction,
Numerical Recipes 6.4). Quantiles are found by bisection.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["Summary", "Welch", "spearman", "summarize", "t_quantile", "welch"]


def _beta_cf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz; Numerical Recipes 6.4)."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        for num in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta function I_x(a, b) for a, b > 0 and 0 <= x <= 1."""
    if x <= 0.0 or x >= 1.0:
        return 0.0 if x <= 0.0 else 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):  # the continued fraction converges fast on this side
        return math.exp(log_front) * _beta_cf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_cf(b, a, 1.0 - x) / b


def _t_central_prob(t: float, df: float) -> float:
    """P(|T| < t) for a Student-t variable with ``df`` degrees of freedom (t >= 0)."""
    if df != int(df):  # P(|T| >= t) = I_{df / (df + t^2)}(df / 2, 1 / 2)
        return 1.0 - _betainc(df / 2.0, 0.5, df / (df + t * t))
    df = int(df)
    theta = math.atan(t / math.sqrt(df))
    c2 = math.cos(theta) ** 2
    if df % 2 == 1:  # A&S 26.7.3: 2/pi (theta + sin cos (1 + 2/3 cos^2 + 2*4/(3*5) cos^4 + ...))
        term = total = 1.0
        for k in range(3, df, 2):
            term *= c2 * (k - 1) / k
            total += term
        series = math.sin(theta) * math.cos(theta) * total if df > 1 else 0.0
        return 2.0 / math.pi * (theta + series)
    term = total = 1.0  # A&S 26.7.4: sin (1 + 1/2 cos^2 + 1*3/(2*4) cos^4 + ...)
    for k in range(2, df - 1, 2):
        term *= c2 * (k - 1) / k
        total += term
    return math.sin(theta) * total


def t_quantile(p: float, df: float) -> float:
    """Quantile ``p`` (0.5 < p < 1) of Student's t with ``df`` > 0 degrees of freedom.

    Args:
        p: probability, e.g. 0.975 for a two-sided 95% interval.
        df: degrees of freedom (n - 1 for n seeds; any positive real, e.g. Welch-Satterthwaite).
    """
    if not 0.5 < p < 1.0:
        raise ValueError(f"p must lie in (0.5, 1), got {p}")
    if not math.isfinite(df) or df <= 0:
        raise ValueError(f"df must be a positive number, got {df}")
    target = 2.0 * p - 1.0  # P(|T| < q) for the upper quantile q
    lo, hi = 0.0, 1.0
    while _t_central_prob(hi, df) < target:
        hi *= 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if _t_central_prob(mid, df) < target:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12 * hi:
            break
    return 0.5 * (lo + hi)


@dataclass(frozen=True)
class Summary:
    """Mean, std (ddof=1) and 95% CI half-width of n values; NaN where undefined (n < 2)."""

    n: int
    mean: float
    std: float
    ci95: float


def summarize(values: Iterable[float]) -> Summary:
    """Summarize the finite values (NaN/None dropped: an undefined metric is not a zero)."""
    xs = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    n = len(xs)
    if n == 0:
        return Summary(0, math.nan, math.nan, math.nan)
    mean = math.fsum(xs) / n
    if n == 1:
        return Summary(1, mean, math.nan, math.nan)
    std = math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (n - 1))
    return Summary(n, mean, std, t_quantile(0.975, n - 1) * std / math.sqrt(n))


@dataclass(frozen=True)
class Welch:
    """Difference of two means with Welch's 95% CI; ``df``/``low``/``high`` NaN where undefined."""

    diff: float  # mean_a - mean_b
    se: float  # sqrt(s_a^2 / n_a + s_b^2 / n_b)
    df: float  # Welch-Satterthwaite degrees of freedom
    low: float
    high: float

    @property
    def defined(self) -> bool:
        """True when the interval exists (both sides have n >= 2 and a known std)."""
        return not math.isnan(self.low)

    @property
    def contains_zero(self) -> bool | None:
        """Whether the CI contains 0; None when the CI is undefined."""
        return self.low <= 0.0 <= self.high if self.defined else None


def welch(a: Summary, b: Summary, level: float = 0.95) -> Welch:
    """Welch's CI for mean(a) - mean(b) from summary statistics (unequal variances).

    Args:
        a: mean, std (ddof = 1) and n of the first sample (e.g. our seeds).
        b: the same for the second sample (e.g. a published mean ± std over n runs).
        level: confidence level of the two-sided interval.

    df = (va + vb)^2 / (va^2 / (n_a - 1) + vb^2 / (n_b - 1)) with v = s^2 / n (Welch 1947,
    Satterthwaite 1946). With n < 2 or an unknown std on either side the CI is undefined (NaN);
    with both stds 0 it is the single point ``diff``.
    """
    diff = a.mean - b.mean
    if min(a.n, b.n) < 2 or math.isnan(a.std) or math.isnan(b.std) or math.isnan(diff):
        return Welch(diff, math.nan, math.nan, math.nan, math.nan)
    va, vb = a.std**2 / a.n, b.std**2 / b.n
    se = math.sqrt(va + vb)
    if se == 0.0:
        return Welch(diff, 0.0, math.nan, diff, diff)
    df = (va + vb) ** 2 / (va**2 / (a.n - 1) + vb**2 / (b.n - 1))
    half = t_quantile(0.5 + level / 2.0, df) * se
    return Welch(diff, se, df, diff - half, diff + half)


def _average_ranks(xs: list[float]) -> list[float]:
    """Ranks 1..n of ``xs``; tied values share the average of the ranks they span."""
    order = sorted(range(len(xs)), key=lambda i: xs[i])
    ranks = [0.0] * len(xs)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and xs[order[j + 1]] == xs[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return ranks


def spearman(x: list[float], y: list[float]) -> float:
    """Spearman's rank correlation: Pearson's r of the average ranks (ties handled); NaN if undefined.

    Args:
        x, y: paired values (same length); NaN when n < 2 or either side is constant.
    """
    if len(x) != len(y):
        raise ValueError(f"x and y differ in length ({len(x)} vs {len(y)})")
    if len(x) < 2:
        return math.nan
    rx, ry = _average_ranks(list(x)), _average_ranks(list(y))
    mx, my = math.fsum(rx) / len(rx), math.fsum(ry) / len(ry)
    sxy = math.fsum((a - mx) * (b - my) for a, b in zip(rx, ry))
    sxx = math.fsum((a - mx) ** 2 for a in rx)
    syy = math.fsum((b - my) ** 2 for b in ry)
    return sxy / math.sqrt(sxx * syy) if sxx > 0 and syy > 0 else math.nan
