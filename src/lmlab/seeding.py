"""Deterministic seeding: the same seed gives the same numbers on the same machine."""

from __future__ import annotations

import random

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def generator(seed: int, *streams: int, device: str | torch.device = "cpu") -> torch.Generator:
    """A torch.Generator for a named stream of `seed`, e.g. generator(seed, step) for a batch.

    Deriving each batch's generator from (seed, step) rather than advancing one global stream
    is what makes a resumed run draw exactly the batches an uninterrupted run would.
    """
    s = np.random.SeedSequence([seed, *streams]).generate_state(2, dtype=np.uint32)
    g = torch.Generator(device=device)
    g.manual_seed(int(s[0]) << 32 | int(s[1]))
    return g


def numpy_rng(seed: int, *streams: int) -> np.random.Generator:
    """A NumPy Generator for a named stream of `seed`."""
    return np.random.default_rng(np.random.SeedSequence([seed, *streams]))



def derive(seed: int, *keys: int | str) -> int:
    """A 63-bit seed for the stream named by `keys` under the run seed `seed`.

    Strings are hashed stably (not with Python's salted `hash`), so derive(0, "modadd", 2) is the
    same on every machine, and streams of different run seeds never coincide (unlike the
    `seed * 1000 + s` scheme, where seed 1's stream 0 is seed 0's stream 1000).
    """
    import hashlib

    words: list[int] = [int(seed) & 0xFFFFFFFF, len(keys)]
    for k in keys:
        if isinstance(k, str):
            h = hashlib.sha256(k.encode()).digest()
            words += [1, int.from_bytes(h[:4], "little"), int.from_bytes(h[4:8], "little")]
        else:
            words += [0, int(k) & 0xFFFFFFFF]
    s = np.random.SeedSequence(words).generate_state(2, dtype=np.uint32)
    return ((int(s[0]) << 32) | int(s[1])) >> 1
