"""Grow your own family: train small lmlab GPTs of several sizes and seeds, log checkpoint losses.

The corpus is a synthetic language built so that both scaling terms show: a Markov chain whose
next-token logits are a Zipf unigram bias plus a bilinear term u_a · diag(s) · v_b of rank
`rank`, with power-law singular values s_k = scale · k^-decay. A GPT of width d can express only
about d of those directions (its logits factor through d dimensions), so the reducible loss falls
as a power law in the parameters; rare tokens are seen late, so it falls as a power law in data
too; the chain's entropy rate is the irreducible loss E (computed exactly).

Every (size, seed) run is one job for an lmlab executor (`train_member` is module level, so it
runs in a process pool or on Ray as well): it rebuilds the corpus from its seed, trains with the
lmlab trainer (AdamW, warmup then cosine), evaluates the held-out loss every `eval_every` steps
and returns the checkpoints as rows of the checkpoint schema (N = non-embedding parameters,
D = tokens seen, loss in nats).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from lmlab.studies.scaling_laws.config import Grow
from lmlab.studies.scaling_laws.data import CheckpointTable

__all__ = ["FAMILY", "BigramCorpus", "MemberSpec", "grow_family", "member_specs", "train_member"]

FAMILY = "lmlab-gpt"


@dataclass(frozen=True)
class BigramCorpus:
    """A Markov chain with low-rank, power-law-spectrum next-token logits (see the module doc)."""

    vocab: int = 128
    rank: int = 64
    decay: float = 0.5
    scale: float = 2.0
    zipf: float = 1.1
    seed: int = 0

    def probabilities(self) -> np.ndarray:
        """P[a, b] = P(next = b | current = a), (vocab, vocab)."""
        rng = np.random.default_rng([self.seed, 0x5CA1E])
        u = rng.normal(size=(self.vocab, self.rank))
        v = rng.normal(size=(self.vocab, self.rank))
        s = self.scale * np.arange(1, self.rank + 1) ** (-self.decay)
        logits = (u * s) @ v.T - self.zipf * np.log(np.arange(1, self.vocab + 1))
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        return p / p.sum(axis=1, keepdims=True)

    def transitions(self) -> torch.Tensor:
        """Cumulative next-token distributions, (vocab, vocab), for sampling."""
        return torch.as_tensor(np.cumsum(self.probabilities(), axis=1))

    def sample(self, n_seq: int, length: int, gen: torch.Generator,
               cdf: torch.Tensor | None = None) -> torch.Tensor:
        """`n_seq` sequences of `length` tokens, (n_seq, length) int64, drawn with `gen`."""
        cdf = self.transitions() if cdf is None else cdf
        out = torch.empty(n_seq, length, dtype=torch.long)
        out[:, 0] = torch.randint(0, self.vocab, (n_seq,), generator=gen)
        for t in range(1, length):
            u = torch.rand(n_seq, 1, generator=gen, dtype=torch.float64)
            out[:, t] = torch.searchsorted(cdf[out[:, t - 1]], u).squeeze(1).clamp(max=self.vocab - 1)
        return out

    def entropy_rate(self) -> float:
        """The chain's entropy rate in nats/token: the loss of a perfect model (E)."""
        p = self.probabilities()
        pi = np.full(self.vocab, 1.0 / self.vocab)
        for _ in range(1000):  # power iteration to the stationary distribution
            pi = pi @ p
        return float(-(pi[:, None] * p * np.log(np.maximum(p, 1e-300))).sum())


