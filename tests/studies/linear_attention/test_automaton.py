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
    DfaJob,
    Vocab,
    dfa_dataset,
    dfa_job,
    encode_example,
    example_key,
    example_split,
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


def _keys(batch: dict, voc: Vocab, L: int) -> set:
    rows = torch.cat([batch["input_ids"][:, :1], batch["targets"]], dim=1)
    return {example_key(r, voc, L) for r in rows}


def test_train_validation_and_test_examples_never_overlap():
    # 2 states, 2 symbols, words of 2: only 64 (DFA, word) pairs, so independent draws of 512
    # examples per split would overlap almost surely; the hash partition keeps them apart.
    voc, L = Vocab(2, 2), 2
    splits = {s: _keys(dfa_dataset(0, 512, 2, 2, L, split=s), voc, L)
              for s in ("train", "val", "test")}
    assert all(splits.values())
    assert not splits["train"] & splits["val"]
    assert not splits["train"] & splits["test"]
    assert not splits["val"] & splits["test"]
    # what the streams alone gave before: the "held-out" set repeats training examples
    old_train = _keys(dfa_dataset(0, 512, 2, 2, L, stream=0), voc, L)
    old_val = _keys(dfa_dataset(0, 512, 2, 2, L, stream=1), voc, L)
    assert old_train & old_val
    # every example of a split is assigned to that split
    for key in splits["test"]:
        assert example_split(0, np.array(key[0]), np.array(key[1])) == "test"


def test_example_key_reads_back_the_dfa_and_word_whatever_the_table_order():
    rng = np.random.default_rng(3)
    dfa, word = random_dfa(rng, 3, 2), np.array([1, 0, 1, 1])
    a, _ = encode_example(dfa, word, rng)
    b, _ = encode_example(dfa, word, rng)
    key = example_key(a, Vocab(3, 2), 4)
    assert key == example_key(b, Vocab(3, 2), 4)
    assert key == (tuple(map(tuple, dfa.delta.tolist())), (1, 0, 1, 1))


def test_the_job_stops_on_validation_and_reports_test():
    r = dfa_job(DfaJob(seed=0, n_states=2, n_symbols=2, word_len=2, n_train=64, epochs=1,
                       batch_size=32, lr=1e-3, d_model=16, n_head=2, n_layer=1, n_val=64,
                       n_test=96, threads=1, device="cpu"))
    assert {"val_history_acc", "val_reached_99", "history_acc", "reached_99"} <= set(r)
    assert r["n_test"] == 96 and r["reached_99"] == (r["history_acc"] >= 0.99)
    assert r["val_reached_99"] == (r["val_history_acc"] >= 0.99)
