"""Stories of group actions and their states: seeded, unique, split into train and analysis by story.

A story is T actions drawn uniformly from the group; its labels are the states after each action
(s_1..s_T, starting from s_0 = identity). The model reads action a_t at position t-1 and is trained
to output s_t there, as in the official code (labels = states shifted by one).

Training batches come either from the fixed train split (`fresh=False`, the official code's
finite data set) or, with `fresh=True`, are new uniform stories every step that are rejected and
redrawn when they equal an analysis story, so the held-out stories stay unseen (the streaming
setup of Zhong & Andreas 2024; see training.py's RECIPE for why the tiny preset uses it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from lmlab.studies.state_tracking.groups import Group

__all__ = ["StoryData", "make_stories", "make_story_data", "with_bos"]


def make_stories(group: Group, n: int, T: int, rng: np.random.Generator) -> np.ndarray:
    """`n` unique stories of `T` uniform actions, (n, T) int64 (fewer if the group has < n)."""
    total = group.order**T
    n = min(n, total) if total < 2**62 else n
    out = np.empty((0, T), dtype=np.int64)
    while len(out) < n:
        more = rng.integers(0, group.order, size=(n - len(out) + 16, T), dtype=np.int64)
        out = np.unique(np.concatenate([out, more]), axis=0)
    # np.unique sorts the rows; shuffle back so that any prefix is a uniform sample
    return out[rng.permutation(len(out))[:n]]


@dataclass
class StoryData:
    """Train and analysis stories (disjoint), and the analysis stories extended to `eval_len`."""

    group: Group
    T: int
    train: np.ndarray  # (n_train, T) actions
    analysis: np.ndarray  # (n_analysis, T) actions, disjoint from train
    eval_actions: np.ndarray  # (n_analysis, eval_len): analysis stories + random extra actions
    fresh: bool = False  # batches: new stories every step (never an analysis story) vs the train split

    def __post_init__(self) -> None:
        self._held = {r.tobytes() for r in np.ascontiguousarray(self.analysis, dtype=np.int64)}

    def states(self, actions: np.ndarray) -> np.ndarray:
        """States after each action for an (N, L) array of actions."""
        return self.group.compose(actions)

    def fresh_stories(self, generator: torch.Generator, n: int) -> np.ndarray:
        """`n` uniform stories of T actions, none equal to an analysis story (redrawn if so)."""
        G = self.group.order
        out = torch.randint(0, G, (n, self.T), generator=generator).numpy()
        for _ in range(1000):
            bad = [i for i, r in enumerate(out) if r.tobytes() in self._held]
            if not bad:
                return out
            out[bad] = torch.randint(0, G, (len(bad), self.T), generator=generator).numpy()
        raise ValueError("the analysis split covers (almost) every story; lower analysis_frac")

    def batch(
        self, generator: torch.Generator, batch_size: int, length: int | None = None,
        bos: int | None = None,
    ) -> dict[str, torch.Tensor]:
        """A training batch of stories (see `fresh`); the loss covers the first `length` actions.

        With `bos`, the input starts with that token (target ignored), so position t+1 reads a_t.
        """
        if self.fresh:
            actions = self.fresh_stories(generator, batch_size)
        else:
            idx = torch.randint(0, len(self.train), (batch_size,), generator=generator).numpy()
            actions = self.train[idx]
        states = torch.from_numpy(self.group.compose(actions))
        mask = torch.ones(batch_size, self.T, dtype=torch.bool)
        if length is not None and length < self.T:
            mask[:, length:] = False
        inputs = torch.from_numpy(actions)
        if bos is not None:
            inputs = with_bos(inputs, bos)
            states = torch.cat([torch.full((batch_size, 1), -100), states], 1)
            mask = torch.cat([torch.zeros(batch_size, 1, dtype=torch.bool), mask], 1)
        return {"input_ids": inputs, "targets": states, "loss_mask": mask}


def with_bos(actions: torch.Tensor, bos: int | None) -> torch.Tensor:
    """Prepend the token `bos` to every row of (N, L) actions (no-op when bos is None)."""
    if bos is None:
        return actions
    return torch.cat([torch.full((len(actions), 1), bos, dtype=actions.dtype), actions], 1)


def make_story_data(
    group: Group, T: int, n_stories: int, analysis_frac: float, eval_len: int, seed: int,
    fresh: bool = False,
) -> StoryData:
    """Draw `n_stories` unique stories, split them by story, extend the analysis ones to eval_len.

    With `fresh`, training batches are new stories every step instead of the train split."""
    if eval_len < T:
        raise ValueError(f"eval_len={eval_len} must be >= T={T}")
    rng = np.random.default_rng([seed, 7919])
    stories = make_stories(group, n_stories, T, rng)
    n_analysis = max(1, round(len(stories) * analysis_frac))
    analysis, train = stories[:n_analysis], stories[n_analysis:]
    extra = rng.integers(0, group.order, size=(n_analysis, eval_len - T), dtype=np.int64)
    return StoryData(group, T, train, analysis, np.concatenate([analysis, extra], axis=1),
                     fresh)