@dataclass(frozen=True)
class MemberSpec:
    """One run of the family: a width, a seed, the family's settings (the config's own `Grow`)
    and the corpus; nothing here has a default of its own."""

    d_model: int
    seed: int
    grow: Grow
    corpus: BigramCorpus
    device: str

    @property
    def n_layer(self) -> int:
        return self.grow.layers

    @property
    def n_head(self) -> int:
        return max(1, self.d_model // 8)

    @property
    def name(self) -> str:
        return f"gpt-L{self.n_layer}-d{self.d_model}"


class _Batches:
    """The trainer's batch function over one pre-drawn corpus, read in a seeded order.

    It remembers the step, so the evaluation that follows can be dated in tokens.
    """

    def __init__(self, spec: MemberSpec, cdf: torch.Tensor) -> None:
        from lmlab.seeding import generator

        self.spec, self.step = spec, 0
        n = spec.grow.steps * spec.grow.batch
        # The corpus is the same for every member (it depends on the corpus seed only); each
        # member reads it in its own order.
        self.data = spec.corpus.sample(n, spec.grow.seq_len + 1, generator(spec.corpus.seed, 1),
                                       cdf)
        self.order = torch.randperm(n, generator=generator(spec.seed, 2))

    def __call__(self, step: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
        self.step = step
        b = self.spec.grow.batch
        x = self.data[self.order[(step - 1) * b: step * b]]
        return {"input_ids": x[:, :-1], "targets": x[:, 1:]}


def train_member(spec: MemberSpec) -> list[dict[str, Any]]:
    """Train one member and return its checkpoints as schema rows (module level, for executors)."""
    from lmlab.executor import torch_threads

    # tiny matrices: one thread per run on a CPU, runs side by side instead
    with torch_threads(1 if spec.device == "cpu" else 0):
        return _train(spec)


def _train(spec: MemberSpec) -> list[dict[str, Any]]:
    from lmlab.nn import GPT, GPTConfig
    from lmlab.nn.train import TrainConfig, Trainer
    from lmlab.seeding import generator

    g = spec.grow
    cdf = spec.corpus.transitions()
    held_out = spec.corpus.sample(g.n_eval, g.seq_len + 1, generator(spec.corpus.seed, 7),
                                  cdf)  # a different stream of the corpus seed: unseen text
    cfg = GPTConfig(vocab_size=spec.corpus.vocab, block_size=g.seq_len, n_layer=spec.n_layer,
                    n_head=spec.n_head, d_model=spec.d_model)
    torch.manual_seed(spec.seed)
    model = GPT(cfg)
    batches = _Batches(spec, cdf)
    rows: list[dict[str, Any]] = []
    n_params = model.num_params(non_embedding=True)
    tokens_per_step = g.batch * g.seq_len

    def evaluate(m: torch.nn.Module) -> dict[str, float]:
        x = held_out.to(next(m.parameters()).device)
        loss = float(m(x[:, :-1], targets=x[:, 1:])[1])
        if batches.step > 0:
            rows.append({"family": FAMILY, "model": spec.name, "num_params": n_params,
                         "tokens": batches.step * tokens_per_step, "loss": loss,
                         "seed": spec.seed, "arch": "dec", "source": "lmlab-grow"})
        return {"val_loss": loss}

    tc = TrainConfig(steps=g.steps, lr=g.lr, warmup_steps=g.warmup,
                     eval_every=g.eval_every, log_every=g.eval_every, seed=spec.seed,
                     device=spec.device, weight_decay=0.0, min_lr_ratio=0.1)
    Trainer(model, tc, batches, evaluate=evaluate).fit()
    return rows


def member_specs(grow: Grow, seeds: Sequence[int], corpus: BigramCorpus, device: str = "cpu"
                 ) -> list[MemberSpec]:
    """The family's runs: every width of `grow` x every seed (heads = width // 8, at least 1)."""
    return [MemberSpec(d_model=w, seed=s, grow=grow, corpus=corpus, device=device)
            for w in grow.widths for s in seeds]


def grow_family(specs: Sequence[MemberSpec], executor: str = "serial", run: Any = None
                ) -> CheckpointTable:
    """Train every member through the executor; the checkpoints as one validated table.

    With `run`, each finished member is kept in the run folder, and a resumed run skips it.
    """
    from lmlab.executor import map_jobs

    per_run = map_jobs(train_member, list(specs), executor, run=run,
                       progress="scaling-laws: grown family",
                       describe=lambda i, r: f"width {specs[i].d_model}")
    return CheckpointTable.from_records([r for rows in per_run for r in rows], name=FAMILY)
