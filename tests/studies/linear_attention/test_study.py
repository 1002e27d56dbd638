"""The study contract: presets, typed overrides, computed claims, executor equivalence, bench."""

from __future__ import annotations

import dataclasses
import math

import pytest

from lmlab.errors import LmlabError
from lmlab.executor import get_executor
from lmlab.studies.linear_attention import STUDY
from lmlab.studies.linear_attention.experiments import ExactJob, exact_job
from lmlab.study import Check, StudyConfig, apply_overrides, get_study


def test_registered_with_presets():
    study = get_study("linear-attention")
    assert study is STUDY and set(study.presets) == {"tiny", "paper"}
    for cfg in study.presets.values():
        assert isinstance(cfg, StudyConfig) and cfg.executor == "serial"
    paper = study.preset("paper")
    assert paper.teacher.dims == (2, 4, 8, 16) and paper.teacher.seq_len == 100
    assert paper.teacher.n_train == 2048
    assert paper.memory.n == 2**14 and paper.dfa.width == 2048 and paper.dfa.fixed == 4


def test_overrides_are_typed_and_nested():
    cfg = apply_overrides(STUDY.preset("tiny"), ["teacher.dims=2,3", "memory.fractions=0,0.5,1",
                                                 "dfa.vary=word_len", "teacher.lr=3e-3",
                                                 "executor=process"])
    assert cfg.teacher.dims == (2, 3) and cfg.memory.fractions == (0.0, 0.5, 1.0)
    assert cfg.dfa.vary == "word_len" and cfg.teacher.lr == 3e-3
    assert STUDY.preset("tiny").teacher.dims == (2, 4)  # the preset itself is untouched
    with pytest.raises(LmlabError, match="expected one of"):
        apply_overrides(cfg, ["dfa.vary=colors"])
    with pytest.raises(LmlabError, match=r"did you mean 'teacher\.heads'"):
        apply_overrides(cfg, ["teacher.head=3"])


def test_jobs_derive_from_the_config_and_seeds_never_overlap_between_runs():
    from lmlab.studies.linear_attention.experiments import plan

    cfg = STUDY.preset("tiny")
    p = plan(cfg, "cpu")
    t = cfg.teacher
    assert len(p.paper_size) == t.seeds and len(p.exact) == len(t.dims) * t.seeds
    assert len(p.sgd) == (3 + 2 + 1 + 4 + 2 + 1) * t.seeds  # d=2: 1,2,4 heads; d=4: 1,2,4,16
    assert len(p.memory) == cfg.memory.seeds * len(cfg.memory.fractions) and len(p.dfa) == 1
    assert all(j.steps == t.steps and j.lr == t.lr and j.n_val == t.n_val for j in p.sgd)
    assert {j.seed for j in p.sgd} == {j.seed for j in p.exact}  # models paired with teachers
    changed = plan(apply_overrides(cfg, ["teacher.steps=7", "dfa.width=32"]), "cpu")
    assert {j.steps for j in changed.sgd} == {7} and changed.dfa[0].d_model == 32

    def seeds(c):
        q = plan(c, "cpu")
        return {j.seed for j in q.all()}

    s0 = seeds(cfg)
    s1 = seeds(dataclasses.replace(cfg, seed=1))
    assert not s0 & s1  # --seed 1 never reruns a sub-run of --seed 0


