"""The study contract: presets, overrides, claims from metrics, a reduced run, kill-and-resume."""

from __future__ import annotations

import json

import pytest
from tests.study_runs import assert_kill_resume_matches

from lmlab.errors import LmlabError
from lmlab.runner import execute
from lmlab.seeding import derive
from lmlab.studies.state_tracking import STUDY, StateTrackingConfig
from lmlab.study import apply_overrides, get_study

SMALL = ["T=4", "model.n_layer=2", "model.d_model=32", "model.n_head=2", "train.steps=400",
         "train.lr=3e-3", "train.warmup_steps=50", "n_stories=1296", "analysis.probe_stories=200",
         "analysis.patch_pairs=50", "n_seeds=1", "train.eval_every=100"]


def test_presets_overrides_and_jobs() -> None:
    assert get_study("state-tracking") is not None and STUDY.id == "state-tracking"
    tiny, paper = STUDY.preset("tiny"), STUDY.preset("paper")
    assert isinstance(tiny, StateTrackingConfig) and tiny.group == "S3"
    assert paper.group == "S5" and paper.T == 100 and paper.model.name == "EleutherAI/pythia-160m"
    c = apply_overrides(tiny, ["T=6", "conditions=none,parity", "executor=process",
                               "train.steps=7", "model.n_layer=3"])
    assert c.T == 6 and c.conditions == ("none", "parity") and c.executor == "process"
    assert c.train.steps == 7 and c.model.n_layer == 3 and tiny.train.steps == 12000
    with pytest.raises(LmlabError, match="unknown override key"):
        apply_overrides(tiny, ["depth=3"])
    assert tiny.topic_mapping == "paper"
    with pytest.raises(LmlabError, match="topic_mapping"):
        STUDY.validate(apply_overrides(tiny, ["topic_mapping=released"]))
    # jobs read the config (no copied defaults); model i has one seed in every condition,
    # derived from the run seed, so --seed 1 never reruns a model of --seed 0
    jobs = c.jobs()  # index-major: a sweep stopped early has every condition equally far
    assert [(j.condition, j.index) for j in jobs] == [("none", 0), ("parity", 0), ("none", 1),
                                                      ("parity", 1)]
    assert all(j.config is c for j in jobs) and jobs[0].seed == jobs[1].seed == derive(0, "model", 0)
    other = apply_overrides(c, ["seed=1"]).jobs()
    assert not {j.seed for j in jobs} & {j.seed for j in other}
    assert jobs[1].budget == c.intermediate_steps + 7 and jobs[0].budget == 7
    longer = apply_overrides(c, ["train.extra_steps=5"])
    assert longer.jobs()[0].budget == 12
    with pytest.raises(LmlabError, match=r"train\.extra_steps"):
        STUDY.validate(apply_overrides(c, ["train.extra_steps=-1"]))


def _metrics(labels: dict[str, list[str]], converged: dict[str, list[int]] | None = None,
             **extra: float) -> dict:
    """Summary metrics as the study writes them, for labels of converged models per condition."""
    m: dict = {"accuracy.all.min_within_T": 0.995, "data.val_test.overlap": 0}
    total = {k: 0 for k in ("n_converged", "n_excluded", "n_AA", "n_PAA", "n_neither",
                            "n_ambiguous")}
    for cond, labs in labels.items():
        excl = (converged or {}).get(cond, [0])[0]
        row = {"n_converged": len(labs), "n_excluded": excl,
               **{f"n_{x}": labs.count(x) for x in ("AA", "PAA", "neither", "ambiguous")}}
        for k, v in row.items():
            m[f"mechanism.{cond}.{k}"] = v
            total[k] += v
        if labs:
            m[f"mechanism.{cond}.paa_frac"] = labs.count("PAA") / len(labs)
    m.update({f"mechanism.all.{k}": v for k, v in total.items()})
    m.update(extra)
    return m


