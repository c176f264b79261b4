"""Summary statistics over seeds: mean, sample standard deviation and Student-t 95% CI.

scipy is not a dependency, so the t quantile is computed exactly for integer degrees of freedom
from the closed-form t distribution (Abramowitz & Stegun 26.7.3-26.7.4) and inverted by bisection.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["Summary", "summarize", "t_quantile"]


def _t_central_prob(t: float, df: int) -> float:
    """P(|T| < t) for a Student-t variable with integer ``df`` degrees of freedom (t >= 0)."""
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


def t_quantile(p: float, df: int) -> float:
    """Quantile ``p`` (0.5 < p < 1) of Student's t with integer ``df`` >= 1 degrees of freedom.

    Args:
        p: probability, e.g. 0.975 for a two-sided 95% interval.
        df: degrees of freedom (n - 1 for n seeds).
    """
    if not 0.5 < p < 1.0:
        raise ValueError(f"p must lie in (0.5, 1), got {p}")
    if int(df) != df or df < 1:
        raise ValueError(f"df must be a positive integer, got {df}")
    target = 2.0 * p - 1.0  # P(|T| < q) for the upper quantile q
    lo, hi = 0.0, 1.0
    while _t_central_prob(hi, int(df)) < target:
        hi *= 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if _t_central_prob(mid, int(df)) < target:
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
