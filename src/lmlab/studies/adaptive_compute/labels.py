"""Reward-vs-budget curves and their marginal gains: the labels a predictor learns.

For best-of-b (draw b samples, keep the one with the highest reward), the quality of query x at
budget b is q(x, b) = E[max(r_1, ..., r_b)]. It is non-decreasing and concave in b, so the gain
of the j-th sample, Delta(x, j) = q(x, j) - q(x, j-1), is non-increasing in j (q(x, 0) = 0 here:
no sample, no reward; rewards are taken as >= 0 for the budget-0 convention to make sense).

* Binary rewards with success probability p: q(b) = 1 - (1-p)^b, Delta(j) = p (1-p)^(j-1).
* N observed rewards (real or binary): the exact, unbiased estimate of E[max of b samples drawn
  without replacement from the N], from the sorted rewards r_(1) <= ... <= r_(N):
  E[max_b] = sum_{i=b..N} C(i-1, b-1) / C(N, b) * r_(i)  (r_(i) is the max of a b-subset exactly
  when the other b-1 members come from the i-1 smaller ones). No Monte Carlo.
"""

from __future__ import annotations

import numpy as np
from scipy.special import gammaln

__all__ = [
    "binary_curve",
    "binary_marginals",
    "curve_from_marginals",
    "expected_max_curve",
    "marginals_from_curve",
    "pilot_curves",
]


def binary_curve(p: np.ndarray | float, b_max: int) -> np.ndarray:
    """q(b) = 1 - (1-p)^b for b = 0..b_max: shape ``(*p.shape, b_max + 1)``."""
    p = np.clip(np.asarray(p, dtype=float), 0.0, 1.0)
    b = np.arange(b_max + 1)
    return 1.0 - (1.0 - p[..., None]) ** b


def binary_marginals(p: np.ndarray | float, b_max: int) -> np.ndarray:
    """Delta(j) = p (1-p)^(j-1) for j = 1..b_max: shape ``(*p.shape, b_max)``."""
    p = np.clip(np.asarray(p, dtype=float), 0.0, 1.0)
    j = np.arange(1, b_max + 1)
    return p[..., None] * (1.0 - p[..., None]) ** (j - 1)


def _log_comb(n: np.ndarray, k: np.ndarray) -> np.ndarray:
    return gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1)


def expected_max_curve(rewards: np.ndarray, b_max: int | None = None) -> np.ndarray:
    """Exact E[max of b of the N rewards] (subsets without replacement) for b = 0..b_max.

    `rewards` is ``(N,)`` or ``(n, N)`` (one row per query); the result has a trailing axis of
    length ``b_max + 1`` (default N) with q(0) = 0.
    """
    r = np.asarray(rewards, dtype=float)
    if r.ndim == 0 or r.shape[-1] == 0:
        raise ValueError("expected_max_curve needs at least one reward per query")
    if not np.all(np.isfinite(r)):
        raise ValueError("rewards must be finite")
    n_samples = r.shape[-1]
    b_max = n_samples if b_max is None else int(b_max)
    if not 0 <= b_max <= n_samples:
        raise ValueError(f"b_max must lie in 0..{n_samples}, got {b_max}")
    s = np.sort(r, axis=-1)  # r_(1) <= ... <= r_(N)
    i = np.arange(1, n_samples + 1)  # rank of each sorted reward
    out = np.zeros((*r.shape[:-1], b_max + 1))
    for b in range(1, b_max + 1):
        # weight of r_(i): C(i-1, b-1) / C(N, b), zero for i < b
        w = np.zeros(n_samples)
        ok = i >= b
        w[ok] = np.exp(_log_comb(i[ok] - 1.0, np.full(ok.sum(), b - 1.0)) - _log_comb(
            np.float64(n_samples), np.float64(b)))
        w /= w.sum()  # the weights sum to 1 exactly in theory; remove rounding
        out[..., b] = s @ w
    return out


def marginals_from_curve(curve: np.ndarray) -> np.ndarray:
    """Delta(j) = q(j) - q(j-1) for j = 1..B from a curve q(0..B)."""
    return np.diff(np.asarray(curve, dtype=float), axis=-1)


def curve_from_marginals(marginals: np.ndarray, q0: float | np.ndarray = 0.0) -> np.ndarray:
    """The curve q(0..B) from marginals Delta(1..B) and q(0)."""
    m = np.asarray(marginals, dtype=float)
    q0 = np.broadcast_to(np.asarray(q0, dtype=float), m.shape[:-1])
    return np.concatenate([q0[..., None], q0[..., None] + np.cumsum(m, axis=-1)], axis=-1)


def pilot_curves(rewards: np.ndarray, m: int, b_max: int | None = None) -> np.ndarray:
    """Exact curves of a method that has already drawn the first `m` samples (its pilots) and
    adds b - m more drawn without replacement from the other N - m: q(b) = E[max(M, max of
    b - m others)], M the pilots' best, for b = m..b_max (NaN below m; the pilots are paid for).

    Uses max(M, max_S r) = max_S max(M, r) for non-empty S, so it is the order-statistic curve of
    the others' rewards clipped below at M.
    """
    r = np.asarray(rewards, dtype=float)
    n_samples = r.shape[-1]
    b_max = n_samples if b_max is None else int(b_max)
    if not 1 <= m <= b_max <= n_samples:
        raise ValueError(f"need 1 <= m <= b_max <= N, got m={m}, b_max={b_max}, N={n_samples}")
    best = r[..., :m].max(axis=-1)
    out = np.full((*r.shape[:-1], b_max + 1), np.nan)
    out[..., m] = best
    if b_max > m:
        rest = np.maximum(r[..., m:], best[..., None])
        out[..., m + 1:] = expected_max_curve(rest, b_max - m)[..., 1:]
    return out
