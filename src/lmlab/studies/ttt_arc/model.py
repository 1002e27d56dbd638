"""The tiny decoder of the `tiny` preset.

The model is lmlab's GPT (`lmlab.nn.GPT`) over the data layer's compact grid tokens, optionally
with 2-D grid coordinates (`ModelSpec.coords`, the config's `model`: the GPT's `coord_sizes` fed by
`GridTokenizer.coords`). Greedy decoding is `lmlab.nn.decode.greedy_decode` (a key/value cache
over the GPT's own modules, so a PEFT LoRA is used as in training), re-exported here.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from lmlab.nn import GPT, GPTConfig
from lmlab.nn.decode import base_gpt, greedy_decode
from lmlab.studies.ttt_arc.config import ModelSpec
from lmlab.studies.ttt_arc.serialize import COORD_SIZES

__all__ = ["ModelSpec", "base_gpt", "build_model", "gpt_config", "greedy_decode"]


def gpt_config(spec: ModelSpec, vocab_size: int) -> GPTConfig:
    """The lmlab GPT configuration of the tiny decoder `spec` over `vocab_size` tokens."""
    return GPTConfig(vocab_size=vocab_size, block_size=spec.block_size, n_layer=spec.n_layer,
                     n_head=spec.n_head, d_model=spec.d_model, pos=spec.pos, dropout=0.0,
                     coord_sizes=COORD_SIZES if spec.coords else ())


def build_model(spec: ModelSpec, vocab_size: int, seed: int) -> GPT:
    """A freshly initialized GPT, its weights a function of `seed` alone."""
    torch.manual_seed(seed)
    return GPT(gpt_config(spec, vocab_size))


def count_params(model: nn.Module) -> int:
    """Parameters of the model (shared ones once)."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


def seconds_to_str(s: float) -> str:
    """A duration as '1m 23s' or '4.5s'."""
    return f"{int(s // 60)}m {math.floor(s % 60):02d}s" if s >= 60 else f"{s:.1f}s"


def detach_state(model: nn.Module) -> dict[str, Any]:
    """A CPU copy of the model's state dict (tied weights once each)."""
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
