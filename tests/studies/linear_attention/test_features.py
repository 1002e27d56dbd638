"""The cubic feature maps: the identity <W, X(Z)> = MHLA(Z), and the rank of the design."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lmlab.studies.linear_attention.features import (
    feature_matrix,
    full_features,
    independent_features,
    scale_vector,
)
from lmlab.studies.linear_attention.mhla import (
    mhla,
    mhla_prefixes,
    n_independent,
    p_map,
    random_heads,
    w_matrix,
)

F64 = torch.float64
seeds = st.integers(0, 2**31 - 1)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_golden_feature_matrix():
    # Z rows z1 = (1, 0), z2 = (1, 2): S = [[2, 2], [2, 4]], z_n = (1, 2)
    Z = torch.tensor([[1.0, 0.0], [1.0, 2.0]], dtype=F64)
    X = feature_matrix(Z)  # X[j, 2k + l] = S[j, k] z_n[l]
    assert X.tolist() == [[2.0, 4.0, 2.0, 4.0], [2.0, 4.0, 4.0, 8.0]]
    # H: pairs (0,0), (0,1), (1,1), each times z_n
    assert independent_features(Z).tolist() == [2.0, 4.0, 2.0, 4.0, 4.0, 8.0]
    s = 2**0.5
    assert torch.allclose(independent_features(Z, scaled=True),
                          torch.tensor([2.0, 4.0, 2 * s, 4 * s, 4.0, 8.0], dtype=F64))


@settings(max_examples=40, deadline=None)
@given(d=st.integers(1, 5), d_out=st.integers(1, 4), H=st.integers(1, 5), n=st.integers(1, 8),
       seed=seeds, scale=st.sampled_from([1e-3, 1.0, 30.0]))
def test_feature_map_identity(d, d_out, H, n, seed, scale):
    """<W_a, X(Z)> = MHLA(Z)[a] = <p_a, H(Z)> to 1e-10 (relative to the output scale)."""
    g = gen(seed)
    heads = random_heads(g, H, d, d_out)
    Z = torch.randn(6, n, d, generator=g, dtype=F64) * scale
    y = mhla(heads, Z)
    W = w_matrix(heads).reshape(d_out, d, d * d)
    via_w = torch.einsum("ajm,bjm->ba", W, feature_matrix(Z))
    via_p = independent_features(Z) @ p_map(heads).T
    tol = 1e-10 * max(float(y.abs().max()), 1e-300)
    assert float((via_w - y).abs().max()) <= tol
    assert float((via_p - y).abs().max()) <= tol


@settings(max_examples=20, deadline=None)
@given(d=st.integers(1, 4), n=st.integers(1, 7), seed=seeds)
def test_prefix_features_are_features_of_prefixes(d, n, seed):
    Z = torch.randn(2, n, d, generator=gen(seed), dtype=F64)
    for fn in (full_features, independent_features):
        pref = fn(Z, prefixes=True)
        for t in range(n):
            assert torch.allclose(pref[:, t], fn(Z[:, : t + 1]), rtol=1e-12, atol=1e-14)


def test_scaled_features_are_a_column_scaling():
    Z = torch.randn(5, 4, 3, generator=gen(1), dtype=F64)
    assert torch.allclose(independent_features(Z, scaled=True),
                          independent_features(Z) * scale_vector(3))


def test_prefix_identity_against_mhla_prefixes():
    g = gen(2)
    heads = random_heads(g, 3, 4)
    Z = torch.randn(3, 9, 4, generator=g, dtype=F64)
    via_p = independent_features(Z, prefixes=True) @ p_map(heads).T
    assert torch.allclose(via_p, mhla_prefixes(heads, Z), rtol=1e-11, atol=1e-13)


def test_design_rank_is_psi():
    """On Gaussian inputs the d^3-column design has rank exactly d^2 (d + 1) / 2: 6, 18, 40."""
    g = gen(3)
    ranks = {}
    for d in (2, 3, 4):
        X = full_features(torch.randn(6 * n_independent(d), 7, d, generator=g, dtype=F64))
        ranks[d] = int(torch.linalg.matrix_rank(X))
        assert X.shape[1] == d**3
    assert ranks == {2: 6, 3: 18, 4: 40}
