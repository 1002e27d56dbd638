"""The intruder detector: the issue's properties, a numpy reference, target sets, reports, cache."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lmlab.errors import LmlabError
from lmlab.studies.intruders.detect import (
    BaseCache,
    analyze,
    analyze_matrix,
    decompose_base,
    effective_rank,
    epsilon_sweep,
    intruder_count,
    layer_index,
    match_targets,
    module_kind,
    select_matrices,
    target_sets_of,
    top_left_singular,
)

# Derandomized: the random-matrix properties hold with overwhelming probability, and CI must
# not depend on which seeds hypothesis happens to draw.
FEW = settings(max_examples=15, deadline=None, derandomize=True)


def reference(w0: torch.Tensor, wt: torch.Tensor, k: int = 10, eps: float = 0.5):
    """The paper's Algorithm 1 written plainly: full SVD of both, max |cos| of the top-k."""
    u0 = np.linalg.svd(w0.double().numpy(), full_matrices=False)[0]
    ut = np.linalg.svd(wt.double().numpy(), full_matrices=False)[0]
    m = np.abs(ut[:, :k].T @ u0).max(axis=1)
    return int((m < eps).sum()), m


def gaussian(m: int, n: int, seed: int) -> torch.Tensor:
    return torch.randn(m, n, generator=torch.Generator().manual_seed(seed)) * 0.02


def rank_one(m: int, n: int, seed: int, dtype=torch.float32) -> torch.Tensor:
    """u v^T for random unit u (m) and v (n)."""
    g = torch.Generator().manual_seed(seed + 1000)
    u = torch.randn(m, 1, generator=g, dtype=torch.float64)
    v = torch.randn(n, 1, generator=g, dtype=torch.float64)
    return ((u / u.norm()) @ (v / v.norm()).T).to(dtype)


def sigma1(w: torch.Tensor) -> float:
    return float(torch.linalg.svdvals(w.double())[0])


# -- the properties ------------------------------------------------------------------


@FEW
@given(seed=st.integers(0, 10_000), shape=st.sampled_from([(384, 384), (96, 160), (160, 96)]))
def test_identical_weights_have_no_intruders(seed, shape):
    w0 = gaussian(*shape, seed)
    rep = analyze_matrix("w", w0, w0.clone())
    assert rep.count == 0 and intruder_count(w0, w0) == 0
    assert min(rep.max_cos) > 1 - 1e-5  # every tuned vector is a base vector (float32)
    assert rep.dw_norm == 0 and rep.effective_rank_delta == 0


@FEW
@given(seed=st.integers(0, 10_000))
def test_a_random_rank_one_update_of_size_sigma1_is_an_intruder(seed):
    w0 = gaussian(384, 384, seed)
    wt = w0 + sigma1(w0) * rank_one(384, 384, seed)
    rep = analyze_matrix("w", w0, wt)
    assert rep.count >= 1
    assert intruder_count(w0, wt) == rep.count
    assert rep.dw_over_sigma_k > 1  # ||dW||_2 = sigma_1 > sigma_10


@FEW
@given(seed=st.integers(0, 10_000))
def test_dense_noise_of_one_percent_rms_adds_no_intruder(seed):
    w0 = gaussian(384, 384, seed)
    g = torch.Generator().manual_seed(seed + 1)
    wt = w0 + torch.randn(384, 384, generator=g) * 0.01 * w0.pow(2).mean().sqrt()
    rep = analyze_matrix("w", w0, wt)
    assert rep.count == 0
    # a full-rank update: its effective rank is a large fraction of the dimension
    assert rep.effective_rank_delta > 0.5 * 384


def test_the_same_update_at_a_tenth_of_the_size_is_not_an_intruder():
    w0 = gaussian(384, 384, 0)
    assert intruder_count(w0, w0 + 0.1 * sigma1(w0) * rank_one(384, 384, 0)) == 0


