"""The exact model, W, the parameter map p, and the SVD read-back into heads."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lmlab.errors import LmlabError
from lmlab.studies.linear_attention.mhla import (
    Heads,
    heads_from_w,
    mhla,
    mhla_prefixes,
    n_independent,
    p_distance,
    p_from_w,
    random_heads,
    w_from_p,
    w_matrix,
)

F64 = torch.float64
dims = st.integers(1, 4)
seeds = st.integers(0, 2**31 - 1)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def paper_mhla(heads: Heads, Z: torch.Tensor) -> torch.Tensor:
    """The paper's formula, literally: Z_p = Z^T (d x n); last column of sum_h V_h Z_p (Z_p^T Q_h Z_p)."""
    Zp = Z.T
    out = sum(heads.V[h] @ Zp @ (Zp.T @ heads.Q[h] @ Zp) for h in range(heads.n_heads))
    return out[:, -1]


def test_golden_one_dimensional():
    # d = 1: y = V (z_1^2 + z_2^2) Q z_2 = 2 * (1 + 4) * 3 * 2 = 60
    heads = Heads(torch.tensor([[[2.0]]]), torch.tensor([[[3.0]]]))
    assert mhla(heads, torch.tensor([[1.0], [2.0]])).item() == 60.0
    assert mhla_prefixes(heads, torch.tensor([[1.0], [2.0]]))[:, 0].tolist() == [6.0, 60.0]


def test_golden_two_dimensional():
    # S = z1 z1^T + z2 z2^T = [[1,0],[0,0]] + [[1,1],[1,1]] = [[2,1],[1,1]]; z_n = (1, 1)
    # Q z_n = (1, 0); S Q z_n = (2, 1); V = I -> (2, 1)
    heads = Heads(torch.eye(2)[None], torch.tensor([[[1.0, 0.0], [0.0, 0.0]]]))
    Z = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    assert mhla(heads, Z).tolist() == [2.0, 1.0]


@settings(max_examples=30, deadline=None)
@given(d=dims, d_out=dims, H=st.integers(1, 5), n=st.integers(1, 6), seed=seeds)
def test_mhla_is_the_papers_formula(d, d_out, H, n, seed):
    g = gen(seed)
    heads = random_heads(g, H, d, d_out)
    Z = torch.randn(n, d, generator=g, dtype=F64)
    want = paper_mhla(heads, Z)
    assert torch.allclose(mhla(heads, Z), want, rtol=1e-12, atol=1e-12 * float(want.abs().max()))


@settings(max_examples=20, deadline=None)
@given(d=dims, H=st.integers(1, 4), n=st.integers(1, 6), seed=seeds)
def test_every_prefix_is_its_own_example(d, H, n, seed):
    g = gen(seed)
    heads = random_heads(g, H, d)
    Z = torch.randn(3, n, d, generator=g, dtype=F64)
    pref = mhla_prefixes(heads, Z)
    for t in range(n):
        assert torch.allclose(pref[:, t], mhla(heads, Z[:, : t + 1]), rtol=1e-12, atol=1e-13)


@settings(max_examples=20, deadline=None)
@given(d=dims, H=st.integers(1, 4), seed=seeds, c=st.floats(0.1, 10.0))
def test_invisible_reparameterizations(d, H, seed, c):
    """(c V_h, Q_h / c) and a permutation of heads change neither the function nor p."""
    g = gen(seed)
    heads = random_heads(g, H, d)
    perm = torch.randperm(H, generator=g)
    other = Heads(heads.V[perm] * c, heads.Q[perm] / c)
    Z = torch.randn(4, 5, d, generator=g, dtype=F64)
    assert torch.allclose(mhla(heads, Z), mhla(other, Z), rtol=1e-10, atol=1e-12)
    assert p_distance(other, heads, relative=True) < 1e-12


@settings(max_examples=25, deadline=None)
@given(d=dims, d_out=dims, H=st.integers(1, 6), seed=seeds)
def test_svd_read_back(d, d_out, H, seed):
    """heads_from_w gives at most min(d_out d, d^2) heads with exactly the same W (so the same p)."""
    g = gen(seed)
    heads = random_heads(g, H, d, d_out)
    W = w_matrix(heads)
    back = heads_from_w(W, d)
    assert back.n_heads <= min(H, d_out * d, d * d)
    assert torch.allclose(w_matrix(back), W, atol=1e-12 * float(W.abs().max()))
    assert p_distance(back, heads, relative=True) < 1e-12


@settings(max_examples=25, deadline=None)
@given(d=dims, d_out=dims, seed=seeds)
def test_p_map_is_the_symmetric_part(d, d_out, seed):
    """w_from_p is a right inverse of p_from_w, of minimal Frobenius norm."""
    g = gen(seed)
    W = torch.randn(d_out * d, d * d, generator=g, dtype=F64)
    p = p_from_w(W, d)
    assert p.shape == (d_out, n_independent(d))
    W_min = w_from_p(p, d)
    assert torch.allclose(p_from_w(W_min, d), p, atol=1e-12)
    assert torch.linalg.norm(W_min) <= torch.linalg.norm(W) + 1e-12
    # Adding an antisymmetric part in (j, k) changes W but not p.
    A = torch.randn(d_out, d, d, d, generator=g, dtype=F64)
    anti = (A - A.transpose(1, 2)).reshape(d_out * d, d * d)
    assert torch.allclose(p_from_w(W + anti, d), p, atol=1e-12)


def test_p_distance_sees_different_functions():
    g = gen(0)
    a, b = random_heads(g, 2, 3), random_heads(g, 2, 3)
    assert p_distance(a, b) > 0.1
    assert p_distance(a, a) == 0.0
    with pytest.raises(LmlabError, match="shapes differ"):
        p_distance(a, random_heads(g, 2, 3, 1))


def test_heads_validate_shapes():
    with pytest.raises(LmlabError, match="Q must be"):
        Heads(torch.zeros(2, 3, 4), torch.zeros(2, 3, 3))
    with pytest.raises(LmlabError, match="expected V"):
        Heads(torch.zeros(3, 4), torch.zeros(2, 3, 3))
    with pytest.raises(LmlabError, match="token width"):
        mhla(Heads(torch.zeros(1, 2, 2), torch.zeros(1, 2, 2)), torch.zeros(3, 5))
    with pytest.raises(LmlabError, match="W must have shape"):
        heads_from_w(torch.zeros(4, 5), 2)
