"""Shared set-up of the intruders tests: a tiny random Llama model folder and LoRA adapters on it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch


def unit(n: int, gen: torch.Generator) -> torch.Tensor:
    """A random unit vector of length n."""
    v = torch.randn(n, generator=gen, dtype=torch.float64)
    return v / v.norm()


def tiny_llama(seed: int = 0, hidden: int = 64, layers: int = 2):
    """A randomly initialised Llama small enough for a unit test (Gaussian weights, std 0.02)."""
    import transformers

    cfg = transformers.LlamaConfig(
        vocab_size=96, hidden_size=hidden, intermediate_size=96, num_hidden_layers=layers,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
    )
    torch.manual_seed(seed)
    return transformers.LlamaForCausalLM(cfg).eval()


def plant_intruders(peft_model, seed: int = 1, strength: float = 2.0, noise: float = 0.01,
                    adapter: str = "default") -> None:
    """Set every LoRA layer's B A to a rank-1 direction of `strength` sigma_1(W0) plus noise.

    The left direction is spread evenly over the base's left singular vectors (|cos| = 1/sqrt(p)
    with each, p <= 96 here); at twice the base's top singular value it becomes a top singular
    vector of W0 + dW that no base singular vector explains: an intruder, in every layer.
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, mod in peft_model.named_modules():
            if not (hasattr(mod, "lora_A") and adapter in mod.lora_A):
                continue
            a, b = mod.lora_A[adapter].weight, mod.lora_B[adapter].weight
            scale = mod.scaling[adapter]
            u0, s0, _ = torch.linalg.svd(mod.get_base_layer().weight.double(),
                                         full_matrices=False)
            signs = torch.randint(0, 2, (u0.shape[1],), generator=gen).double() * 2 - 1
            spread = u0 @ signs / u0.shape[1] ** 0.5
            root = (strength * s0[0] / scale).sqrt()
            b.copy_(torch.randn(b.shape, generator=gen) * noise)
            a.copy_(torch.randn(a.shape, generator=gen) * noise)
            b[:, 0] += (spread * root).float()
            a[0] += (unit(a.shape[1], gen) * root).float()


@pytest.fixture(scope="session")
def llama_folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny Llama base folder, a LoRA adapter with planted intruders, and the merged model.

    The adapter is rank 4 with alpha 8 on every linear layer, rsLoRA scaling, and a per-module
    rank (q_proj: 2) and alpha (down_proj: 3), so the merge's bookkeeping is all exercised.
    """
    import peft

    root = tmp_path_factory.mktemp("llama")
    model = tiny_llama()
    model.save_pretrained(root / "base")
    config = peft.LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", use_rslora=True,
                             rank_pattern={"q_proj": 2}, alpha_pattern={"down_proj": 3})
    pm = peft.get_peft_model(model, config)
    plant_intruders(pm)
    pm.save_pretrained(root / "adapter")
    merged = pm.merge_and_unload()
    merged.save_pretrained(root / "merged")
    return {"base": root / "base", "adapter": root / "adapter", "merged": root / "merged"}


@pytest.fixture(scope="session")
def make_llama():
    """`tiny_llama` as a fixture (test modules do not import conftest)."""
    return tiny_llama


@pytest.fixture(scope="session")
def plant():
    """`plant_intruders` as a fixture."""
    return plant_intruders
