"""`lmlab linear-attention certify` and `fit`, through the real entry point."""

from __future__ import annotations

import json

import numpy as np
import torch

from lmlab.runs import load_tensors
from lmlab.studies.linear_attention.data import memory_data, teacher_data
from lmlab.studies.linear_attention.mhla import Heads, mhla_prefixes, p_distance


def test_certify_identifiable_and_not(cli, tmp_path):
    Zg, _ = memory_data(seed=0, N=1024, d=2, frac_orthonormal=0.0)
    Zo, _ = memory_data(seed=0, N=1024, d=2, frac_orthonormal=1.0)
    np.save(tmp_path / "gauss.npy", Zg.numpy())
    np.savez(tmp_path / "ortho.npz", Z=Zo.numpy())
    r = cli("linear-attention", "certify", tmp_path / "gauss.npy", "--json")
    assert r.code == 0, r.err
    cert = json.loads(r.out)
    assert cert["identifiable"] is True and cert["lambda_min"] > 1e-3 and cert["psi"] == 40
    r = cli("linear-attention", "certify", tmp_path / "ortho.npz")
    assert r.code == 0, r.err
    assert "not identifiable" in r.out and "rank" in r.out


def test_certify_prefixes_counts_every_prefix(cli, tmp_path):
    data = teacher_data(seed=0, d=2, T=5, N=30)
    np.save(tmp_path / "z.npy", data.Z.numpy())
    r = cli("linear-attention", "certify", tmp_path / "z.npy", "--prefixes", "--json")
    assert r.code == 0 and json.loads(r.out)["n_examples"] == 150


def test_certify_errors_are_one_line(cli, tmp_path):
    r = cli("linear-attention", "certify", tmp_path / "missing.npy")
    assert r.code == 2 and "file not found" in r.err and "Traceback" not in r.err
    np.save(tmp_path / "flat.npy", np.zeros((3, 4)))
    r = cli("linear-attention", "certify", tmp_path / "flat.npy")
    assert r.code == 2 and "(N, n, d)" in r.err
    r = cli("linear-attention", "certify", tmp_path / "flat.npy", "--rtol", "-1")
    assert r.code == 2 and "--rtol" in r.err


def test_fit_writes_heads_that_compute_the_teacher(cli, tmp_path):
    data = teacher_data(seed=2, d=3, T=6, N=80, teacher_heads=2)
    np.savez(tmp_path / "d.npz", Z=data.Z.numpy(), Y=data.Y.numpy())
    out = tmp_path / "heads.safetensors"
    r = cli("linear-attention", "fit", tmp_path / "d.npz", "--prefixes", "--out", out, "--json")
    assert r.code == 0, r.err
    summary = json.loads(r.out)
    # the normal equations square the condition number: a train MSE of ~1e-16 x Var(Y) (4e-17
    # here) is float64 precision; 1e-20 held on one BLAS kernel and not on another
    assert summary["identifiable"] is True and summary["heads"] <= 9 and summary["train_mse"] < 1e-12
    tensors, state = load_tensors(out)
    heads = Heads(tensors["V"], tensors["Q"])
    assert p_distance(heads, data.teacher, relative=True) < 1e-9
    assert torch.allclose(mhla_prefixes(heads, data.Z), data.Y, atol=1e-10)
    assert state["d"] == 3


def test_fit_errors(cli, tmp_path):
    data = teacher_data(seed=0, d=2, T=4, N=10)
    np.save(tmp_path / "z.npy", data.Z.numpy())
    r = cli("linear-attention", "fit", tmp_path / "z.npy", "--out", tmp_path / "h.safetensors")
    assert r.code == 2 and "one .npz or .safetensors" in r.err
    np.savez(tmp_path / "noy.npz", Z=data.Z.numpy())
    r = cli("linear-attention", "fit", tmp_path / "noy.npz", "--out", tmp_path / "h.safetensors")
    assert r.code == 2 and "no targets 'Y'" in r.err
    np.savez(tmp_path / "bad.npz", Z=data.Z.numpy(), Y=np.zeros((3, 2)))
    r = cli("linear-attention", "fit", tmp_path / "bad.npz", "--out", tmp_path / "h.safetensors")
    assert r.code == 2 and "must be (N, d_out)" in r.err
    assert not (tmp_path / "h.safetensors").exists()
