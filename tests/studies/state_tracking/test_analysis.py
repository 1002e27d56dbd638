"""Probes, patching and the AA/PAA rule, validated on the hand-built oracle models."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lmlab.nn import GPT, GPTConfig
from lmlab.nn.train import TrainConfig, Trainer
from lmlab.studies.state_tracking.data import with_bos
from lmlab.studies.state_tracking.groups import make_group
from lmlab.studies.state_tracking.mechanism import classify, first_action_corruptions
from lmlab.studies.state_tracking.oracles import OracleScan
from lmlab.studies.state_tracking.patching import patch_grid, patched_nld
from lmlab.studies.state_tracking.probes import (
    LinearProbe,
    collect_activations,
    probe_grid,
    residual_hooks,
)

T = 16
G = make_group("S3")
ACTIONS = np.random.default_rng(0).integers(0, 6, size=(500, T))


def _profile(model: torch.nn.Module, group=G, actions=ACTIONS, bos: int | None = None):
    """Probe and patching arrays of `model` on `actions`, as the study computes them."""
    skip = 0 if bos is None else 1
    sites = residual_hooks(model)
    acts = collect_activations(model, with_bos(torch.from_numpy(actions), bos), sites)
    acts = {k: v[:, skip:] for k, v in acts.items()}
    tr = {k: v[:300] for k, v in acts.items()}
    te = {k: v[300:] for k, v in acts.items()}
    st = group.compose(actions)
    state = probe_grid(tr, st[:300], te, st[300:], group.order)
    parity = probe_grid(tr, group.parity[st[:300]], te, group.parity[st[300:]], 2)
    L = actions.shape[1]
    windows = {}
    for k in (2, 4, 8):
        if k < L:
            prod = group.product_of_last(actions, k)
            windows[k] = probe_grid(tr, prod[:300], te, prod[300:], group.order)
    rng = np.random.default_rng(1)
    clean = actions[:100]
    same = first_action_corruptions(group, clean, True, rng)
    opp = first_action_corruptions(group, clean, False, rng)
    pos = range(skip, skip + L)
    ps = patch_grid(model, with_bos(torch.from_numpy(clean), bos),
                    with_bos(torch.from_numpy(same), bos), sites, pos)
    po = patch_grid(model, with_bos(torch.from_numpy(clean), bos),
                    with_bos(torch.from_numpy(opp), bos), sites, pos)
    return state, parity, ps, po, windows


def _signature(model: torch.nn.Module, group=G, actions=ACTIONS):
    state, parity, ps, po, windows = _profile(model, group, actions)
    return state, parity, ps, po, classify(state, parity, ps, po, windows)


@pytest.mark.parametrize("convention", ["gather", "scatter"])
@pytest.mark.parametrize("kind", ["AA", "PAA"])
def test_oracles_track_state(kind: str, convention: str) -> None:
    g = make_group("S3", convention)
    logits, _ = OracleScan(g, 4, kind)(torch.from_numpy(ACTIONS))
    assert np.array_equal(logits.argmax(-1).numpy(), g.compose(ACTIONS))  # label alignment


@pytest.mark.parametrize("kind", ["AA", "PAA"])
def test_oracles_are_classified_correctly(kind: str) -> None:
    _state, _parity, ps, po, sig = _signature(OracleScan(G, 4, kind))
    e = sig.evidence
    assert sig.label == kind and sig.base_label == kind
    assert sig.state_layer == 4  # the full product of 16 actions needs log2(16) layers
    assert sig.parity_layer == (1 if kind == "PAA" else 4)
    # the tree: position t is decoded at depth ceil(log2 t); window k at depth log2 k
    assert e.depth == [int(np.ceil(np.log2(t))) for t in range(1, T + 1)]
    assert e.window_layers == {2: 1, 4: 2, 8: 3}
    # layer l holds the product of the last 2^l actions, so patching one position at layer l
    # moves the answer exactly at position 2^l - 1 (the carrier of the first action)
    assert e.carrier == [2.0**layer - 1 for layer in range(5)]
    if kind == "AA":
        for layer in range(5):
            expect = np.zeros(T)
            expect[2**layer - 1] = 1.0
            assert np.allclose(ps[layer], expect) and np.allclose(po[layer], expect)
        assert e.aa_probe and e.aa_patch and not e.paa_probe and not e.paa_patch
    else:
        assert sig.patch_gap > 0.5 and e.paa_probe and e.paa_patch
        assert not e.aa_probe and not e.aa_patch


def test_a_flat_lookup_that_tracks_the_state_is_neither() -> None:
    """AA is detected from its own signature: tracking the state without parity first is not
    enough. The lookup decodes every position at layer 1 (no depth growth, no windows)."""
    model = OracleScan(G, 4, "LOOKUP")
    logits, _ = model(torch.from_numpy(ACTIONS))
    assert np.array_equal(logits.argmax(-1).numpy(), G.compose(ACTIONS))
    _state, _parity, _ps, _po, sig = _signature(model)
    e = sig.evidence
    assert e.tracks_state and not e.paa_probe and not e.paa_patch
    assert e.depth[1:] == [1] * (T - 1) and set(e.window_layers.values()) == {None}
    assert not e.aa_probe and sig.label == "neither"


def test_a_model_trained_on_random_labels_is_neither() -> None:
    """A small GPT trained a few hundred steps on random states (labels independent of the
    actions) tracks nothing: no signature, label "neither"."""
    T8 = 8
    gpt = GPT(GPTConfig(vocab_size=9, block_size=T8 + 1, n_layer=2, n_head=2, d_model=32,
                        pos="rope", tie_embeddings=False))
    rng = np.random.default_rng(5)

    def batches(step: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
        x = torch.randint(0, 6, (32, T8), generator=gen)
        y = torch.randint(0, 6, (32, T8), generator=gen)  # random labels
        return {"input_ids": with_bos(x, 8), "targets": torch.cat([torch.full((32, 1), -100), y], 1)}

    Trainer(gpt, TrainConfig(steps=150, lr=3e-3, log_every=50, device="cpu", seed=3),
            batches).fit()
    actions = rng.integers(0, 6, size=(500, T8))
    state, parity, ps, po, windows = _profile(gpt, actions=actions, bos=8)
    sig = classify(state, parity, ps, po, windows)
    assert not sig.evidence.tracks_state
    assert sig.label == "neither" and set(sig.labels_in_margin) == {"neither"}


def test_classification_rules_thresholds_and_ambiguity() -> None:
    state, parity, ps, po, windows = _profile(OracleScan(G, 4, "PAA"))
    assert classify(state, parity, ps, po, windows, rule="probe").label == "PAA"
    assert classify(state, parity, ps, po, windows, rule="patch").label == "PAA"
    gap = classify(state, parity, ps, po, windows).patch_gap
    # a patch threshold above the measured gap leaves only the probe signature: neither
    assert classify(state, parity, ps, po, windows, patch_gap_threshold=gap + 0.2).label == "neither"
    assert classify(state, parity, ps, po, windows, patch_gap_threshold=gap + 0.2,
                    rule="probe").label == "PAA"
    # "either": the probe says PAA but patching (no parity route left) now says AA: neither
    assert classify(state, parity, ps, po, windows, patch_gap_threshold=gap + 0.2,
                    rule="either").label == "neither"
    # a threshold within the margin of the measured gap decides the label: ambiguous
    amb = classify(state, parity, ps, po, windows, patch_gap_threshold=gap + 0.01, gap_margin=0.05)
    assert amb.label == "ambiguous" and amb.base_label == "neither" and "PAA" in amb.labels_in_margin
    never = np.zeros_like(state)
    assert classify(never, never, ps, po, windows).label == "neither"
    # AA needs the window probes: without them the AA probe signature cannot be shown
    aa = _profile(OracleScan(G, 4, "AA"))
    assert classify(*aa[:4], aa[4]).label == "AA"
    assert classify(*aa[:4]).label == "neither"
    # the paper's probes (state and parity only): the AA signature without the window products
    blind = {k: np.zeros_like(w) for k, w in aa[4].items()}
    assert classify(*aa[:4], blind).label == "neither"
    assert classify(*aa[:4], blind, aa_windows=False).label == "AA"
    assert classify(*aa[:4], aa_windows=False).label == "AA"
    assert classify(state, parity, ps, po, aa_windows=False).label == "PAA"
    with pytest.raises(ValueError, match="rule"):
        classify(state, parity, ps, po, rule="vote")
    with pytest.raises(ValueError, match="shape"):
        classify(state, parity[:2], ps, po)


def _models() -> list[torch.nn.Module]:
    torch.manual_seed(0)
    gpt = GPT(GPTConfig(vocab_size=8, block_size=T, n_layer=2, n_head=2, d_model=32, pos="rope",
                        tie_embeddings=False))
    return [OracleScan(G, 4, "AA"), OracleScan(G, 4, "PAA"), gpt]


@pytest.mark.parametrize("idx", [0, 1, 2])
def test_patching_invariants(idx: int) -> None:
    model = _models()[idx]
    model.eval()
    rng = np.random.default_rng(2)
    clean = torch.from_numpy(ACTIONS[:64])
    corrupt = torch.from_numpy(first_action_corruptions(G, ACTIONS[:64], False, rng))
    sites = residual_hooks(model)
    y_base = model(clean)[0][:, -1, :6].argmax(-1)
    y_other = model(corrupt)[0][:, -1, :6].argmax(-1)
    # an untrained GPT rarely changes its answer: compare the clean answer with another token
    y_other = torch.where(y_other == y_base, (y_base + 1) % 6, y_other)

    def nld(site: str, pos: list[int]) -> torch.Tensor:
        return patched_nld(model, clean, corrupt, site, pos, y_base, y_other)

    assert torch.allclose(nld("hook_embed", [0]), torch.ones(1, dtype=torch.float64))
    assert torch.allclose(nld("hook_embed", list(range(1, T))), torch.zeros(1, dtype=torch.float64))
    assert torch.allclose(nld(sites[-1], [T - 1]), torch.ones(1, dtype=torch.float64))
    grid = patch_grid(model, clean, corrupt, sites)
    assert grid.min() >= 0.0 and grid.max() <= 1.0
    # the grid shares one clean and one corrupted run over its cells: each cell is exactly what
    # patching that cell alone gives
    for i, j in ((0, 0), (len(sites) // 2, T // 2), (len(sites) - 1, T - 1)):
        alone = patched_nld(model, clean, corrupt, sites[i], [j])
        assert grid[i, j] == float(alone.mean())


def test_corruptions_change_only_the_first_action() -> None:
    rng = np.random.default_rng(3)
    for same in (True, False):
        c = first_action_corruptions(G, ACTIONS, same, rng)
        assert np.array_equal(c[:, 1:], ACTIONS[:, 1:])
        assert (c[:, 0] != ACTIONS[:, 0]).all()
        assert ((G.parity[c[:, 0]] == G.parity[ACTIONS[:, 0]]) == same).all()


def test_linear_probe_recovers_a_linear_code_and_rejects_bad_shapes() -> None:
    rng = np.random.default_rng(4)
    y = torch.from_numpy(rng.integers(0, 5, 400))
    X = torch.nn.functional.one_hot(y, 5).float() @ torch.randn(5, 16) + 0.01 * torch.randn(400, 16)
    assert LinearProbe(5).fit(X[:300], y[:300]).score(X[300:], y[300:]) == 1.0
    acts = {"a": X[:, None].expand(400, 3, 16)}
    with pytest.raises(ValueError, match="do not match"):
        probe_grid(acts, y[:, None].numpy(), acts, y[:, None].numpy(), 5)


def test_threshold_slack_reads_the_deciding_sites() -> None:
    """The probe slack looks at the sites up to the first that decodes (state and parity), the
    gap slack is signed; numbers from the last tiny run's model 0 (later-half site means)."""
    from lmlab.studies.state_tracking.mechanism import threshold_slack

    state_means = [0.18, 0.186, 0.304, 0.491, 0.987]
    parity_means = [0.494, 0.556, 0.847, 0.99, 1.0]
    state = np.repeat(np.array(state_means)[:, None], 8, 1)
    parity = np.repeat(np.array(parity_means)[:, None], 8, 1)
    s = threshold_slack(state, parity, 0.315, 0.9, 0.2)
    assert s["probe"] == pytest.approx(0.053)  # parity at site 2: 0.847, 0.053 below 0.9
    assert s["gap"] == pytest.approx(0.115)
    # a site past the first decoding one does not count; none decoding: every site counts
    assert threshold_slack(state, np.full_like(parity, 0.3), 0.1, 0.9, 0.2) == pytest.approx(
        {"probe": 0.087, "gap": -0.1})
