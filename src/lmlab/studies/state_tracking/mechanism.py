"""Telling the associative scan (AA) from the parity-associative scan (PAA).

Signatures (research note, section 1.4), read at the later half of the positions, where the
state needs the deepest composition:

- probes: under PAA the parity of the state is linearly decodable at an earlier layer than the
  state itself; under AA both appear at the same layer.
- patching: under PAA, patching the last position of an intermediate layer with a run whose first
  action has the opposite parity moves the answer, while a same-parity corruption does not;
  under AA neither does (the intermediate product there does not include the first action).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lmlab.studies.state_tracking.groups import Group

__all__ = ["Signature", "classify", "first_action_corruptions"]


def first_action_corruptions(
    group: Group, actions: np.ndarray, same_parity: bool, rng: np.random.Generator
) -> np.ndarray:
    """Copies of `actions` (N, L) whose first action is replaced by a different one of the same
    (or the opposite) parity, drawn uniformly."""
    out = actions.copy()
    for i, a in enumerate(actions[:, 0]):
        want = group.parity[a] if same_parity else 1 - group.parity[a]
        choices = [b for b in range(group.order) if b != a and group.parity[b] == want]
        out[i, 0] = choices[rng.integers(len(choices))]
    return out


@dataclass
class Signature:
    """The measured signatures and the resulting label ("AA", "PAA", "mixed" or "none")."""

    state_layer: int | None  # first site where the state probe reaches the threshold
    parity_layer: int | None  # first site where the parity probe reaches the threshold
    patch_gap: float  # max over intermediate sites of NLD(opposite) - NLD(same) at the last pos
    probe_says_paa: bool
    patch_says_paa: bool
    label: str


def _first(rows: np.ndarray, threshold: float) -> int | None:
    hits = np.nonzero(rows >= threshold)[0]
    return int(hits[0]) if len(hits) else None


def classify(
    state_probe: np.ndarray,
    parity_probe: np.ndarray,
    patch_same: np.ndarray,
    patch_opposite: np.ndarray,
    probe_threshold: float = 0.9,
    patch_gap_threshold: float = 0.2,
    rule: str = "both",
) -> Signature:
    """Label a model from its (sites, L) probe accuracies and patching NLDs.

    `rule`: which signatures must say PAA for the label PAA: "probe", "patch", "either" or "both".
    With "both", a model where exactly one says PAA is "mixed". "none": neither the state nor its
    parity is ever decoded (an untrained model).
    """
    if rule not in ("probe", "patch", "either", "both"):
        raise ValueError(f"rule must be probe, patch, either or both; got {rule!r}")
    for name, a in (("parity_probe", parity_probe), ("patch_same", patch_same),
                    ("patch_opposite", patch_opposite)):
        if a.shape != state_probe.shape:
            raise ValueError(f"{name} has shape {a.shape}, state_probe {state_probe.shape}")
    L = state_probe.shape[1]
    late = slice(L // 2, L)
    state_layer = _first(state_probe[:, late].mean(1), probe_threshold)
    parity_layer = _first(parity_probe[:, late].mean(1), probe_threshold)
    inner = slice(1, max(1, state_probe.shape[0] - 1))
    gaps = patch_opposite[inner, -1] - patch_same[inner, -1]
    patch_gap = float(gaps.max()) if gaps.size else 0.0
    # parity decodable at a layer where the state is not (a state never decoded to the threshold
    # counts as later than every layer)
    probe_paa = parity_layer is not None and (state_layer is None or parity_layer < state_layer)
    patch_paa = patch_gap >= patch_gap_threshold
    if state_layer is None and parity_layer is None:
        label = "none"
    else:
        votes = {"probe": probe_paa, "patch": patch_paa, "either": probe_paa or patch_paa,
                 "both": probe_paa and patch_paa}[rule]
        if votes:
            label = "PAA"
        elif rule == "both" and (probe_paa or patch_paa):
            label = "mixed"
        else:
            label = "AA"
    return Signature(state_layer, parity_layer, patch_gap, probe_paa, patch_paa, label)
