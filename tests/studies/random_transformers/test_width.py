"""The width sweep (issue #22): its jobs, metrics, table and claims, on synthetic and real results."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pytest

from lmlab.errors import LmlabError
from lmlab.nn import GPT
from lmlab.studies.random_transformers.claims import claims
from lmlab.studies.random_transformers.costs import step_flops
from lmlab.studies.random_transformers.experiments import build_model, run_job
from lmlab.studies.random_transformers.gaps import model_gap
from lmlab.studies.random_transformers.jobs import grid_jobs, job, width_jobs
from lmlab.studies.random_transformers.width import context_guess, width_metrics, width_table
from lmlab.study import apply_overrides, get_study

STUDY = get_study("random-transformers")
WIDTH_IDS = ("width-trend-needle", "width-wide-needle", "width-trend-decimal",
             "width-wide-decimal", "width-random-vs-full")


def _small(*overrides: str) -> Any:
    return apply_overrides(STUDY.preset("small"), list(overrides))


def test_small_and_gpu_presets_hold_the_sweep_and_tiny_does_not() -> None:
    tiny, small, gpu = (STUDY.preset(n) for n in ("tiny", "small", "gpu"))
    assert not tiny.width.enabled and width_jobs(tiny) == []
    # small is tiny plus the sweep: nothing else differs
    assert dataclasses.replace(small, width=tiny.width) == tiny
    assert small.width.widths == (64, 128, 256, 512) and small.width.seeds == 3
    assert set(small.width.tasks) == {"needle", "decimal"}
    w = gpu.width
    assert w.enabled and max(w.widths) == 1024 and w.batch == 1000 and w.steps == 10_000
    assert gpu.tasks == () and not gpu.memorize.enabled and not gpu.lm.enabled
    for preset in (small, gpu):
        STUDY.validate(preset)


def test_sweep_jobs_share_one_token_budget_and_the_grid_seeds() -> None:
    c = _small()
    jobs = width_jobs(c)
    wc = c.width
    assert len(jobs) == len(wc.tasks) * (len(wc.widths) * wc.seeds + wc.baseline_seeds)
    assert {(j.steps, dict(j.task_kw)["batch_size"]) for j in jobs} == {(wc.steps, wc.batch)}
    assert {j.experiment for j in jobs} == {"width"}
    assert {j.width for j in jobs if j.mode == "full"} == {max(wc.widths)}
    # seed index i of a task is the grid's seed of that task and index: the needle models are
    # the ones whose logit gap gap_models.measure_gaps reports
    for j in jobs:
        assert j.seed == job(c, j.task, j.mode, j.width, j.replicate).seed
    keys = [j.key for j in jobs]
    assert len(set(keys)) == len(keys) and all(k.startswith("width/") for k in keys)
    assert not set(keys) & {j.key for j in grid_jobs(c)}
    assert all(j.eval_every == wc.eval_every and j.stop_at == c.grid.stop_at for j in jobs)


def test_bad_sweep_settings_are_refused() -> None:
    for bad in ("width.widths=0,64", "width.steps=0", "width.batch=0", "width.seeds=0",
                "width.baseline_seeds=-1"):
        with pytest.raises(LmlabError, match=r"width\."):
            STUDY.validate(_small(bad))
    with pytest.raises(LmlabError, match=r"width\.widths"):
        STUDY.validate(_small("width.widths="))


def _results(acc: dict[tuple[str, str, int], list[float]]) -> list[dict[str, Any]]:
    out = []
    for (task, mode, w), values in acc.items():
        for i, a in enumerate(values):
            out.append({"experiment": "width", "task": task, "mode": mode, "width": w,
                        "replicate": i, "test_acc": a, "val_acc": a, "steps_done": 400,
                        "cpu_s": 1.0, "val_curve": [(100, a / 2), (400, a)],
                        **({"logit_gap": w / 30} if mode == "random" else {})})
    return out


def _verdicts(c: Any, acc: dict[tuple[str, str, int], list[float]]) -> dict[str, Any]:
    m = width_metrics(c, _results(acc))
    return {cl.id: cl.holds for cl in claims(c, m) if cl.id in WIDTH_IDS}


def _sweep(needle: list[list[float]], decimal: list[list[float]], full: tuple[float, float]
           ) -> dict[tuple[str, str, int], list[float]]:
    widths = (64, 128, 256, 512)
    acc = {("needle", "random", w): a for w, a in zip(widths, needle, strict=True)}
    acc |= {("decimal", "random", w): a for w, a in zip(widths, decimal, strict=True)}
    acc[("needle", "full", 512)] = [full[0]]
    acc[("decimal", "full", 512)] = [full[1]]
    return acc


def test_claims_hold_when_accuracy_rises_to_the_levels_near_full_training() -> None:
    acc = _sweep([[0.30, 0.32, 0.31], [0.40, 0.42, 0.41], [0.70, 0.72, 0.71], [0.97, 0.98, 0.99]],
                 [[0.50, 0.52, 0.51], [0.60, 0.61, 0.62], [0.75, 0.77, 0.76], [0.90, 0.92, 0.91]],
                 (0.99, 0.95))
    assert _verdicts(_small(), acc) == dict.fromkeys(WIDTH_IDS, True)


def test_claims_fail_on_a_plateau_below_the_levels_and_far_from_full_training() -> None:
    flat = [[0.38, 0.40, 0.39]] * 4  # the needle plateau at every width
    low = [[0.50, 0.52, 0.51], [0.55, 0.56, 0.57], [0.60, 0.61, 0.62], [0.70, 0.71, 0.72]]
    v = _verdicts(_small(), _sweep(flat, low, (0.99, 0.99)))
    assert v["width-trend-needle"] is False  # no trend: rho's interval does not exclude 0
    assert v["width-trend-decimal"] is True  # rising, though below its level
    assert v["width-wide-needle"] is False and v["width-wide-decimal"] is False
    assert v["width-random-vs-full"] is False


def test_a_median_at_the_level_with_one_seed_below_does_not_hold() -> None:
    rising = [[0.3, 0.3, 0.3], [0.5, 0.5, 0.5], [0.7, 0.7, 0.7]]
    acc = _sweep([*rising, [0.95, 0.95, 0.60]], [*rising, [0.85, 0.85, 0.85]], (0.96, 0.86))
    v = _verdicts(_small(), acc)
    assert v["width-wide-needle"] is False  # median 0.95, but the interval reaches 0.60
    assert v["width-wide-decimal"] is True
    assert v["width-random-vs-full"] is False  # needle: one seed 36 points below full


def test_presets_without_the_sweep_say_not_run() -> None:
    for c in (STUDY.preset("tiny"), STUDY.preset("paper")):
        by_id = {cl.id: cl for cl in claims(c, {})}
        for i in WIDTH_IDS:
            assert by_id[i].holds is None and "not run in this preset" in by_id[i].measured


def test_metrics_and_table_of_the_sweep() -> None:
    c = _small()
    acc = _sweep([[0.3, 0.35, 0.4]] * 4, [[0.5, 0.6, 0.7]] * 4, (0.9, 0.8))
    m = width_metrics(c, _results(acc))
    assert m["width.needle.random.d256.acc"] == 0.35
    assert m["width.needle.random.d256.ci_lo"] <= 0.35 <= m["width.needle.random.d256.ci_hi"]
    assert m["width.needle.random.d512.gap"] == pytest.approx(512 / 30)
    assert 0 < m["width.needle.random.d512.attention_share"] <= 1
    assert m["width.needle.positions"] == 2 * c.needle.keys + 1
    assert m["width.decimal.random.d64.cpu_s"] == 3.0 and m["width.sequences"] == 400 * 64
    assert m["width.needle.random.trend.spearman"] == pytest.approx(0.0)
    assert math.isclose(m["width.decimal.random_minus_full.d512.diff"], 0.6 - 0.8)
    table = width_table(c, m)
    assert table.count("\n| needle | random |") == 4 and "| decimal | full | 512 |" in table


def test_a_sweep_job_records_its_frozen_models_logit_gap() -> None:
    c = _small("width.widths=8,16", "width.seeds=1", "width.steps=3", "width.tasks=needle",
               "grid.n_test=20", "grid.n_val=20", "width.eval_every=0")
    j = next(j for j in width_jobs(c) if j.mode == "random" and j.width == 16)
    res = run_job(j)
    import torch

    torch.manual_seed(j.seed)
    model = build_model("random", 64, 18, 16)
    assert isinstance(model, GPT)
    assert res["experiment"] == "width" and res["logit_gap"] == pytest.approx(model_gap(model))
    full = next(j for j in width_jobs(c) if j.mode == "full")
    assert "logit_gap" not in run_job(full)


def test_step_flops_are_counted_and_grow_with_width_and_full_training() -> None:
    c = _small("width.widths=16,32,64", "width.batch=8")
    jobs = {(j.task, j.mode, j.width): j for j in width_jobs(c) if j.replicate == 0}
    f16, f64 = step_flops(jobs[("needle", "random", 16)]), step_flops(jobs[("needle", "random", 64)])
    assert 0 < f16 < f64
    assert step_flops(jobs[("needle", "full", 64)]) > f64  # weight gradients of the frozen part
    assert step_flops(jobs[("needle", "random", 64)]) == f64  # a seeded, fixed sample


def test_the_needle_plateau_reference_is_a_random_value_of_the_context() -> None:
    assert context_guess(1, 64) == 1.0
    # k ~ U{1..8}: E[1/k] = H_8 / 8 plus a wrong pair that holds the same value (1 in 31)
    h8 = sum(1 / k for k in range(1, 9)) / 8
    assert context_guess(8, 64) == pytest.approx(h8 + (1 - h8) / 31)
    assert 0.35 < context_guess(8, 64) < 0.37
