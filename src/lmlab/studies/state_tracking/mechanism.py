"""Telling the associative scan (AA) from the parity-associative scan (PAA), and from neither.

Each mechanism is recognized by its own signature (research note, section 1.4), never by the
absence of the other's:

- **tracks the state** (both): a linear probe decodes the state, at some site, at the later half
  of the positions (where it needs the deepest composition). A model that does not is "neither".
- **AA** (an associative scan: layer l at position t has composed about 2^l actions)
  - probe: parity becomes decodable at the same site as the state (it is not computed first);
    the depth at which the state is decoded never falls and grows with the position (from
    position 2 on: position 1 is the action itself); and the products of windows of the last
    k = 2, 4, ... actions, the intermediates of a scan, are decodable past position k, at
    depths that never fall as k grows;
  - patching (the first action corrupted): no parity route (see PAA), and the position that
    carries the first action's effect, the NLD-weighted mean position at each site, moves
    forward (never back) from the embedding to the last layer.
- **PAA** (parity first, then a scan for the rest)
  - probe: parity is decodable at an earlier site than the state;
  - patching: at an intermediate site, patching the last position with a run whose first
    action has the opposite parity moves the answer, while a same-parity corruption does not:
    NLD(opposite) - NLD(same) >= the gap threshold.

`rule` says which signatures must agree ("both": probe and patching; "probe"; "patch";
"either"). A model whose evidence fits both or neither is "neither". When moving a threshold by
its margin (probe accuracy +-probe_margin, patch gap +-gap_margin) changes the label, the label
hangs on the threshold and is "ambiguous".

The window products are our addition to the AA probe signature: the paper reads AA from the
state and parity probes and patching alone. `aa_windows=False` classifies that way; the study
reports that label beside its own as a sensitivity (`paper_probes`), never in the claims.

Stability at `tiny` (issue #22.2). Each model records how far its deciding inputs sit from their
thresholds (`threshold_slack`; metrics `model.*.slack_probe|slack_gap|slack_converged`). In a
tiny run at width 128, before tiny moved to width 96 (seed 0, derived model seeds, read back from
its analysis files):

| model | label | probe slack (margin 0.03)      | gap slack (margin 0.05) | converged slack (none) |
|-------|-------|--------------------------------|-------------------------|------------------------|
| 0     | PAA   | 0.053 (parity at site 2: 0.847) | +0.115 (gap 0.315)      | +0.0052 (0.9952)       |
| 1     | PAA   | 0.063 (state at site 4: 0.963)  | +0.129 (gap 0.329)      | +0.0086 (0.9986)       |

No input lies within its margin, so neither label is ambiguous, and the AA evidence is far off
(window probes: best later-half site mean 0.65 / 0.60 for the last 2 actions, 0.23 / 0.24 for
the last 4, against 0.9). Inputs with no margin: the convergence threshold (0.99; the worst of
8 positions on 9,000 test stories has a binomial sd of about 0.0008, so 0.005 is ~7 sd), the
carrier tolerance (0.5 positions; it matters only without a parity route), and the early stop
(0.996 on 1,000 validation stories, sd about 0.002): the step a model stops at can move with the
last bits of its floats, and then the model itself differs, so the same seed on two machines is
the same model only where both machines compute bit-identical floats. Whether they do (thread
count, CPU kernels) was not measured. The "mixed" label a fresh clone once gave was under the
earlier rule, which had no margins.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from lmlab.studies.state_tracking.groups import Group

__all__ = ["LABELS", "Evidence", "Signature", "classify", "first_action_corruptions", "label_of",
           "threshold_slack"]

LABELS = ("AA", "PAA", "neither", "ambiguous")
RULES = ("probe", "patch", "either", "both")


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
class Evidence:
    """What the probes and patching show at one pair of thresholds."""

    state_layer: int | None  # first site decoding the state (mean over the later positions)
    parity_layer: int | None  # the same for the parity
    depth: list[int | None]  # per position: first site decoding the state there
    window_layers: dict[int, int | None]  # window k -> first site decoding its product past k
    patch_gap: float  # max over intermediate sites of NLD(opposite) - NLD(same), last position
    carrier: list[float | None]  # per site: NLD-weighted mean position (same parity)
    tracks_state: bool
    paa_probe: bool  # parity decoded before the state
    paa_patch: bool  # a parity route in patching
    aa_probe: bool  # parity with the state, depth growing with position, windows decodable
    aa_patch: bool  # no parity route, the first action's carrier moves forward


@dataclass
class Signature:
    """The label and the evidence at the given thresholds (see the module docstring)."""

    label: str  # "AA", "PAA", "neither" or "ambiguous"
    base_label: str  # the label at the given thresholds before the margin test
    evidence: Evidence
    labels_in_margin: list[str] = field(default_factory=list)  # labels at the moved thresholds

    # the fields the study records, for convenience
    @property
    def state_layer(self) -> int | None:
        return self.evidence.state_layer

    @property
    def parity_layer(self) -> int | None:
        return self.evidence.parity_layer

    @property
    def patch_gap(self) -> float:
        return self.evidence.patch_gap


def _first(rows: np.ndarray, threshold: float) -> int | None:
    hits = np.nonzero(rows >= threshold)[0]
    return int(hits[0]) if len(hits) else None


def _never_falls(xs: list[float], tol: float = 0.0) -> bool:
    return all(b >= a - tol for a, b in itertools.pairwise(xs))


def gather_evidence(
    state_probe: np.ndarray, parity_probe: np.ndarray, windows: Mapping[int, np.ndarray],
    patch_same: np.ndarray, patch_opposite: np.ndarray, probe_threshold: float,
    patch_gap_threshold: float, aa_windows: bool = True,
) -> Evidence:
    """The signatures of one model at one pair of thresholds (arrays as in `classify`)."""
    S, L = state_probe.shape
    late = slice(L // 2, L)
    state_layer = _first(state_probe[:, late].mean(1), probe_threshold)
    parity_layer = _first(parity_probe[:, late].mean(1), probe_threshold)
    depth = [_first(state_probe[:, t], probe_threshold) for t in range(L)]
    window_layers = {k: _first(w[:, k:].mean(1), probe_threshold)
                     for k, w in sorted(windows.items()) if 2 <= k < L}
    inner = slice(1, max(1, S - 1))
    gaps = patch_opposite[inner, -1] - patch_same[inner, -1]
    patch_gap = float(gaps.max()) if gaps.size else 0.0
    mass = patch_same.sum(1)
    carrier = [float((patch_same[s] * np.arange(L)).sum() / mass[s]) if mass[s] > 1e-6 else None
               for s in range(S)]

    tracks = state_layer is not None
    paa_probe = tracks and parity_layer is not None and parity_layer < state_layer  # type: ignore[operator]
    paa_patch = patch_gap >= patch_gap_threshold
    grown = depth[1:]  # from position 2 on
    depth_tree = (len(grown) >= 2 and all(d is not None for d in grown)
                  and _never_falls([float(d) for d in grown])  # type: ignore[arg-type]
                  and grown[-1] > grown[0])  # type: ignore[operator]
    wl = list(window_layers.values())
    windows_tree = not aa_windows or (
        bool(wl) and all(w is not None for w in wl) and _never_falls([float(w) for w in wl]))  # type: ignore[arg-type]
    aa_probe = tracks and parity_layer == state_layer and depth_tree and windows_tree
    carried = (all(c is not None for c in carrier)
               and _never_falls([float(c) for c in carrier], tol=0.5))  # type: ignore[arg-type]
    aa_patch = tracks and not paa_patch and carried
    return Evidence(state_layer, parity_layer, depth, window_layers, patch_gap, carrier, tracks,
                    bool(paa_probe), bool(paa_patch), bool(aa_probe), bool(aa_patch))


def label_of(e: Evidence, rule: str = "both") -> str:
    """AA, PAA or neither from the evidence, under `rule`."""
    if not e.tracks_state:
        return "neither"

    def combine(probe: bool, patch: bool) -> bool:
        return {"probe": probe, "patch": patch, "either": probe or patch,
                "both": probe and patch}[rule]

    paa, aa = combine(e.paa_probe, e.paa_patch), combine(e.aa_probe, e.aa_patch)
    if paa and not aa:
        return "PAA"
    if aa and not paa:
        return "AA"
    return "neither"


def threshold_slack(
    state_probe: np.ndarray, parity_probe: np.ndarray, patch_gap: float,
    probe_threshold: float, patch_gap_threshold: float,
) -> dict[str, float]:
    """How far the deciding inputs sit from their thresholds (issue #22.2: a label whose inputs
    lie within the "ambiguous" margins hangs on the threshold, or on the last bit).

    - `probe`: the smallest |site mean - threshold| among the sites that decide the state and
      the parity layers (the later-half means at every site up to and including the first that
      decodes; all sites when none does);
    - `gap`: patch_gap - gap threshold (signed: > 0 is a parity route).
    """
    L = state_probe.shape[1]
    out = []
    for probe in (state_probe, parity_probe):
        means = probe[:, L // 2:].mean(1)
        first = _first(means, probe_threshold)
        upto = means if first is None else means[: first + 1]
        out.append(float(np.abs(upto - probe_threshold).min()))
    return {"probe": min(out), "gap": float(patch_gap - patch_gap_threshold)}


def classify(
    state_probe: np.ndarray,
    parity_probe: np.ndarray,
    patch_same: np.ndarray,
    patch_opposite: np.ndarray,
    windows: Mapping[int, np.ndarray] | None = None,
    probe_threshold: float = 0.9,
    patch_gap_threshold: float = 0.2,
    rule: str = "both",
    probe_margin: float = 0.03,
    gap_margin: float = 0.05,
    aa_windows: bool = True,
) -> Signature:
    """Label a model from its probe accuracies and patching NLDs, all (sites, L) arrays.

    `windows`: k -> (sites, L) accuracy of the probe for the product of the last k actions
    for k = 2, 4, ... < L (the AA probe signature needs at least one: without them, or with
    L < 3, no model shows it). Sites run from the
    embedding (0) to the last layer; positions from 1 to L actions.
    """
    if rule not in RULES:
        raise ValueError(f"rule must be probe, patch, either or both; got {rule!r}")
    windows = dict(windows or {})
    for name, a in (("parity_probe", parity_probe), ("patch_same", patch_same),
                    ("patch_opposite", patch_opposite), *((f"window {k}", w)
                                                          for k, w in windows.items())):
        if a.shape != state_probe.shape:
            raise ValueError(f"{name} has shape {a.shape}, state_probe {state_probe.shape}")
    args = (state_probe, parity_probe, windows, patch_same, patch_opposite)
    base = gather_evidence(*args, probe_threshold, patch_gap_threshold, aa_windows)
    label = label_of(base, rule)
    moved = []
    for dp, dg in itertools.product((-probe_margin, 0.0, probe_margin),
                                    (-gap_margin, 0.0, gap_margin)):
        if dp or dg:
            moved.append(label_of(gather_evidence(*args, probe_threshold + dp,
                                                  patch_gap_threshold + dg, aa_windows), rule))
    final = label if all(m == label for m in moved) else "ambiguous"
    return Signature(final, label, base, moved)
