"""Stories, splits, batches, intermediate tasks and cutoffs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lmlab.stats import wilson_lower
from lmlab.studies.state_tracking.config import Recipe
from lmlab.studies.state_tracking.data import make_stories, make_story_data
from lmlab.studies.state_tracking.evaluation import cutoff
from lmlab.studies.state_tracking.groups import make_group
from lmlab.studies.state_tracking.oracles import OracleScan
from lmlab.studies.state_tracking.steering import intermediate_batch, topic_word_matrix, window_size
from lmlab.studies.state_tracking.training import curriculum_length, validation_metrics

G = make_group("S3")


def test_stories_are_unique_seeded_and_split_by_story() -> None:
    d1 = make_story_data(G, 8, 3000, 0.1, 16, seed=5)
    d2 = make_story_data(G, 8, 3000, 0.1, 16, seed=5)
    assert np.array_equal(d1.train, d2.train) and np.array_equal(d1.analysis, d2.analysis)
    assert len(d1.analysis) == 300 and len(d1.train) == 2700
    rows = {tuple(r) for r in d1.train}
    assert len(rows) == len(d1.train)  # unique
    assert not rows & {tuple(r) for r in d1.analysis}  # disjoint by story
    assert d1.eval_actions.shape == (300, 16)
    assert np.array_equal(d1.eval_actions[:, :8], d1.analysis)  # extended, not replaced
    # a tiny story space is exhausted, not looped forever
    assert len(make_stories(G, 100, 2, np.random.default_rng(0))) == 36


def test_batch_labels_are_the_state_after_each_action() -> None:
    d = make_story_data(G, 6, 500, 0.1, 12, seed=0)
    b = d.batch(torch.Generator().manual_seed(0), 32, length=3, bos=G.order + 2)
    x, y, m = b["input_ids"], b["targets"], b["loss_mask"]
    assert x.shape == y.shape == m.shape == (32, 7)
    assert (x[:, 0] == G.order + 2).all() and (y[:, 0] == -100).all()
    assert np.array_equal(y[:, 1:].numpy(), G.compose(x[:, 1:].numpy()))
    assert y[0, 1] == x[0, 1]  # the state after one action from the identity is that action
    assert m[:, 1:4].all() and not m[:, 4:].any() and not m[:, 0].any()


def test_curriculum_grows_to_T() -> None:
    r = Recipe(steps=100, curriculum_start=4, curriculum_frac=0.5)
    lengths = [curriculum_length(s, 16, r) for s in range(1, 101)]
    assert lengths[0] == 4 and lengths[-1] == 16 and lengths == sorted(lengths)
    assert curriculum_length(1, 16, Recipe(curriculum_start=0)) == 16


def test_intermediate_tasks() -> None:
    d = make_story_data(G, 6, 500, 0.1, 12, seed=0)
    gen = torch.Generator().manual_seed(1)
    b = intermediate_batch("parity", d, gen, 16)
    states = G.compose(b["input_ids"].numpy())
    assert np.array_equal(b["targets"].numpy(), G.order + G.parity[states])
    tw = topic_word_matrix(G.order, 4, seed=0)
    assert tw.shape == (4, 6) and np.allclose(tw.sum(1), 1)
    b = intermediate_batch("ntp", d, gen, 16, topic_word=tw, bos=8)
    assert (b["input_ids"][:, 0] == 8).all()
    assert torch.equal(b["input_ids"][:, 1:], b["targets"][:, :-1])  # next-token prediction
    for bos in (None, 8):  # pairs: the product of the last two actions (the first: itself)
        b = intermediate_batch("pairs", d, gen, 16, bos=bos)
        off = 0 if bos is None else 1
        x, y = b["input_ids"][:, off:].numpy(), b["targets"][:, off:].numpy()
        assert np.array_equal(y[:, 0], x[:, 0])
        assert np.array_equal(y[:, 1:], G.compose(np.stack([x[:, :-1], x[:, 1:]], -1))[..., 1])
        if bos is not None:
            assert (b["targets"][:, 0] == -100).all() and not b["loss_mask"][:, 0].any()
    with pytest.raises(ValueError, match="unknown intermediate"):
        intermediate_batch("copy", d, gen, 4)


def test_windows_curriculum_trains_each_level_of_a_scan() -> None:
    # k = 2, 4, ... below T, an equal share of the steps each
    assert [window_size(8, p) for p in (0.0, 0.49, 0.5, 0.99)] == [2, 2, 4, 4]
    assert [window_size(16, p) for p in (0.0, 0.34, 0.67, 0.99)] == [2, 4, 8, 8]
    assert window_size(2, 0.5) == window_size(4, 0.9) == 2
    d = make_story_data(G, 6, 500, 0.1, 12, seed=0)
    gen = torch.Generator().manual_seed(0)
    for progress, k in ((0.2, 2), (0.7, 4)):  # T = 6: k = 2, then 4
        b = intermediate_batch("windows", d, gen, 16, bos=8, progress=progress)
        x, y = b["input_ids"][:, 1:].numpy(), b["targets"][:, 1:].numpy()
        for t in range(x.shape[1]):  # the product of the last k actions (all of them before k)
            assert np.array_equal(y[:, t], G.compose(x[:, max(0, t - k + 1): t + 1])[:, -1])


def test_cutoff() -> None:
    assert cutoff(np.array([1.0, 0.99, 0.97, 1.0])) == 3
    assert cutoff(np.ones(5)) == 6


def test_fresh_batches_are_new_stories_and_never_analysis_ones() -> None:
    # a tiny story space (6^2 = 36 stories, half held out) makes collisions certain to be drawn
    d = make_story_data(G, 2, 36, 0.5, 4, seed=0, fresh=True)
    held = {tuple(r) for r in d.analysis}
    assert len(held) == 18
    gen = torch.Generator().manual_seed(0)
    seen = set()
    for _ in range(20):
        b = d.batch(gen, 64, bos=G.order + 2)
        rows = {tuple(r) for r in b["input_ids"][:, 1:].tolist()}
        assert not rows & held
        seen |= rows
        assert np.array_equal(b["targets"][:, 1:].numpy(), G.compose(b["input_ids"][:, 1:].numpy()))
    assert seen == {tuple(r) for r in d.train}  # every non-held-out story, not a fixed subset
    # a larger space: batches differ from step to step (no fixed training set is cycled)
    d = make_story_data(G, 8, 2000, 0.1, 16, seed=0, fresh=True)
    a, b = (d.batch(torch.Generator().manual_seed(s), 64)["input_ids"] for s in (1, 2))
    train = {tuple(r) for r in d.train.tolist()}
    assert sum(tuple(r) in train for r in a.tolist()) < 4  # fresh=False: all 64 would be
    assert not torch.equal(a, b)


class _Misses(torch.nn.Module):
    """A perfect scan (OracleScan) that gets the last position wrong on every story whose first
    action is 0: a model with a known worst position, for the stop rule's plumbing."""

    def __init__(self) -> None:
        super().__init__()
        self.scan = OracleScan(G, 3)

    def forward(self, idx: torch.Tensor) -> tuple[torch.Tensor, None]:
        logits, _ = self.scan(idx)
        miss = idx[:, 0] == 0
        logits[miss, -1] = logits[miss, -1].roll(1, dims=-1)
        return logits, None


