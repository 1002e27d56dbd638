"""The synthetic data: the random teacher and associative memories."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lmlab.studies.linear_attention.data import (
    memory_data,
    memory_sequences,
    memory_truth,
    random_orthogonal,
    teacher_data,
)
from lmlab.studies.linear_attention.mhla import mhla, mhla_prefixes

F64 = torch.float64


def test_teacher_data_is_seeded_and_shaped():
    a = teacher_data(seed=3, d=2, T=7, N=5, n_val=4, d_out=1)
    b = teacher_data(seed=3, d=2, T=7, N=5, n_val=4, d_out=1)
    assert a.Z.shape == (5, 7, 2) and a.Y.shape == (5, 7, 1) and a.Z_val.shape == (4, 7, 2)
    assert torch.equal(a.Z, b.Z) and torch.equal(a.teacher.V, b.teacher.V)
    assert torch.equal(a.Y, mhla_prefixes(a.teacher, a.Z))
    assert not torch.equal(a.Z, teacher_data(seed=4, d=2, T=7, N=5, n_val=4).Z)


@settings(max_examples=10, deadline=None)
@given(d=st.integers(1, 5), seed=st.integers(0, 2**31 - 1), ortho=st.booleans())
def test_memory_targets_are_the_recall_formula(d, seed, ortho):
    """y = sum_i v_i <k_i, q> + |q|^2 zeta, the term the paper's displayed formula omits included."""
    g = torch.Generator().manual_seed(seed)
    Z = memory_sequences(g, 16, d, ortho)
    K, V = Z[:, :d, :d], Z[:, :d, d:]
    q, zeta = Z[:, d, :d], Z[:, d, d:]
    want = torch.einsum("nid,nie,ne->nd", V, K, q) + (q * q).sum(-1, keepdim=True) * zeta
    y = mhla(memory_truth(d), Z)
    assert torch.allclose(y[:, d:], want, atol=1e-12)
    assert torch.equal(y[:, :d], torch.zeros(16, d, dtype=F64))
    # the query is one of the stored keys
    assert ((K - q[:, None]).abs().sum(-1) < 1e-15).any(-1).all()


def test_orthonormal_keys_and_values():
    g = torch.Generator().manual_seed(0)
    Q = random_orthogonal(g, 10, 4)
    assert torch.allclose(Q @ Q.transpose(1, 2), torch.eye(4, dtype=F64).expand(10, 4, 4), atol=1e-12)
    Z = memory_sequences(g, 10, 4, True)
    K = Z[:, :4, :4]
    assert torch.allclose(K.transpose(1, 2) @ K, torch.eye(4, dtype=F64).expand(10, 4, 4), atol=1e-12)
    assert torch.allclose(Z[:, 4, :4].norm(dim=-1), torch.ones(10, dtype=F64))


def test_mixture_fraction_and_determinism():
    Z, Y = memory_data(seed=1, N=200, d=3, frac_orthonormal=0.25)
    K = Z[:, :3, :3]
    gram = K.transpose(1, 2) @ K
    n_ortho = int(((gram - torch.eye(3, dtype=F64)).abs().amax((1, 2)) < 1e-10).sum())
    assert n_ortho == 50
    Z2, Y2 = memory_data(seed=1, N=200, d=3, frac_orthonormal=0.25)
    assert torch.equal(Z, Z2) and torch.equal(Y, Y2)