def _metrics() -> dict:
    """A complete metrics dict of a run where every claim holds."""
    m = {
        "teacher.alg1.paper.val_nmse": 1e-29, "teacher.alg1.paper.pdist_rel": 1e-14,
        "teacher.alg1.paper.heads_gap_rel": 1e-15, "teacher.alg1.paper.n_heads": 16,
        "design.d2.rank": 6, "design.d3.rank": 18, "design.d4.rank": 40,
        "memory.gaussian.lambda_min_lowest": 0.03, "memory.orthonormal.lambda_min_highest": 1e-16,
        "memory.identifiable.erm_pdist_max": 0.0, "memory.nonidentifiable.erm_pdist_min": 0.3,
        "memory.identifiable.n": 6, "memory.nonidentifiable.n": 1,
        "dfa.generator.format_ok": 1, "dfa.generator.history_consistent": 1,
        "dfa.chosen.test.history_acc": 0.995, "dfa.chosen.test.state_acc": 0.99,
        "dfa.chosen.val.history_acc": 0.996, "dfa.states2.tokens_to_99": 1000,
    }
    for learner in ("gd", "sgd"):
        m.update({f"memory.spearman.{learner}.rho": -0.9, f"memory.spearman.{learner}.ci_lo": -1.0,
                  f"memory.spearman.{learner}.ci_hi": -0.7})
    for d in (2, 4):
        m[f"teacher.alg1.d{d}.val_nmse"] = 1e-30
        m[f"teacher.mhla_{d * d}h.d{d}.val_nmse"] = 1e-7
        m.update({f"teacher.d2_margin.d{d}.log10_ratio": -2.0, f"teacher.d2_margin.d{d}.ci_lo": -2.5,
                  f"teacher.d2_margin.d{d}.ci_hi": -1.5, f"teacher.d2_margin.d{d}.n": 3,
                  f"teacher.d2_margin.d{d}.wins": 3,
                  f"teacher.d2_margin.d{d}.best_other": "mhla_2h"})
    return m


def _verdicts(metrics: dict) -> dict:
    cfg = STUDY.preset("tiny")
    return {c.id: c.holds for c in [*STUDY.claims(cfg, metrics), *STUDY.checks(cfg, metrics)]}


def test_invariants_are_checks_not_claims():
    cfg, m = STUDY.preset("tiny"), _metrics()
    claim_ids = {c.id for c in STUDY.claims(cfg, m)}
    checks = STUDY.checks(cfg, m)
    assert {c.id for c in checks} == {"design_rank", "positive_lambda_unique", "dfa_generator"}
    assert all(isinstance(c, Check) for c in checks) and not claim_ids & {c.id for c in checks}


def test_claims_are_computed_from_the_metrics():
    good = _verdicts(_metrics())
    assert good.pop("dfa_subexponential") is None  # one grid point cannot show a trend
    assert all(good.values()), good
    flips = {
        "alg1_exact": {"teacher.alg1.paper.val_nmse": 1e-6},
        "alg1_heads": {"teacher.alg1.paper.n_heads": 17},
        "design_rank": {"design.d3.rank": 17},
        "d2_heads_match_alg1": {"teacher.mhla_4h.d2.val_nmse": 1e-3},
        "certificate_separates": {"memory.orthonormal.lambda_min_highest": 1e-3},
        "positive_lambda_unique": {"memory.identifiable.erm_pdist_max": 0.1},
        "pdist_falls_sgd": {"memory.spearman.sgd.ci_hi": 0.1},
        "dfa_learned": {"dfa.chosen.test.history_acc": 0.9},
    }
    for claim, change in flips.items():
        assert _verdicts({**_metrics(), **change})[claim] is False, claim
    nan = {"memory.spearman.sgd.rho": math.nan, "memory.spearman.sgd.ci_lo": math.nan,
           "memory.spearman.sgd.ci_hi": math.nan}
    assert _verdicts({**_metrics(), **nan})["pdist_falls_sgd"] is None
    # the verdict reads the test accuracy: a validation accuracy of 1.0 does not rescue it
    assert _verdicts({**_metrics(), "dfa.chosen.test.history_acc": 0.9,
                      "dfa.chosen.val.history_acc": 1.0})["dfa_learned"] is False
    assert _verdicts({**_metrics(), "memory.nonidentifiable.n": 0})["positive_lambda_unique"] is None


def test_a_point_estimate_alone_never_decides():
    """A negative rho or log ratio whose interval reaches 0 does not make the claim hold."""
    m = {**_metrics(), "memory.spearman.gd.rho": -0.5, "memory.spearman.gd.ci_hi": 0.05}
    assert _verdicts(m)["pdist_falls_gd"] is False
    m = {**_metrics(), "teacher.d2_margin.d4.log10_ratio": -0.4, "teacher.d2_margin.d4.ci_hi": 0.2}
    claim = {c.id: c for c in STUDY.claims(STUDY.preset("tiny"), m)}["d2_heads_best"]
    assert claim.holds is False and "not established" in claim.measured
    m["teacher.d2_margin.d4.ci_lo"] = 0.1
    claim = {c.id: c for c in STUDY.claims(STUDY.preset("tiny"), m)}["d2_heads_best"]
    assert claim.holds is False and "refuted" in claim.measured


