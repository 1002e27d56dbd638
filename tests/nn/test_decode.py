"""lmlab.nn.decode: KV-cached greedy decoding equals full recomputation, with or without coords."""

from __future__ import annotations

import pytest
import torch

from lmlab.nn import GPT, GPTConfig
from lmlab.nn.decode import base_gpt, greedy_decode, uncached_greedy_decode

V, BLOCK = 13, 40


def _gpt(pos: str, attn: str = "softmax", coords: bool = False) -> GPT:
    torch.manual_seed(3)
    cfg = GPTConfig(vocab_size=V, block_size=BLOCK, n_layer=2, n_head=2, d_model=32, pos=pos,
                    attn=attn, init_std=0.3,  # a large init: the argmax changes along the way
                    coord_sizes=(6, 4) if coords else ())
    return GPT(cfg).eval()


def _coords(ids: torch.Tensor) -> torch.Tensor:
    """A causal coordinate function: (count of token 0 so far mod 6, current token mod 4)."""
    return torch.stack(((ids == 0).long().cumsum(-1) % 6, ids % 4), dim=-1)


def _prompts() -> list[list[int]]:
    g = torch.Generator().manual_seed(0)
    p = [torch.randint(0, V, (9,), generator=g).tolist() for _ in range(3)]
    return [*p, p[0][:5]]  # a different length: decoded in its own batch


@pytest.mark.parametrize(("pos", "attn", "coords"), [
    ("learned", "softmax", False), ("rope", "softmax", False), ("learned", "softmax", True),
    ("rope", "softmax", True), ("sinusoidal", "linear", True), ("none", "softmax", False),
])
def test_cached_equals_uncached(pos: str, attn: str, coords: bool) -> None:
    model = _gpt(pos, attn, coords)
    fn = _coords if coords else None
    prompts = _prompts()
    cached = greedy_decode(model, prompts, 15, stop_ids=99, coords_fn=fn, batch_size=2)
    full = uncached_greedy_decode(model, prompts, 15, stop_ids=99, coords_fn=fn)
    assert cached == full
    assert all(len(c) == 15 for c in cached) and len({tuple(c) for c in cached}) > 1
    if not coords:  # and both equal GPT.generate
        gen = [model.generate(torch.tensor([p]), 15)[0, len(p):].tolist() for p in prompts]
        assert cached == gen


def test_stops_and_block_size() -> None:
    model = _gpt("rope")
    prompts = _prompts()
    first = greedy_decode(model, prompts[:1], 15, stop_ids=99)[0]
    # stops at (and keeps) the first stop id of a set
    assert greedy_decode(model, prompts[:1], 15, stop_ids=(98, first[2])) == [
        first[: first.index(first[2]) + 1]]
    # never beyond the block size; a full prompt gets nothing
    assert len(greedy_decode(model, [prompts[0] * 4], 15, stop_ids=99)[0]) == BLOCK - 36
    assert greedy_decode(model, [[1] * BLOCK], 15, stop_ids=99) == [[]]
    assert model.training is False
    model.train()
    greedy_decode(model, prompts[:1], 3, stop_ids=99)
    assert model.training  # the mode comes back


def test_through_a_peft_lora() -> None:
    import peft
    model = _gpt("rope", coords=True)
    wrapped = peft.get_peft_model(model, peft.LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    with torch.no_grad():
        for n, p in wrapped.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.5)
    assert base_gpt(wrapped) is model
    prompts = _prompts()[:2]
    cached = greedy_decode(wrapped, prompts, 10, stop_ids=99, coords_fn=_coords)
    full = uncached_greedy_decode(wrapped, prompts, 10, stop_ids=99, coords_fn=_coords)
    assert cached == full
    with wrapped.disable_adapter():
        base = greedy_decode(wrapped, prompts, 10, stop_ids=99, coords_fn=_coords)
    assert base != cached  # the adapter is used by the cached path
    with pytest.raises(TypeError, match="lmlab GPT"):
        base_gpt(torch.nn.Linear(2, 2))
