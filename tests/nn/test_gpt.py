"""The GPT module: shapes, the loss and its masks, every variant's forward and backward, causality."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from lmlab.errors import LmlabError
from lmlab.nn import GPT, GPTConfig
from lmlab.nn.gpt import GPTConfigError, apply_rope, rope_tables, sinusoidal_table

VARIANTS = [
    (pos, attn)
    for pos in ("learned", "sinusoidal", "rope", "none")
    for attn in ("softmax", "linear")
]
V, BLOCK = 61, 24


def small(**kw) -> GPT:
    torch.manual_seed(kw.pop("seed", 0))
    cfg = dict(vocab_size=V, block_size=BLOCK, n_layer=2, n_head=2, d_model=32)
    cfg.update(kw)
    return GPT(GPTConfig(**cfg))


@pytest.fixture(scope="module")
def models() -> dict[tuple[str, str], GPT]:
    return {(pos, attn): small(pos=pos, attn=attn).eval() for pos, attn in VARIANTS}


def test_config_defaults_and_validation():
    assert issubclass(GPTConfigError, LmlabError)  # the CLI reports it in one line
    cfg = GPTConfig(d_model=64, n_head=4)
    assert cfg.d_mlp == 256 and cfg.d_head == 16
    with pytest.raises(ValueError, match="divisible"):
        GPTConfig(d_model=30, n_head=4)
    with pytest.raises(ValueError, match="pos"):
        GPTConfig(pos="alibi")
    with pytest.raises(ValueError, match="attn"):
        GPTConfig(attn="flash")
    with pytest.raises(ValueError, match="rope"):
        GPTConfig(d_model=12, n_head=4, pos="rope")  # head size 3 cannot be rotated in pairs
    with pytest.raises(ValueError, match="n_layer"):
        GPTConfig(n_layer=0)


def test_shapes_and_module_names():
    model = small(d_mlp=40)
    idx = torch.randint(0, V, (3, 10))
    logits, loss = model(idx)
    assert logits.shape == (3, 10, V) and loss is None
    _, loss = model(idx, idx)
    assert loss.shape == () and math.isfinite(loss.item())
    names = {n for n, _ in model.named_modules()}
    for n in [
        "tok_emb",
        "pos_emb",
        "blocks.1.ln1",
        "blocks.1.attn.q_proj",
        "blocks.1.attn.k_proj",
        "blocks.1.attn.v_proj",
        "blocks.1.attn.o_proj",
        "blocks.1.ln2",
        "blocks.1.mlp.up_proj",
        "blocks.1.mlp.down_proj",
        "ln_f",
        "lm_head",
    ]:
        assert n in names
    assert model.blocks[0].mlp.up_proj.out_features == 40
    assert all(
        type(model.get_submodule(f"blocks.0.attn.{p}")) is torch.nn.Linear
        for p in ("q_proj", "k_proj", "v_proj", "o_proj")
    )


def test_bad_inputs_are_named():
    model = small()
    with pytest.raises(ValueError, match="block_size"):
        model(torch.zeros(1, BLOCK + 1, dtype=torch.long))
    with pytest.raises(ValueError, match="integer"):
        model(torch.zeros(1, 4))
    with pytest.raises(ValueError, match="targets shape"):
        model(torch.zeros(1, 4, dtype=torch.long), torch.zeros(1, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="loss_mask shape"):
        idx = torch.zeros(1, 4, dtype=torch.long)
        model(idx, idx, torch.ones(1, 3, dtype=torch.bool))


def test_loss_matches_cross_entropy_with_ignore_and_masks():
    model = small()
    idx = torch.randint(0, V, (4, 12))
    targets = torch.randint(0, V, (4, 12))
    targets[0, :5] = -100
    logits, loss = model(idx, targets)
    flat = logits.reshape(-1, V)
    torch.testing.assert_close(loss, F.cross_entropy(flat, targets.reshape(-1)))

    mask = torch.rand(4, 12) < 0.5
    _, masked = model(idx, targets, mask)
    expect = F.cross_entropy(flat, targets.masked_fill(~mask, -100).reshape(-1))
    torch.testing.assert_close(masked, expect)

    # A float mask weights positions; 0/1 floats equal the bool mask.
    _, as_float = model(idx, targets, mask.float())
    torch.testing.assert_close(as_float, expect)
    w = torch.rand(4, 12)
    per = F.cross_entropy(flat, targets.clamp_min(0).reshape(-1), reduction="none")
    w_eff = w.reshape(-1) * (targets.reshape(-1) != -100)
    _, weighted = model(idx, targets, w)
    torch.testing.assert_close(weighted, (per * w_eff).sum() / w_eff.sum())


def test_loss_gradient_matches_cross_entropy_and_survives_retain_graph():
    logits = torch.randn(2, 7, V, requires_grad=True)
    targets = torch.randint(0, V, (2, 7))
    targets[1, 2] = -100
    mask = torch.rand(2, 7) < 0.7
    loss = GPT.loss(logits, targets, mask)
    (g1,) = torch.autograd.grad(loss, logits, retain_graph=True)
    (g2,) = torch.autograd.grad(loss, logits)  # a second backward through the same graph
    ref = F.cross_entropy(logits.reshape(-1, V), targets.masked_fill(~mask, -100).reshape(-1))
    (g_ref,) = torch.autograd.grad(ref, logits)
    torch.testing.assert_close(g1, g_ref)
    torch.testing.assert_close(g2, g_ref)


def test_nothing_selected_gives_zero_loss_not_nan():
    model = small()
    idx = torch.randint(0, V, (2, 6))
    _, loss = model(idx, torch.full((2, 6), -100))
    assert loss.item() == 0.0
    _, loss = model(idx, idx, torch.zeros(2, 6, dtype=torch.bool))
    assert loss.item() == 0.0
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


@pytest.mark.parametrize(("pos", "attn"), VARIANTS)
def test_every_variant_trains(pos, attn):
    model = small(pos=pos, attn=attn, dropout=0.1)
    model.train()
    idx = torch.randint(0, V, (2, BLOCK))
    _, loss = model(idx, idx)
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name
    has_pos_emb = any(n.startswith("pos_emb") for n, _ in model.named_parameters())
    assert has_pos_emb == (pos == "learned")


def test_sinusoidal_table():
    table = sinusoidal_table(5, 8)
    torch.testing.assert_close(table[0], torch.tensor([0.0, 1.0] * 4))
    torch.testing.assert_close(table[3, 0], torch.tensor(math.sin(3.0)))
    torch.testing.assert_close(table[3, 3], torch.tensor(math.cos(3.0 / 10000 ** (2 / 8))))


def test_tied_and_untied_embeddings():
    tied, untied = small(), small(tie_embeddings=False)
    assert tied.lm_head.weight is tied.tok_emb.weight
    assert untied.lm_head.weight is not untied.tok_emb.weight
    assert untied.num_params() - tied.num_params() == V * 32
    assert tied.num_params(non_embedding=True) == tied.num_params() - V * 32 - BLOCK * 32


def test_residual_projections_get_scaled_init():
    model = small(n_layer=8, d_model=64, init_std=0.02)
    std_o = torch.cat([b.attn.o_proj.weight.flatten() for b in model.blocks]).std().item()
    std_q = torch.cat([b.attn.q_proj.weight.flatten() for b in model.blocks]).std().item()
    assert abs(std_q - 0.02) < 0.002
    assert abs(std_o - 0.02 / math.sqrt(16)) < 0.001


def test_generate_greedy_is_deterministic_and_argmax():
    model = small(dropout=0.2)
    model.train()
    prompt = torch.randint(0, V, (2, 5))
    out1 = model.generate(prompt, 30)  # runs past block_size: the context is cropped
    out2 = model.generate(prompt, 30)
    assert out1.shape == (2, 35) and torch.equal(out1, out2)
    assert torch.equal(out1[:, :5], prompt)
    assert model.training  # the caller's mode is restored
    model.eval()
    seq = prompt
    for _ in range(4):
        seq = torch.cat([seq, model(seq)[0][:, -1].argmax(-1, keepdim=True)], dim=1)
    assert torch.equal(out1[:, :9], seq)


def test_generate_sampling_is_seeded():
    model = small()
    prompt = torch.zeros(3, 1, dtype=torch.long)
    a = model.generate(prompt, 10, temperature=1.0, generator=torch.Generator().manual_seed(1))
    b = model.generate(prompt, 10, temperature=1.0, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    k1 = model.generate(
        prompt, 10, temperature=1.0, top_k=1, generator=torch.Generator().manual_seed(2)
    )
    assert torch.equal(k1, model.generate(prompt, 10))  # top_k=1 sampling is greedy


@pytest.mark.parametrize("variant", VARIANTS)
@settings(max_examples=8, deadline=None)
@given(T=st.integers(2, BLOCK), data=st.data())
def test_causality_future_tokens_never_change_past_logits(models, variant, T, data):
    model = models[variant]
    t = data.draw(st.integers(0, T - 1), label="t")
    seed = data.draw(st.integers(0, 2**16), label="seed")
    idx = torch.randint(0, V, (2, T), generator=torch.Generator().manual_seed(seed))
    changed = idx.clone()
    changed[:, t] = (idx[:, t] + data.draw(st.integers(1, V - 1), label="shift")) % V
    with torch.no_grad():
        before, after = model(idx)[0], model(changed)[0]
    torch.testing.assert_close(after[:, :t], before[:, :t], rtol=0, atol=1e-6)
    assert not torch.allclose(after[:, t], before[:, t])


def test_loss_works_under_torch_func_transforms():
    model = small()
    params = {k: v.detach() for k, v in model.named_parameters()}
    idx = torch.randint(0, V, (2, 9))
    targets = idx.clone()
    targets[0, :4] = -100

    def loss_of(p):
        return torch.func.functional_call(model, (p,), (idx, targets))[1]

    grads = torch.func.grad(loss_of)(params)
    model(idx, targets)[1].backward()
    for name, p in model.named_parameters():
        torch.testing.assert_close(grads[name], p.grad, rtol=1e-4, atol=1e-6)


def test_rope_is_the_pairwise_rotation_to_the_bit() -> None:
    # apply_rope's two products and a sum are the rotation of each channel pair (i, i + hs/2),
    # (x1 cos - x2 sin, x2 cos + x1 sin), with the same floats
    torch.manual_seed(0)
    T, hs = 11, 8
    x = torch.randn(3, T, 2, hs)
    cos, sin = rope_tables(T, hs, 10000.0)
    angles = torch.arange(T).float()[:, None] * 10000.0 ** (-torch.arange(0, hs, 2).float() / hs)
    c, s = angles.cos()[:, None, :], angles.sin()[:, None, :]
    x1, x2 = x.chunk(2, dim=-1)
    assert torch.equal(apply_rope(x, cos, sin), torch.cat((x1 * c - x2 * s, x2 * c + x1 * s), -1))
    # a rotation: norms are kept, and position 0 is not turned
    assert torch.allclose(apply_rope(x, cos, sin).norm(dim=-1), x.norm(dim=-1), atol=1e-5)
    assert torch.equal(apply_rope(x, cos, sin)[:, 0], x[:, 0])
