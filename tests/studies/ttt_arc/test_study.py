"""The ttt-arc study: presets, micro end-to-end runs (tiny, smol), the paper preset offline, claims."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lmlab.errors import LmlabError
from lmlab.studies.ttt_arc.claims import checks, claims
from lmlab.studies.ttt_arc.study import TTTArcConfig
from lmlab.studies.ttt_arc.summary import bootstrap, summarize_scores
from lmlab.study import apply_overrides, get_study

MICRO_TINY = ["pre_steps=4", "n_layer=1", "d_model=32", "n_eval=2", "seeds=3", "ttt_max_tasks=4",
              "lora_r=4", "executor=serial", "n_boot=200"]


def test_presets_and_overrides() -> None:
    study = get_study("ttt-arc")
    assert set(study.presets) == {"tiny", "smol", "paper"}
    tiny, paper = study.preset("tiny"), study.preset("paper")
    assert isinstance(tiny, TTTArcConfig) and tiny.backend == "tiny" and tiny.seeds >= 3
    assert (paper.lora_r, paper.lora_alpha, paper.lora_lr, paper.lora_epochs, paper.lora_batch,
            paper.lora_warmup, paper.lora_wd, paper.ttt_max_tasks) == (
        128, 16.0, 1e-4, 2, 2, 0.1, 0.01, 250)
    assert paper.ttt_transforms == ("all",) and paper.arc_tasks == 0
    c = apply_overrides(tiny, ["heldout=colormap+fill,fill+scale", "seeds=4"])
    assert c.heldout == ("colormap+fill", "fill+scale") and c.seeds == 4
    with pytest.raises(LmlabError, match="unknown override"):
        apply_overrides(tiny, ["seed_count=3"])


def test_tiny_micro_end_to_end(cli, tmp_path) -> None:
    out = tmp_path / "run"
    r = cli("run", "ttt-arc", "--preset", "tiny", "--out", out,
            *[a for kv in MICRO_TINY for a in ("--set", kv)])
    assert r.code == 0, r.err
    res = json.loads((out / "result.json").read_text())
    m = res["metrics"]
    assert m["n_tasks"] == 6 and m["n_seeds"] == 3
    for cond in ("icl", "icl_vote", "ttt", "ttt_vote", "notf_vote", "shared_vote", "ttt_oracle"):
        assert m[f"acc.{cond}.ci_lo"] <= m[f"acc.{cond}"] <= m[f"acc.{cond}.ci_hi"]
    assert "diff.ttt_vote-icl.ci_lo" in m and m["adapter_initial_digests"] == 1
    assert m["ttt_time.cpu_mean_s"] > 0 and m["pretrain_steps"] == 4
    assert {c["id"] for c in res["claims"]} >= {"ttt-beats-icl", "voting-adds",
                                                "ablation-shared-adapter", "ablation-no-transforms"}
    for fig in ("accuracy", "per_family", "ttt_time"):
        assert (out / "figures" / f"{fig}.png").stat().st_size > 1000
    sub = json.loads((out / "submission.json").read_text())
    assert len(sub) == 2 and all("attempt_1" in e[0] for e in sub.values())
    logs = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    per_task = [rec for rec in logs if "task" in rec]
    assert len(per_task) == 6 and all(rec["ttt_cpu_s"] > 0 for rec in per_task)


def test_smol_micro_end_to_end(cli, tmp_path, converted, monkeypatch) -> None:
    """SmolLM2 through the whole real-ARC path: text format, PEFT TTT, voting, scoring."""
    monkeypatch.setenv("LMLAB_CACHE", str(converted["root"]))
    out = tmp_path / "smol"
    r = cli("run", "ttt-arc", "--preset", "smol", "--out", out, "--set", "arc_ids=66e6c45b",
            "--set", "ttt_max_tasks=1", "--set", "lora_r=2", "--set", "max_new=12",
            "--set", "inference_transforms=identity,flipud", "--set", "n_boot=50")
    assert r.code == 0, r.err
    res = json.loads((out / "result.json").read_text())
    m = res["metrics"]
    assert m["arc_tasks"] == 1 and m["n_tasks"] == 1
    assert 0.0 <= m["acc.ttt_vote"] <= 1.0 and m["ttt_time.cpu_mean_s"] > 0
    sub = json.loads((out / "submission.json").read_text())
    assert list(sub) == ["66e6c45b"] and set(sub["66e6c45b"][0]) == {"attempt_1", "attempt_2"}


def test_paper_preset_fails_offline_in_one_line(cli, tmp_path) -> None:
    out = tmp_path / "paper"
    r = cli("run", "ttt-arc", "--preset", "paper", "--out", out)
    assert r.code == 2
    lines = [ln for ln in r.err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "Llama-3.2-1B-Instruct" in lines[0], r.err
    assert not (out / "result.json").exists()


def _metrics(effect: float, n: int = 60, seed: int = 0) -> dict:
    """Synthetic per-task scores in which TTT adds `effect` to the solve rate."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        base = rng.random() < 0.2
        ttt = base or rng.random() < effect
        rows.append({"seed": i % 3, "family": f"f{i % 2}", "id": str(i), "scores": {
            "icl": float(base), "icl_vote": float(base or rng.random() < effect / 4),
            "ttt": float(ttt), "ttt_vote": float(ttt or rng.random() < effect / 2),
            "notf_vote": float(base), "shared_vote": float(base)}})
    return summarize_scores(rows, n_boot=500)


def test_claims_computed_both_ways() -> None:
    cfg = TTTArcConfig()
    good = {c.id: c for c in claims(cfg, _metrics(0.6)) + checks(cfg, _metrics(0.6))}
    assert "icl-headroom" not in {c.id for c in claims(cfg, _metrics(0.6))}  # a precondition
    assert good["ttt-beats-icl"].holds and good["ttt-identity-beats-icl"].holds
    assert good["voting-adds"].holds and good["ablation-shared-adapter"].holds
    assert good["ablation-no-transforms"].holds and good["icl-headroom"].holds
    null = {c.id: c for c in claims(cfg, _metrics(0.0))}
    assert null["ttt-beats-icl"].holds is False and null["voting-adds"].holds is False
    assert null["ablation-shared-adapter"].holds is False
    assert "over 60 tasks" in str(null["ttt-beats-icl"].measured)
    missing = {c.id: c for c in claims(cfg, {"n_tasks": 0}) + checks(cfg, {"n_tasks": 0})}
    assert missing["ttt-beats-icl"].holds is None and missing["icl-headroom"].holds is None


def test_summary_intervals_and_families() -> None:
    m = _metrics(0.6)
    assert m["acc.ttt.ci_lo"] < m["acc.ttt"] < m["acc.ttt.ci_hi"]
    assert m["diff.ttt_vote-icl.ci_lo"] > 0
    assert m["family.f0.n"] + m["family.f1.n"] == 60
    # the interval of a constant is the constant; a paired difference of equal columns is 0
    assert bootstrap(np.ones(10), np.zeros(10), 100, 0) == (1.0, 1.0)
    same = summarize_scores([{"seed": 0, "family": "f", "id": str(i), "scores": {
        "icl": float(i % 2), "ttt": float(i % 2)}} for i in range(8)], n_boot=100)
    assert (same["diff.ttt-icl"], same["diff.ttt-icl.ci_lo"], same["diff.ttt-icl.ci_hi"]) == (
        0.0, 0.0, 0.0)
