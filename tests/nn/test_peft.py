"""LoRA through PEFT on lmlab's GPT: the conventional module names are PEFT's targets."""

from __future__ import annotations

import peft
import torch

from lmlab.nn import GPT, GPTConfig

V = 32


def test_lora_wraps_trains_only_adapters_and_merges():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=V, block_size=16, n_layer=2, n_head=2, d_model=32))
    base = {n: p.detach().clone() for n, p in model.named_parameters()}
    lora = peft.get_peft_model(model, peft.LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))

    trainable = [n for n, p in lora.named_parameters() if p.requires_grad]
    assert len(trainable) == 2 * 2 * 2  # layers x (q, v) x (A, B)
    assert all("lora_" in n and ("q_proj" in n or "v_proj" in n) for n in trainable)

    # A fixed batch to memorize: the loss must fall with only the adapters learning.
    gen = torch.Generator().manual_seed(0)
    seq = torch.randint(0, V, (8, 16), generator=gen)
    idx, targets = seq[:, :-1], seq[:, 1:]
    opt = torch.optim.AdamW([p for p in lora.parameters() if p.requires_grad], lr=2e-2)
    losses = []
    for _ in range(15):
        _, loss = lora(idx, targets)
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.05

    for n, p in lora.named_parameters():
        if "lora_" not in n:
            key = n.removeprefix("base_model.model.").replace(".base_layer", "")
            assert torch.equal(p, base[key]), n
    lora_b = [p for n, p in lora.named_parameters() if "lora_B" in n]
    assert all(p.abs().sum() > 0 for p in lora_b)

    # Hooks still see the adapted model (PEFT forwards attribute access to the GPT).
    logits_lora = lora(idx)[0]
    cached_logits, cache = lora.run_with_cache(idx, names_filter="blocks.0.attn.hook_q")
    torch.testing.assert_close(cached_logits, logits_lora, rtol=0, atol=1e-5)
    assert cache["blocks.0.attn.hook_q"].shape == (*idx.shape, 2, 16)

    merged = lora.merge_and_unload()
    assert type(merged) is GPT
    assert type(merged.blocks[0].attn.q_proj) is torch.nn.Linear
    logits_merged = merged(idx)[0]
    torch.testing.assert_close(logits_merged, logits_lora, rtol=1e-5, atol=1e-5)
    # The adapters mattered: the merged weights are not the base weights.
    assert not torch.equal(merged.blocks[0].attn.q_proj.weight, base["blocks.0.attn.q_proj.weight"])


def _gpt() -> GPT:
    return GPT(GPTConfig(vocab_size=V, block_size=16, n_layer=2, n_head=2, d_model=32))


def test_add_lora_freezes_the_base_and_seeds_the_adapter_alone():
    import pytest

    from lmlab.nn.lora import add_lora

    torch.manual_seed(0)
    base = _gpt()
    weights = base.state_dict()

    def initial_a(seed: int | None, global_seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        model = _gpt()
        model.load_state_dict(weights)
        torch.manual_seed(global_seed)
        wrapped = add_lora(model, 2, 4, ["q_proj", "v_proj"], init_seed=seed)
        after = torch.rand(1)  # the global generator after the wrap
        a = next(p for n, p in wrapped.named_parameters() if "lora_A" in n)
        trainable = [n for n, p in wrapped.named_parameters() if p.requires_grad]
        assert trainable and all("lora_" in n for n in trainable)
        return a.detach().clone(), after

    a1, after1 = initial_a(7, global_seed=1)
    a2, _ = initial_a(7, global_seed=2)
    assert torch.equal(a1, a2)  # the adapter is a function of init_seed alone
    torch.manual_seed(1)
    assert torch.equal(after1, torch.rand(1))  # the caller's generator is left where it was
    a3, _ = initial_a(8, global_seed=1)
    assert not torch.equal(a1, a3)
    u1, _ = initial_a(None, global_seed=1)
    u2, _ = initial_a(None, global_seed=2)
    assert not torch.equal(u1, u2)  # no init_seed: PEFT's draw from the global generator

    with pytest.raises(ValueError, match="rank"):
        add_lora(_gpt(), 0, 1, ["q_proj"])


def test_add_lora_keeps_modules_to_save_trainable_and_is_quiet_on_hf_models():
    import warnings

    import transformers

    from lmlab.nn.lora import add_lora

    cfg = transformers.LlamaConfig(vocab_size=V, hidden_size=16, intermediate_size=32,
                                   num_hidden_layers=1, num_attention_heads=2,
                                   num_key_value_heads=2)
    model = transformers.LlamaForCausalLM(cfg)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # the is_gradient_checkpointing one
        wrapped = add_lora(model, 2, 4, ["q_proj", "v_proj"], modules_to_save=["lm_head"])
    trainable = {n for n, p in wrapped.named_parameters() if p.requires_grad}
    assert any("lora_A" in n for n in trainable)
    assert any("lm_head" in n and "modules_to_save" in n for n in trainable)
    assert not any("embed_tokens" in n for n in trainable)