def test_the_d2_margin_is_paired_per_teacher():
    from lmlab.studies.linear_attention.analysis import teacher_metrics

    cfg = apply_overrides(STUDY.preset("tiny"), ["teacher.dims=2", "teacher.seeds=3"])
    exact = [{"d": 2, "val_nmse": 1e-30}] * 3
    paper = [{"val_nmse": 0.0, "pdist_rel": 0.0, "heads_gap_rel": 0.0, "n_heads": 4,
              "wall_s": 1.0}]
    # teacher 2 is hard for every model: medians alone would hide that d^2 heads win on each
    errs = {("mhla", 4): [1e-5, 1e-5, 1e-1], ("mhla", 2): [1e-4, 1e-3, 1.0],
            ("stacked", 2): [1e-2, 1e-2, 1e-2]}
    sgd = [{"d": 2, "kind": k, "size": n, "val_nmse": v, "wall_s": 0.0, "pdist_rel": 0.1}
           for (k, n), vals in errs.items() for v in vals]
    m, table = teacher_metrics(cfg, paper, exact, sgd)
    assert [round(m[f"teacher.d2_margin.d2.log10_ratio.seed{s}"], 6) for s in range(3)] == [
        -1.0, -2.0, 1.0]  # paired: against the best other model on the same teacher
    assert m["teacher.d2_margin.d2.wins"] == 2 and m["teacher.d2_margin.d2.ci_hi"] > 0
    assert m["teacher.mhla_4h.d2.val_nmse.seed2"] == 1e-1 and table[2]["stacked_2L"] == [1e-2] * 3


def test_spearman_interval_covers_the_estimate():
    from lmlab.stats import spearman_ci

    x = list(range(12))
    s = spearman_ci(x, [-v + (v % 3) for v in x])
    assert s.lo <= s.value <= s.hi < 0 and s.excludes(0)
    noise = spearman_ci(x, [1, 5, 2, 8, 3, 7, 0, 9, 4, 6, 11, 10])
    assert noise.lo < 0 < noise.hi and not noise.excludes(0)  # a weak trend: not established
    assert math.isnan(spearman_ci([1, 2, 3], [4, 4, 4]).lo)  # undefined: no interval


def test_subexponential_claim_with_a_grid():
    cfg = apply_overrides(STUDY.preset("tiny"), ["dfa.values=2,3,4"])
    m = {**_metrics(), "dfa.states2.tokens_to_99": 100, "dfa.states3.tokens_to_99": 1000,
         "dfa.states4.tokens_to_99": 5000}
    claims = {c.id: c for c in STUDY.claims(cfg, m)}
    assert claims["dfa_subexponential"].holds is True  # log increments 2.3, 1.6: slowing down
    m["dfa.states4.tokens_to_99"] = 10**5
    assert {c.id: c for c in STUDY.claims(cfg, m)}["dfa_subexponential"].holds is False


def test_jobs_give_the_same_result_on_every_executor():
    jobs = [ExactJob(seed=s, d=2, T=6, N=40, n_val=16, teacher_heads=1, d_out=0, threads=1,
                     device="cpu") for s in (0, 1)]
    serial = get_executor("serial").map(exact_job, jobs)
    pooled = get_executor("process", max_workers=2).map(exact_job, jobs)
    for a, b in zip(serial, pooled, strict=True):
        assert a["val_nmse"] == b["val_nmse"] and a["pdist_rel"] == b["pdist_rel"]


def test_bench_is_registered_and_measures_a_ratio():
    from lmlab.bench import benchmarks
    from lmlab.studies.linear_attention.bench import bench_linear_attention

    assert "linear-attention" in benchmarks()
    res = bench_linear_attention(d=2, T=10, N=128, target=1e-3, max_steps=400, eval_every=50)
    assert res["alg1_reached"] and res["alg1_nmse"] < 1e-20
    assert res["speedup"] == pytest.approx(res["sgd_s"] / res["alg1_s"], rel=0.05)
    assert res["speedup_is_lower_bound"] == (not res["sgd_reached"])


