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
    assert tiny.schemes == ("alpha2r", "fixed", "rslora") and len(tiny.continual.tasks) >= 3
    assert tiny.mitigation.lambdas == (1.0, 0.75, 0.5, 0.25, 0.0)
    assert tiny.rules.about_none == 0.5
    paper = study.preset("paper")
    # the official settings (research note, paper 1)
    assert paper.paper.runs == ("full@1e-5", "alpha2r:1@3e-4", "alpha2r:8@1.5e-4")
    assert (paper.paper.batch, paper.paper.epochs, paper.paper.max_length, paper.seed) == (
        16, 5, 512, 42)
    assert paper.paper.warmup_ratio == 0.06 and paper.detect.k == 10 and paper.detect.eps == 0.5
    c = apply_overrides(tiny, ["ranks=1,8", "schemes=rslora", "mitigation.lambdas=1,0",
                               "pretrain.steps=20", "smol.steps=3"])
    assert c.ranks == (1, 8) and c.schemes == ("rslora",) and c.mitigation.lambdas == (1.0, 0.0)
    assert c.pretrain.steps == 20 and c.smol.steps == 3 and tiny.pretrain.steps == 600
    # the tooling: `lmlab intruders BASE TUNED` and `lmlab bench intruders`
    assert callable(study.cli) and study.cli.__name__ == "intruders"
    assert set(study.benchmarks) == {"intruders"}


