"""Multi-head linear attention (MHLA), exactly, in float64.

Yau et al. write an input as Z in R^{d x n}, one column per token. Here a sequence is a tensor of
shape (n, d), one *row* per token (the paper's Z transposed), so the paper's Z Z^T is `Z.T @ Z`
= sum_t z_t z_t^T and z_n is `Z[-1]`. A model is Theta = {(V_h, Q_h)}, h = 1..H, stored as

    V: (H, d_out, d)   value matrices
    Q: (H, d, d)       fused key-query matrices

and predicts, for the last token,

    y = sum_h V_h (Z^T Z) Q_h z_n                       (no softmax, no normalization)

For autoregressive data every prefix Z[:t] is an example of its own (`mhla_prefixes`).

The function an MHLA computes depends on Theta only through

    W = sum_h vec(V_h) vec(Q_h)^T   in R^{(d_out d) x d^2}   (row-major vec: V[a, j] -> a d + j)

and, because Z^T Z is symmetric, only through the symmetrized coefficients p(Theta) (the paper's
parameter map; `p_map`). Two models compute the same function iff their p agree, so models are
compared by `p_distance`, never by raw weights: (c V_h, Q_h / c), permuted heads, and the
antisymmetric part of W are all invisible to the function.

Everything here is torch float64 (CPU or GPU); NumPy arrays are accepted wherever a tensor is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from lmlab.errors import LmlabError

__all__ = [
    "Heads",
    "as64",
    "check_z",
    "heads_from_w",
    "mhla",
    "mhla_prefixes",
    "n_independent",
    "p_distance",
    "p_from_w",
    "p_map",
    "pair_index",
    "random_heads",
    "w_from_p",
    "w_matrix",
]

F64 = torch.float64


def as64(x: Any, device: torch.device | str | None = None) -> Tensor:
    """A float64 tensor of `x` (array, tensor or nested list), on `device` if given."""
    t = x if isinstance(x, Tensor) else torch.as_tensor(np.asarray(x))
    return t.to(dtype=F64, device=device if device is not None else t.device)


@dataclass(frozen=True)
class Heads:
    """The parameters of an MHLA: V (H, d_out, d) and Q (H, d, d), float64 tensors."""

    V: Tensor
    Q: Tensor

    def __post_init__(self) -> None:
        V, Q = as64(self.V), as64(self.Q)
        if V.dim() != 3 or Q.dim() != 3:
            raise LmlabError(
                f"heads: expected V (H, d_out, d) and Q (H, d, d), got {tuple(V.shape)} and {tuple(Q.shape)}"
            )
        H, _, d = V.shape
        if tuple(Q.shape) != (H, d, d):
            raise LmlabError(f"heads: V has shape {tuple(V.shape)}, so Q must be {(H, d, d)}, got {tuple(Q.shape)}")
        object.__setattr__(self, "V", V)
        object.__setattr__(self, "Q", Q.to(V.device))

    @property
    def n_heads(self) -> int:
        return self.V.shape[0]

    @property
    def d(self) -> int:
        return self.V.shape[2]

    @property
    def d_out(self) -> int:
        return self.V.shape[1]


def check_z(Z: Any, d: int | None = None) -> Tensor:
    """Z as a float64 tensor of shape (..., n, d), with a one-line error for a wrong shape."""
    Z = as64(Z)
    if Z.dim() < 2:
        raise LmlabError(f"Z must have shape (..., n, d), got {tuple(Z.shape)}")
    if d is not None and Z.shape[-1] != d:
        raise LmlabError(f"Z has token width {Z.shape[-1]} but the model expects d = {d}")
    return Z


def mhla(heads: Heads, Z: Any) -> Tensor:
    """The prediction for the last token of each sequence: Z (..., n, d) -> (..., d_out)."""
    Z = check_z(Z, heads.d).to(heads.V.device)
    S = torch.einsum("...tj,...tk->...jk", Z, Z)  # (..., d, d): the paper's Z Z^T
    q = torch.einsum("hkl,...l->...hk", heads.Q, Z[..., -1, :])  # (..., H, d): Q_h z_n
    s = torch.einsum("...jk,...hk->...hj", S, q)  # (..., H, d)
    return torch.einsum("haj,...hj->...a", heads.V, s)  # (..., d_out)


def mhla_prefixes(heads: Heads, Z: Any) -> Tensor:
    """The prediction at every prefix: Z (..., n, d) -> (..., n, d_out); row t sees Z[..., :t+1, :]."""
    Z = check_z(Z, heads.d).to(heads.V.device)
    S = torch.cumsum(Z[..., :, None] * Z[..., None, :], dim=-3)  # (..., n, d, d)
    q = torch.einsum("hkl,...tl->...thk", heads.Q, Z)  # (..., n, H, d)
    s = torch.einsum("...tjk,...thk->...thj", S, q)
    return torch.einsum("haj,...thj->...ta", heads.V, s)


def random_heads(
    gen: torch.Generator, n_heads: int, d: int, d_out: int | None = None, scale: float | None = None
) -> Heads:
    """Gaussian heads with entries N(0, scale^2); scale defaults to 1/sqrt(d) (the paper's script)."""
    d_out = d if d_out is None else d_out
    s = d**-0.5 if scale is None else scale
    V = torch.randn(n_heads, d_out, d, generator=gen, dtype=F64) * s
    Q = torch.randn(n_heads, d, d, generator=gen, dtype=F64) * s
    return Heads(V, Q)


# -- the learned matrix W and the parameter map p ------------------------------------------------
def w_matrix(heads: Heads) -> Tensor:
    """W = sum_h vec(V_h) vec(Q_h)^T, shape (d_out d, d^2), row-major vec."""
    H = heads.n_heads
    return heads.V.reshape(H, -1).T @ heads.Q.reshape(H, -1)


def heads_from_w(W: Any, d: int, rtol: float = 1e-12) -> Heads:
    """Fold a learned W (d_out d, d^2) back into at most min(d_out d, d^2) heads by SVD.

    W = sum_h s_h u_h v_h^T; V_h = Fold(sqrt(s_h) u_h), Q_h = Fold(sqrt(s_h) v_h), Fold being the
    row-major reshape. Singular values below `rtol * s_max` are dropped, so the number of heads is
    the numerical rank of W.
    """
    W = as64(W)
    if W.dim() != 2 or W.shape[1] != d * d or W.shape[0] % d:
        raise LmlabError(f"W must have shape (d_out*{d}, {d * d}), got {tuple(W.shape)}")
    d_out = W.shape[0] // d
    U, s, Vh = torch.linalg.svd(W, full_matrices=False)
    r = int((s > rtol * s[0]).sum()) if s.numel() and s[0] > 0 else 0
    root = s[:r].sqrt()
    V = (U[:, :r] * root).T.reshape(r, d_out, d)
    Q = (Vh[:r] * root[:, None]).reshape(r, d, d)
    return Heads(V, Q)


def n_independent(d: int) -> int:
    """psi = d^2 (d + 1) / 2: the number of distinct cubic features (Z^T Z)_{jk} z_{n,l}, j <= k."""
    return d * d * (d + 1) // 2


def pair_index(d: int, device: torch.device | str | None = None) -> tuple[Tensor, Tensor]:
    """The pairs (j, k), j <= k, in row-major upper-triangle order: the order of p and H."""
    jk = torch.triu_indices(d, d, device=device)
    return jk[0], jk[1]


def p_from_w(W: Any, d: int) -> Tensor:
    """p(W): (d_out, psi) with p_a[{j,k}, l] = W[a,j,k,l] + W[a,k,j,l] (j < k), W[a,j,j,l] (j = k).

    Column order: pair (j, k) from `pair_index` outer, l inner.
    """
    W = as64(W)
    d_out = W.shape[0] // d
    W4 = W.reshape(d_out, d, d, d)  # [a, j, k, l]
    sym = W4 + W4.transpose(1, 2)  # W[a,j,k,l] + W[a,k,j,l]
    j, k = pair_index(d, W.device)
    p = torch.where((j == k)[None, :, None], W4[:, j, k, :], sym[:, j, k, :])  # (d_out, pairs, d)
    return p.reshape(d_out, -1)


def w_from_p(p: Any, d: int) -> Tensor:
    """The minimum-Frobenius-norm W with p(W) = p: each off-diagonal p split equally over (j,k), (k,j)."""
    p = as64(p)
    d_out = p.shape[0]
    j, k = pair_index(d, p.device)
    P = p.reshape(d_out, len(j), d)
    half = torch.where((j == k)[None, :, None], P, P / 2)
    W4 = torch.zeros(d_out, d, d, d, dtype=F64, device=p.device)
    W4[:, j, k, :] = half
    W4[:, k, j, :] = half
    return W4.reshape(d_out * d, d * d)


def p_map(heads: Heads) -> Tensor:
    """The paper's parameter map p(Theta), shape (d_out, psi): equal iff the functions are equal."""
    return p_from_w(w_matrix(heads), heads.d)


def p_distance(a: Heads | Any, b: Heads | Any, relative: bool = False) -> float:
    """||p(a) - p(b)||_F for heads or p arrays; `relative` divides by ||p(b)||_F (b: the reference)."""
    pa = p_map(a) if isinstance(a, Heads) else as64(a)
    pb = p_map(b) if isinstance(b, Heads) else as64(b)
    if pa.shape != pb.shape:
        raise LmlabError(f"p_distance: shapes differ ({tuple(pa.shape)} vs {tuple(pb.shape)})")
    dist = float(torch.linalg.norm(pa - pb.to(pa.device)))
    if relative:
        ref = float(torch.linalg.norm(pb))
        return dist / ref if ref > 0 else (float("inf") if dist > 0 else 0.0)
    return dist