@pytest.mark.parametrize(
    "override, message",
    [
        ("teacher.dims=0", "teacher.dims must hold values >= 1"),
        ("teacher.dims=[]", "teacher.dims needs at least one value"),
        ("memory.fractions=0.5,1.5", r"memory.fractions must hold fractions in \[0, 1\]"),
        ("executor=gpu", "bad value 'gpu' for executor: expected one of serial, process, ray"),
        ("teacher.softmax_width=30", "teacher.softmax_width must be divisible"),
        ("teacher.lr=0", "teacher.lr must be > 0"),
        ("memory.seeds=0", "memory.seeds must be >= 1"),
        ("dfa.width=65", "dfa.width must be divisible by dfa.heads = 4"),
    ],
)
def test_bad_settings_fail_before_running(override, message, tmp_path):
    from lmlab.runner import execute

    with pytest.raises(LmlabError, match=message):
        execute("linear-attention", "tiny", [override], out=tmp_path / "run")
    assert not (tmp_path / "run").exists()


SMALL = ["teacher.dims=2", "teacher.seeds=2", "teacher.seq_len=6", "teacher.n_train=32",
         "teacher.n_val=16", "teacher.steps=20", "teacher.layers=2", "teacher.exact_n_train=32",
         "teacher.exact_seq_len=6", "teacher.rank_dims=2", "memory.fractions=0,1", "memory.d=2",
         "memory.n=256", "memory.seeds=1", "memory.steps=20", "memory.gd_steps=50",
         "dfa.n_train=32", "dfa.epochs=1", "dfa.width=16", "dfa.n_val=32", "dfa.n_test=32"]


def test_a_small_run_writes_a_complete_result(tmp_path):
    """Every experiment's code path, end to end, at a few seconds' scale (not a reproduction)."""
    from lmlab.runner import execute

    result = execute("linear-attention", "tiny", SMALL, out=tmp_path / "run")
    ids = [c["id"] for c in result["claims"]]
    assert ids == ["alg1_exact", "alg1_heads", "d2_heads_best", "d2_heads_match_alg1",
                   "certificate_separates", "pdist_falls_gd", "pdist_falls_sgd", "dfa_learned",
                   "dfa_subexponential"]
    assert [c["id"] for c in result["checks"]] == ["design_rank", "positive_lambda_unique",
                                                   "dfa_generator"]
    m = result["metrics"]
    assert all("." in k for k in m), [k for k in m if "." not in k]  # one dotted key style
    assert m["teacher.alg1.paper.val_nmse"] < 1e-12 and m["design.d2.rank"] == 6
    assert m["memory.identifiable.n"] == 1 and m["memory.nonidentifiable.n"] == 1
    assert {"teacher.mhla_4h.d2.val_nmse.seed0", "teacher.mhla_4h.d2.val_nmse.seed1",
            "teacher.d2_margin.d2.ci_hi", "memory.spearman.gd.ci_hi",
            "dfa.chosen.test.history_acc", "dfa.chosen.val.history_acc"} <= set(m)
    assert {p.name for p in (tmp_path / "run" / "figures").iterdir()} == {
        "mse_vs_heads_layers.png", "eigenvalue_vs_pdistance.png", "dfa_accuracy.png"}
    logged = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert len(logged) == 2 + 2 + 10 + 2 + 1  # paper-size, exact, 5 models x 2, 2 memories, dfa


def test_kill_and_resume_gives_the_uninterrupted_metrics(tmp_path):
    """SIGKILL after a few jobs are kept, then --resume: identical metrics and verdicts (and so
    the same seed gives the same numbers)."""
    from tests.study_runs import assert_kill_resume_matches

    args = ["--preset", "tiny", *[a for o in SMALL for a in ("--set", o)]]
    full = assert_kill_resume_matches(tmp_path, "linear-attention", args, marker="jobs/**/*.pkl",
                                      count=4)
    assert full["metrics"]["design.d2.rank"] == 6
