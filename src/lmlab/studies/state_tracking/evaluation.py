"""Length generalization: per-position accuracy out to eval_len and the 0.98 cutoffs."""

from __future__ import annotations

import numpy as np

__all__ = ["CUTOFF", "cutoff"]

CUTOFF = 0.98  # the official eval.py's threshold


def cutoff(acc: np.ndarray, threshold: float = CUTOFF) -> int:
    """First length (1-based) whose accuracy falls below `threshold`; len(acc) + 1 if none does."""
    below = np.nonzero(np.asarray(acc) < threshold)[0]
    return int(below[0]) + 1 if len(below) else len(acc) + 1