@FEW
@given(seed=st.integers(0, 10_000), flips=st.lists(st.booleans(), min_size=384, max_size=384))
def test_blind_to_the_sign_of_singular_vectors(seed, flips):
    w0 = gaussian(384, 384, seed)
    wt = w0 + sigma1(w0) * rank_one(384, 384, seed)
    rep = analyze_matrix("w", w0, wt)
    # -W has the same singular vectors with flipped signs
    for a, b in ((-w0, wt), (w0, -wt), (-w0, -wt)):
        other = analyze_matrix("w", a, b)
        assert other.count == rep.count
        np.testing.assert_allclose(other.max_cos, rep.max_cos, atol=1e-9)
    # flipping any base singular vectors (columns of U0) leaves every |cos| as it was
    base = decompose_base(w0)
    ut, _ = top_left_singular(wt)
    signs = torch.tensor([-1.0 if f else 1.0 for f in flips], dtype=torch.float64)
    flipped = type(base)(base.shape, base.s, base.basis * signs, base.w)
    torch.testing.assert_close(flipped.cosines(ut), base.cosines(ut))
    torch.testing.assert_close(base.cosines(-ut), base.cosines(ut))


@FEW
@given(
    seed=st.integers(0, 10_000),
    shape=st.sampled_from([(64, 64), (48, 80), (80, 48), (12, 40), (40, 12)]),
    strength=st.floats(0.0, 2.0),
    k=st.integers(1, 12),
    eps=st.floats(0.05, 0.95),
)
def test_matches_the_plain_full_svd_reference(seed, shape, strength, k, eps):
    w0 = gaussian(*shape, seed).double()
    wt = w0 + strength * sigma1(w0) * rank_one(*shape, seed, torch.float64)
    count, m = reference(w0, wt, k, eps)
    rep = analyze_matrix("w", w0, wt, k=k, eps=eps)
    np.testing.assert_allclose(rep.max_cos, m, atol=1e-8)
    if np.all(np.abs(m - eps) > 1e-6):  # a value on the threshold may round either way
        assert rep.count == count == intruder_count(w0, wt, k, eps)


@FEW
@given(seed=st.integers(0, 10_000), scale=st.floats(1e-3, 1e3), k=st.integers(1, 10))
def test_invariant_to_a_positive_scale_of_both(seed, scale, k):
    w0 = gaussian(96, 64, seed).double()
    wt = w0 + sigma1(w0) * rank_one(96, 64, seed, torch.float64)
    a = analyze_matrix("w", w0, wt, k=k)
    b = analyze_matrix("w", scale * w0, scale * wt, k=k)
    assert a.count == b.count
    np.testing.assert_allclose(a.max_cos, b.max_cos, atol=1e-8)
    assert b.dw_over_sigma_k == pytest.approx(a.dw_over_sigma_k, rel=1e-7)
    assert b.effective_rank_delta == pytest.approx(a.effective_rank_delta, rel=1e-6)


def test_an_ill_conditioned_tall_base_falls_back_to_an_exact_svd():
    # singular values from 1 to 1e-10: the Gram route would lose the smallest directions
    g = torch.Generator().manual_seed(3)
    q1 = torch.linalg.qr(torch.randn(120, 40, generator=g, dtype=torch.float64))[0]
    q2 = torch.linalg.qr(torch.randn(40, 40, generator=g, dtype=torch.float64))[0]
    w0 = q1 * torch.logspace(0, -10, 40, dtype=torch.float64) @ q2.T
    wt = w0 + 0.9 * rank_one(120, 40, 3, torch.float64)
    count, m = reference(w0, wt)
    rep = analyze_matrix("w", w0, wt)
    np.testing.assert_allclose(rep.max_cos, m, atol=1e-7)
    assert rep.count == count
    assert (decompose_base(w0).w is None)  # the exact U0 was used


def test_k_larger_than_the_matrix_is_clipped():
    w0 = gaussian(6, 20, 0)
    rep = analyze_matrix("w", w0, w0 + sigma1(w0) * rank_one(6, 20, 0), k=50)
    assert len(rep.max_cos) == 6


# -- effective rank --------------------------------------------------------------------------


@FEW
@given(k=st.integers(1, 30), sigma=st.floats(1e-3, 1e3), seed=st.integers(0, 1000))
def test_effective_rank_of_a_rank_k_equal_sigma_matrix_is_k(k, sigma, seed):
    g = torch.Generator().manual_seed(seed)
    u = torch.linalg.qr(torch.randn(40, k, generator=g, dtype=torch.float64))[0]
    v = torch.linalg.qr(torch.randn(50, k, generator=g, dtype=torch.float64))[0]
    x = sigma * u @ v.T
    assert effective_rank(x) == pytest.approx(k, rel=1e-6)
    # the detector's Gram-based spectrum of the update agrees
    rep = analyze_matrix("w", torch.zeros(40, 50, dtype=torch.float64) + 1e-3 * torch.eye(40, 50,
                         dtype=torch.float64), 1e-3 * torch.eye(40, 50, dtype=torch.float64) + x)
    assert rep.effective_rank_delta == pytest.approx(k, rel=1e-6)
    assert rep.dw_norm == pytest.approx(sigma, rel=1e-9)


