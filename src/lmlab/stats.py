"""Statistics every study uses: medians, rank correlation, bootstrap intervals, NaN-safe metrics.

A difference or correlation "holds" only when its 95% interval excludes the null; the helpers
here return the interval so a claim can say so.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

__all__ = [
    "Interval",
    "bootstrap_ci",
    "bootstrap_diff",
    "get_metric",
    "median",
    "spearman",
    "spearman_ci",
    "wilson_lower",
]


def get_metric(metrics: Mapping[str, Any], key: str, default: float | None = None) -> float | None:
    """The numeric metric `key`, or `default` when it is missing, not a number, or NaN."""
    v = metrics.get(key)
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return default
    try:
        f = float(v)
    except (TypeError, ValueError):
        return default
    return default if math.isnan(f) else f


def median(values: Iterable[float | None]) -> float:
    """Median of the finite values (NaN and None dropped); NaN when none are left."""
    xs = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    return float(np.median(xs)) if xs else math.nan


def spearman(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    """Spearman's rank correlation and its two-sided p-value (NaN, NaN for fewer than 3 pairs
    or a constant input)."""
    from scipy.stats import spearmanr

    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    if a.size < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return math.nan, math.nan
    r = spearmanr(a, b)
    return float(r.statistic), float(r.pvalue)


@dataclass(frozen=True)
class Interval:
    """A point estimate with its percentile bootstrap interval."""

    value: float
    lo: float
    hi: float
    level: float = 0.95

    def excludes(self, null: float = 0.0) -> bool:
        """Whether the interval lies strictly on one side of `null`."""
        return bool(self.lo > null or self.hi < null)

    def above(self, null: float = 0.0) -> bool:
        """Whether the whole interval lies above `null`."""
        return bool(self.lo > null)

    def to_list(self) -> list[float]:
        return [self.value, self.lo, self.hi]

    def to_metrics(self, prefix: str, name: str = "mean") -> dict[str, float]:
        """``{prefix.name: value, prefix.ci_lo: lo, prefix.ci_hi: hi}``, the dotted-key style."""
        return {f"{prefix}.{name}": self.value, f"{prefix}.ci_lo": self.lo,
                f"{prefix}.ci_hi": self.hi}


def bootstrap_ci(
    values: Sequence[float] | np.ndarray,
    stat: Callable[[np.ndarray], float] = np.mean,
    *,
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> Interval:
    """Percentile bootstrap interval of `stat` over the rows of `values` (resampled with
    replacement). Rows may be scalars or vectors (then `stat` takes the resampled 2-D array)."""
    x = np.asarray(values, dtype=float)
    if x.shape[0] == 0:
        return Interval(math.nan, math.nan, math.nan, level)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, x.shape[0], size=(n_boot, x.shape[0]))
    boots = np.array([stat(x[i]) for i in idx])
    a = (1 - level) / 2
    return Interval(float(stat(x)), float(np.quantile(boots, a)), float(np.quantile(boots, 1 - a)),
                    level)


def spearman_ci(
    x: Sequence[float], y: Sequence[float], *, n_boot: int = 2000, level: float = 0.95,
    seed: int = 0,
) -> Interval:
    """Spearman's rho of (x, y) with a percentile bootstrap interval over the pairs.

    Resamples whose rank correlation is undefined (a constant column) are left out; with none
    left, or fewer than 3 pairs, the interval is NaN. The p-value is `spearman`'s.
    """
    rho, _ = spearman(x, y)
    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if a.shape != b.shape:
        raise ValueError("spearman_ci needs paired samples of equal length")
    rng = np.random.default_rng(seed)
    boots = [r for idx in rng.integers(0, a.size, size=(n_boot, a.size)) if a.size
             for r in (spearman(a[idx], b[idx])[0],) if not math.isnan(r)]
    if math.isnan(rho) or not boots:
        return Interval(rho, math.nan, math.nan, level)
    q = (1 - level) / 2
    return Interval(rho, float(np.quantile(boots, q)), float(np.quantile(boots, 1 - q)), level)


def bootstrap_diff(
    a: Sequence[float], b: Sequence[float], *, paired: bool = True, n_boot: int = 2000,
    level: float = 0.95, seed: int = 0,
) -> Interval:
    """Interval of mean(a) - mean(b): paired (same units, resampled together) or independent."""
    xa, xb = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if paired:
        if xa.shape != xb.shape:
            raise ValueError("paired bootstrap needs equal-length samples")
        return bootstrap_ci(xa - xb, np.mean, n_boot=n_boot, level=level, seed=seed)
    if xa.size == 0 or xb.size == 0:
        return Interval(math.nan, math.nan, math.nan, level)
    rng = np.random.default_rng(seed)
    da = xa[rng.integers(0, xa.size, size=(n_boot, xa.size))].mean(1)
    db = xb[rng.integers(0, xb.size, size=(n_boot, xb.size))].mean(1)
    d = da - db
    q = (1 - level) / 2
    return Interval(float(xa.mean() - xb.mean()), float(np.quantile(d, q)),
                    float(np.quantile(d, 1 - q)), level)


def wilson_lower(
    successes: np.ndarray | Sequence[int] | int, n: int, level: float = 0.95,
) -> np.ndarray:
    """The lower end of the two-sided Wilson score interval of a proportion `successes / n`
    (elementwise). Unlike the normal approximation it stays inside [0, 1] and behaves near 1,
    where an accuracy of 0.996 on 1,000 stories has a lower end of 0.9898."""
    if n <= 0:
        raise ValueError(f"n must be positive, got {n}")
    k = np.asarray(successes, dtype=float)
    z = NormalDist().inv_cdf(0.5 + level / 2)
    p = k / n
    z2n = z * z / n
    centre = p + z2n / 2
    spread = z * np.sqrt(p * (1 - p) / n + z2n / (4 * n))
    return np.clip((centre - spread) / (1 + z2n), 0.0, 1.0)