def test_claims_are_computed_from_metrics() -> None:
    c = STUDY.preset("tiny")
    good = _metrics({"none": ["AA", "PAA"]}, **{"parity_past_cutoff.PAA.min": 0.99,
                                                 "parity_past_cutoff.PAA.mean": 0.99})
    assert {ch.id: ch.holds for ch in STUDY.checks(c, good)} == {
        "near-perfect-within-T": True, "val-test-disjoint": True,
        "same-seed-identical": None}  # no model rechecked
    differs = dict(good, **{"stability.all.n_rechecked": 2, "stability.all.n_identical": 1})
    assert {ch.id: ch.holds for ch in STUDY.checks(c, differs)}["same-seed-identical"] is False
    claims = {cl.id: cl.holds for cl in STUDY.claims(c, good)}
    # 1 AA against 1 PAA model: too few for an interval, so the cutoff claim is untestable;
    # no per-model parity interval recorded, so the chance claim is untestable
    assert claims == {"aa-or-paa": True, "both-mechanisms": True, "aa-generalizes-further": None,
                      "paa-keeps-parity": True, "paa-parity-above-chance": None,
                      "intermediate-tasks-shift": None}
    assert {cl.id: cl.holds for cl in STUDY.claims(c, _metrics({"none": ["AA", "neither"]}))}[
        "aa-or-paa"] is False
    # a label that hangs on a threshold makes the claim untestable, not true
    amb = {cl.id: cl for cl in STUDY.claims(c, _metrics({"none": ["AA", "ambiguous"]}))}
    assert amb["aa-or-paa"].holds is None and "threshold" in amb["aa-or-paa"].measured
    # no converged model: nothing to classify
    none = _metrics({"none": []}, {"none": [2]})
    assert {cl.id: cl.holds for cl in STUDY.claims(c, none)}["aa-or-paa"] is None
    # the cutoff difference needs its interval above 0, with enough models of each kind
    four = _metrics({"none": ["AA"] * 4 + ["PAA"] * 4})
    up = {**four, "cutoff.aa_minus_paa.diff": 3.0, "cutoff.aa_minus_paa.ci_lo": 1.0,
          "cutoff.aa_minus_paa.ci_hi": 5.0}
    straddle = {**up, "cutoff.aa_minus_paa.ci_lo": -1.0}
    assert {cl.id: cl.holds for cl in STUDY.claims(c, up)}["aa-generalizes-further"] is True
    assert {cl.id: cl.holds for cl in STUDY.claims(c, straddle)}["aa-generalizes-further"] is False
    bad = {"accuracy.all.min_within_T": 0.5, "data.val_test.overlap": 3}
    assert [ch.holds for ch in STUDY.checks(c, bad)] == [False, False, None]


def test_both_mechanisms_and_parity_above_chance() -> None:
    c = STUDY.preset("tiny")

    def verdicts(m: dict) -> dict:
        return {cl.id: cl for cl in STUDY.claims(c, m)}

    # both mechanisms: one of each among the converged models; ambiguous ones count for neither
    assert verdicts(_metrics({"none": ["PAA", "PAA"]}))["both-mechanisms"].holds is False
    assert verdicts(_metrics({"none": ["AA", "ambiguous"]}))["both-mechanisms"].holds is False
    assert verdicts(_metrics({"none": ["AA", "PAA", "PAA"]}))["both-mechanisms"].holds is True
    one = verdicts(_metrics({"none": ["PAA"]}, {"none": [1]}))["both-mechanisms"]
    assert one.holds is None and "two converged" in one.measured
    # parity past the cutoff against chance: every PAA model's interval must lie above 0.5
    paa = _metrics({"none": ["PAA", "PAA"]})
    par = {"parity_past_cutoff.PAA.n": 2, "parity_past_cutoff.PAA.mean": 0.626,
           "parity_past_cutoff.PAA.min": 0.622, "parity_past_cutoff.PAA.ci_hi_max": 0.632}
    above = verdicts({**paa, **par, "parity_past_cutoff.PAA.ci_lo_min": 0.617})
    assert above["paa-parity-above-chance"].holds is True
    assert "0.6170" in above["paa-parity-above-chance"].measured
    # the same models fail the paper's stricter rule (>= 0.98 past the cutoff)
    assert above["paa-keeps-parity"].holds is False
    at_chance = verdicts({**paa, **par, "parity_past_cutoff.PAA.ci_lo_min": 0.49})
    assert at_chance["paa-parity-above-chance"].holds is False
    assert verdicts(_metrics({"none": ["AA"]}))["paa-parity-above-chance"].holds is None