def test_effective_rank_of_a_decaying_spectrum_is_between_1_and_the_rank():
    x = torch.diag(torch.tensor([4.0, 2.0, 1.0, 0.5]))
    r = effective_rank(x)
    p = np.array([4, 2, 1, 0.5]) / 7.5
    assert r == pytest.approx(math.exp(-(p * np.log(p)).sum()))
    assert 1 < r < 4
    with pytest.raises(LmlabError, match="2-D"):
        effective_rank(torch.ones(3))


# -- many matrices ---------------------------------------------------------------------------

GPT_NAMES = {
    "tok_emb.weight": "embedding", "lm_head.weight": "head",
    "blocks.0.attn.q_proj.weight": "attn qv", "blocks.0.attn.k_proj.weight": "attn",
    "blocks.0.attn.v_proj.weight": "attn qv", "blocks.0.attn.o_proj.weight": "attn",
    "blocks.0.mlp.up_proj.weight": "mlp", "blocks.0.mlp.down_proj.weight": "mlp",
}
HF_NAMES = {
    "model.embed_tokens.weight": "embedding",
    "model.layers.3.self_attn.q_proj.weight": "attn qv",
    "model.layers.3.self_attn.o_proj.weight": "attn",
    "model.layers.3.mlp.gate_proj.weight": "mlp",
    "model.layers.3.mlp.down_proj.weight": "mlp",
    "roberta.encoder.layer.2.attention.self.query.weight": "attn qv",
    "roberta.encoder.layer.2.attention.self.key.weight": "attn",
    "roberta.encoder.layer.2.attention.self.value.weight": "attn qv",
    "roberta.encoder.layer.2.attention.output.dense.weight": "attn",
    "roberta.encoder.layer.2.intermediate.dense.weight": "mlp",
    "roberta.encoder.layer.2.output.dense.weight": "mlp",
    "roberta.embeddings.word_embeddings.weight": "embedding",
    "classifier.dense.weight": "head",
    "lm_head.dense.weight": "head",
}


@pytest.mark.parametrize("name,role", [*GPT_NAMES.items(), *HF_NAMES.items()])
def test_target_sets_are_recognised_from_names(name, role):
    sets = set(target_sets_of(name))
    if role in ("embedding", "head"):
        assert sets == set() and not match_targets(name, "all-linear")
    else:
        assert "all-linear" in sets
        assert ("attn" in sets) == role.startswith("attn")
        assert ("mlp" in sets) == (role == "mlp")
        assert ("qv" in sets) == role.endswith("qv")
    assert match_targets("blocks.0.attn.q_proj.weight", ["q_proj"])
    assert not match_targets("blocks.0.attn.q_proj.weight", ["proj"])


def test_layer_index_and_kind():
    assert layer_index("blocks.4.attn.q_proj.weight") == 4
    assert layer_index("model.layers.12.mlp.up_proj.weight") == 12
    assert layer_index("roberta.encoder.layer.2.output.dense.weight") == 2
    assert layer_index("lm_head.weight") is None
    assert module_kind("roberta.encoder.layer.2.output.dense.weight") == "ffn.out"
    assert module_kind("roberta.encoder.layer.2.attention.output.dense.weight") == "attn.out"
    assert module_kind("model.layers.1.self_attn.v_proj.weight") == "v_proj"


def gpt_like(seed: int, layers: int = 2, d: int = 48) -> dict[str, torch.Tensor]:
    """A state dict with lmlab GPT names: equal-shaped groups, biases and an embedding."""
    g = torch.Generator().manual_seed(seed)
    out = {"tok_emb.weight": torch.randn(50, d, generator=g)}
    for i in range(layers):
        for p in ("q_proj", "k_proj", "v_proj", "o_proj"):
            out[f"blocks.{i}.attn.{p}.weight"] = torch.randn(d, d, generator=g) * 0.02
            out[f"blocks.{i}.attn.{p}.bias"] = torch.zeros(d)
        out[f"blocks.{i}.mlp.up_proj.weight"] = torch.randn(2 * d, d, generator=g) * 0.02
        out[f"blocks.{i}.mlp.down_proj.weight"] = torch.randn(d, 2 * d, generator=g) * 0.02
    out["lm_head.weight"] = torch.randn(50, d, generator=g)
    return out


