"""Algorithm 1 of Yau et al.: learn an MHLA by ordinary least squares on the cubic features.

    fit = fit_mhla(Z, Y)                 # Z (N, n, d), Y (N, n, d_out): every prefix an example
    fit.predict(Z_test)                  # (N', n, d_out)
    heads = fit.heads()                  # at most d^2 heads computing the same function
    p_distance(fit.p, p_map(teacher))    # compare in p-space

The d_out regressions share one design. It is accumulated as normal equations, chunk by chunk
(`NormalEquations`), so N can grow without ever holding the design in memory: the state is the
psi x psi Gram matrix and psi x d_out cross moments (psi = d^2 (d + 1) / 2).

The design is built on the independent symmetric features in the sqrt(2)-scaled basis
(`features.independent_features(scaled=True)`): its columns are linearly independent for generic
data, and its minimum-norm solution is the minimum-Frobenius-norm W of the full d^3-column design
(the pseudo-inverse solution of the paper), also when the data do not identify W.

Squaring the design into normal equations squares its condition number; on the paper's Gaussian
data the Gram matrix has condition number ~1e2 (d = 4), so float64 loses nothing that matters
(held-out MSE / Var(y) ~ 1e-29 on a realizable teacher).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from lmlab.errors import LmlabError
from lmlab.studies.linear_attention.features import independent_features, scale_vector
from lmlab.studies.linear_attention.mhla import (
    F64,
    Heads,
    as64,
    heads_from_w,
    n_independent,
    w_from_p,
)

__all__ = [
    "RCOND",
    "Fit",
    "NormalEquations",
    "fit_mhla",
    "gradient_descent",
    "lstsq_min_norm",
    "solve_min_norm",
]

# Eigenvalues of the Gram matrix below RCOND * largest are treated as zero (rank deficiency).
# The Gram matrix is exact to about eps * ||G||, so a true zero eigenvalue comes out at a few
# hundred eps at most; the genuine directions of identifiable data sit orders of magnitude higher.
RCOND = 1e-11


@dataclass
class NormalEquations:
    """Running sums G = sum f f^T, B = sum f y^T, sum |y|^2 and the example count, in float64."""

    n_features: int
    n_outputs: int
    device: str = "cpu"
    G: Tensor = field(init=False, repr=False)
    B: Tensor = field(init=False, repr=False)
    yy: float = 0.0
    count: int = 0

    def __post_init__(self) -> None:
        self.G = torch.zeros(self.n_features, self.n_features, dtype=F64, device=self.device)
        self.B = torch.zeros(self.n_features, self.n_outputs, dtype=F64, device=self.device)

    def add(self, F: Any, Y: Any) -> None:
        """Add a chunk: F (m, n_features) features, Y (m, n_outputs) targets."""
        F, Y = as64(F, self.device), as64(Y, self.device)
        if F.dim() != 2 or F.shape[1] != self.n_features:
            raise LmlabError(f"features must be (m, {self.n_features}), got {tuple(F.shape)}")
        if tuple(Y.shape) != (F.shape[0], self.n_outputs):
            raise LmlabError(f"targets must be ({F.shape[0]}, {self.n_outputs}), got {tuple(Y.shape)}")
        self.G += F.T @ F
        self.B += F.T @ Y
        self.yy += float((Y * Y).sum())
        self.count += F.shape[0]

    def solve(self, rcond: float = RCOND) -> tuple[Tensor, int]:
        """The minimum-norm least-squares coefficients (n_features, n_outputs) and the rank used."""
        return solve_min_norm(self.G, self.B, rcond)

    def sse(self, coef: Tensor) -> float:
        """Sum of squared residuals of `coef` over everything added, from the sums alone.

        Cancellation limits it to about eps * sum |y|^2; compute held-out errors directly.
        """
        value = self.yy - 2 * float((coef * self.B).sum()) + float((coef * (self.G @ coef)).sum())
        return max(value, 0.0)

    def second_moment(self) -> Tensor:
        """G / count: the paper's Lambda_D when the features added are the unscaled H."""
        if self.count == 0:
            raise LmlabError("no examples were added")
        return self.G / self.count


def solve_min_norm(G: Tensor, B: Tensor, rcond: float = RCOND) -> tuple[Tensor, int]:
    """Minimum-norm solution of G x = B for a symmetric PSD G, by its eigendecomposition.

    Directions with eigenvalue <= rcond * max eigenvalue are left out (the pseudo-inverse).
    Returns (x, rank).
    """
    w, E = torch.linalg.eigh(G)
    if w.numel() == 0 or w[-1] <= 0:
        return torch.zeros_like(B), 0
    keep = w > rcond * w[-1]
    Ek = E[:, keep]
    return Ek @ ((Ek.T @ B) / w[keep, None]), int(keep.sum())


