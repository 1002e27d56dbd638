"""One way to put a PEFT LoRA adapter on a model: `add_lora(model, r, alpha, targets)`.

Every study that fine-tunes with LoRA (intruders, ttt-arc, adaptive-compute) calls this instead
of building `peft.LoraConfig` and `peft.get_peft_model` itself, so the adapter is made the same
way everywhere:

- only the adapter trains: the base weights are frozen (`modules_to_save` get trainable copies,
  PEFT's own rule);
- `init_seed` draws the adapter's initial A matrices from that seed without touching the
  caller's global generator (PEFT draws them from torch's global generator); without it they
  come from the global generator, as with a bare `get_peft_model`;
- transformers' FutureWarning about `is_gradient_checkpointing`, which PEFT triggers on every
  Hugging Face model it wraps, is silenced here (a deprecation inside the two libraries, not
  something the caller can act on).

It works on Hugging Face models and on the lmlab GPT (`lmlab.nn.gpt`), whose modules carry the
Hugging Face names (q_proj, v_proj, ...).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch
from torch import nn

from lmlab.errors import require

__all__ = ["add_lora"]


def add_lora(
    model: nn.Module,
    r: int,
    alpha: float,
    targets: Sequence[str] | str,
    *,
    dropout: float = 0.0,
    rslora: bool = False,
    modules_to_save: Sequence[str] | None = None,
    init_seed: int | None = None,
) -> nn.Module:
    """`model` wrapped in a PEFT LoRA adapter of rank `r` and scale `alpha` (alpha / r, or
    alpha / sqrt(r) with `rslora`) on the modules named by `targets` (a list of names, or a
    PEFT keyword such as "all-linear")."""
    peft = require("peft", extra="hf")
    if r < 1:
        raise ValueError(f"LoRA rank must be >= 1; got {r}")
    for p in model.parameters():
        p.requires_grad_(False)
    cfg = peft.LoraConfig(
        r=r, lora_alpha=alpha, lora_dropout=dropout, bias="none", use_rslora=rslora,
        target_modules=targets if isinstance(targets, str) else list(targets),
        modules_to_save=list(modules_to_save) if modules_to_save else None)
    state = torch.get_rng_state() if init_seed is not None else None
    try:
        if init_seed is not None:
            torch.manual_seed(init_seed)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*",
                                    category=FutureWarning)
            return peft.get_peft_model(model, cfg)
    finally:
        if state is not None:
            torch.set_rng_state(state)
