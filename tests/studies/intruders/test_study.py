"""The study contract: presets, computed claims, the tiny and smol pipelines end to end, the
paper preset's one-line failure offline."""

from __future__ import annotations

import json
import sys

import pytest

from lmlab.studies.intruders.claims import claims_from_metrics as claims
from lmlab.studies.intruders.study import IntruderConfig
from lmlab.study import apply_overrides, get_study


def test_presets_overrides_and_tools() -> None:
    study = get_study("intruders")
    assert set(study.presets) == {"tiny", "smol", "paper"}
    tiny = study.preset("tiny")
    assert isinstance(tiny, IntruderConfig) and tiny.experiment == "tiny"
    assert tiny.ranks == (1, 2, 4, 8, 16, 64) and tiny.seeds == 3
    assert tiny.schemes == ("alpha2r", "fixed", "rslora") and len(tiny.continual_tasks) >= 3
    assert tiny.lambdas == (1.0, 0.75, 0.5, 0.25, 0.0)
    paper = study.preset("paper")
    # the official settings (research note, paper 1)
    assert paper.paper_runs == ("full@1e-5", "alpha2r:1@3e-4", "alpha2r:8@1.5e-4")
    assert (paper.paper_batch, paper.paper_epochs, paper.paper_max_length, paper.seed) == (
        16, 5, 512, 42)
    assert paper.paper_warmup_ratio == 0.06 and paper.k == 10 and paper.eps == 0.5
    c = apply_overrides(tiny, ["ranks=1,8", "schemes=rslora", "lambdas=1,0"])
    assert c.ranks == (1, 8) and c.schemes == ("rslora",) and c.lambdas == (1.0, 0.0)
    # the tooling: `lmlab intruders BASE TUNED` and `lmlab bench intruders`
    assert callable(study.cli) and study.cli.__name__ == "intruders"
    assert set(study.benchmarks) == {"intruders"}


def _metrics(**over: float) -> dict[str, float]:
    m = {
        "full.intruders": 0.3, "full.acc": 0.96,
        **{f"lora.alpha2r.r{r}.intruders": v for r, v in
           [(1, 5.0), (2, 4.7), (4, 4.0), (8, 3.3), (16, 2.0), (64, 1.0)]},
        "trend.alpha2r.rho": -1.0, "trend.alpha2r.lowest_rank_intruders": 5.0,
        "trend.alpha2r.highest_rank_intruders": 1.0, "trend.alpha2r.highest_rank": 64,
        "lora.rslora.r1.intruders": 5.0, "lora.rslora.r64.intruders": 0.7,
        "corr.rho": 0.6, "corr.p": 0.001, "corr.n": 57, "corr.acc_min": 0.95,
        "corr.acc_max": 0.99,
        "mitigation.lam1.forgetting": 1.0, "mitigation.lam1.acc": 0.97,
        "mitigation.lam0.5.forgetting": 0.4, "mitigation.lam0.5.acc": 0.96,
        "mitigation.lam0.forgetting": 0.2, "mitigation.lam0.acc": 0.3,
        "continual.full.t1.intruders": 0.0, "continual.full.t3.intruders": 1.0,
        "continual.full.first_task_final_acc": 0.9,
        "continual.lora.alpha2r.r1.t1.intruders": 4.0,
        "continual.lora.alpha2r.r1.t3.intruders": 9.0,
        "continual.lora.alpha2r.r1.first_task_final_acc": 0.6,
        "continual.lora.alpha2r.r8.t1.intruders": 4.0,
        "continual.lora.alpha2r.r8.t3.intruders": 3.0,
        "continual.lora.alpha2r.r8.first_task_final_acc": 0.95,
    }
    m.update(over)
    return m


TESTED = ("lowrank-intruders", "rank-trend", "forgetting-intruders", "rslora-high-rank",
          "mitigation", "continual")


def test_claims_hold_when_the_metrics_show_the_effects() -> None:
    by_id = {c.id: c for c in claims(_metrics())}
    assert all(by_id[k].holds is True for k in TESTED), {k: by_id[k] for k in TESTED}
    assert by_id["dataset-size"].holds is None and by_id["llm-scale"].holds is None
    # the lowest continual rank is the one judged (r = 8 there would not hold)
    assert "lora.alpha2r.r1" in str(by_id["continual"].measured)
    assert "0.400" in str(by_id["mitigation"].measured)  # lambda = 0.5: cheap enough and best


def test_claims_fail_when_the_metrics_do_not() -> None:
    flipped = {c.id: c for c in claims(_metrics(**{
        "full.intruders": 3.0,  # full FT as many as LoRA
        "trend.alpha2r.rho": 0.5, "trend.alpha2r.highest_rank_intruders": 6.0,
        "corr.p": 0.3,  # not significant
        "lora.rslora.r64.intruders": 5.0,
        "mitigation.lam0.5.acc": 0.80,  # too costly: and lambda = 0 is costlier still
        "continual.lora.alpha2r.r1.first_task_final_acc": 0.95,
    }))}
    assert all(flipped[k].holds is False for k in TESTED), {k: flipped[k] for k in TESTED}
    # a first-task gap within the noise margin is not "forgets more"
    close = {c.id: c for c in claims(_metrics(**{
        "continual.lora.alpha2r.r1.first_task_final_acc": 0.89}))}
    assert close["continual"].holds is False
    # and a claim without its measurements is untestable, not false
    missing = {c.id: c for c in claims({"full.intruders": 0.0})}
    assert all(missing[k].holds is None for k in TESTED)