def _metrics(**over: float) -> dict[str, float]:
    m = {
        "finetune.full.intruders": 0.3, "finetune.full.acc": 0.96,
        **{f"finetune.alpha2r.r{r}.intruders": v for r, v in
           [(1, 5.0), (2, 4.7), (4, 4.0), (8, 3.3), (16, 2.0), (64, 1.0)]},
        "diff.lowrank.ranks": "1,2,4,8",
        "diff.lowrank_vs_full.mean": 4.0, "diff.lowrank_vs_full.ci_lo": 3.0,
        "diff.lowrank_vs_full.ci_hi": 5.0,
        "diff.rslora_vs_full.mean": 0.4, "diff.rslora_vs_full.ci_lo": -0.3,
        "diff.rslora_vs_full.ci_hi": 0.9,
        "diff.lowrank_vs_rslora.mean": 3.6, "diff.lowrank_vs_rslora.ci_lo": 2.5,
        "diff.lowrank_vs_rslora.ci_hi": 4.4,
        "trend.alpha2r.rho": -0.9, "trend.alpha2r.ci_lo": -1.0, "trend.alpha2r.ci_hi": -0.7,
        "trend.alpha2r.runs": 18, "trend.alpha2r.lowest_rank_intruders": 5.0,
        "trend.alpha2r.highest_rank_intruders": 1.0, "trend.alpha2r.highest_rank": 64,
        "finetune.rslora.r1.intruders": 5.0, "finetune.rslora.r64.intruders": 0.7,
        "corr.rho": 0.6, "corr.p": 0.001, "corr.n": 57, "corr.ci_lo": 0.4, "corr.ci_hi": 0.75,
        "corr.acc_min": 0.95, "corr.acc_max": 0.99,
        "mitigation.lam1.forgetting": 1.0, "mitigation.lam1.acc": 0.97,
        "mitigation.lam0p5.forgetting": 0.4, "mitigation.lam0p5.acc": 0.96,
        "mitigation.lam0p5.acc_drop": 0.01, "mitigation.lam0p5.forgetting_cut": 0.6,
        "mitigation.lam0p5.forgetting_cut_ci_lo": 0.5,
        "mitigation.lam0.forgetting": 0.2, "mitigation.lam0.acc": 0.3,
        "mitigation.lam0.acc_drop": 0.67, "mitigation.lam0.forgetting_cut": 0.8,
        "mitigation.lam0.forgetting_cut_ci_lo": 0.7,
        "continual.full.t1.intruders": 0.0, "continual.full.t3.intruders": 1.0,
        "continual.full.first_task_final_acc": 0.9,
        "continual.alpha2r.r1.t1.intruders": 4.0,
        "continual.alpha2r.r1.t3.intruders": 9.0,
        "continual.alpha2r.r1.first_task_final_acc": 0.6,
        "continual.alpha2r.r1.accumulates": 1.0,
        "continual.alpha2r.r1.gap_vs_full": 0.3,
        "continual.alpha2r.r1.gap_vs_full_ci_lo": 0.25,
        "continual.alpha2r.r1.gap_vs_full_ci_hi": 0.35,
        "continual.alpha2r.r8.t1.intruders": 4.0,
        "continual.alpha2r.r8.t3.intruders": 3.0,
        "continual.alpha2r.r8.first_task_final_acc": 0.95,
        "continual.alpha2r.r8.accumulates": 0.0,
        "continual.alpha2r.r8.gap_vs_full": -0.05,
        "continual.alpha2r.r8.gap_vs_full_ci_lo": -0.09,
        "continual.alpha2r.r8.gap_vs_full_ci_hi": -0.01,
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
    assert "alpha2r.r1" in str(by_id["continual"].measured)
    assert "0.400" in str(by_id["mitigation"].measured)  # lambda = 0.5: cheap enough and best
    # every difference or correlation claim states its interval rule
    for k in TESTED:
        assert "95%" in by_id[k].statement, k


def test_claims_fail_when_the_metrics_do_not() -> None:
    flipped = {c.id: c for c in claims(_metrics(**{
        "finetune.full.intruders": 3.0,  # full FT as many as LoRA
        "trend.alpha2r.ci_hi": 0.1,  # rho's interval reaches 0
        "corr.ci_lo": -0.05,  # rho's interval reaches 0
        "diff.rslora_vs_full.ci_hi": 1.5,  # could be further than the margin from full FT
        "mitigation.lam0p5.acc_drop": 0.2,  # too costly: and lambda = 0 is costlier still
        "continual.alpha2r.r1.gap_vs_full_ci_lo": -0.01,
    }))}
    assert all(flipped[k].holds is False for k in TESTED), {k: flipped[k] for k in TESTED}
    # the point estimates alone never decide: a significant-looking p with an interval over 0
    assert claims(_metrics(**{"corr.p": 1e-5, "corr.ci_lo": -0.01}))[2].holds is False
    # "about none" is at most 0.5 per model, whatever LoRA's count (the old rule, a quarter of
    # LoRA's mean, let 0.9 pass next to LoRA's 4)
    near = {c.id: c for c in claims(_metrics(**{"finetune.full.intruders": 0.9}))}
    assert near["lowrank-intruders"].holds is False
    assert "at most 0.5 per model" in near["lowrank-intruders"].statement
    # LoRA's excess over full FT must hold across seeds, not only on average
    wide = {c.id: c for c in claims(_metrics(**{"diff.lowrank_vs_full.ci_lo": -0.5}))}
    assert wide["lowrank-intruders"].holds is False
    # intruders that do not accumulate in every run fail the continual claim
    flat = {c.id: c for c in claims(_metrics(**{"continual.alpha2r.r1.accumulates": 0.0}))}
    assert flat["continual"].holds is False
    # a mitigation cut whose interval reaches 0 does not hold
    noisy = {c.id: c for c in claims(_metrics(**{"mitigation.lam0p5.forgetting_cut_ci_lo": -0.1}))}
    assert noisy["mitigation"].holds is False
    # and a claim without its measurements is untestable, not false
    missing = {c.id: c for c in claims({"finetune.full.intruders": 0.0})}
    assert all(missing[k].holds is None for k in TESTED)


def test_intervals_come_from_seeds_and_runs() -> None:
    """The summary's paired differences resample seeds, its correlations runs."""
    from lmlab.studies.intruders.summary import mitigation_metrics, single_metrics

    def run(method: str, rank: int, scheme: str, seed: int, intr: float, forget: float,
            mit: list | None = None) -> dict:
        return {"method": method, "type": "full" if method == "full" else "lora", "rank": rank,
                "scheme": scheme, "scaling": 2.0, "lr": 1e-3, "seed_index": seed,
                "stages": [{"acc": 0.95, "intruders": intr, "forgetting": forget,
                            "dw_over_sigma_k_max": 1, "dw_over_sigma_k_mean": 1,
                            "eff_rank_delta": 0, "steps": 10}], "mitigation": mit or []}

    results = []
    for s in range(3):
        results.append(run("full", 0, "", s, 0.0, 0.1 + 0.01 * s))
        for k in (1, 8, 64):
            results.append(run(f"alpha2r.r{k}", k, "alpha2r", s, 6.0 - k / 16 + s, 0.5 + s * 0.1,
                               [{"lam": 1.0, "acc": 0.95, "forgetting": 1.0 + s, "intruders": 4,
                                 "flagged": 4},
                                {"lam": 0.5, "acc": 0.94, "forgetting": 0.5 + s, "intruders": 1,
                                 "flagged": 4}] if k == 1 else None))
        results.append(run("rslora.r64", 64, "rslora", s, 0.5 * s, 0.2))
    m = single_metrics(results, 0.95, 0.05)
    assert m["finetune.alpha2r.r1.seed2.intruders"] == pytest.approx(6.0 - 1 / 16 + 2)
    assert m["diff.lowrank_vs_full.seeds"] == 3 and m["diff.lowrank.ranks"] == "1,8"
    assert 0 < m["diff.lowrank_vs_full.ci_lo"] <= m["diff.lowrank_vs_full.mean"] <= \
        m["diff.lowrank_vs_full.ci_hi"]
    assert m["trend.alpha2r.runs"] == 9 and m["trend.alpha2r.ci_lo"] <= m["trend.alpha2r.rho"]
    assert m["corr.n"] == 15 and m["corr.ci_lo"] <= m["corr.rho"] <= m["corr.ci_hi"]
    mit = mitigation_metrics(results)
    assert mit["mitigation.lam0p5.forgetting_cut"] == pytest.approx(0.5)
    assert mit["mitigation.lam0p5.forgetting_cut_ci_lo"] == pytest.approx(0.5)  # every seed 0.5
    assert mit["mitigation.lam0p5.acc_drop"] == pytest.approx(0.01)


MICRO = ["seeds=2", "ranks=1,2,8", "schemes=alpha2r,rslora", "pretrain.steps=30",
         "finetune.max_steps=6", "finetune.eval_every=3", "finetune.n_train=48",
         "finetune.n_val=16", "finetune.n_test=16", "pretrain.heldout=16", "model.d_model=32",
         "model.n_layer=1", "model.n_head=2", "finetune.text_len=10", "model.seq_len=16",
         "finetune.batch=8", "continual.methods=full,alpha2r:1",
         "continual.tasks=topic_first,negation,topic_last", "mitigation.lambdas=1,0.5,0",
         "executor=serial", "finetune.target_acc=0.99"]


def test_tiny_pipeline_end_to_end_through_the_command(cli, tmp_path) -> None:
    """`lmlab run intruders --preset tiny` with micro overrides: result, claims, figures."""
    out = tmp_path / "tiny"
    res = cli("run", "intruders", "--preset", "tiny", "--out", str(out),
              *[a for o in MICRO for a in ("--set", o)])
    assert res.code == 0, res.err
    result = json.loads((out / "result.json").read_text())
    m = result["metrics"]
    for key in ("finetune.full.acc", "finetune.full.intruders", "finetune.full.forgetting",
                "finetune.alpha2r.r1.intruders", "finetune.rslora.r8.dw_over_sigma_k_max",
                "finetune.alpha2r.r8.lr", "finetune.alpha2r.r1.seed1.intruders",
                "trend.alpha2r.rho", "trend.alpha2r.ci_hi", "corr.runs",
                "diff.lowrank_vs_full.ci_lo", "mitigation.lam0p5.forgetting",
                "mitigation.lam0p5.forgetting_cut_ci_lo", "mitigation.lam1.acc",
                "continual.alpha2r.r1.t3.intruders", "continual.full.t2.earlier_acc",
                "continual.alpha2r.r1.gap_vs_full_ci_lo", "timing.cpu_s",
                "pretrain.heldout_loss", "finetune.full.dw_over_sigma_k_median",
                "finetune.full.intruders_decidable", "finetune.alpha2r.r1.null_intruders",
                "decidable.diff.lowrank_vs_full.ci_lo", "base.decidable.mean",
                "base.l0_q_proj.min_gap", "base.undecidable"):
        assert key in m, key
    # the restricted count never exceeds the count over every matrix
    for name in ("full", "alpha2r.r1", "rslora.r8"):
        for s in (0, 1):
            assert m[f"finetune.{name}.seed{s}.intruders_decidable"] <= \
                m[f"finetune.{name}.seed{s}.intruders"]
    spectra = json.loads((out / "spectra.json").read_text())
    assert len(spectra["seeds"]["0"]["matrices"]) == m["base.matrices"] == 6
    assert len(spectra["seeds"]["1"]["decidable"]) >= m["base.decidable.min"]
    # every key is dotted, and no number's decimal point splits a key part
    assert all("." in k for k in m) and not any(part[:1].isdigit() for k in m
                                                 for part in k.split(".")), sorted(m)
    assert m["finetune.runs"] == 2 * (1 + 2 * 3) + 2  # seeds x methods, plus the continual runs
    assert m["finetune.alpha2r.r8.lr"] == pytest.approx(1e-3 / 8 ** 0.5)  # the normalized rule
    assert m["timing.cpu_s"] > 0
    # the eps sweep: the detector's eps reproduces the count, and a count only grows with eps
    sweep = [m[f"finetune.alpha2r.r1.intruders_eps{e}"] for e in ("0p3", "0p4", "0p5", "0p6",
                                                                  "0p7")]
    assert sweep[2] == m["finetune.alpha2r.r1.intruders"] and sweep == sorted(sweep)
    ids = {c["id"] for c in result["claims"]}
    assert set(TESTED) <= ids and {f"{k}-decidable" for k in TESTED[:4]} <= ids
    figs = {p.name for p in (out / "figures").iterdir()}
    assert {"intruders_vs_rank.png", "forgetting_vs_intruders.png", "lambda_sweep.png",
            "continual.png", "cosine_lora.png", "cosine_full.png", "spectral_gaps.png"} <= figs
    assert "claim" in res.out  # the claims table is printed
    # progress when piped: the first pre-training's steps from its start, then a line per job
    assert "intruders: pre-training seed 0 [1/30 steps]" in res.err
    assert "intruders: fine-tuning [1/16 jobs]" in res.err


def test_kill_and_resume_gives_the_metrics_of_an_uninterrupted_run(tmp_path) -> None:
    """SIGKILL after the first fine-tuning job is kept, resume: the same metrics and verdicts as
    a full run of the same seed (so also: the same seed twice gives the same numbers)."""
    from tests.study_runs import assert_kill_resume_matches

    # without the cache of bases, so all three runs pre-train (a reused base differs only in
    # its `pretrain.source`, tested in test_base_cache.py)
    args = ["--preset", "tiny", *[a for o in [*MICRO, "cache_base=false"] for a in ("--set", o)]]
    assert_kill_resume_matches(tmp_path, "intruders", args,
                               marker="jobs/lmlab.studies.intruders.experiments.run_finetune/*.pkl")


@pytest.mark.slow
def test_smol_path_with_a_micro_override(tmp_path, converted, monkeypatch) -> None:
    """Full FT and LoRA on the embedded SmolLM2 for one step each, single-task and over two
    tasks in sequence: every metric, figure, claim and the matched-accuracy check is produced."""
    from lmlab.runner import execute

    monkeypatch.setenv("LMLAB_CACHE", str(converted["root"]))
    result = execute("intruders", "smol", out=tmp_path / "smol", overrides=[
        "executor=serial", "smol.methods=full,alpha2r:1", "smol.steps=1", "smol.batch=2",
        "smol.n_train=4", "smol.n_val=4", "smol.n_test=4", "smol.prompts=1",
        "smol.gen_tokens=4", "smol.text_len=6", "smol.continual_tasks=code_first,topic",
        "smol.continual_methods=full,alpha2r:1", "smol.continual_steps=1"])
    m = result["metrics"]
    smol = get_study("intruders").preset("smol").smol
    for name in ("finetune.full", "finetune.alpha2r.r1"):
        assert m[f"{name}.steps"] == 1
        assert 0.0 <= m[f"{name}.acc"] <= 1.0 and m[f"{name}.intruders"] >= 0
        assert m[f"{name}.forgetting"] == m[f"{name}.forgetting"]  # a number, not NaN
        assert m[f"{name}.dw.q_proj.max"] >= m[f"{name}.dw.q_proj.median"] > 0
    assert m["finetune.alpha2r.r1.lr"] == pytest.approx(smol.lora_lr)
    assert m["finetune.full.lr"] == pytest.approx(smol.full_lr)
    assert 0.0 <= m["continual.alpha2r.r1.t2.first_task_acc"] <= 1.0
    assert m["diff.over"] == "matrices" and m["diff.lowrank_vs_full.matrices"] == 30 * 7
    for fig in ("update_sizes", "intruders_vs_rank", "continual"):
        assert (tmp_path / "smol" / "figures" / f"{fig}.png").is_file()
    assert {c["id"] for c in result["claims"]} >= {"lowrank-intruders", "continual"}
    assert [c["id"] for c in result["checks"]] == ["matched-accuracy"]


def test_paper_preset_fails_offline_in_one_line(cli, tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "datasets", None)  # as on a machine without `datasets`
    res = cli("run", "intruders", "--preset", "paper", "--out", str(tmp_path / "paper"))
    assert res.code == 2
    lines = [ln for ln in res.err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "datasets" in lines[0] and "pip install" in lines[0], res.err
    assert not (tmp_path / "paper" / "result.json").exists()
    bad = cli("run", "intruders", "--preset", "paper", "--out", str(tmp_path / "p2"),
              "--set", "paper.tasks=siqa")
    assert bad.code == 2 and "not wired" in bad.err