def test_sweep_table_has_one_column_per_model() -> None:
    from lmlab.studies.state_tracking.study import sweep_table

    rows = [{"condition": "none", "index": 0, "converged": 1, "label": "PAA", "cutoff_state": 9,
             "parity_past_cutoff": 0.62},
            {"condition": "ntp", "index": 1, "converged": 0, "label": "neither",
             "cutoff_state": 33, "parity_past_cutoff": None}]
    assert sweep_table(rows) == {
        "sweep.none.converged.seed0": 1, "sweep.none.label.seed0": "PAA",
        "sweep.none.cutoff.seed0": 9, "sweep.none.parity_past_cutoff.seed0": 0.62,
        "sweep.ntp.converged.seed1": 0, "sweep.ntp.label.seed1": "neither",
        "sweep.ntp.cutoff.seed1": 33}  # no cutoff within the evaluated lengths: no parity cell


def test_shift_needs_converged_models_and_an_interval_excluding_zero() -> None:
    c = apply_overrides(STUDY.preset("tiny"), ["conditions=none,parity"])

    def shift(m: dict) -> object:
        return next(cl for cl in STUDY.claims(c, m) if cl.id == "intermediate-tasks-shift")

    # the old rule (any difference of PAA fractions) passed on 2 vs 2 models; now untestable
    few = _metrics({"none": ["PAA", "PAA"], "parity": ["AA", "AA"]})
    assert shift(few).holds is None and "too few" in shift(few).measured
    many = _metrics({"none": ["PAA"] * 4, "parity": ["AA"] * 4},
                    **{"shift.parity_vs_none.diff": -1.0, "shift.parity_vs_none.ci_lo": -1.0,
                       "shift.parity_vs_none.ci_hi": -1.0})
    assert shift(many).holds is True
    zero = {**many, "shift.parity_vs_none.ci_hi": 0.25}
    assert shift(zero).holds is False
    # unconverged models are excluded and counted
    excl = _metrics({"none": ["PAA"], "parity": []}, {"parity": [2]})
    assert shift(excl).holds is None and "2 excluded" in shift(excl).measured