def test_tiny_pipeline_end_to_end_through_the_command(cli, tmp_path) -> None:
    """`lmlab run intruders --preset tiny` with micro overrides: result, claims, figures."""
    out = tmp_path / "tiny"
    over = ["seeds=2", "ranks=1,2,8", "schemes=alpha2r,rslora", "pretrain_steps=30",
            "max_steps=6", "eval_every=3", "n_train=48", "n_val=16", "n_test=16", "heldout=16",
            "d_model=32", "n_layer=1", "n_head=2", "text_len=10", "seq_len=16", "batch=8",
            "continual_methods=full,alpha2r:1", "continual_tasks=topic_first,negation,topic_last",
            "lambdas=1,0.5,0", "executor=serial", "target_acc=0.99"]
    res = cli("run", "intruders", "--preset", "tiny", "--out", str(out),
              *[a for o in over for a in ("--set", o)])
    assert res.code == 0, res.err
    result = json.loads((out / "result.json").read_text())
    m = result["metrics"]
    for key in ("full.acc", "full.intruders", "full.forgetting", "lora.alpha2r.r1.intruders",
                "lora.rslora.r8.dw_over_sigma_k_max", "lora.alpha2r.r8.lr", "trend.alpha2r.rho",
                "corr.runs", "mitigation.lam0.5.forgetting", "mitigation.lam1.acc",
                "continual.lora.alpha2r.r1.t3.intruders", "continual.full.t2.earlier_acc",
                "timing.cpu_s", "pretrain.heldout_loss"):
        assert key in m, key
    assert m["runs"] == 2 * (1 + 2 * 3) + 2  # seeds x methods, plus the continual runs
    assert m["lora.alpha2r.r8.lr"] == pytest.approx(1e-3 / 8 ** 0.5)  # the normalized rule
    assert m["timing.cpu_s"] > 0
    # the eps sweep: the detector's eps reproduces the count, and a count only grows with eps
    sweep = [m[f"lora.alpha2r.r1.intruders_eps{e}"] for e in ("0.3", "0.4", "0.5", "0.6", "0.7")]
    assert sweep[2] == m["lora.alpha2r.r1.intruders"] and sweep == sorted(sweep)
    ids = {c["id"] for c in result["claims"]}
    assert set(TESTED) <= ids
    figs = {p.name for p in (out / "figures").iterdir()}
    assert {"intruders_vs_rank.png", "forgetting_vs_intruders.png", "lambda_sweep.png",
            "continual.png", "cosine_lora.png", "cosine_full.png"} <= figs
    assert "claim" in res.out  # the claims table is printed


def test_smol_path_with_a_micro_override(tmp_path, converted, monkeypatch) -> None:
    """Full FT and LoRA on the embedded SmolLM2 for one step each: every metric is produced."""
    from lmlab.runner import execute

    monkeypatch.setenv("LMLAB_CACHE", str(converted["root"]))
    result = execute("intruders", "smol", out=tmp_path / "smol", overrides=[
        "smol_methods=full,alpha2r:1", "smol_steps=1", "smol_batch=2", "smol_n_train=4",
        "smol_n_test=4", "smol_prompts=1", "smol_gen_tokens=4", "smol_text_len=6"])
    m = result["metrics"]
    for name in ("full", "lora.alpha2r.r1"):
        assert m[f"{name}.steps"] == 1
        assert 0.0 <= m[f"{name}.acc"] <= 1.0 and m[f"{name}.intruders"] >= 0
        assert m[f"{name}.forgetting"] == m[f"{name}.forgetting"]  # a number, not NaN
    assert m["lora.alpha2r.r1.lr"] == pytest.approx(3e-4)
    assert (tmp_path / "smol" / "figures" / "cosine_lora.png").is_file()
    assert {c["id"] for c in result["claims"]} >= {"lowrank-intruders", "forgetting-intruders"}


def test_paper_preset_fails_offline_in_one_line(cli, tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "datasets", None)  # as on a machine without `datasets`
    res = cli("run", "intruders", "--preset", "paper", "--out", str(tmp_path / "paper"))
    assert res.code == 2
    lines = [ln for ln in res.err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "datasets" in lines[0] and "pip install" in lines[0], res.err
    assert not (tmp_path / "paper" / "result.json").exists()
    bad = cli("run", "intruders", "--preset", "paper", "--out", str(tmp_path / "p2"),
              "--set", "paper_tasks=siqa")
    assert bad.code == 2 and "not wired" in bad.err
