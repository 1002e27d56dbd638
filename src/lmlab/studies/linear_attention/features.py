"""The cubic feature maps that turn MHLA into a linear predictor (Yau et al., Algorithm 1).

With S = Z^T Z (the paper's Z Z^T) and z = z_n the last token:

- `feature_matrix`: X(Z) in R^{d x d^2}, X[j, (k, l)] = S[j, k] z[l]. For every output a,
  MHLA(Z)[a] = <W_a, X(Z)>, with W_a the rows a d .. a d + d - 1 of W (`mhla.w_matrix`).
- `full_features`: vec(X(Z)) in R^{d^3}, the design of d_out ordinary least-squares problems.
  Columns (j, k, l) and (k, j, l) coincide, so the design has rank at most psi = d^2 (d + 1) / 2.
- `independent_features`: H(Z) in R^psi, entries S[j, k] z[l] for j <= k: the paper's
  certificate features, with MHLA(Z)[a] = <p_a(Theta), H(Z)>.
  With `scaled=True` the off-diagonal entries (j < k) are multiplied by sqrt(2), so that the
  Euclidean norm of coefficients in this basis equals the Frobenius norm of the W they stand for
  (the `svec` basis of symmetric matrices): minimum-norm least squares there is minimum-norm in W.

Every function takes Z of shape (..., n, d) (tokens as rows) and, with `prefixes=True`, returns
the features of every prefix Z[:t+1] at once, shape (..., n, features).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from lmlab.studies.linear_attention.mhla import F64, check_z, n_independent, pair_index

__all__ = [
    "feature_matrix",
    "full_features",
    "independent_features",
    "prefix_moments",
    "scale_vector",
]

SQRT2 = math.sqrt(2.0)


def prefix_moments(Z: Any, prefixes: bool) -> tuple[Tensor, Tensor]:
    """(S, z): the second moment Z^T Z and the last token, of the whole sequence or every prefix.

    Shapes: S (..., d, d) and z (..., d); with prefixes, S (..., n, d, d) and z (..., n, d).
    """
    Z = check_z(Z)
    if prefixes:
        return torch.cumsum(Z[..., :, None] * Z[..., None, :], dim=-3), Z
    return torch.einsum("...tj,...tk->...jk", Z, Z), Z[..., -1, :]


def feature_matrix(Z: Any, prefixes: bool = False) -> Tensor:
    """X(Z): (..., d, d^2) with X[j, k d + l] = (Z^T Z)[j, k] z_n[l]."""
    S, z = prefix_moments(Z, prefixes)
    d = z.shape[-1]
    X = S[..., :, :, None] * z[..., None, None, :]  # (..., j, k, l)
    return X.reshape(*X.shape[:-3], d, d * d)


def full_features(Z: Any, prefixes: bool = False) -> Tensor:
    """vec(X(Z)): (..., d^3), column (j, k, l) at j d^2 + k d + l."""
    X = feature_matrix(Z, prefixes)
    return X.reshape(*X.shape[:-2], -1)


def scale_vector(d: int, device: torch.device | str | None = None) -> Tensor:
    """Per-column factors from H to scaled H: sqrt(2) on the j < k columns, 1 elsewhere. (psi,)"""
    j, k = pair_index(d, device)
    return torch.where(j == k, 1.0, SQRT2).to(F64).repeat_interleave(d)


def independent_features(Z: Any, prefixes: bool = False, scaled: bool = False) -> Tensor:
    """H(Z): (..., psi) with entries (Z^T Z)[j, k] z_n[l], j <= k (pairs outer, l inner).

    `scaled` multiplies the j < k entries by sqrt(2) (see the module docstring).
    """
    Z = check_z(Z)
    d = Z.shape[-1]
    j, k = pair_index(d, Z.device)
    prods = Z[..., j] * Z[..., k]  # (..., n, P): z_t[j] z_t[k], only the pairs j <= k
    if scaled:
        prods = prods * torch.where(j == k, 1.0, SQRT2).to(F64)
    if prefixes:
        pairs, z = torch.cumsum(prods, dim=-2), Z  # (..., n, P), (..., n, d)
    else:
        pairs, z = prods.sum(dim=-2), Z[..., -1, :]  # (..., P), (..., d)
    H = pairs[..., :, None] * z[..., None, :]  # (..., P, d)
    return H.reshape(*H.shape[:-2], n_independent(d))
