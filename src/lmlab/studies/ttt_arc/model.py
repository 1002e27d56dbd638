"""The tiny decoder of the `tiny` preset and greedy decoding with a key/value cache.

The model is lmlab's GPT (`lmlab.nn.GPT`) over the data layer's compact grid tokens. Decoding
reuses the GPT's own modules (`ln1`, `q_proj`, ..., `mlp`) step by step with a cache of keys and
values, so that a PEFT LoRA wrapped around those modules is used as it is in training. Without
the cache a 40-token answer after a 300-token prompt costs 40 full forward passes; with it, one
prompt pass and 40 one-token passes (`test_ttt.py` checks both give the same tokens).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lmlab.nn import GPT, GPTConfig
from lmlab.nn.gpt import apply_rope

__all__ = ["ModelSpec", "base_gpt", "build_model", "greedy_decode"]


@dataclass(frozen=True)
class ModelSpec:
    """The shape of the tiny decoder (the vocabulary comes from the tokenizer)."""

    n_layer: int = 4
    n_head: int = 4
    d_model: int = 128
    block_size: int = 512
    pos: str = "learned"

    def config(self, vocab_size: int) -> GPTConfig:
        return GPTConfig(vocab_size=vocab_size, block_size=self.block_size, n_layer=self.n_layer,
                         n_head=self.n_head, d_model=self.d_model, pos=self.pos, dropout=0.0)


def build_model(spec: ModelSpec, vocab_size: int, seed: int) -> GPT:
    """A freshly initialized GPT, its weights a function of `seed` alone."""
    torch.manual_seed(seed)
    return GPT(spec.config(vocab_size))


def base_gpt(model: nn.Module) -> GPT:
    """The GPT inside `model` (itself, or the base of a PEFT wrapper)."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    if not isinstance(inner, GPT):
        raise TypeError(f"expected an lmlab GPT (or a PEFT model around one), got {type(inner)}")
    return inner


def _embed(gpt: GPT, idx: Tensor, start: int) -> tuple[Tensor, tuple[Tensor, Tensor] | None]:
    """Token plus positional embeddings of idx (B, T) at positions start..start+T-1."""
    T = idx.shape[1]
    x = gpt.tok_emb(idx)  # (B, T, d)
    pos = gpt.config.pos
    if pos == "learned":
        x = x + gpt.pos_emb.weight[start:start + T]
    elif pos == "sinusoidal":
        x = x + gpt.pos_table[start:start + T]
    rope = (gpt.rope_cos[start:start + T], gpt.rope_sin[start:start + T]) if pos == "rope" else None
    return x, rope


def _step(gpt: GPT, idx: Tensor, cache: list[tuple[Tensor, Tensor]] | None, start: int
          ) -> tuple[Tensor, list[tuple[Tensor, Tensor]]]:
    """Logits of the last position of idx (B, T) given cached keys/values; the grown cache."""
    x, rope = _embed(gpt, idx, start)
    B, T, C = x.shape
    new_cache = []
    for i, block in enumerate(gpt.blocks):
        attn = block.attn
        nh, hs = attn.n_head, attn.d_head
        h = block.ln1(x)
        q = attn.q_proj(h).view(B, T, nh, hs)
        k = attn.k_proj(h).view(B, T, nh, hs)
        v = attn.v_proj(h).view(B, T, nh, hs)
        if rope is not None:
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # (B, nh, T, hs)
        if cache is not None:
            k = torch.cat((cache[i][0], k), dim=2)
            v = torch.cat((cache[i][1], v), dim=2)
        new_cache.append((k, v))
        if attn.kind == "softmax":
            # The prompt pass is causal; a one-token step sees every cached position.
            z = F.scaled_dot_product_attention(q, k, v, is_causal=cache is None and T > 1)
        else:
            S = k.shape[2]
            scores = (q @ k.transpose(-2, -1)) * attn.scale  # (B, nh, T, S)
            future = torch.ones(T, S, dtype=torch.bool, device=x.device).triu(S - T + 1)
            z = scores.masked_fill(future, 0.0) @ v
        x = x + attn.o_proj(z.transpose(1, 2).reshape(B, T, C))
        x = x + block.mlp(block.ln2(x))
    logits = gpt.lm_head(gpt.ln_f(x[:, -1:]))[:, 0]  # (B, V)
    return logits, new_cache


@torch.no_grad()
def greedy_decode(model: nn.Module, prompts: list[list[int]], max_new: int,
                  stop_id: int | tuple[int, ...], batch_size: int = 16) -> list[list[int]]:
    """Greedy continuations of each prompt, up to and including a stop id (or `max_new` tokens).

    Prompts of equal length are decoded together; the result is in the order of `prompts`.
    A prompt longer than the model's block size leaves room for nothing and returns [].
    """
    gpt = base_gpt(model)
    was_training = model.training
    model.eval()
    out: list[list[int]] = [[] for _ in prompts]
    by_len: dict[int, list[int]] = {}
    for i, p in enumerate(prompts):
        by_len.setdefault(len(p), []).append(i)
    device = gpt.tok_emb.weight.device
    try:
        for length, idxs in by_len.items():
            room = min(max_new, gpt.config.block_size - length)
            for b in range(0, len(idxs), batch_size):
                chunk = idxs[b:b + batch_size]
                seqs = _decode_batch(gpt, [prompts[i] for i in chunk], room, stop_id, device)
                for i, s in zip(chunk, seqs, strict=True):
                    out[i] = s
    finally:
        model.train(was_training)
    return out


def _decode_batch(gpt: GPT, prompts: list[list[int]], room: int,
                  stop_id: int | tuple[int, ...], device: torch.device) -> list[list[int]]:
    if room <= 0:
        return [[] for _ in prompts]
    idx = torch.tensor(prompts, dtype=torch.long, device=device)  # (B, T)
    logits, cache = _step(gpt, idx, None, 0)
    pos = idx.shape[1]
    stops = torch.tensor([stop_id] if isinstance(stop_id, int) else list(stop_id), device=device)
    done = torch.zeros(len(prompts), dtype=torch.bool, device=device)
    gen: list[Tensor] = []
    for t in range(room):
        nxt = logits.argmax(dim=-1)  # (B,)
        gen.append(nxt)
        done |= torch.isin(nxt, stops)
        if bool(done.all()) or t == room - 1:
            break
        logits, cache = _step(gpt, nxt[:, None], cache, pos)
        pos += 1
    toks = torch.stack(gen, dim=1).tolist()  # (B, n)
    stop_set = set(stops.tolist())
    return [s[: next((i + 1 for i, v in enumerate(s) if v in stop_set), len(s))] for s in toks]


def count_params(model: nn.Module) -> int:
    """Parameters of the model (shared ones once)."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


def seconds_to_str(s: float) -> str:
    """A duration as '1m 23s' or '4.5s'."""
    return f"{int(s // 60)}m {math.floor(s % 60):02d}s" if s >= 60 else f"{s:.1f}s"


def detach_state(model: nn.Module) -> dict[str, Any]:
    """A CPU copy of the model's state dict (tied weights once each)."""
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
