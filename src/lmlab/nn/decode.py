"""Greedy decoding of lmlab's GPT with a key/value cache, optionally with coordinates.

`greedy_decode(model, prompts, max_new, stop_ids)` extends each prompt token by token, keeping
every layer's keys and values so that a step costs one token's forward pass instead of the whole
sequence's: a 40-token answer after a 300-token prompt is one prompt pass and 40 one-token
passes instead of 40 full passes. It calls the GPT's own modules (`ln1`, `q_proj`, ..., `mlp`,
`lm_head`), so a PEFT LoRA wrapped around them (or any module replacement) is used exactly as in
`GPT.forward`; `model` may be the GPT or a PEFT model around one. Hook points are not run.

Coordinates (`GPTConfig.coord_sizes`): pass `coords_fn(ids) -> coords`, a function of the token
ids alone ((B, T) -> (B, T, n)); it is called on the whole sequence after every step and the
new token's coordinates are taken from its last position, so generated tokens get the same
coordinates they would get in training. Its value at a position must depend only on the tokens
up to that position (causality), which `tests/nn/test_decode.py` checks against the uncached
path for learned and rotary positions and for linear attention.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lmlab.nn.gpt import GPT, apply_rope
from lmlab.nn.modes import evaluating

__all__ = ["CoordsFn", "base_gpt", "greedy_decode", "uncached_greedy_decode"]

CoordsFn = Callable[[Tensor], Tensor]
Cache = list[tuple[Tensor, Tensor]]


def base_gpt(model: nn.Module) -> GPT:
    """The GPT inside `model` (itself, or the base model of a PEFT wrapper)."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    if not isinstance(inner, GPT):
        raise TypeError(f"expected an lmlab GPT (or a PEFT model around one), got {type(inner)}")
    return inner


def _embed(gpt: GPT, idx: Tensor, coords: Tensor | None, start: int
           ) -> tuple[Tensor, tuple[Tensor, Tensor] | None]:
    """Token (+ coordinate) plus positional embeddings of idx (B, T) at start..start+T-1."""
    T = idx.shape[1]
    x = gpt.embed(idx, coords)  # (B, T, d)
    pos = gpt.config.pos
    if pos == "learned":
        x = x + gpt.pos_emb.weight[start:start + T]
    elif pos == "sinusoidal":
        x = x + gpt.pos_table[start:start + T]
    rope = (gpt.rope_cos[start:start + T], gpt.rope_sin[start:start + T]) if pos == "rope" else None
    return x, rope


def _step(gpt: GPT, idx: Tensor, coords: Tensor | None, cache: Cache | None, start: int
          ) -> tuple[Tensor, Cache]:
    """Logits (B, V) of the last position of idx (B, T) given the cached keys/values."""
    x, rope = _embed(gpt, idx, coords, start)
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
            k = torch.cat((cache[i][0], k), dim=2)  # (B, nh, S, hs)
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


def _trim(toks: list[list[int]], stops: set[int]) -> list[list[int]]:
    return [s[: next((i + 1 for i, v in enumerate(s) if v in stops), len(s))] for s in toks]


def _stop_set(stop_ids: int | Sequence[int]) -> list[int]:
    return [stop_ids] if isinstance(stop_ids, int) else [int(s) for s in stop_ids]


def _decode_batch(gpt: GPT, prompts: list[list[int]], room: int, stops: list[int],
                  coords_fn: CoordsFn | None, device: torch.device) -> list[list[int]]:
    if room <= 0:
        return [[] for _ in prompts]
    seq = torch.tensor(prompts, dtype=torch.long, device=device)  # (B, T)
    coords = None if coords_fn is None else coords_fn(seq)
    logits, cache = _step(gpt, seq, coords, None, 0)
    stop_t = torch.tensor(stops, device=device)
    done = torch.zeros(len(prompts), dtype=torch.bool, device=device)
    for t in range(room):
        nxt = logits.argmax(dim=-1, keepdim=True)  # (B, 1)
        seq = torch.cat((seq, nxt), dim=1)
        done |= torch.isin(nxt[:, 0], stop_t)
        if bool(done.all()) or t == room - 1:
            break
        c = None if coords_fn is None else coords_fn(seq)[:, -1:]
        logits, cache = _step(gpt, nxt, c, cache, seq.shape[1] - 1)
    return _trim(seq[:, len(prompts[0]):].tolist(), set(stops))


@torch.no_grad()
def greedy_decode(model: nn.Module, prompts: Sequence[Sequence[int]], max_new: int,
                  stop_ids: int | Sequence[int], *, coords_fn: CoordsFn | None = None,
                  batch_size: int = 16) -> list[list[int]]:
    """Greedy continuations of each prompt, up to and including a stop id (or `max_new` tokens).

    Prompts of equal length are decoded together, `batch_size` at a time; the result is in the
    order of `prompts`. Generation stops at the model's block size: a prompt that fills it gets
    []. The model runs in eval mode and gets its previous mode back.
    """
    gpt = base_gpt(model)
    stops = _stop_set(stop_ids)
    out: list[list[int]] = [[] for _ in prompts]
    by_len: dict[int, list[int]] = {}
    for i, p in enumerate(prompts):
        by_len.setdefault(len(p), []).append(i)
    device = gpt.tok_emb.weight.device
    with evaluating(model):
        for length, idxs in by_len.items():
            room = min(max_new, gpt.config.block_size - length)
            for b in range(0, len(idxs), batch_size):
                chunk = idxs[b:b + batch_size]
                seqs = _decode_batch(gpt, [list(prompts[i]) for i in chunk], room, stops,
                                     coords_fn, device)
                for i, s in zip(chunk, seqs, strict=True):
                    out[i] = s
    return out


@torch.no_grad()
def uncached_greedy_decode(model: nn.Module, prompts: Sequence[Sequence[int]], max_new: int,
                           stop_ids: int | Sequence[int], *, coords_fn: CoordsFn | None = None
                           ) -> list[list[int]]:
    """The reference for `greedy_decode`: one full forward pass per new token, one prompt at a
    time (slow; for tests and checks)."""
    gpt = base_gpt(model)
    stops = _stop_set(stop_ids)
    device = gpt.tok_emb.weight.device
    out = []
    with evaluating(model):
        for p in prompts:
            seq = torch.tensor([list(p)], dtype=torch.long, device=device)
            for _ in range(min(max_new, gpt.config.block_size - len(p))):
                coords = None if coords_fn is None else coords_fn(seq)
                logits = model(seq, coords=coords) if coords is not None else model(seq)
                nxt = logits[0][:, -1].argmax(dim=-1, keepdim=True)
                seq = torch.cat((seq, nxt), dim=1)
                if int(nxt) in stops:
                    break
            out.append(seq[0, len(p):].tolist())
    return out
