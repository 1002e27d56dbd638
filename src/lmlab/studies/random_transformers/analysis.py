"""Analyses of trained models: subspace concentration, needle attention heads, medians, capacity.

Every function takes plain tensors, arrays or numbers and validates its input at the boundary.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from lmlab.errors import LmlabError

__all__ = [
    "bits_per_parameter",
    "needle_head_scores",
    "paired_ratio_interval",
    "subspace_concentration",
    "subspace_gap_interval",
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
    return _fractions(x.T @ x / (len(x) - 1), k)  # (d, d) covariance


def _fractions(cov: Tensor, k: int) -> tuple[float, float]:
    total = float(cov.diagonal().sum())
    if total <= 0:
        return float("nan"), float("nan")
    eig = torch.linalg.eigvalsh(cov).flip(0).clamp_min(0)
    neuron = cov.diagonal().sort(descending=True).values
    return float(eig[:k].sum()) / total, float(neuron[:k].sum()) / total


def subspace_gap_interval(h: Tensor, k: int = 10, n_blocks: int = 50, n_boot: int = 200,
                          seed: int = 0, level: float = 0.95) -> tuple[float, float, float]:
    """The PC-minus-neuron gap of `subspace_concentration` with a block-bootstrap interval.

    Rows of h (N, d) are cut into `n_blocks` (at most N/2) contiguous blocks (rows come sequence by sequence,
    so a block holds whole sequences, up to its edges); blocks are resampled with replacement and
    the covariance is rebuilt from per-block sums, so each resample costs one eigendecomposition.
    Returns (gap, lo, hi).
    """
    if h.dim() != 2 or h.shape[0] < 4:
        raise LmlabError(f"subspace_gap_interval: expected (N >= 4, d) activations, got "
                         f"{tuple(h.shape)}")
    n_blocks = min(n_blocks, h.shape[0] // 2)  # at least two rows a block
    x = h.double()
    blocks = torch.tensor_split(x, n_blocks)
    counts = torch.tensor([len(b) for b in blocks], dtype=torch.float64)
    sums = torch.stack([b.sum(0) for b in blocks])  # (B, d)
    outer = torch.stack([b.T @ b for b in blocks])  # (B, d, d)

    def gap(w: Tensor) -> float:
        n = float(w @ counts)
        mean = (w @ sums) / n
        cov = (torch.einsum("b,bij->ij", w, outer) - n * torch.outer(mean, mean)) / (n - 1)
        pc, neuron = _fractions(cov, k)
        return pc - neuron

    point = gap(torch.ones(n_blocks, dtype=torch.float64))
    g = torch.Generator().manual_seed(seed)
    boots = []
    for _ in range(n_boot):
        idx = torch.randint(n_blocks, (n_blocks,), generator=g)
        boots.append(gap(torch.bincount(idx, minlength=n_blocks).double()))
    q = torch.tensor(boots, dtype=torch.float64)
    a = (1 - level) / 2
    return point, float(torch.quantile(q, a)), float(torch.quantile(q, 1 - a))


def paired_ratio_interval(a: Sequence[bool], b: Sequence[bool], scale: float, n_boot: int = 2000,
                          seed: int = 0, level: float = 0.95) -> tuple[float, float, float]:
    """Ratio scale * mean(a) / mean(b) of two 0/1 outcomes on the same items, with a paired
    bootstrap interval (items resampled together; done on the 2x2 table of outcomes, which is
    equivalent and costs nothing at any size). Returns (ratio, lo, hi); inf where mean(b) is 0."""
    x, y = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    if x.shape != y.shape or x.size == 0:
        raise LmlabError(f"paired_ratio_interval: need two equal, non-empty outcome vectors, got "
                         f"{x.shape} and {y.shape}")
    cells = np.array([np.sum(x & y), np.sum(x & ~y), np.sum(~x & y), np.sum(~x & ~y)])
    draws = np.random.default_rng(seed).multinomial(x.size, cells / x.size, size=n_boot)

    def ratio(na: np.ndarray, nb: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(nb > 0, scale * na / np.maximum(nb, 1), np.inf)

    r = ratio(draws[:, 0] + draws[:, 1], draws[:, 0] + draws[:, 2])
    point = float(ratio(np.array(cells[0] + cells[1]), np.array(cells[0] + cells[2])))
    q = (1 - level) / 2
    with np.errstate(invalid="ignore"):  # inf - inf between infinite draws (mean(b) = 0)
        return point, float(np.quantile(r, q)), float(np.quantile(r, 1 - q))


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