def test_the_lower_bound_stop_reads_all_validation_stories_once_the_screen_passes() -> None:
    stories = make_stories(G, 2500, 8, np.random.default_rng(0))
    point = Recipe(stop_at=0.99)
    bound = Recipe(stop_at=0.99, stop_on="lower_bound")
    # a perfect model: the screen (1,000 stories) passes, so the bound is over all 2,500
    m = validation_metrics(OracleScan(G, 3), stories, G, bound)
    assert m["val_acc_min"] == 1.0 and "val_worst_lower" not in validation_metrics(
        OracleScan(G, 3), stories, G, point)
    assert m["val_worst_lower"] == pytest.approx(float(wilson_lower(2500, 2500)))
    assert m["val_worst_lower"] > float(wilson_lower(1000, 1000)) > 0.99 > float(
        wilson_lower(996, 1000))  # the point rule's 0.996 on 1,000 is a bound of 0.9898
    # one position wrong on a sixth of the stories: the screen fails, the bound is the screen's
    m = validation_metrics(_Misses(), stories, G, bound)
    wrong = int((stories[:1000, 0] == 0).sum())
    assert m["val_acc_min"] == pytest.approx(1 - wrong / 1000)
    assert m["val_worst_lower"] == pytest.approx(float(wilson_lower(1000 - wrong, 1000)))
    assert validation_metrics(_Misses(), stories, G, point)["val_acc_min"] == pytest.approx(
        1 - (stories[:, 0] == 0).mean())  # the point rule scores every validation story
