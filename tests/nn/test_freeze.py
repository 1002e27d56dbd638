"""Freeze modes: frozen tensors stay bit-identical under AdamW with weight decay."""

from __future__ import annotations

import pytest
import torch

from lmlab.nn import FREEZE_MODES, GPT, GPTConfig

V = 40
EXPECTED = {
    "full": None,
    "random": {"tok_emb.weight", "pos_emb.weight", "lm_head.weight"},
    "unembed": {"lm_head.weight"},
    "embed": {"tok_emb.weight", "pos_emb.weight"},
    "tok_unembed": {"tok_emb.weight", "lm_head.weight"},
}


def make(tie: bool, **kw) -> GPT:
    torch.manual_seed(0)
    return GPT(
        GPTConfig(
            vocab_size=V, block_size=12, n_layer=2, n_head=2, d_model=16, tie_embeddings=tie, **kw
        )
    )


def train(model: GPT, params, steps: int = 20) -> None:
    opt = torch.optim.AdamW(params, lr=1e-2, weight_decay=0.5)
    gen = torch.Generator().manual_seed(1)
    for _ in range(steps):
        idx = torch.randint(0, V, (4, 12), generator=gen)
        _, loss = model(idx[:, :-1], idx[:, 1:])
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)


def test_modes_are_documented():
    assert set(FREEZE_MODES) == set(EXPECTED)
    assert all(isinstance(v, str) and v for v in FREEZE_MODES.values())


@pytest.mark.parametrize("mode", list(FREEZE_MODES))
@pytest.mark.parametrize("optimize_all", [False, True])
def test_frozen_tensors_stay_bit_identical(mode, optimize_all):
    model = make(tie=False)
    names = model.set_trainable(mode)
    all_names = {n for n, _ in model.named_parameters()}
    assert set(names) == (EXPECTED[mode] or all_names)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    # Handing every parameter to AdamW is fine too: frozen ones never get a gradient.
    train(model, model.parameters() if optimize_all else model.trainable_parameters())
    for n, p in model.named_parameters():
        if n in names:
            assert not torch.equal(p, before[n]), f"{mode}: {n} did not train"
        else:
            assert torch.equal(p, before[n]), f"{mode}: {n} changed while frozen"


def test_random_mode_keeps_layer_norms_frozen():
    model = make(tie=False)
    model.set_trainable("random")
    frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
    assert "ln_f.weight" in frozen and "blocks.0.ln1.bias" in frozen
    assert "blocks.1.attn.q_proj.weight" in frozen and "blocks.1.mlp.down_proj.bias" in frozen


def test_tied_model_allows_modes_that_keep_embed_and_unembed_together():
    model = make(tie=True)
    assert model.set_trainable("random") == ["tok_emb.weight", "pos_emb.weight"]
    assert model.set_trainable("tok_unembed") == ["tok_emb.weight"]
    assert model.lm_head.weight.requires_grad
    before = model.blocks[0].attn.q_proj.weight.detach().clone()
    train(model, model.trainable_parameters(), steps=3)
    assert torch.equal(model.blocks[0].attn.q_proj.weight, before)


@pytest.mark.parametrize("mode", ["unembed", "embed"])
def test_tied_model_rejects_modes_that_separate_them(mode):
    model = make(tie=True)
    with pytest.raises(ValueError, match="tie_embeddings=False"):
        model.set_trainable(mode)
    assert all(p.requires_grad for p in model.parameters())  # nothing half-applied


def test_modes_without_positional_embedding_and_back_to_full():
    model = make(tie=False, pos="rope")
    assert model.set_trainable("embed") == ["tok_emb.weight"]
    assert model.set_trainable("full") == [n for n, _ in model.named_parameters()]
    with pytest.raises(ValueError, match="unknown freeze mode"):
        model.set_trainable("everything")
