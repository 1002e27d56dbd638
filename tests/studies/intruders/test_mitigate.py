"""Intruder mitigation: agreement with PEFT, lambda's meaning, adapters, transposed layers."""

from __future__ import annotations

import copy

import pytest
import torch
from peft.tuners.lora.intruders import reduce_intruder_dimension

from lmlab.errors import LmlabError
from lmlab.studies.intruders.detect import intruder_count
from lmlab.studies.intruders.loading import load_adapter, merge_adapter
from lmlab.studies.intruders.mitigate import (
    reduce_intruders,
    reduce_intruders_in_adapter,
    reduce_intruders_in_peft_model,
)


@pytest.fixture(scope="module")
def planted(make_llama, plant):
    """A PEFT-wrapped tiny Llama whose every LoRA layer carries one planted intruder."""
    import peft

    pm = peft.get_peft_model(make_llama(seed=7),
                             peft.LoraConfig(r=4, lora_alpha=8, target_modules="all-linear"))
    plant(pm, seed=11)
    return pm


def lora_layers(model, adapter):
    return {n: m for n, m in model.named_modules()
            if hasattr(m, "lora_A") and adapter in getattr(m, "lora_A", {})}


def product(layer, adapter):
    return (layer.lora_B[adapter].weight @ layer.lora_A[adapter].weight).detach().double()


@pytest.mark.parametrize("lam,eps", [(0.75, 0.5), (0.0, 0.5), (0.3, 999.0)])
def test_agrees_with_peft_reduce_intruder_dimension(planted, lam, eps):
    theirs, ours = copy.deepcopy(planted), copy.deepcopy(planted)
    reduce_intruder_dimension(theirs, top_k=10, threshold_epsilon=eps, mitigation_lambda=lam,
                              logging_sink=None)
    counts = reduce_intruders_in_peft_model(ours, k=10, eps=eps, lam=lam)
    assert ours.active_adapter == theirs.active_adapter == "intruder_reduced"
    assert len(counts) == 14
    assert all(c == 1 for c in counts.values()) if eps == 0.5 else all(c == 10 for c in
                                                                       counts.values())
    la, lb = lora_layers(theirs, "intruder_reduced"), lora_layers(ours, "intruder_reduced")
    worst = 0.0
    for name in la:
        p_theirs, p_ours = product(la[name], "intruder_reduced"), product(lb[name], "intruder_reduced")
        worst = max(worst, float((p_ours - p_theirs).norm() / p_theirs.norm()))
        if eps > 1:  # every top-10 direction cut: the rank-4 truncation has near-ties
            continue
        # the factors agree too, up to the sign of each rank-1 component
        for f in ("lora_A", "lora_B"):
            a = getattr(la[name], f)["intruder_reduced"].weight.detach().double()
            b = getattr(lb[name], f)["intruder_reduced"].weight.detach().double()
            ax = 1 if f == "lora_A" else 0
            signs = torch.sign((a * b).sum(dim=ax, keepdim=True))
            torch.testing.assert_close(b * signs, a, rtol=1e-4, atol=1e-5)
    assert worst < (1e-5 if eps < 1 else 1e-4)
    # the original adapter is untouched and still selectable
    orig = lora_layers(ours, "default")
    for name, layer in lora_layers(planted, "default").items():
        torch.testing.assert_close(product(orig[name], "default"), product(layer, "default"))


def test_lambda_one_changes_nothing_and_lambda_zero_removes_the_intruder():
    g = torch.Generator().manual_seed(0)
    w0 = torch.randn(80, 64, generator=g, dtype=torch.float64) * 0.02
    s1 = torch.linalg.svdvals(w0)[0]
    u, v = torch.randn(80, 1, generator=g, dtype=torch.float64), torch.randn(1, 64, generator=g,
                                                                           dtype=torch.float64)
    b = torch.cat([u / u.norm() * (2 * s1).sqrt(), 1e-3 * torch.randn(80, 3, generator=g,
                                                                      dtype=torch.float64)], 1)
    a = torch.cat([v / v.norm() * (2 * s1).sqrt(), 1e-3 * torch.randn(3, 64, generator=g,
                                                                      dtype=torch.float64)], 0)
    scaling = 0.5  # so scaling * B A carries sigma_1 along u v^T
    assert intruder_count(w0, w0 + scaling * b @ a) == 1
    b1, a1, n1 = reduce_intruders(w0, b, a, scaling, lam=1.0)
    assert n1 == 1
    torch.testing.assert_close(b1 @ a1, b @ a, rtol=1e-10, atol=1e-12)
    b0, a0, n0 = reduce_intruders(w0, b, a, scaling, lam=0.0)
    assert n0 == 1 and b0.shape == b.shape and a0.shape == a.shape
    assert intruder_count(w0, w0 + scaling * b0 @ a0) == 0
    # in between, the intruder's singular value shrinks with lambda
    sig = []
    for lam in (1.0, 0.75, 0.5, 0.25):
        bl, al, _ = reduce_intruders(w0, b, a, scaling, lam=lam)
        sig.append(float(torch.linalg.svdvals(w0 + scaling * bl @ al)[0]))
    assert sig == sorted(sig, reverse=True)


