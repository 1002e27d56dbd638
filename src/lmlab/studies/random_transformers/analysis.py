"""Analyses of trained models: subspace concentration, needle attention heads, medians, capacity.

Every function takes plain tensors, arrays or numbers and validates its input at the boundary.
"""

from __future__ import annotations

import torch
from torch import Tensor

from lmlab.errors import LmlabError

__all__ = [
    "bits_per_parameter",
    "needle_head_scores",
    "subspace_concentration",
]


def subspace_concentration(h: Tensor, k: int = 10) -> tuple[float, float]:
    """Variance fraction of the top-k principal components and of the top-k neurons of h (N, d).

    The paper's Tables 4-5 statistic. The PC fraction is never below the neuron fraction (Ky
    Fan); the question is how much larger it is, i.e. whether the variance lies in a few
    directions that are not individual neurons.
    """
    if h.dim() != 2 or h.shape[0] < 2:
        raise LmlabError(f"subspace_concentration: expected (N >= 2, d) activations, got "
                         f"{tuple(h.shape)}")
    x = h.double() - h.double().mean(0)
    cov = x.T @ x / (len(x) - 1)  # (d, d)
    total = float(cov.diagonal().sum())
    if total <= 0:
        return float("nan"), float("nan")
    eig = torch.linalg.eigvalsh(cov).flip(0).clamp_min(0)
    neuron = cov.diagonal().sort(descending=True).values
    return float(eig[:k].sum()) / total, float(neuron[:k].sum()) / total


def needle_head_scores(pattern: Tensor, seq: Tensor, n_keys: int, vocab: int) -> dict[str, Tensor]:
    """Per-head attention of the needle task's two steps, from patterns (B, nh, T, T).

    - `value_to_marker`: mean attention from each value token to its own marker (one back);
    - `query_to_value`: mean attention from the query to the value of the matching key.
    Returns tensors of shape (nh,) each. `seq` (B, L) holds the whole sequences (inputs and
    answer), so the inputs are `seq[:, :T]`.
    """
    if pattern.dim() != 4 or pattern.shape[-1] != pattern.shape[-2]:
        raise LmlabError(f"needle_head_scores: expected (B, nh, T, T), got {tuple(pattern.shape)}")
    B, nh, T, _ = pattern.shape
    half = vocab // 2
    inp = seq[:, :T]
    v2m = torch.zeros(nh, dtype=torch.float64)
    q2v = torch.zeros(nh, dtype=torch.float64)
    n_v = n_q = 0
    for b in range(B):
        toks = inp[b].tolist()
        q = next(i for i, t in enumerate(toks) if t >= half + n_keys)
        key = toks[q] - half - n_keys
        marker = toks.index(key + half)
        for i in range(1, q, 2):  # value positions
            v2m += pattern[b, :, i, i - 1].double()
            n_v += 1
        q2v += pattern[b, :, q, marker + 1].double()
        n_q += 1
    return {"value_to_marker": v2m / max(n_v, 1), "query_to_value": q2v / max(n_q, 1)}


def bits_per_parameter(n_correct: int, n_labels: int, n_params: int) -> float:
    """The paper's capacity: correctly memorized labels x log2(#labels) / trainable parameters."""
    if n_params < 1 or n_labels < 2 or n_correct < 0:
        raise LmlabError(f"bits_per_parameter: bad arguments {n_correct}, {n_labels}, {n_params}")
    import math

    return n_correct * math.log2(n_labels) / n_params
