"""The certificate of identifiability and the dataset reader behind `certify`."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lmlab.errors import LmlabError
from lmlab.studies.linear_attention.certificate import certify, load_sequences, second_moment
from lmlab.studies.linear_attention.data import gaussian_sequences, memory_data
from lmlab.studies.linear_attention.features import independent_features
from lmlab.studies.linear_attention.mhla import n_independent

F64 = torch.float64


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@settings(max_examples=8, deadline=None)
@given(d=st.integers(1, 4), seed=st.integers(0, 2**31 - 1))
def test_gaussian_inputs_are_identifiable(d, seed):
    Z = gaussian_sequences(gen(seed), 4 * n_independent(d), 6, d)
    cert = certify(Z)
    assert cert.identifiable and cert.lambda_min > 0
    assert cert.rank == cert.psi == n_independent(d)


def test_orthonormal_memories_are_not():
    """Orthonormal keys and values: lambda_min <= 1e-10 (measured ~5e-16); Gaussian: > 0 (~0.03)."""
    Z, _ = memory_data(seed=0, N=2048, d=4, frac_orthonormal=1.0)
    cert = certify(Z)
    assert abs(cert.lambda_min) <= 1e-10 and not cert.identifiable
    assert cert.rank < cert.psi == 288
    Zg, _ = memory_data(seed=0, N=2048, d=4, frac_orthonormal=0.0)
    gauss = certify(Zg)
    assert gauss.identifiable and gauss.lambda_min > 1e-3


def test_second_moment_is_the_mean_outer_product():
    Z = torch.randn(50, 5, 3, generator=gen(1), dtype=F64)
    lam, n = second_moment(Z, chunk=7)
    H = independent_features(Z)
    assert n == 50
    assert torch.allclose(lam, H.T @ H / 50, rtol=1e-12, atol=1e-14)
    lam_p, n_p = second_moment(Z, prefixes=True, chunk=3)
    Hp = independent_features(Z, prefixes=True).reshape(-1, 18)
    assert n_p == 250
    assert torch.allclose(lam_p, Hp.T @ Hp / 250, rtol=1e-12, atol=1e-14)


def test_too_few_examples_are_not_identifiable():
    Z = gaussian_sequences(gen(2), n_independent(3) - 1, 4, 3)
    assert not certify(Z).identifiable


def test_load_sequences_formats(tmp_path):
    Z = np.random.default_rng(0).standard_normal((6, 4, 2))
    np.save(tmp_path / "z.npy", Z)
    np.savez(tmp_path / "z.npz", Z=Z, Y=Z[:, -1])
    np.savez(tmp_path / "one.npz", data=Z.astype(np.float32))
    from safetensors.numpy import save_file

    save_file({"Z": Z}, str(tmp_path / "z.safetensors"))
    for name in ("z.npy", "z.npz", "z.safetensors", "one.npz"):
        got = load_sequences(tmp_path / name)
        assert got.dtype == F64 and torch.allclose(got, torch.from_numpy(Z), atol=1e-6)
    assert load_sequences(tmp_path / "z.npz", key="Z").shape == (6, 4, 2)


def test_load_sequences_errors(tmp_path):
    with pytest.raises(LmlabError, match="file not found"):
        load_sequences(tmp_path / "missing.npy")
    np.save(tmp_path / "flat.npy", np.zeros((3, 4)))
    with pytest.raises(LmlabError, match=r"shape \(N, n, d\)"):
        load_sequences(tmp_path / "flat.npy")
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(LmlabError, match="cannot read"):
        load_sequences(tmp_path / "obj.npy")
    bad = np.zeros((2, 3, 2))
    bad[0, 0, 0] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    with pytest.raises(LmlabError, match="NaN"):
        load_sequences(tmp_path / "nan.npy")
    np.savez(tmp_path / "two.npz", A=np.zeros((2, 3, 2)), B=np.zeros((2, 3, 2)))
    with pytest.raises(LmlabError, match="several arrays"):
        load_sequences(tmp_path / "two.npz")
    with pytest.raises(LmlabError, match="no array 'C'"):
        load_sequences(tmp_path / "two.npz", key="C")
    (tmp_path / "z.csv").write_text("1,2\n")
    with pytest.raises(LmlabError, match="unsupported format"):
        load_sequences(tmp_path / "z.csv")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(LmlabError, match="cannot read"):
        load_sequences(tmp_path / "junk.npz")
