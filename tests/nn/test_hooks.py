"""Hook points: names and shapes, caching, patching, ablation, the two attention paths."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lmlab.nn import GPT, GPTConfig, HookPoint, run_with_cache, run_with_hooks
from lmlab.nn.hooks import hook_points

B, T, V, D, H, DMLP = 2, 7, 50, 32, 4, 48


def make(**kw) -> GPT:
    torch.manual_seed(kw.pop("seed", 0))
    cfg = dict(vocab_size=V, block_size=16, n_layer=2, n_head=H, d_model=D, d_mlp=DMLP)
    cfg.update(kw)
    return GPT(GPTConfig(**cfg)).eval()


@pytest.fixture(scope="module")
def idx() -> torch.Tensor:
    return torch.randint(0, V, (B, T), generator=torch.Generator().manual_seed(0))


def expected_shapes(n_layer: int = 2) -> dict[str, tuple[int, ...]]:
    hs = D // H
    shapes = {"hook_embed": (B, T, D), "hook_pos_embed": (B, T, D)}
    for i in range(n_layer):
        p = f"blocks.{i}."
        shapes |= {
            p + "hook_resid_pre": (B, T, D),
            p + "attn.hook_q": (B, T, H, hs),
            p + "attn.hook_k": (B, T, H, hs),
            p + "attn.hook_v": (B, T, H, hs),
            p + "attn.hook_attn_scores": (B, H, T, T),
            p + "attn.hook_pattern": (B, H, T, T),
            p + "attn.hook_z": (B, T, H, hs),
            p + "hook_attn_out": (B, T, D),
            p + "hook_resid_mid": (B, T, D),
            p + "mlp.hook_pre": (B, T, DMLP),
            p + "mlp.hook_post": (B, T, DMLP),
            p + "hook_mlp_out": (B, T, D),
            p + "hook_resid_post": (B, T, D),
        }
    shapes["ln_final.hook_normalized"] = (B, T, D)
    return shapes


def test_cache_has_the_documented_names_and_shapes(idx):
    model = make()
    logits, cache = model.run_with_cache(idx)
    assert {k: tuple(v.shape) for k, v in cache.items()} == expected_shapes()
    assert set(model.hook_points()) == set(expected_shapes())
    torch.testing.assert_close(logits, model(idx)[0], rtol=0, atol=1e-5)
    # Cached activations are consistent with each other.
    b0 = "blocks.0."
    torch.testing.assert_close(
        cache[b0 + "hook_resid_pre"], cache["hook_embed"] + cache["hook_pos_embed"]
    )
    torch.testing.assert_close(
        cache[b0 + "hook_resid_mid"], cache[b0 + "hook_resid_pre"] + cache[b0 + "hook_attn_out"]
    )
    torch.testing.assert_close(cache["blocks.1.hook_resid_pre"], cache[b0 + "hook_resid_post"])
    torch.testing.assert_close(model.lm_head(cache["ln_final.hook_normalized"]), logits)


def test_rope_model_has_rotated_q_and_k_hooks(idx):
    _, cache = make(pos="rope").run_with_cache(idx)
    assert "hook_pos_embed" not in cache
    assert cache["blocks.1.attn.hook_rot_q"].shape == (B, T, H, D // H)
    # Rotation preserves each head vector's norm.
    torch.testing.assert_close(
        cache["blocks.1.attn.hook_rot_k"].norm(dim=-1), cache["blocks.1.attn.hook_k"].norm(dim=-1)
    )


def test_names_filter_forms(idx):
    model = make()
    name = "blocks.1.hook_resid_post"
    assert list(model.run_with_cache(idx, names_filter=name)[1]) == [name]
    assert list(model.run_with_cache(idx, names_filter=[name, "hook_embed"])[1]) == [
        "hook_embed",
        name,
    ]  # in forward order
    pattern = model.run_with_cache(idx, names_filter=lambda n: n.endswith("hook_pattern"))[1]
    assert list(pattern) == ["blocks.0.attn.hook_pattern", "blocks.1.attn.hook_pattern"]
    assert not model.run_with_cache(idx)[1]["hook_embed"].requires_grad


def test_unknown_hook_name_lists_close_names(idx):
    model = make()
    with pytest.raises(ValueError, match=r"blocks\.0\.hook_resid_post"):
        model.run_with_cache(idx, names_filter="blocks.0.hook_resid_pots")
    with pytest.raises(ValueError, match="unknown hook point"):
        model.run_with_hooks(idx, fwd_hooks=[("blocks.9.attn.hook_zz", lambda t, h: None)])
    assert not any(p.has_hooks for p in model.hook_points().values())


@pytest.mark.parametrize("config", [{}, {"attn": "linear"}, {"pos": "rope"}])
def test_patching_an_activation_into_its_own_run_changes_nothing(idx, config):
    model = make(**config)
    for name in model.hook_points():
        clean, cache = model.run_with_cache(idx, names_filter=name)
        patched = model.run_with_hooks(idx, fwd_hooks=[(name, lambda t, h, c=cache[name]: c)])
        assert torch.equal(patched, clean), name


def test_zero_ablation_changes_logits(idx):
    model = make()
    clean = model(idx)[0]
    for name in ["blocks.0.hook_attn_out", "blocks.1.mlp.hook_post", "blocks.0.attn.hook_pattern"]:
        ablated = model.run_with_hooks(idx, fwd_hooks=[(name, lambda t, h: torch.zeros_like(t))])
        assert not torch.allclose(ablated, clean, atol=1e-4), name
    # Hooks are gone afterwards.
    torch.testing.assert_close(model(idx)[0], clean)
    assert not any(p.has_hooks for p in model.hook_points().values())


def test_hook_receives_its_hook_point_and_can_edit_one_head(idx):
    model = make()
    seen = []

    def zero_head_1(z, hook):
        seen.append(hook.name)
        z = z.clone()
        z[:, :, 1] = 0
        return z

    model.run_with_hooks(idx, fwd_hooks=[("blocks.0.attn.hook_z", zero_head_1)])
    assert seen == ["blocks.0.attn.hook_z"]
    # Zeroing head 1's output equals zeroing its block of o_proj's input columns.
    hs = D // H
    with torch.no_grad():
        w = model.blocks[0].attn.o_proj.weight
        saved = w[:, hs : 2 * hs].clone()
        w[:, hs : 2 * hs] = 0
        expect = model(idx)[0]
        w[:, hs : 2 * hs] = saved
    torch.testing.assert_close(
        model.run_with_hooks(idx, fwd_hooks=[("blocks.0.attn.hook_z", zero_head_1)]), expect
    )


def test_hooks_are_removed_when_the_run_raises(idx):
    model = make()

    def boom(t, h):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        model.run_with_hooks(idx, fwd_hooks=[("blocks.1.hook_resid_mid", boom)])
    assert not any(p.has_hooks for p in model.hook_points().values())
    model(idx)  # runs normally


def test_softmax_pattern_rows_sum_to_one_and_are_causal(idx):
    _, cache = make().run_with_cache(idx, names_filter=lambda n: n.endswith("hook_pattern"))
    for pattern in cache.values():
        torch.testing.assert_close(pattern.sum(-1), torch.ones(B, H, T))
        assert torch.all(pattern.triu(1) == 0)


def test_linear_attention_pattern_is_masked_scaled_qk(idx):
    model = make(attn="linear")
    _, cache = model.run_with_cache(idx)
    q, k, v = (cache[f"blocks.1.attn.hook_{x}"] for x in "qkv")
    scores = torch.einsum("bqhd,bkhd->bhqk", q, k) / (D // H) ** 0.5
    torch.testing.assert_close(cache["blocks.1.attn.hook_pattern"], scores.tril())
    # out_t = sum_{s<=t} (q_t . k_s) v_s, per head
    z = torch.einsum("bhqk,bkhd->bqhd", scores.tril(), v)
    torch.testing.assert_close(cache["blocks.1.attn.hook_z"], z)


def test_sdpa_and_materialized_paths_agree():
    model = make(dropout=0.0)
    model.train()
    idx = torch.randint(0, V, (3, 16))
    logits_fast, loss_fast = model(idx, idx)
    loss_fast.backward()
    grads_fast = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    with model.hooks([(lambda n: n.endswith("hook_pattern"), lambda t, h: None)]):
        logits_slow, loss_slow = model(idx, idx)
    loss_slow.backward()
    torch.testing.assert_close(logits_slow, logits_fast, rtol=0, atol=1e-5)
    for n, p in model.named_parameters():
        torch.testing.assert_close(p.grad, grads_fast[n], rtol=1e-4, atol=1e-6)


def test_cache_without_detach_keeps_gradients(idx):
    model = make()
    logits, cache = model.run_with_cache(idx, names_filter="blocks.0.hook_resid_mid", detach=False)
    act = cache["blocks.0.hook_resid_mid"]
    (grad,) = torch.autograd.grad(logits[:, -1].logsumexp(-1).sum(), act)
    assert grad.shape == act.shape and grad.abs().sum() > 0


class Toy(nn.Module):
    """Any module with hook points gets the same helpers."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 3)
        self.hook_in = HookPoint()
        self.inner = nn.Sequential(nn.ReLU(), HookPoint())

    def forward(self, x):
        return self.inner(self.lin(self.hook_in(x)))


def test_helpers_work_on_any_module():
    toy = Toy()
    assert set(hook_points(toy)) == {"hook_in", "inner.1"}
    x = torch.randn(4, 3)
    out, cache = run_with_cache(toy, x)
    assert torch.equal(cache["hook_in"], x) and torch.equal(cache["inner.1"], out)
    doubled = run_with_hooks(toy, x, fwd_hooks=[("inner.1", lambda t, h: 2 * t)])
    torch.testing.assert_close(doubled, 2 * out)
    assert "inner.1" in repr(toy)
