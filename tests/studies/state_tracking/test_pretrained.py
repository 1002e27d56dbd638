"""The pretrained-model path on a tiny randomly initialized GPT-NeoX (Pythia's architecture).

No download: the model is built from a config and saved to a local folder.
"""

from __future__ import annotations

import numpy as np
import torch

from lmlab.studies.state_tracking.config import (
    AnalysisConfig,
    ModelSpec,
    Recipe,
    StateTrackingConfig,
)
from lmlab.studies.state_tracking.groups import make_group
from lmlab.studies.state_tracking.mechanism import first_action_corruptions
from lmlab.studies.state_tracking.patching import logit_difference, patched_nld
from lmlab.studies.state_tracking.pretrained import HookedCausalLM
from lmlab.studies.state_tracking.probes import residual_hooks
from lmlab.studies.state_tracking.study import train_and_analyze


def _tiny_neox():
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    torch.manual_seed(0)
    return GPTNeoXForCausalLM(GPTNeoXConfig(
        vocab_size=40, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=64, initializer_range=0.5))


def test_hooked_causal_lm_has_gpt_hook_names_and_patching_invariants() -> None:
    model = HookedCausalLM(_tiny_neox(), 9, mean_resizing=False).eval()
    sites = residual_hooks(model)
    assert sites == ["hook_embed", "blocks.0.hook_resid_post", "blocks.1.hook_resid_post"]
    g = make_group("S3")
    actions = np.random.default_rng(0).integers(0, 6, (32, 6))
    clean = torch.from_numpy(actions)
    corrupt = torch.from_numpy(first_action_corruptions(g, actions, False, np.random.default_rng(1)))
    y_base = model(clean)[0][:, -1, :6].argmax(-1)
    y_other = (y_base + 1) % 6
    # a random model barely reacts to the first token at the last position: keep the pairs
    # where it does measurably, so the normalization is not dominated by rounding
    with torch.no_grad():
        gap = (logit_difference(model(corrupt)[0], y_base, y_other)
               - logit_difference(model(clean)[0], y_base, y_other))
    keep = gap.abs() > 1e-7
    assert keep.sum() >= 8
    one = torch.ones(int(keep.sum()), dtype=torch.float64)

    def nld(site: str, pos: list[int]) -> torch.Tensor:
        return patched_nld(model, clean, corrupt, site, pos, y_base, y_other)[keep]

    assert torch.allclose(nld("hook_embed", [0]), one)
    assert torch.allclose(nld("hook_embed", [1, 2, 3, 4, 5]), 0 * one)
    assert torch.allclose(nld(sites[-1], [5]), one)


def test_train_and_analyze_fine_tunes_a_local_pretrained_folder(tmp_path) -> None:
    folder = tmp_path / "neox"
    _tiny_neox().save_pretrained(folder)
    cfg = StateTrackingConfig(
        T=4, n_stories=600, n_seeds=1, model=ModelSpec(name=str(folder), bos=False),
        train=Recipe(steps=20, eval_every=10, lr=1e-3),
        analysis=AnalysisConfig(probe_stories=100, patch_pairs=20))
    (job,) = cfg.jobs()
    r = train_and_analyze(job, str(tmp_path / "logs"))
    assert (tmp_path / "logs" / "none.seed0" / "state" / "metrics.jsonl").is_file()
    assert r["steps_done"] == 20 and len(r["acc"]) == 8
    assert np.asarray(r["probes"]["state"]).shape == (3, 4)
    assert np.asarray(r["patches"]["opposite"]).shape == (3, 4)
