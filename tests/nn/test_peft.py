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
