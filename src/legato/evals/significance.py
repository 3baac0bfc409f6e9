"""Tests that fit small samples, so a monitor neither fires on one bad run nor waits for hundreds.

Rates (a share of 0/1 outcomes) get the Wilson score interval, which stays inside [0, 1] and
keeps its coverage at n = 10 where the normal approximation does not. Means get Student's t:
one sample against a fixed threshold, or Welch's two-sample test against a trailing baseline
(unequal variances). Student's t distribution comes from the regularized incomplete beta
function, computed by its continued fraction (Numerical Recipes' ``betacf``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist, fmean, variance


def wilson(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The two-sided Wilson score interval of a rate at ``confidence`` (for a one-sided test
    at level a, pass ``1 - 2a``)."""
    if n == 0:
        return 0.0, 1.0
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def t_sf(t: float, df: float) -> float:
    """P(T > t) for Student's t with ``df`` degrees of freedom."""
    if math.isinf(t):
        return 0.0 if t > 0 else 1.0
    tail = 0.5 * _betainc(df / 2, 0.5, df / (df + t * t))
    return tail if t > 0 else 1 - tail


def greater_than(sample: Sequence[float], value: float) -> float:
    """One-sided p-value that the mean of ``sample`` exceeds ``value`` (one-sample t)."""
    n = len(sample)
    if n < 2:
        return 1.0
    mean, sd = fmean(sample), math.sqrt(variance(sample))
    if sd == 0:
        return 0.0 if mean > value else 1.0
    return t_sf((mean - value) / (sd / math.sqrt(n)), n - 1)


def welch_greater(a: Sequence[float], b: Sequence[float]) -> float:
    """One-sided p-value that the mean of ``a`` exceeds the mean of ``b`` (Welch's t)."""
    if len(a) < 2 or len(b) < 2:
        return 1.0
    va, vb = variance(a) / len(a), variance(b) / len(b)
    diff = fmean(a) - fmean(b)
    if va + vb == 0:
        return 0.0 if diff > 0 else 1.0
    t = diff / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    return t_sf(t, df)


def _betainc(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b)."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    front = math.exp(
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    if x < (a + 1) / (a + b + 2):
        return front * _betacf(a, b, x) / a
    return 1 - front * _betacf(b, a, 1 - x) / b


def _betacf(a: float, b: float, x: float) -> float:
    tiny, eps = 1e-300, 3e-14
    qab, qap, qam = a + b, a + 1, a - 1
    c, d = 1.0, 1 - qab * x / qap
    d = 1 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        for aa in (m * (b - m) * x / ((qam + m2) * (a + m2)),
                   -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):  # fmt: skip
            d = 1 + aa * d
            d = 1 / (d if abs(d) > tiny else tiny)
            c = 1 + aa / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1) < eps:
            break
    return h