def gradient_descent(G: Tensor, B: Tensor, u0: Tensor, steps: int,
                     lr: float | None = None) -> Tensor:
    """`steps` full-batch gradient-descent steps on 1/2 u^T G u - <B, u>, from `u0`.

    With G = F^T F / m and B = F^T Y / m this is the least-squares objective
    ||F u - Y||^2 / (2 m) up to a constant, whose gradient is G u - B. The step is
    `lr` (default 1 / lambda_max(G), the largest that never diverges).
    """
    G, B, u = as64(G), as64(B, G.device), as64(u0, G.device).clone()
    if lr is None:
        top = float(torch.linalg.eigvalsh(G)[-1])
        lr = 1.0 / top if top > 0 else 0.0
    for _ in range(steps):
        u -= lr * (G @ u - B)
    return u


def lstsq_min_norm(F: Any, Y: Any) -> Tensor:
    """One-shot minimum-norm least squares on a design held in memory (LAPACK gelsd, on CPU)."""
    return torch.linalg.lstsq(as64(F, "cpu"), as64(Y, "cpu"), driver="gelsd").solution


@dataclass
class Fit:
    """The result of Algorithm 1: p (d_out, psi), the minimum-norm W, and fit statistics."""

    d: int
    p: Tensor
    rank: int
    n_examples: int
    train_mse: float
    normal: NormalEquations = field(repr=False)

    @property
    def W(self) -> Tensor:
        """The minimum-Frobenius-norm W (d_out d, d^2) computing the learned function."""
        return w_from_p(self.p, self.d)

    def heads(self, rtol: float = 1e-12) -> Heads:
        """The learned function as an MHLA with rank(W) <= d^2 heads (SVD of W)."""
        return heads_from_w(self.W, self.d, rtol)

    def predict(self, Z: Any, prefixes: bool = True) -> Tensor:
        """Predictions <p_a, H(Z)>: (..., n, d_out) with prefixes, else (..., d_out)."""
        return independent_features(as64(Z, self.p.device), prefixes) @ self.p.T


def _chunks(Z: Tensor, Y: Tensor, chunk: int) -> Iterable[tuple[Tensor, Tensor]]:
    for i in range(0, len(Z), chunk):
        yield Z[i : i + chunk], Y[i : i + chunk]


def fit_mhla(
    Z: Any = None,
    Y: Any = None,
    *,
    prefixes: bool = True,
    chunk: int = 64,
    batches: Iterable[tuple[Any, Any]] | None = None,
    rcond: float = RCOND,
    device: str = "cpu",
) -> Fit:
    """Algorithm 1: minimum-norm OLS on the cubic features; returns a `Fit`.

    Either `Z` (N, n, d) with `Y` (N, n, d_out) (targets at every prefix; with `prefixes=False`,
    Y is (N, d_out), the target of the last token), processed `chunk` sequences at a time; or
    `batches`, an iterable of such (Z, Y) pairs, for data that never sits in memory at once.
    """
    if batches is None:
        if Z is None or Y is None:
            raise LmlabError("fit_mhla needs Z and Y, or batches")
        Z, Y = as64(Z), as64(Y)
        want = Z.shape[:-1] if prefixes else Z.shape[:-2]
        if Z.dim() != 3 or Y.dim() < 2 or Y.shape[:-1] != want:
            shape = "(N, n, d_out)" if prefixes else "(N, d_out)"
            raise LmlabError(
                f"fit_mhla: Z must be (N, n, d) and Y {shape}; got Z {tuple(Z.shape)} and Y {tuple(Y.shape)}"
            )
        batches = _chunks(Z, Y, chunk)
    normal: NormalEquations | None = None
    d = 0
    for Zc, Yc in batches:
        Zc, Yc = as64(Zc, device), as64(Yc, device)
        F = independent_features(Zc, prefixes, scaled=True)
        F = F.reshape(-1, F.shape[-1])
        Yc = Yc.reshape(F.shape[0], -1)
        if normal is None:
            d = Zc.shape[-1]
            normal = NormalEquations(n_independent(d), Yc.shape[1], device)
        normal.add(F, Yc)
    if normal is None or normal.count == 0:
        raise LmlabError("fit_mhla: no data")
    u, rank = normal.solve(rcond)
    p = (u * scale_vector(d, u.device)[:, None]).T  # from the scaled basis: p = sqrt(2) u off-diagonal
    mse = normal.sse(u) / (normal.count * normal.n_outputs)
    return Fit(d=d, p=p, rank=rank, n_examples=normal.count, train_mse=mse, normal=normal)