def tune(base: dict[str, torch.Tensor], names: list[str], seed: int = 0) -> dict[str, torch.Tensor]:
    tuned = {k: v.clone() for k, v in base.items()}
    for i, n in enumerate(names):
        tuned[n] = base[n] + 1.5 * sigma1(base[n]) * rank_one(*base[n].shape, seed + i)
    return tuned


def test_analyze_counts_per_matrix_and_per_target_set():
    base = gpt_like(0)
    hit = ["blocks.0.attn.q_proj.weight", "blocks.1.mlp.down_proj.weight",
           "blocks.1.attn.k_proj.weight", "lm_head.weight"]
    tuned = tune(base, hit)
    rep = analyze(base, tuned, device="cpu")
    assert len(rep.matrices) == 12 and "lm_head.weight" not in [m.name for m in rep.matrices]
    assert {m.name for m in rep.matrices if m.count} == set(hit[:3])
    assert rep.total == 3 and rep.by_target == {"all-linear": 3, "attn": 2, "mlp": 1, "qv": 1}
    assert rep.by_layer() == {0: 1, 1: 2}
    for m in rep.matrices:  # the batched analysis equals the one-matrix one
        one = analyze_matrix(m.name, base[m.name], tuned[m.name])
        assert one.count == m.count
        np.testing.assert_allclose(one.max_cos, m.max_cos, atol=1e-10)
    d = rep.to_dict()
    assert d["total"] == 3 and len(d["matrices"]) == 12 and "cos" not in d["matrices"][0]
    qv = analyze(base, tuned, targets="qv", device="cpu")
    assert [m.name for m in qv.matrices] == ["blocks.0.attn.q_proj.weight",
                                             "blocks.0.attn.v_proj.weight",
                                             "blocks.1.attn.q_proj.weight",
                                             "blocks.1.attn.v_proj.weight"]
    assert qv.total == 1
    named = analyze(base, tuned, names=["lm_head.weight"], device="cpu")
    assert named.total == 1


def test_epsilon_sweep_is_monotone_and_consistent():
    base = gpt_like(1)
    tuned = tune(base, ["blocks.0.attn.v_proj.weight", "blocks.0.mlp.up_proj.weight"])
    rep = analyze(base, tuned, device="cpu")
    sweep = epsilon_sweep(base, tuned, eps_values=(0.05, 0.3, 0.5, 0.9, 1.01), device="cpu")
    counts = list(sweep.values())
    assert counts == sorted(counts)
    assert sweep[0.5] == rep.total and sweep[1.01] == 10 * len(rep.matrices)
    assert sweep[0.05] <= rep.total
    w = epsilon_sweep(base["blocks.0.attn.v_proj.weight"], tuned["blocks.0.attn.v_proj.weight"],
                      eps_values=(0.5,))
    assert w == {0.5: 1}


def test_the_base_cache_is_reused_and_checked():
    base = {k: v.double() for k, v in gpt_like(2).items()}  # float64: never redone
    tuned = tune(base, ["blocks.0.attn.q_proj.weight"])
    cache = BaseCache()
    first = analyze(base, tuned, cache=cache, device="cpu")
    assert set(cache) == {m.name for m in first.matrices}
    held = {n: id(b) for n, b in cache.items()}
    again = analyze(base, tune(base, ["blocks.1.attn.q_proj.weight"]), cache=cache, device="cpu")
    assert {n: id(b) for n, b in cache.items()} == held  # nothing recomputed
    assert [m.name for m in again.matrices if m.count] == ["blocks.1.attn.q_proj.weight"]
    # a different base under the same names is detected and decomposed afresh
    other = {k: v.double() for k, v in gpt_like(3).items()}
    fresh = analyze(other, other, cache=cache, device="cpu")
    assert fresh.total == 0 and {n: id(b) for n, b in cache.items()} != held