def test_no_intruder_returns_the_factors_unchanged():
    g = torch.Generator().manual_seed(1)
    w0 = torch.randn(40, 30, generator=g)
    b, a = 1e-3 * torch.randn(40, 2, generator=g), 1e-3 * torch.randn(2, 30, generator=g)
    b2, a2, n = reduce_intruders(w0, b, a, 2.0)
    assert n == 0 and torch.equal(b2, b) and torch.equal(a2, a)
    assert b2.data_ptr() != b.data_ptr()  # copies


def test_the_adapter_level_function_matches_the_peft_model_one(tmp_path, planted):
    planted.save_pretrained(tmp_path / "ad")
    base = {k.replace("base_model.model.", "").replace(".base_layer", ""): v
            for k, v in planted.state_dict().items() if "lora_" not in k}
    adapter = load_adapter(tmp_path / "ad")
    reduced, counts = reduce_intruders_in_adapter(base, adapter, lam=0.0)
    assert sum(counts.values()) == 14
    ours = copy.deepcopy(planted)
    reduce_intruders_in_peft_model(ours, lam=0.0)
    for name, layer in lora_layers(ours, "intruder_reduced").items():
        key = name.replace("base_model.model.", "") + ".weight"
        torch.testing.assert_close(reduced.b[key].double() @ reduced.a[key].double(),
                                   product(layer, "intruder_reduced"), rtol=1e-6, atol=1e-8)
    merged = merge_adapter(base, reduced)
    for key in counts:
        assert intruder_count(base[key], merged[key]) == 0, key


def test_a_transposed_update_is_mitigated_in_its_own_orientation():
    # an embedding adapter: W0 (num_embeddings x dim) + scaling * (B A)^T with A: r x num_emb
    from lmlab.studies.intruders.loading import LoraAdapter

    g = torch.Generator().manual_seed(2)
    w0 = torch.randn(50, 24, generator=g, dtype=torch.float64)
    s1 = torch.linalg.svdvals(w0)[0]
    a = torch.randn(2, 50, generator=g, dtype=torch.float64) * 1e-3
    b = torch.randn(24, 2, generator=g, dtype=torch.float64) * 1e-3
    x, y = torch.randn(50, generator=g, dtype=torch.float64), torch.randn(24, generator=g,
                                                                           dtype=torch.float64)
    a[0] += x / x.norm() * s1.sqrt()
    b[:, 0] += y / y.norm() * s1.sqrt()
    ad = LoraAdapter({}, {"emb.weight": a}, {"emb.weight": b}, {"emb.weight": 1.5},
                     {"emb.weight": True})
    base = {"emb.weight": w0}
    assert intruder_count(w0, merge_adapter(base, ad)["emb.weight"]) == 1
    reduced, counts = reduce_intruders_in_adapter(base, ad, lam=0.0)
    assert counts == {"emb.weight": 1}
    assert reduced.a["emb.weight"].shape == a.shape and reduced.b["emb.weight"].shape == b.shape
    assert intruder_count(w0, merge_adapter(base, reduced)["emb.weight"]) == 0


def test_bad_arguments_are_one_line_errors():
    w0, b, a = torch.zeros(4, 5), torch.zeros(4, 2), torch.zeros(2, 5)
    with pytest.raises(LmlabError, match=r"lambda must be in \[0, 1\]"):
        reduce_intruders(w0, b, a, 1.0, lam=1.5)
    with pytest.raises(LmlabError, match="shapes do not fit"):
        reduce_intruders(w0, a, b, 1.0)
    with pytest.raises(LmlabError, match="needs a PEFT model"):
        reduce_intruders_in_peft_model(torch.nn.Linear(2, 2))


def test_a_mitigated_adapter_saves_in_peft_format(tmp_path, planted, make_llama):
    import peft

    planted.save_pretrained(tmp_path / "ad")
    base = {k.replace("base_model.model.", "").replace(".base_layer", ""): v.detach().clone()
            for k, v in planted.state_dict().items() if "lora_" not in k}
    reduced, counts = reduce_intruders_in_adapter(base, load_adapter(tmp_path / "ad"), lam=0.5)
    assert sum(counts.values()) == 14
    reduced.save(tmp_path / "reduced")
    loaded = peft.PeftModel.from_pretrained(make_llama(seed=7), tmp_path / "reduced")
    theirs = loaded.merge_and_unload().state_dict()
    ours = merge_adapter(base, load_adapter(tmp_path / "reduced"))
    for key in counts:
        torch.testing.assert_close(theirs[key], ours[key], rtol=1e-6, atol=1e-6)
        assert not torch.allclose(ours[key], merge_adapter(base, load_adapter(tmp_path / "ad"))[key])
