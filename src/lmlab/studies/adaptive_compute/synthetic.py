"""Synthetic sample tables for tests and for checking the pipeline without a model.

Query i has a pass rate p_i ~ Beta(a, b); its N rewards are Bernoulli(p_i) (or, with
``real=True``, Beta-distributed rewards whose mean grows with p_i). The "hidden state" holds
logit(p_i) plus Gaussian noise (an informative feature of known quality) and uninformative noise
dimensions; the prompt length is noise; the pilot agreement is read off the first samples; the
greedy answer is right when p_i > 1/2. Everything is seeded.
"""

from __future__ import annotations

import numpy as np

from lmlab.seeding import derive
from lmlab.studies.adaptive_compute.analysis import SplitData

__all__ = ["synthetic_split"]


def synthetic_split(n: int, seed: int, *, n_samples: int = 8, a: float = 0.5, b: float = 0.5,
                    noise: float = 0.5, dims: int = 8, pilot_m: int = 2, real: bool = False) -> SplitData:
    """One split of `n` synthetic queries (see the module docstring)."""
    rng = np.random.default_rng(derive(seed, "synthetic", n))
    p = rng.beta(a, b, size=n)
    if real:
        conc = 4.0
        rewards = rng.beta((conc * p + 1e-3)[:, None], (conc * (1 - p) + 1e-3)[:, None], size=(n, n_samples))
        agree = 1.0 - np.std(rewards[:, :pilot_m], axis=1)
    else:
        rewards = (rng.random((n, n_samples)) < p[:, None]).astype(float)
        first = rewards[:, :pilot_m]
        agree = np.maximum(first.mean(1), 1 - first.mean(1))
    logit = np.log(np.clip(p, 1e-4, 1 - 1e-4) / np.clip(1 - p, 1e-4, 1))
    feats = np.column_stack([logit + rng.normal(0, noise, n), rng.normal(size=(n, dims - 1))])
    return SplitData(rewards=rewards, features=feats, prompt_len=rng.integers(10, 60, n).astype(float),
                     pilot=agree, greedy=(p > 0.5).astype(float), level=None, true_p=p)
