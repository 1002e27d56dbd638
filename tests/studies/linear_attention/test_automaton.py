"""DFA execution data: the exact token format and the consistency of every history."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lmlab.studies.linear_attention.automaton import (
    BOS,
    DFA,
    LP,
    RP,
    SEP,
    Vocab,
    dfa_dataset,
    encode_example,
    history_consistent,
    random_dfa,
)


def test_golden_sequence():
    # Two states, two symbols: delta(0, a0) = 1, delta(0, a1) = 0, delta(1, a0) = 1, delta(1, a1) = 0
    dfa = DFA(np.array([[1, 0], [1, 0]]))
    toks, mask = encode_example(dfa, np.array([0, 1]), np.random.default_rng(0), shuffle=False)
    s0, s1, a0, a1 = 5, 6, 7, 8  # 5 specials, then states, then symbols
    assert toks.tolist() == [
        BOS,
        LP, s0, a0, s1, RP, LP, s0, a1, s0, RP, LP, s1, a0, s1, RP, LP, s1, a1, s0, RP,
        SEP, a0, a1, SEP,
        LP, s0, a0, s1, RP, LP, s1, a1, s0, RP,
    ]
    assert mask.tolist() == [False] * 25 + [True] * 10
    assert dfa.run(np.array([0, 1])).tolist() == [0, 1, 0]


@settings(max_examples=30, deadline=None)
@given(q=st.integers(1, 6), a=st.integers(1, 5), L=st.integers(1, 8), seed=st.integers(0, 2**32 - 1))
def test_table_size_and_history_consistency(q, a, L, seed):
    rng = np.random.default_rng(seed)
    dfa = random_dfa(rng, q, a)
    toks, mask = encode_example(dfa, rng.integers(a, size=L), rng)
    voc = Vocab(q, a)
    assert len(toks) == voc.seq_len(L)
    table = toks[1 : 1 + 5 * q * a]
    assert len(table) == 5 * q * a
    assert set(table[0::5]) == {LP} and set(table[4::5]) == {RP}
    assert int(mask.sum()) == 5 * L
    assert history_consistent(toks, voc, L)
    # Any wrong next state is caught.
    bad = toks.copy()
    pos = len(toks) - 2  # the last s^{i+1}
    bad[pos] = voc.state((int(toks[pos]) - voc.state(0) + 1) % q) if q > 1 else bad[pos]
    assert history_consistent(bad, voc, L) == (q == 1)


def test_dataset_is_a_shifted_gpt_batch():
    batch = dfa_dataset(seed=0, n=8, n_states=3, n_symbols=2, word_len=4)
    T = Vocab(3, 2).seq_len(4)
    assert batch["input_ids"].shape == batch["targets"].shape == (8, T - 1)
    assert torch.equal(batch["input_ids"][:, 1:], batch["targets"][:, :-1])
    assert batch["loss_mask"].sum(1).tolist() == [20] * 8
    again = dfa_dataset(seed=0, n=8, n_states=3, n_symbols=2, word_len=4)
    assert torch.equal(batch["input_ids"], again["input_ids"])
    assert int(batch["input_ids"].max()) < Vocab(3, 2).size
