"""The LoRA predictor (PEFT) on a tiny random Llama: it trains, keeps the base frozen, and learns
a pass rate that depends on the prompt."""

from __future__ import annotations

import numpy as np
import torch


def _tiny_llama(vocab: int):
    import transformers

    cfg = transformers.LlamaConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                   num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256)
    torch.manual_seed(0)
    return transformers.LlamaForCausalLM(cfg).eval()


def test_lora_probe_learns_prompt_dependent_pass_rates():
    import transformers

    from lmlab.models import model_path
    from lmlab.studies.adaptive_compute.lora import LoraProbe

    tok = transformers.AutoTokenizer.from_pretrained(model_path("smollm2-135m-instruct"))
    lm = _tiny_llama(len(tok))
    base = {k: v.clone() for k, v in lm.state_dict().items()}
    easy = [f"What is {i} + 1?" for i in range(12)]
    hard = [f"Compute the determinant of matrix number {i} please" for i in range(12)]
    prompts, labels = easy + hard, np.r_[np.full(12, 0.9), np.full(12, 0.1)]
    probe = LoraProbe(lm, tok, layer=-1, r=4, alpha=8, lr=1e-2, epochs=15, batch_size=8).fit(
        prompts, labels, prompts[::3], labels[::3])
    p = probe.predict(["What is 40 + 1?", "Compute the determinant of matrix number 40 please"])
    assert p[0] > p[1] + 0.3
    for k, v in probe.model_.get_base_model().state_dict().items():
        if "lora_" not in k:
            name = k.replace("base_layer.", "")
            assert torch.equal(v, base[name]), k  # the base model stays frozen