@pytest.mark.repro
def test_reduced_reproduction(tmp_path) -> None:
    # S3, T = 4, a 2-layer d_model 32 GPT, 400 steps (~45 s on a loaded 2-core machine).
    # The effect asserted: the model learns the composition within the training length and
    # fails past it.
    out = tmp_path / "run"
    execute("state-tracking", "tiny", overrides=[*SMALL, "executor=serial"], out=out)
    result = json.loads((out / "result.json").read_text())
    m = result["metrics"]
    assert m["model.none.acc_within_T.seed0"] >= 0.6
    assert m["model.none.acc_beyond_T.seed0"] <= 0.3
    assert m["model.none.cutoff_state.seed0"] <= 5
    assert m["model.none.label.seed0"] in ("AA", "PAA", "neither", "ambiguous")
    assert 0 < m["model.none.cpu_s.seed0"] and m["cost.all.cpu_s_max"] == m["model.none.cpu_s.seed0"]
    assert m["data.val_test.overlap"] == 0
    # the sweep table, and each model's parity past the cutoff with its interval over stories
    for field in ("converged", "label", "cutoff"):
        assert f"sweep.none.{field}.seed0" in m
    assert m["sweep.none.cutoff.seed0"] == m["model.none.cutoff_state.seed0"]
    lo, hi = m["model.none.parity_past_cutoff_ci_lo.seed0"], m["model.none.parity_past_cutoff_ci_hi.seed0"]
    assert lo <= m["model.none.parity_past_cutoff.seed0"] <= hi
    assert "steering.ntp.topic_mapping" not in m  # no ntp condition in this run
    slack = m["model.none.slack_converged.seed0"]
    assert slack == pytest.approx(m["model.none.acc_min_within_T.seed0"] - 0.99)
    assert m["model.none.slack_probe.seed0"] >= 0 and "model.none.slack_gap.seed0" in m
    assert {c["id"] for c in result["claims"]} >= {"aa-or-paa", "both-mechanisms",
                                                   "paa-parity-above-chance"}
    assert [c["id"] for c in result["checks"]] == ["near-perfect-within-T", "val-test-disjoint",
                                                   "same-seed-identical"]
    assert (out / "figures" / "heatmaps_none_seed0.png").exists()
    assert (out / "figures" / "accuracy_by_position.png").exists()
    assert (out / "analysis" / "none.seed0.json").exists()
    assert (out / "train" / "none.seed0" / "state" / "metrics.jsonl").exists()


def test_steering_conditions_run_end_to_end(tmp_path) -> None:
    # plumbing only: a few steps of each intermediate task, then the state task
    out = tmp_path / "steer"
    result = execute("state-tracking", "tiny", overrides=[
        "T=4", "model.n_layer=2", "model.d_model=16", "model.n_head=2", "train.steps=10",
        "intermediate_steps=10", "n_stories=600", "analysis.probe_stories=60",
        "analysis.patch_pairs=10", "n_seeds=1", "train.eval_every=5",
        "conditions=none,parity,ntp,windows", "executor=serial", "recheck=2",
    ], out=out)
    m = result["metrics"]
    # two models trained a second time from their seeds: identical to the bit, and kept apart
    # from the counts (4 models, not 6)
    assert m["mechanism.all.n_models"] == 4
    assert m["stability.all.n_rechecked"] == 2 and m["stability.all.n_identical"] == 2
    assert m["stability.none.same_label.seed0"] == 1 and m["stability.none.max_abs_diff.seed0"] == 0
    assert (out / "analysis" / "none.seed0.repeat1.json").exists()
    same = next(c for c in result["checks"] if c["id"] == "same-seed-identical")
    assert same["holds"] is True
    for cond in ("none", "parity", "ntp", "windows"):
        assert m[f"mechanism.{cond}.n_models"] == 1
        assert m[f"mechanism.{cond}.n_converged"] + m[f"mechanism.{cond}.n_excluded"] == 1
        # the sensitivity (the paper's probes, no window products) counts the same models
        assert sum(m[f"mechanism.{cond}.paper_probes.n_{lab}"] for lab in
                   ("AA", "PAA", "neither", "ambiguous")) == m[f"mechanism.{cond}.n_converged"]
        assert m[f"model.{cond}.label_paper_probes.seed0"] in ("AA", "PAA", "neither", "ambiguous")
    for cond in ("parity", "windows"):
        assert (out / "train" / f"{cond}.seed0" / "intermediate" / "metrics.jsonl").exists()
    shift = next(c for c in result["claims"] if c["id"] == "intermediate-tasks-shift")
    assert shift["holds"] is None  # one model per condition: too few for an interval
    # S3's ntp task used the paper's released topic mapping (packaged), and says so
    assert m["steering.ntp.topic_mapping"].startswith("paper (belindal/state-tracking@fc63e2d")
    assert "model.ntp.topic_mapping.seed0" not in m
    assert {m[f"sweep.{cond}.label.seed0"] for cond in ("none", "parity", "ntp", "windows")} <= {
        "AA", "PAA", "neither", "ambiguous"}


