"""The paper's synthetic tasks as seeded generators with fixed, excluded test sets.

Every task produces whole token sequences `seq` (B, L); a model reads `seq[:, :-1]` and predicts
`seq[:, 1:]`, and `loss_mask` marks the target positions that are scored (the answer tokens).
Formats follow the official code (fjzzq2002/random_transformers):

- modular addition (`modadd_exp.py`): `[a, b, (a + b) mod p]`, vocabulary p, the last token scored;
  all p^2 pairs are shuffled with a fixed seed and a fraction held out.
- needle in a haystack (`task_condattendstream.py`): k distinct keys, pairs `[key + V/2, value]`
  with values in 1..V/2-1, then the query `key + n_keys + V/2` and the answer; padded with 0 to
  `2 n_keys + 3`. The answer (the token after the query) is scored.
- decimal addition (`task_additionstream.py`): reversed digits of a, `+`=10, reversed b, `=`=11,
  reversed sum as tokens 20-29, stop 30, padded with 12 to `3 n + 4`. The paper scores targets
  whose *input* token is >= 20, so the first sum digit (predicted from `=`) is never scored;
  `mask="paper"` keeps that quirk and `mask="corrected"` scores it too.
- parentheses (`task_dyckstream.py`): `(`=1, `)`=2, the string, `?`=3, then `)` if balanced else
  `(`; padded with 0 to `2 n_pairs + 3`. The paper's sampler: a third random strings, two thirds
  random balanced strings, half of the latter mutated by swaps and/or flips.

Streaming tasks draw fresh training batches each step and reject any sequence that is in the
fixed test set (compared on the whole sequence), so the test set is never trained on.
With `sampler="torch"` (needle and decimal addition) a batch is drawn vectorized by torch on
`device` (a GPU's own generator: no per-sequence Python on the host), from the same distribution
as the Python sampler (tests compare them), and sequences of the held-out sets are rejected by a
64-bit hash of the whole sequence. The held-out sets themselves are always the Python ones.

Validation: every algorithmic task also has a fixed validation set, disjoint from training and
from test by construction (modular addition: the next `val_fraction` of the shuffled pairs;
streaming tasks: the draws of the paper's seeded test stream are shared out between test and
validation, each distinct sequence whole to one side, so the two are disjoint and identically
distributed; training batches reject both). `validate(model)` scores it (`val_acc`): early stopping and any
tuning read it; `evaluate(model)` scores the test set (`test_acc`), which is only reported.
Memorization has no held-out set by design (it measures how much of its training table a model
stores, the paper's protocol), so nothing there is stopped or tuned on held-out data.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from lmlab.device import model_device
from lmlab.errors import LmlabError
from lmlab.nn.modes import evaluating
from lmlab.seeding import numpy_rng

__all__ = [
    "DecimalAddition",
    "Memorization",
    "ModularAddition",
    "Needle",
    "Parentheses",
    "StreamTask",
    "addition_sequence",
    "is_balanced",
    "needle_sequence",
    "parens_sequence",
    "sample_parens_string",
]

TEST_SEED = 12345  # the paper's seed for its fixed test sets and the modular-addition split


def _encode(seq: torch.Tensor, scored: torch.Tensor) -> dict[str, torch.Tensor]:
    """The trainer batch of whole sequences seq (B, L) whose targets seq[:, 1:] are `scored`."""
    return {"input_ids": seq[:, :-1], "targets": seq[:, 1:], "loss_mask": scored}


@torch.no_grad()
def evaluate_accuracy(model: nn.Module, batch: dict[str, torch.Tensor], chunk: int = 1000) -> float:
    """Greedy accuracy of `model` on the scored targets of `batch` (in chunks, eval mode)."""
    device = model_device(model)
    right = total = 0
    with evaluating(model):
        for i in range(0, len(batch["input_ids"]), chunk):
            x = batch["input_ids"][i : i + chunk].to(device)
            out = model(x)
            logits = out[0] if isinstance(out, tuple | list) else out
            m = batch["loss_mask"][i : i + chunk].bool()
            pred = logits.argmax(-1).cpu()
            right += int(((pred == batch["targets"][i : i + chunk]) & m).sum())
            total += int(m.sum())
    return right / max(total, 1)


def majority_accuracy(batch: dict[str, torch.Tensor]) -> float:
    """Accuracy of always answering the most frequent scored target of `batch`."""
    t = batch["targets"][batch["loss_mask"].bool()]
    return float(torch.bincount(t).max()) / max(len(t), 1)


# ----------------------------------------------------------------------------- modular addition
@dataclass(frozen=True)
class ModularAddition:
    """`[a, b, (a + b) mod p]` over all p^2 pairs; a fixed shuffled split (seed 12345).

    The first `test_fraction` of the shuffled pairs are the test set (the paper's split), the next
    `val_fraction` the validation set; training draws from the rest only.
    """

    p: int = 199
    test_fraction: float = 0.05
    batch_size: int = 4000
    split_seed: int = TEST_SEED
    name: str = "modadd"
    val_fraction: float = 0.05

    def __post_init__(self) -> None:
        if self.p < 2 or not 0.0 < self.test_fraction < 1.0 or not 0.0 < self.val_fraction \
                or self.test_fraction + self.val_fraction >= 1.0:
            raise LmlabError(f"modadd: need p >= 2, test_fraction and val_fraction > 0 and "
                             f"together < 1, got {self.p}, {self.test_fraction}, "
                             f"{self.val_fraction}")

    @property
    def vocab_size(self) -> int:
        return self.p

    @property
    def block_size(self) -> int:
        return 2

    def pairs(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(train, validation, test) pairs, each (n, 2): a fixed permutation of all p^2 pairs."""
        order = np.random.default_rng(self.split_seed).permutation(self.p * self.p)
        ab = torch.from_numpy(np.stack([order // self.p, order % self.p], 1)).long()
        n_test = max(1, round(self.test_fraction * len(ab)))
        n_val = max(1, round(self.val_fraction * len(ab)))
        if n_test + n_val >= len(ab):
            raise LmlabError(f"modadd: p = {self.p} leaves no training pairs after the test and "
                             "validation sets")
        return ab[n_test + n_val :], ab[n_test : n_test + n_val], ab[:n_test]

    def encode(self, ab: torch.Tensor) -> dict[str, torch.Tensor]:
        """The batch for pairs ab (B, 2): only the sum is scored."""
        seq = torch.cat([ab, (ab.sum(1, keepdim=True) % self.p)], 1)
        scored = torch.zeros(len(ab), 2, dtype=torch.bool)
        scored[:, 1] = True
        return _encode(seq, scored)

    def __call__(self, step: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
        train = self._split[0]
        idx = torch.randint(len(train), (min(self.batch_size, len(train)),), generator=gen)
        return self.encode(train[idx])

    @property
    def _split(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        cache = self.__dict__.get("_cache")
        if cache is None:
            cache = self.pairs()
            object.__setattr__(self, "_cache", cache)
        return cache

    def test_batch(self) -> dict[str, torch.Tensor]:
        """Every test pair."""
        return self.encode(self._split[2])

    def val_batch(self) -> dict[str, torch.Tensor]:
        """Every validation pair."""
        return self.encode(self._split[1])

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        return {"test_acc": evaluate_accuracy(model, self.test_batch())}

    def validate(self, model: nn.Module) -> dict[str, float]:
        return {"val_acc": evaluate_accuracy(model, self.val_batch())}


# ----------------------------------------------------------------------------- streaming tasks
@dataclass(frozen=True)
class StreamTask:
    """A task sampled one sequence at a time with Python's `random` (or, `sampler="torch"`,
    a batch at a time on `device`: `sample_batch`); see the subclasses."""

    n_test: int = 4000
    batch_size: int = 1000
    test_seed: int = TEST_SEED
    name: str = "stream"
    n_val: int = 4000
    sampler: Literal["python", "torch"] = "python"
    device: str = "cpu"  # where `sampler="torch"` draws the training batches

    @property
    def vocab_size(self) -> int:
        raise NotImplementedError

    @property
    def seq_len(self) -> int:
        """Length of a whole (padded) sequence."""
        raise NotImplementedError

    @property
    def block_size(self) -> int:
        return self.seq_len - 1

    def sample(self, rng: random.Random) -> list[int]:
        """One padded sequence."""
        raise NotImplementedError

    def scored(self, seq: torch.Tensor) -> torch.Tensor:
        """Which targets seq[:, 1:] are scored, from the inputs seq[:, :-1]."""
        raise NotImplementedError

    def encode(self, seqs: list[list[int]] | torch.Tensor) -> dict[str, torch.Tensor]:
        seq = torch.as_tensor(seqs, dtype=torch.long)
        return _encode(seq, self.scored(seq))

    def _held_out(self) -> tuple[tuple[list[list[int]], set[tuple[int, ...]]],
                                 tuple[list[list[int]], set[tuple[int, ...]]]]:
        """(test, validation): `n_test + n_val` draws of one fixed stream (seed `test_seed`),
        each distinct sequence given whole to one side, the most frequent first, each to the side
        that is least full. So the two sets are disjoint by construction AND drawn from the same
        distribution (frequent short sequences are shared out between them); their sizes are
        `n_test` and `n_val` up to the count of the last sequence placed.

        (Two separate streams, validation rejecting the test set's sequences, are not alike:
        the frequent short sequences all land in the test set, which training never sees, and
        validation holds rarer, longer ones; at 10 pairs of parentheses that put the same
        models at 0.97 on validation and 0.78 on test.)
        """
        cache = self.__dict__.get("_cache")
        if cache is None:
            rng = random.Random(self.test_seed)
            draws = [self.sample(rng) for _ in range(self.n_test + self.n_val)]
            counts = Counter(tuple(s) for s in draws)  # in order of first draw
            target, mass = (self.n_test, self.n_val), [0, 0]
            side: dict[tuple[int, ...], int] = {}
            for seq, n in sorted(counts.items(), key=lambda kv: -kv[1]):  # stable for ties
                k = 0 if mass[0] / target[0] <= mass[1] / target[1] else 1
                side[seq] = k
                mass[k] += n
            test = [s for s in draws if side[tuple(s)] == 0]
            val = [s for s in draws if side[tuple(s)] == 1]
            if not test or not val:
                raise LmlabError(f"{self.name}: too few distinct sequences for a test and a "
                                 "validation set; raise n_test / n_val or enlarge the task")
            cache = ((test, {tuple(x) for x in test}), (val, {tuple(x) for x in val}))
            object.__setattr__(self, "_cache", cache)
        return cache

    def _test(self) -> tuple[list[list[int]], set[tuple[int, ...]]]:
        return self._held_out()[0]

    def _val(self) -> tuple[list[list[int]], set[tuple[int, ...]]]:
        return self._held_out()[1]

    def test_batch(self) -> dict[str, torch.Tensor]:
        """The fixed test set (seed `test_seed`)."""
        return self.encode(self._test()[0])

    def val_batch(self) -> dict[str, torch.Tensor]:
        """The fixed validation set, none of it in the test set (see `_held_out`)."""
        return self.encode(self._val()[0])

    def sample_batch(self, n: int, gen: torch.Generator) -> torch.Tensor:
        """`n` padded sequences (n, L) drawn by torch on `gen`'s device (`sampler="torch"`)."""
        raise LmlabError(f"{self.name}: no torch sampler; use sampler=python")

    def _held_out_hashes(self, device: torch.device) -> torch.Tensor:
        """The sorted row hashes of the test and validation sequences, on `device`."""
        cache = self.__dict__.get("_hash_cache")
        if cache is None or cache.device != device:
            rows = self._test()[0] + self._val()[0]
            cache = torch.sort(_row_hash(torch.as_tensor(rows, dtype=torch.long))).values
            cache = cache.to(device)
            object.__setattr__(self, "_hash_cache", cache)
        return cache

    def _torch_batch(self, gen: torch.Generator) -> dict[str, torch.Tensor]:
        """A fresh batch drawn by `sample_batch` on `device`, held-out sequences rejected."""
        dev = torch.device(self.device)
        g = torch.Generator(device=dev)
        g.manual_seed(int(torch.randint(2**62, (1,), generator=gen)))
        held = self._held_out_hashes(dev)
        parts, n = [], 0
        for _ in range(100):
            seq = self.sample_batch(self.batch_size, g)
            keep = ~torch.isin(_row_hash(seq), held)
            parts.append(seq[keep])
            n += int(keep.sum())
            if n >= self.batch_size:
                return self.encode(torch.cat(parts)[: self.batch_size])
        raise LmlabError(f"{self.name}: the test and validation sets cover (nearly) every "
                         "sequence; lower n_test / n_val or enlarge the task")

    def __call__(self, step: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
        """A fresh training batch, none of whose sequences is in the test or validation set."""
        if self.sampler == "torch":
            return self._torch_batch(gen)
        rng = random.Random(int(torch.randint(2**62, (1,), generator=gen)))
        test, val = self._test()[1], self._val()[1]
        out: list[list[int]] = []
        for _ in range(100 * self.batch_size):
            s = self.sample(rng)
            t = tuple(s)
            if t not in test and t not in val:
                out.append(s)
                if len(out) == self.batch_size:
                    return self.encode(out)
        raise LmlabError(f"{self.name}: the test and validation sets cover (nearly) every "
                         "sequence; lower n_test / n_val or enlarge the task")

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        return {"test_acc": evaluate_accuracy(model, self.test_batch())}

    def validate(self, model: nn.Module) -> dict[str, float]:
        return {"val_acc": evaluate_accuracy(model, self.val_batch())}


_HASH_MULTIPLIERS = torch.randint(-(2**62), 2**62, (256,),
                                  generator=torch.Generator().manual_seed(TEST_SEED)) | 1


def _row_hash(seq: torch.Tensor) -> torch.Tensor:
    """A 64-bit hash of each row of `seq` (n, L <= 256): sum of token x a fixed odd random
    multiplier per position, wrapping around in int64 (two different rows collide with
    probability about 2^-63)."""
    m = _HASH_MULTIPLIERS[: seq.shape[1]].to(seq.device)
    return (seq.long() * m).sum(1)


def needle_sequence(keys: list[int], values: list[int], query: int, n_keys: int,
                    vocab_size: int = 256) -> list[int]:
    """The padded needle sequence for these key/value pairs and the query key (paper format)."""
    half = vocab_size // 2
    seq = [t for k, v in zip(keys, values, strict=True) for t in (k + half, v)]
    seq += [query + n_keys + half, values[keys.index(query)]]
    return seq + [0] * (2 * n_keys + 3 - len(seq))


@dataclass(frozen=True)
class Needle(StreamTask):
    """In-context associative recall with `n_keys` keys and values 1..V/2-1."""

    n_keys: int = 30
    vocab: int = 256
    name: str = "needle"

    def __post_init__(self) -> None:
        if self.n_keys < 1 or self.vocab // 2 < 2 * self.n_keys or self.vocab // 2 < 3:
            raise LmlabError(f"needle: need vocab/2 >= 2 n_keys, got vocab={self.vocab}, "
                             f"n_keys={self.n_keys}")

    @property
    def vocab_size(self) -> int:
        return self.vocab

    @property
    def seq_len(self) -> int:
        return 2 * self.n_keys + 3

    def sample(self, rng: random.Random) -> list[int]:
        k = rng.randint(1, self.n_keys)
        keys = list(range(self.n_keys))
        rng.shuffle(keys)
        keys = keys[:k]
        values = [rng.randint(1, self.vocab // 2 - 1) for _ in range(k)]
        return needle_sequence(keys, values, rng.choice(keys), self.n_keys, self.vocab)

    def sample_batch(self, n: int, gen: torch.Generator) -> torch.Tensor:
        """`sample`'s distribution, vectorized: k ~ U{1..n_keys} keys in random order (the first
        k of a random permutation), values ~ U{1..V/2-1}, the query one of the k keys."""
        dev, K, half = gen.device, self.n_keys, self.vocab // 2
        k = torch.randint(1, K + 1, (n,), generator=gen, device=dev)
        keys = torch.rand(n, K, generator=gen, device=dev).argsort(1)
        values = torch.randint(1, half, (n, K), generator=gen, device=dev)
        pick = (torch.rand(n, generator=gen, device=dev) * k).long().clamp_max(k - 1)[:, None]
        pairs = torch.stack([keys + half, values], 2).reshape(n, 2 * K)
        seq = torch.zeros(n, 2 * K + 3, dtype=torch.long, device=dev)
        seq[:, : 2 * K] = torch.where(torch.arange(2 * K, device=dev) < 2 * k[:, None], pairs, 0)
        seq.scatter_(1, 2 * k[:, None], keys.gather(1, pick) + K + half)
        seq.scatter_(1, 2 * k[:, None] + 1, values.gather(1, pick))
        return seq

    def scored(self, seq: torch.Tensor) -> torch.Tensor:
        return seq[:, :-1] >= self.n_keys + self.vocab // 2  # the query token's next: the answer


def addition_sequence(a: int, b: int, n_digits: int) -> list[int]:
    """The padded decimal-addition sequence of a + b (paper format, reversed digits)."""
    seq = [int(c) for c in str(a)[::-1]] + [10] + [int(c) for c in str(b)[::-1]] + [11]
    seq += [int(c) + 20 for c in str(a + b)[::-1]] + [30]
    return seq + [12] * (3 * n_digits + 4 - len(seq))


@dataclass(frozen=True)
class DecimalAddition(StreamTask):
    """a + b for two `n_digits`-digit numbers; `mask` "paper" skips the first sum digit."""

    n_digits: int = 10
    mask: Literal["paper", "corrected"] = "paper"
    name: str = "decimal"

    def __post_init__(self) -> None:
        if self.n_digits < 1 or self.mask not in ("paper", "corrected"):
            raise LmlabError(f"decimal: need n_digits >= 1 and mask paper|corrected, got "
                             f"{self.n_digits}, {self.mask!r}")

    @property
    def vocab_size(self) -> int:
        return 31

    @property
    def seq_len(self) -> int:
        return 3 * self.n_digits + 4

    def sample(self, rng: random.Random) -> list[int]:
        lo, hi = 10 ** (self.n_digits - 1), 10**self.n_digits - 1
        return addition_sequence(rng.randint(lo, hi), rng.randint(lo, hi), self.n_digits)

    def sample_batch(self, n: int, gen: torch.Generator) -> torch.Tensor:
        """`sample`'s distribution, vectorized: a, b ~ U{10^(d-1)..10^d-1}, the paper format."""
        dev, d = gen.device, self.n_digits
        a, b = (torch.randint(10 ** (d - 1), 10**d, (n,), generator=gen, device=dev)
                for _ in range(2))
        total = a + b

        def digits(x: torch.Tensor, m: int) -> torch.Tensor:  # least significant first
            return x[:, None] // 10 ** torch.arange(m, device=dev) % 10

        col = torch.full((n, 1), 0, dtype=torch.long, device=dev)
        seq = torch.cat([digits(a, d), col + 10, digits(b, d), col + 11,
                         digits(total, d + 1) + 20, col + 30], 1)
        short = total < 10**d  # a d-digit sum: its stop token moves up, then one pad
        seq[short, 3 * d + 2] = 30
        seq[short, 3 * d + 3] = 12
        return seq

    def scored(self, seq: torch.Tensor) -> torch.Tensor:
        inp = seq[:, :-1]
        m = inp >= 20
        if self.mask == "corrected":
            m = m | (inp == 11)
        return m


def is_balanced(s: str) -> bool:
    """Whether the parenthesis string s is balanced."""
    depth = 0
    for c in s:
        depth += 1 if c == "(" else -1
        if depth < 0:
            return False
    return depth == 0


def _random_balanced(t: int, rng: random.Random) -> str:
    if t == 0:
        return ""
    if t == 1:
        return "()"
    if rng.randint(0, 1):
        return "(" + _random_balanced(t - 1, rng) + ")"
    u = rng.randint(1, t - 1)
    return _random_balanced(u, rng) + _random_balanced(t - u, rng)


def sample_parens_string(n_pairs: int, rng: random.Random) -> str:
    """The paper's sampler: random strings (1/3) or random balanced ones, maybe mutated."""
    mutate = rng.randint(0, 3)
    if rng.randint(0, 2) == 0:
        s = "".join(rng.choice("()") for _ in range(rng.randint(1, 2 * n_pairs)))
    else:
        s = _random_balanced(rng.randint(1, n_pairs), rng)
        if rng.randint(0, 1):
            mutate = 0  # a third of all samples: balanced and untouched
    if mutate & 1:  # swaps, a geometric number of them
        rep = 1
        while rng.randint(0, 1):
            rep += 1
        for _ in range(rep):
            p, q = rng.randint(0, len(s) - 1), rng.randint(0, len(s) - 1)
            if p < q:
                s = s[:p] + s[q] + s[p + 1 : q] + s[p] + s[q + 1 :]
    if mutate & 2:  # flips
        rep = 1
        while rng.randint(0, 1):
            rep += 1
        if rng.randint(0, 2):
            rep *= 2
        for _ in range(rep):
            p = rng.randint(0, len(s) - 1)
            s = s[:p] + ("(" if s[p] == ")" else ")") + s[p + 1 :]
    return s


def parens_sequence(s: str, n_pairs: int) -> list[int]:
    """The padded sequence for string s: tokens, `?`=3, then `)`=2 if balanced else `(`=1."""
    seq = [1 if c == "(" else 2 for c in s] + [3, 2 if is_balanced(s) else 1]
    return seq + [0] * (2 * n_pairs + 3 - len(seq))


@dataclass(frozen=True)
class Parentheses(StreamTask):
    """Is a parenthesis string (up to `2 n_pairs` long) balanced? The paper's sampler."""

    n_pairs: int = 30
    name: str = "parens"

    def __post_init__(self) -> None:
        if self.n_pairs < 1:
            raise LmlabError(f"parens: need n_pairs >= 1, got {self.n_pairs}")

    @property
    def vocab_size(self) -> int:
        return 4

    @property
    def seq_len(self) -> int:
        return 2 * self.n_pairs + 3

    def sample(self, rng: random.Random) -> list[int]:
        return parens_sequence(sample_parens_string(self.n_pairs, rng), self.n_pairs)

    def scored(self, seq: torch.Tensor) -> torch.Tensor:
        return seq[:, :-1] == 3


# ----------------------------------------------------------------------------- memorization
@dataclass(frozen=True)
class Memorization:
    """In-weights memorization: `[x1, n + x2, y]` for all n^2 inputs, y a fixed random label.

    Train set = evaluation set (the paper's protocol); the batch is the whole table unless
    `batch_size` is smaller. Labels are drawn from `n_labels` classes with `label_seed`.
    """

    n: int = 512
    n_labels: int = 512
    batch_size: int = 32768
    label_seed: int = TEST_SEED
    name: str = "memorize"
    _cache: Any = field(default=None, init=False, repr=False, compare=False)

    @property
    def vocab_size(self) -> int:
        return max(2 * self.n, self.n_labels)

    @property
    def block_size(self) -> int:
        return 2

    @property
    def bits_per_label(self) -> float:
        return float(np.log2(self.n_labels))

    def table(self) -> torch.Tensor:
        """All n^2 sequences (n^2, 3)."""
        if self._cache is None:
            x = torch.arange(self.n * self.n)
            y = torch.from_numpy(numpy_rng(self.label_seed).integers(0, self.n_labels, len(x)))
            seq = torch.stack([x // self.n, self.n + x % self.n, y.long()], 1)
            object.__setattr__(self, "_cache", seq)
        return self._cache

    def encode(self, seq: torch.Tensor) -> dict[str, torch.Tensor]:
        scored = torch.zeros(len(seq), 2, dtype=torch.bool)
        scored[:, 1] = True
        return _encode(seq, scored)

    def __call__(self, step: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
        table = self.table()
        if self.batch_size >= len(table):
            return self.encode(table)
        return self.encode(table[torch.randint(len(table), (self.batch_size,), generator=gen)])

    def test_batch(self) -> dict[str, torch.Tensor]:
        return self.encode(self.table())

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        return {"test_acc": evaluate_accuracy(model, self.test_batch(), chunk=8192)}

    @torch.no_grad()
    def correct(self, model: nn.Module, chunk: int = 8192) -> torch.Tensor:
        """Whether `model` predicts each table entry's label (a bool per entry, in table order)."""
        device = model_device(model)
        table, out = self.table(), []
        with evaluating(model):
            for i in range(0, len(table), chunk):
                logits = model(table[i : i + chunk, :2].to(device))[0]
                out.append(logits[:, -1].argmax(-1).cpu() == table[i : i + chunk, 2])
        return torch.cat(out)


Task = ModularAddition | Needle | DecimalAddition | Parentheses | Memorization
