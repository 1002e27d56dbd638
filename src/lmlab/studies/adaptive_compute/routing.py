"""Routing each query to a weak (cheap) or a strong (costly) procedure.

A predictor scores each query with its expected gain from the strong procedure,
g(x) = E[r_strong - r_weak | x]. `route_fraction` sends the top alpha*n queries by score to the
strong procedure (exactly round(alpha*n): alpha = 0 is weak-only, alpha = 1 strong-only);
`route_threshold` sends each query whose score reaches a threshold (per query, no batch).
Ties break by query index. The average cost of a routing is c_weak + alpha (c_strong - c_weak).
"""

from __future__ import annotations

import numpy as np

__all__ = ["route_fraction", "route_threshold", "routed_quality", "routing_curve"]


def route_fraction(scores: np.ndarray, alpha: float) -> np.ndarray:
    """A boolean mask sending the round(alpha*n) highest-scoring queries to the strong procedure."""
    s = np.asarray(scores, dtype=float)
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
    n = s.shape[0]
    k = round(alpha * n)
    order = np.lexsort((np.arange(n), -s))  # highest score first, then lower index
    mask = np.zeros(n, dtype=bool)
    mask[order[:k]] = True
    return mask


def route_threshold(scores: np.ndarray, lam: float) -> np.ndarray:
    """A boolean mask sending each query with score >= lam to the strong procedure."""
    return np.asarray(scores, dtype=float) >= lam


def routed_quality(weak: np.ndarray, strong: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per-query quality of a routing: the strong result where routed, else the weak one."""
    return np.where(np.asarray(mask, dtype=bool), np.asarray(strong, dtype=float),
                    np.asarray(weak, dtype=float))


def routing_curve(weak: np.ndarray, strong: np.ndarray, scores: np.ndarray | None,
                  alphas: np.ndarray) -> np.ndarray:
    """Mean quality at each alpha; `scores=None` is random routing in expectation (exactly
    the mix (1 - k/n) weak + (k/n) strong of the means, k = round(alpha*n))."""
    w, s = np.asarray(weak, dtype=float), np.asarray(strong, dtype=float)
    n = w.shape[0]
    out = []
    for a in alphas:
        if scores is None:
            frac = round(a * n) / n
            out.append((1 - frac) * w.mean() + frac * s.mean())
        else:
            out.append(routed_quality(w, s, route_fraction(scores, a)).mean())
    return np.array(out)