def test_stability_reports_what_a_rerun_changed() -> None:
    from lmlab.studies.state_tracking.study import stability

    one = {"condition": "none", "index": 1, "repeat": 0, "label": "PAA", "acc": [1.0, 0.5],
           "probes": {"state": [[0.9, 0.8]]}, "cpu_s": 3.0}
    same = dict(one, repeat=1, cpu_s=4.0)  # a timing differs: not a difference
    m = stability([one], [same])
    assert m["stability.all.n_identical"] == 1 and m["stability.none.n_fields_differ.seed1"] == 0
    moved = dict(same, label="ambiguous", probes={"state": [[0.9, 0.75]]})
    m = stability([one], [moved])
    assert m["stability.all.n_identical"] == 0 and m["stability.none.same_label.seed1"] == 0
    assert m["stability.none.n_fields_differ.seed1"] == 2
    assert m["stability.none.max_abs_diff.seed1"] == pytest.approx(0.05)


def test_rechecks_spread_over_the_jobs() -> None:
    c = apply_overrides(STUDY.preset("tiny"), ["conditions=none,parity,ntp", "n_seeds=6",
                                               "recheck=2"])
    again = c.rechecks()
    assert [(j.condition, j.index, j.repeat) for j in again] == [("none", 0, 1), ("parity", 3, 1)]
    assert again[0].seed == c.jobs()[0].seed and again[0].tag == "none.seed0.repeat1"
    assert apply_overrides(c, ["recheck=0"]).rechecks() == []


def test_gpu_preset_validates_and_runs_two_steps_on_cpu(tmp_path) -> None:
    """The H100 preset as the issue asks (T >= 16, 6 layers, batch 256, fresh stories, >= 4
    seeds per condition, no downloads, its runtime stated), run for 2 steps per phase at a
    reduced width, batch and seed count on the CPU."""
    from lmlab.studies.state_tracking.config import GPU_ESTIMATE

    gpu = STUDY.preset("gpu")
    STUDY.validate(gpu)
    assert gpu.T >= 16 and gpu.model.n_layer == 6 and gpu.train.batch_size == 256
    assert gpu.fresh_data and gpu.n_seeds >= 4 and set(gpu.conditions) == {"none", "parity", "ntp"}
    # nothing to download: the lmlab GPT from scratch and the packaged topic mapping
    assert gpu.model.name == "gpt" and gpu.topic_mapping == "paper" and gpu.group == "S3"
    assert "H100" in GPU_ESTIMATE and "ESTIMATE" in GPU_ESTIMATE and STUDY.expected_s["gpu"] > 0
    out = tmp_path / "gpu"
    result = execute("state-tracking", "gpu", overrides=[
        "device=cpu", "model.d_model=16", "model.n_head=2", "train.batch_size=8",
        "train.steps=2", "intermediate_steps=2", "train.eval_every=2", "n_seeds=1",
        "n_stories=400", "val_stories=20", "analysis.probe_stories=40", "analysis.patch_pairs=8",
    ], out=out)
    m = result["metrics"]
    assert result["config"]["T"] == 16 and result["config"]["model"]["n_layer"] == 6
    for cond in ("none", "parity", "ntp"):
        assert m[f"model.{cond}.steps_done.seed0"] == 2
    assert m["steering.ntp.topic_mapping"].startswith("paper")


def test_bench_measures_a_presets_step_pace() -> None:
    from lmlab.bench import benchmarks

    assert "state-tracking" in benchmarks()
    r = benchmarks()["state-tracking"](preset="tiny", steps=2, device="cpu", n_stories=400)
    assert r["clock"] == "cpu" and r["s_per_step"] > 0 and r["gflop_per_step"] > 0
    tiny = STUDY.preset("tiny")
    assert r["budget_steps"] == tiny.n_seeds * tiny.train.steps