def test_mismatched_names_and_shapes_are_one_error_listing_them():
    base = gpt_like(0)
    tuned = {k: v for k, v in base.items() if "blocks.1.mlp" not in k}
    tuned["blocks.0.attn.q_proj.weight"] = torch.zeros(48, 40)
    for i in range(5):
        tuned[f"blocks.{i + 2}.attn.q_proj.weight"] = torch.zeros(48, 48)
    with pytest.raises(LmlabError) as e:
        analyze(base, tuned, device="cpu")
    msg = str(e.value)
    assert "\n" not in msg and "8 of 17" in msg and "(4 more)" in msg
    assert "blocks.0.attn.q_proj.weight: base (48, 48) vs tuned (48, 40)" in msg
    with pytest.raises(LmlabError, match="no matrices"):
        analyze(base, base, targets=["nothing_here"], device="cpu")
    with pytest.raises(LmlabError, match="unknown target set"):
        analyze(base, base, targets="attention", device="cpu")
    with pytest.raises(LmlabError, match="k must be"):
        analyze(base, base, k=0, device="cpu")
    with pytest.raises(LmlabError, match="NaN"):
        intruder_count(torch.full((3, 3), math.nan), torch.ones(3, 3))


@FEW
@given(seed=st.integers(0, 10_000), strength=st.floats(0.0, 2.0),
       shape=st.sampled_from([(64, 64), (48, 80), (80, 48)]))
def test_float32_work_decides_the_same_counts_as_float64(seed, strength, shape):
    w0 = gaussian(*shape, seed)
    wt = w0 + strength * sigma1(w0) * rank_one(*shape, seed)
    fast = analyze_matrix("w", w0, wt)
    exact = analyze_matrix("w", w0, wt, exact=True)
    assert fast.count == exact.count
    np.testing.assert_allclose(fast.max_cos, exact.max_cos, atol=1e-4)


def test_a_direction_the_base_barely_uses_is_not_mistaken_for_an_intruder():
    # Singular values down to 1e-6: in float32 the base's smallest directions are below the
    # Gram's rounding floor. A large update along the base's last left singular vector is no
    # intruder (|cos| = 1 with it); the float32 basis cannot tell, so the base is redone.
    g = torch.Generator().manual_seed(5)
    q1 = torch.linalg.qr(torch.randn(96, 96, generator=g, dtype=torch.float64))[0]
    q2 = torch.linalg.qr(torch.randn(96, 96, generator=g, dtype=torch.float64))[0]
    w0 = q1 * torch.logspace(0, -6, 96, dtype=torch.float64) @ q2.T
    wt = w0 + 2.0 * q1[:, -1:] @ q2[:, -1:].T
    count, m = reference(w0, wt)
    assert count == 0 and m[0] > 0.99
    cache = BaseCache()
    rep = analyze({"w": w0.float()}, {"w": wt.float()}, names=["w"], cache=cache, device="cpu")
    assert rep.total == 0 and rep.matrices[0].max_cos[0] > 0.99
    assert cache["w"].exact  # the float32 decomposition was replaced


def test_stacked_decompositions_equal_one_at_a_time(monkeypatch):
    # On a GPU equal-shaped matrices go through eigh as one stack (on the CPU one at a time);
    # the stacked route, forced here on the CPU, gives the same reports.
    from lmlab.studies.intruders import detect

    base = gpt_like(4)
    tuned = tune(base, ["blocks.0.attn.o_proj.weight", "blocks.1.mlp.up_proj.weight"])
    one = analyze(base, tuned, device="cpu")
    monkeypatch.setattr(detect, "_chunks", lambda names, shape, dev: [names])
    stacked = analyze(base, tuned, device="cpu")
    assert [m.count for m in stacked.matrices] == [m.count for m in one.matrices]
    assert stacked.total == 2
    for a, b in zip(one.matrices, stacked.matrices, strict=True):
        np.testing.assert_allclose(a.max_cos, b.max_cos, atol=1e-5)
        assert a.effective_rank_delta == pytest.approx(b.effective_rank_delta, rel=1e-6)


def test_matrices_come_in_model_order():
    names = ["model.layers.10.mlp.down_proj.weight", "model.layers.2.self_attn.v_proj.weight",
             "model.layers.2.mlp.gate_proj.weight", "model.layers.2.self_attn.q_proj.weight",
             "model.layers.10.self_attn.o_proj.weight"]
    weights = {n: torch.zeros(2, 2) for n in names}
    assert select_matrices(weights) == [
        "model.layers.2.self_attn.q_proj.weight", "model.layers.2.self_attn.v_proj.weight",
        "model.layers.2.mlp.gate_proj.weight", "model.layers.10.self_attn.o_proj.weight",
        "model.layers.10.mlp.down_proj.weight"]
