"""Prefix reuse in the local backend: an agent's next call reads only its new tokens, and gives
exactly what a fresh read of the whole prompt gives (on the embedded SmolLM2)."""

from __future__ import annotations

import pytest
import torch

from lmlab.llm import Request
from lmlab.llm.hf import HFBackend
from lmlab.llm.prefix import PrefixCache, common_prefix

SYSTEM = (
    "You are an agent in a small office. Tools: search(query) finds documents; "
    "message(person, text) asks a colleague; finish(answer) ends the task. "
    "Answer with exactly one tool call per turn."
)


def _turns() -> list[list[dict]]:
    first = [{"role": "system", "content": SYSTEM},
             {"role": "user", "content": "Task: find who owns the budget spreadsheet."}]
    second = [*first, {"role": "assistant", "content": "search(budget spreadsheet owner)"},
              {"role": "user", "content": "Observation: the file lists Dana as editor."}]
    return [first, second]


@pytest.fixture
def pair(hf) -> tuple[HFBackend, HFBackend]:
    """Two backends over the one loaded model: prefix reuse on and off."""
    on = HFBackend.from_model(hf.lm, hf.tokenizer, hf.model)
    off = HFBackend.from_model(hf.lm, hf.tokenizer, hf.model)
    off.reuse_prefix = False
    return on, off


def test_common_prefix() -> None:
    assert common_prefix((1, 2, 3), (1, 2, 4, 5)) == 2
    assert common_prefix((), (1,)) == 0 and common_prefix((7, 8), (7, 8)) == 2


def test_second_call_reuses_the_first_calls_prefix_and_answers_the_same(pair) -> None:
    on, off = pair
    for k, msgs in enumerate(_turns()):
        req = Request(messages=msgs, temperature=0.0, max_tokens=12, logprobs=True)
        a, b = on.generate([req])[0][0], off.generate([req])[0][0]
        assert a.text == b.text and a.completion_tokens == b.completion_tokens
        assert torch.allclose(torch.tensor(a.logprobs), torch.tensor(b.logprobs), atol=1e-3)
        stats = on.prefix_cache.stats
        assert stats.hits == k  # the first call has nothing to reuse, the second reuses it
    second = on.encode(Request(messages=_turns()[1]))
    first = on.encode(Request(messages=_turns()[0]))
    shared = common_prefix(tuple(first), tuple(second))
    kept = len(first) - 1  # a call keeps its prompt's cache but for the last token
    assert shared > 40 and stats.tokens_reused == min(shared, kept)  # system prompt + user turn
    assert stats.tokens_computed == kept + (len(second) - 1 - min(shared, kept))
    assert off.prefix_cache.stats.lookups == 0 and len(off.prefix_cache) == 0


def test_sampled_answers_do_not_depend_on_reuse(pair) -> None:
    on, off = pair
    msgs = _turns()[0]
    req = Request(messages=msgs, n=3, temperature=1.0, max_tokens=8, seed=5)
    on.generate([req])  # fills the kept cache
    again = on.generate([req])[0]  # the identical prompt, entirely from the kept cache
    assert on.prefix_cache.stats.hits == 1
    assert [c.text for c in again] == [c.text for c in off.generate([req])[0]]


def test_lru_keeps_the_newest_entries_and_drops_extended_ones() -> None:
    class FakeCache:
        def __init__(self, n: int):
            self.n = n

        def crop(self, n: int) -> None:
            assert n < 0  # transformers 5.x refuses a positive length
            self.n += n

    pc = PrefixCache(max_entries=2, min_tokens=2)
    pc.put((1, 2, 3), FakeCache(3))
    pc.put((1, 2, 3, 4), FakeCache(4))  # extends (1, 2, 3): replaces it
    assert len(pc) == 1
    pc.put((5, 6), FakeCache(2))
    pc.put((7, 8), FakeCache(2))  # evicts the least recently used, (1, 2, 3, 4)
    assert pc.lookup((1, 2, 3, 9)) == (None, 0)
    cache, n = pc.lookup((7, 8, 9))
    assert n == 2 and cache.n == 2
    pc.put((7, 8, 10, 11), FakeCache(4))
    cache, n = pc.lookup((7, 8, 10, 12))  # shares 3 of the 4 kept tokens: cropped to 3
    assert n == 3 and cache.n == 3
    cache, n = pc.lookup((7, 9))  # one shared token is under min_tokens
    assert cache is None and n == 0


def test_hidden_states_function_returns_last_token_states(hf) -> None:
    import numpy as np

    from lmlab.llm.hf import hidden_states

    h = hidden_states(hf, ["What is 2+2?", Request.chat("Name a prime.")], layer=3)
    assert isinstance(h, np.ndarray) and h.dtype == np.float32
    assert h.shape == (2, hf.lm.config.hidden_size)
    want = hf.hidden_states(["What is 2+2?"], 3).numpy()[0]
    assert np.allclose(h[0], want, atol=1e-5) and not np.allclose(h[0], h[1])
    # The same states as a full forward pass reading the prompt: the last token after block 3.
    ids = torch.tensor([hf.encode(Request.chat("What is 2+2?"))])
    with torch.no_grad():
        ref = hf.lm(input_ids=ids, output_hidden_states=True).hidden_states[3][0, -1]
    assert np.allclose(h[0], ref.numpy(), atol=1e-4)