def test_kill_and_resume_gives_the_uninterrupted_metrics(tmp_path) -> None:
    # three tiny models, one after another; killed once the first one's result is kept
    args = ["--preset", "tiny", "--set", "T=4", "--set", "model.n_layer=2", "--set",
            "model.d_model=16", "--set", "model.n_head=2", "--set", "train.steps=60", "--set",
            "train.eval_every=30", "--set", "n_stories=600", "--set", "analysis.probe_stories=60",
            "--set", "analysis.patch_pairs=10", "--set", "n_seeds=3", "--set", "executor=serial"]
    full = assert_kill_resume_matches(tmp_path, "state-tracking", args, marker="jobs/**/*.pkl")
    assert full["metrics"]["mechanism.all.n_models"] == 3


def test_training_progress_reads_the_jobs_logs(tmp_path, monkeypatch, capsys) -> None:
    """The steps bar counts each model's logged steps (intermediate + state phase) and a
    finished model's whole budget; piped, one line per finished model."""
    from lmlab.runs import Run, last_logged_step
    from lmlab.studies.state_tracking.study import _training_progress

    monkeypatch.setenv("LMLAB_PROGRESS", "lines")
    c = apply_overrides(STUDY.preset("tiny"), ["conditions=none,parity", "n_seeds=1",
                                               "train.steps=100", "intermediate_steps=50"])
    jobs = c.jobs()
    assert [j.budget for j in jobs] == [100, 150]
    Run(tmp_path / "parity.seed0" / "intermediate").log(step=40, train_loss=1.0)
    Run(tmp_path / "parity.seed0" / "state").log(step=20, train_loss=1.0)
    Run(tmp_path / "parity.seed0" / "state").log(step=None, note="not a step")
    assert last_logged_step(tmp_path / "parity.seed0" / "state" / "metrics.jsonl") == 20
    assert last_logged_step(tmp_path / "none.seed0" / "state" / "metrics.jsonl") == 0  # none yet
    with _training_progress(jobs, tmp_path) as on_result:
        on_result(0, {"label": "PAA"})
    err = capsys.readouterr().err.strip().splitlines()
    # model 0 finished (its whole budget, 100) + model 1's 40 + 20 logged steps
    assert len(err) == 1 and "[160/250 steps]" in err[0] and "none seed 0: PAA" in err[0]


def test_parity_first_reads_the_validation_trace() -> None:
    """The first evaluation with the parity right at every position, and the state then."""
    from lmlab.studies.state_tracking.study import _parity_first

    log = [{"step": 10, "loss": 1.0},  # a training-loss record: no validation fields
           {"step": 250, "val_acc_min": 0.18, "val_parity_min": 0.52},
           {"step": 500, "val_acc_min": 0.31, "val_parity_min": 0.985},
           {"step": 750, "val_acc_min": 0.40, "val_parity_min": 0.99}]
    assert _parity_first([r for r in log if "val_acc_min" in r]) == (500, 0.31)
    assert _parity_first(log[:2]) == (None, None)


def test_a_grown_sweep_keeps_its_finished_models() -> None:
    """A model's cache key ignores the growable fields (more models, conditions or rechecks),
    and nothing else: `--resume --set n_seeds=12` retrains none of the first models."""
    from lmlab.executor import JobCache

    c = STUDY.preset("tiny")
    grown = apply_overrides(c, ["n_seeds=5", "conditions=ntp,none", "recheck=1"])
    assert set(STUDY.growable) == {"n_seeds", "conditions", "recheck"}
    first = {(j.condition, j.index): JobCache.key(j) for j in c.jobs()}
    later = {(j.condition, j.index): JobCache.key(j) for j in grown.jobs()}
    assert all(later[k] == v for k, v in first.items()) and len(set(later.values())) == 10
    assert JobCache.key(grown.rechecks()[0]) not in later.values()
    other = apply_overrides(c, ["train.extra_steps=100"]).jobs()[0]
    assert JobCache.key(other) != first[("none", 0)]
