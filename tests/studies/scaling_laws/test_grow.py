"""Growing a family: the synthetic corpus and one tiny training run per (size, seed)."""

from __future__ import annotations

import numpy as np
import torch

from lmlab.studies.scaling_laws.config import Grow
from lmlab.studies.scaling_laws.grow import FAMILY, BigramCorpus, grow_family, member_specs


def test_the_corpus_is_a_proper_markov_chain():
    c = BigramCorpus(vocab=32, rank=8)
    p = c.probabilities()
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    assert 0 < c.entropy_rate() < np.log(32)
    a = c.sample(16, 20, torch.Generator().manual_seed(0))
    b = c.sample(16, 20, torch.Generator().manual_seed(0))
    assert torch.equal(a, b) and a.min() >= 0 and a.max() < 32
    # Empirical next-token frequencies follow the chain.
    x = c.sample(4000, 30, torch.Generator().manual_seed(1))
    top = int(torch.bincount(x[:, :-1].flatten(), minlength=32).argmax())
    follow = x[:, 1:][x[:, :-1] == top]
    freq = torch.bincount(follow, minlength=32).double() / len(follow)
    assert np.abs(freq.numpy() - p[top]).max() < 0.03


def test_a_family_of_tiny_runs_in_the_checkpoint_schema():
    corpus = BigramCorpus(vocab=32, rank=8)
    grow = Grow(widths=(8, 16), steps=20, batch=8, seq_len=16, eval_every=5, n_eval=32)
    specs = member_specs(grow, [0], corpus)
    assert all(s.grow is grow for s in specs)  # the job carries the config's own settings
    table = grow_family(specs)
    assert table.families() == [FAMILY] and len(table) == 2 * 4
    assert sorted(set(table.tokens.tolist())) == [5 * 8 * 16, 10 * 8 * 16, 15 * 8 * 16,
                                                  20 * 8 * 16]
    small, big = table.models()
    assert small.num_params < big.num_params and small.name == "gpt-L1-d8"
    first = table.where(table.tokens == table.tokens.min()).loss
    last = table.where(table.tokens == table.tokens.max()).loss
    assert np.all(last < first)  # both learn something in 20 steps
    again = grow_family(specs)
    np.testing.assert_array_equal(again.loss, table.loss)  # seeded: the same numbers
