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


def synthetic_table(sizes: dict[str, int], seed: int, **kwargs: object) -> list:
    """Sample-table records (`tables.QueryRecord`) of synthetic splits, e.g.
    ``{"train": 300, "val": 100, "test": 200}``; the hidden state is the informative feature
    vector, the greedy answer and the pilot answers follow the rewards."""
    from lmlab.studies.adaptive_compute.tables import QueryRecord, Sample

    out = []
    for k, (split, n) in enumerate(sizes.items()):
        d = synthetic_split(n, seed=derive(seed, split, k), **kwargs)  # type: ignore[arg-type]
        for i in range(n):
            samples = [Sample("1" if r == 1 else f"{int(1000 * r)}", float(r), 1.0) for r in d.rewards[i]]
            out.append(QueryRecord(
                id=f"{split}-{i:05d}", split=split, domain="synthetic", prompt="x" * int(d.prompt_len[i]),
                samples=samples, answer="1", meta={"level": int(4 * d.true_p[i])},  # type: ignore[index]
                greedy=Sample("g", float(d.greedy[i]), 1.0),  # type: ignore[index]
                features={"hidden": d.features[i].tolist(), "prompt_tokens": float(d.prompt_len[i])},
            ))
    return out
