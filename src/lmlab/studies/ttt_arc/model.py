"""The tiny decoder of the `tiny` preset.

The model is lmlab's GPT (`lmlab.nn.GPT`) over the data layer's compact grid tokens, optionally
with 2-D grid coordinates (`ModelSpec.coords`: the GPT's `coord_sizes` fed by
`GridTokenizer.coords`). Greedy decoding is `lmlab.nn.decode.greedy_decode` (a key/value cache
over the GPT's own modules, so a PEFT LoRA is used as in training), re-exported here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from lmlab.nn import GPT, GPTConfig
from lmlab.nn.decode import base_gpt, greedy_decode
from lmlab.studies.ttt_arc.serialize import COORD_SIZES

__all__ = ["ModelSpec", "base_gpt", "build_model", "greedy_decode"]


@dataclass(frozen=True)
class ModelSpec:
    """The shape of the tiny decoder (the vocabulary comes from the tokenizer)."""

    n_layer: int = 4
    n_head: int = 4
    d_model: int = 128
    block_size: int = 512
    pos: str = "learned"
    coords: bool = False  # 2-D grid coordinates (GridTokenizer.coords) added to the embedding

    def config(self, vocab_size: int) -> GPTConfig:
        return GPTConfig(vocab_size=vocab_size, block_size=self.block_size, n_layer=self.n_layer,
                         n_head=self.n_head, d_model=self.d_model, pos=self.pos, dropout=0.0,
                         coord_sizes=COORD_SIZES if self.coords else ())


def build_model(spec: ModelSpec, vocab_size: int, seed: int) -> GPT:
    """A freshly initialized GPT, its weights a function of `seed` alone."""
    torch.manual_seed(seed)
    return GPT(spec.config(vocab_size))


def count_params(model: nn.Module) -> int:
    """Parameters of the model (shared ones once)."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


def seconds_to_str(s: float) -> str:
    """A duration as '1m 23s' or '4.5s'."""
    return f"{int(s // 60)}m {math.floor(s % 60):02d}s" if s >= 60 else f"{s:.1f}s"


def detach_state(model: nn.Module) -> dict[str, Any]:
    """A CPU copy of the model's state dict (tied weights once each)."""
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
