"""Tiny seeded algorithmic tasks (copy, reverse) for tests and demos.

A sequence is `n_digits` digits drawn from `n_symbols` symbols, a separator, then the output::

    copy:     3 1 4 1 5 9 | 3 1 4 1 5 9
    reverse:  3 1 4 1 5 9 | 9 5 1 4 1 3

Tokens are the digits `0 .. n_symbols-1` and the separator `n_symbols`, so
`vocab_size = n_symbols + 1`. The model reads `input_ids = seq[:-1]` and predicts
`targets = seq[1:]`; `loss_mask` is true only where the target is an output digit, so the model is
scored on the answer and never on the random prompt. `block_size = 2 * n_digits`.

Every digit string belongs to exactly one split, decided by a fixed hash of its digits, so the
held-out evaluation measures generalization to strings never seen in training.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from lmlab.device import model_device
from lmlab.errors import LmlabError
from lmlab.nn.modes import evaluating
from lmlab.seeding import generator

__all__ = ["AlgorithmicTask", "copy_task", "reverse_task"]

_P = 2_147_483_647  # 2**31 - 1, a prime: the hash works in int64 without overflow
EVAL_STREAM = 0x5EED_E7A1  # the generator stream of the held-out evaluation set


@dataclass(frozen=True)
class AlgorithmicTask:
    """A copy or reverse task. Call it as a trainer batch function: `task(step, generator)`."""

    kind: str = "copy"  # "copy" | "reverse"
    n_digits: int = 6
    n_symbols: int = 10
    batch_size: int = 64
    test_fraction: float = 0.1  # share of all digit strings held out for evaluation
    n_eval: int = 512  # held-out sequences scored by `evaluate`
    seed: int = 0  # seeds the held-out evaluation set (training batches use the trainer's seed)

    def __post_init__(self) -> None:
        if self.kind not in ("copy", "reverse"):
            raise LmlabError(f"task kind must be 'copy' or 'reverse', got {self.kind!r}")
        if self.n_digits < 1 or self.n_symbols < 2 or self.batch_size < 1 or self.n_eval < 1:
            raise LmlabError("task: need n_digits >= 1, n_symbols >= 2, batch_size, n_eval >= 1")
        if not 0.0 < self.test_fraction < 1.0:
            raise LmlabError(f"task: test_fraction must be in (0, 1), got {self.test_fraction}")

    @property
    def sep(self) -> int:
        """The separator token."""
        return self.n_symbols

    @property
    def vocab_size(self) -> int:
        """Digits plus the separator."""
        return self.n_symbols + 1

    @property
    def block_size(self) -> int:
        """The model's input length: 2 * n_digits (the full sequence minus its last token)."""
        return 2 * self.n_digits

    def in_test(self, digits: torch.Tensor) -> torch.Tensor:
        """Which digit strings `(B, n_digits)` are held out: a fixed hash, not a random draw."""
        d = digits.long() + 1
        coef = torch.arange(1, self.n_digits + 1, dtype=torch.long, device=d.device)
        coef = (coef * 1_000_003 + 12_345) % _P  # distinct multipliers < 2**31
        h = torch.zeros(d.shape[0], dtype=torch.long, device=d.device)
        for i in range(self.n_digits):  # reduced mod P at each step, so int64 never overflows
            h = (h + d[:, i] * coef[i]) % _P
            h = (h * h + 7_654_321) % _P  # a nonlinear mix, so the split has no linear structure
        return (h % 10_000) < round(self.test_fraction * 10_000)

    def digits(self, n: int, gen: torch.Generator, split: str = "train") -> torch.Tensor:
        """`n` digit strings `(n, n_digits)` from `split` ("train" or "test"), drawn with `gen`."""
        if split not in ("train", "test"):
            raise LmlabError(f"split must be 'train' or 'test', got {split!r}")
        want_test = split == "test"
        chunks, have = [], 0
        for _ in range(10_000):
            cand = torch.randint(self.n_symbols, (max(2 * n, 256), self.n_digits), generator=gen)
            cand = cand[self.in_test(cand) == want_test]
            chunks.append(cand)
            have += len(cand)
            if have >= n:
                return torch.cat(chunks)[:n]
        raise LmlabError(f"{self.kind} task: the {split} split is empty; change test_fraction")

    def encode(self, digits: torch.Tensor) -> dict[str, torch.Tensor]:
        """The model's batch for digit strings `(B, n_digits)`: input_ids, targets, loss_mask."""
        out = digits if self.kind == "copy" else digits.flip(-1)
        sep = torch.full((digits.shape[0], 1), self.sep, dtype=torch.long)
        seq = torch.cat([digits.long(), sep, out.long()], dim=1)  # (B, 2n+1)
        mask = torch.zeros(seq.shape[0], self.block_size, dtype=torch.bool)
        mask[:, self.n_digits:] = True  # targets seq[n+1:] are the output digits
        return {"input_ids": seq[:, :-1], "targets": seq[:, 1:], "loss_mask": mask}

    def __call__(self, step: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
        """A training batch (the trainer calls this with `seeding.generator(seed, step)`)."""
        return self.encode(self.digits(self.batch_size, gen, "train"))

    def eval_batch(self) -> dict[str, torch.Tensor]:
        """The fixed held-out evaluation set: `n_eval` test-split sequences."""
        return self.encode(self.digits(self.n_eval, generator(self.seed, EVAL_STREAM), "test"))

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        """Held-out token accuracy and sequence exact match (teacher forcing = greedy here)."""
        from lmlab.nn.train import accuracy

        batch = self.eval_batch()
        device = model_device(model)
        with evaluating(model), torch.no_grad():
            out = model(batch["input_ids"].to(device))
        logits = out[0] if isinstance(out, tuple | list) else out
        acc = accuracy(logits.float().cpu(), batch["targets"], batch["loss_mask"])
        return {"test_token_acc": acc["token_acc"], "test_seq_acc": acc["seq_acc"]}


def copy_task(
    n_digits: int = 6, n_symbols: int = 10, batch_size: int = 64, *,
    test_fraction: float = 0.1, n_eval: int = 512, seed: int = 0,
) -> AlgorithmicTask:
    """The copy task: `x | x`."""
    return AlgorithmicTask("copy", n_digits, n_symbols, batch_size, test_fraction, n_eval, seed)


def reverse_task(
    n_digits: int = 6, n_symbols: int = 10, batch_size: int = 64, *,
    test_fraction: float = 0.1, n_eval: int = 512, seed: int = 0,
) -> AlgorithmicTask:
    """The reverse task: `x | reversed(x)`."""
    return AlgorithmicTask("reverse", n_digits, n_symbols, batch_size, test_fraction, n_eval, seed)
