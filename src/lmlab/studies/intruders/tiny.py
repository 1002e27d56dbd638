"""The tiny experiment's plan: pre-training jobs, then every fine-tuning job, through the executor;
then metrics, figures and the saved per-model analyses."""

from __future__ import annotations

from typing import Any

from lmlab.device import device_name
from lmlab.seeding import derive
from lmlab.studies.intruders.config import IntruderConfig
from lmlab.studies.intruders.experiments import (
    FinetuneJob,
    Method,
    PretrainJob,
    Setup,
    lora_lr,
    parse_method,
    run_finetune,
    run_pretrain,
)

__all__ = ["finetune_jobs", "run_tiny", "seed_of", "setup_of"]


def setup_of(c: IntruderConfig) -> Setup:
    """The jobs' shared settings: the configuration's own sub-configs, plus threads and device."""
    return Setup(model=c.model, pretrain=c.pretrain, finetune=c.finetune, detect=c.detect,
                 threads=1 if c.executor != "serial" else 0, device=device_name(c.device))


def seed_of(c: IntruderConfig, s: int) -> int:
    """The seed of the run's `s`-th seed (derived, so `--seed 1` never reruns one of `--seed 0`)."""
    return derive(c.seed, "intruders", s)


def _spec(c: IntruderConfig, spec: str) -> Method:
    return parse_method(spec, c.finetune.fixed_alpha, c.finetune.rslora_alpha)


def _lr(c: IntruderConfig, m: Method) -> float:
    f = c.finetune
    return f.full_lr if m.kind == "full" else lora_lr(f.lora_lr, f.lr_rule, m.rank, m.scaling)


def methods(c: IntruderConfig) -> list[Method]:
    """Full FT and LoRA at every (scheme, rank) of the configuration."""
    return [Method("full"), *(_spec(c, f"{s}:{r}") for s in c.schemes for r in c.ranks)]


def finetune_jobs(c: IntruderConfig, base_paths: dict[int, str], run_dir: str
                  ) -> list[FinetuneJob]:
    """Single-task jobs (methods x seeds; the mitigation sweep rides on one method), then the
    continual-learning jobs."""
    setup = setup_of(c)
    mitigate = _spec(c, c.mitigation.method)
    lowest = _spec(c, f"alpha2r:{min(c.ranks)}")
    jobs = []
    for s in range(c.seeds):
        seed = seed_of(c, s)
        for m in methods(c):
            save = None
            if s == 0 and m.name in ("full", lowest.name):
                save = f"{run_dir}/checkpoints/tuned-{m.name}-seed{s}.safetensors"
            jobs.append(FinetuneJob(setup, seed, m, _lr(c, m), (c.task,), base_paths[seed],
                                    lambdas=c.mitigation.lambdas if m == mitigate else (),
                                    save_path=save, seed_index=s))
    for s in range(min(c.continual.seeds, c.seeds)):
        seed = seed_of(c, s)
        for spec in c.continual.methods:
            m = _spec(c, spec)
            jobs.append(FinetuneJob(setup, seed, m, _lr(c, m), tuple(c.continual.tasks),
                                    base_paths[seed], kind="continual", seed_index=s))
    return jobs


def _cost(job: FinetuneJob) -> float:
    return len(job.tasks) * (1 + job.method.rank / 64) + 0.5 * len(job.lambdas)


def run_tiny(c: IntruderConfig, run: Any) -> dict[str, Any]:
    """Pre-train per seed (kept in the run folder, and in lmlab's cache unless
    `cache_base=false`), fine-tune everything, summarize."""
    from lmlab.executor import get_executor, map_jobs
    from lmlab.nn.basecache import sources_summary
    from lmlab.progress import step_progress
    from lmlab.runs import atomic_write_json
    from lmlab.studies.intruders import plots
    from lmlab.studies.intruders.decidable import base_gaps, base_metrics, restrict
    from lmlab.studies.intruders.summary import (
        continual_metrics,
        mitigation_metrics,
        single_metrics,
    )

    ex = get_executor(c.executor, max_workers=c.workers) if c.executor == "process" else \
        get_executor(c.executor)
    setup = setup_of(c)
    run.checkpoint_dir.mkdir(parents=True, exist_ok=True)
    seeds = [seed_of(c, s) for s in range(c.seeds)]
    paths = {s: str(run.checkpoint_path(f"pretrained-seed{i}")) for i, s in enumerate(seeds)}
    pre_jobs = [PretrainJob(setup, s, paths[s], cache=c.cache_base) for s in seeds]
    # The first seed pre-trains here, its steps shown with an ETA from the first seconds; the
    # others then in parallel (3 seeds on 2 workers take two rounds either way).
    with step_progress(run, "intruders: pre-training seed 0", c.pretrain.steps) as watched:
        pre = [run_pretrain(pre_jobs[0], run=watched)]
    pre += map_jobs(run_pretrain, pre_jobs[1:], ex, run=run, progress="intruders: pre-training",
                    describe=lambda i, r: f"seed {i + 1}")
    for p in pre:
        run.log(job="pretrain", **p)
    jobs = sorted(finetune_jobs(c, paths, str(run.path)), key=_cost, reverse=True)
    # each finished job is kept in the run folder (jobs/...), so `--resume` skips it
    results = map_jobs(run_finetune, jobs, ex, run=run, progress="intruders: fine-tuning",
                       describe=lambda i, r: f"{r['kind']} {r['method']} seed {jobs[i].seed_index}")
    for r in results:
        run.log(job="finetune", **{k: v for k, v in r.items() if k not in ("stages", "mitigation")},
                stages=[{k: v for k, v in st.items() if k != "per_matrix"} for st in r["stages"]],
                mitigation=r["mitigation"])
    single = [r for r in results if r["kind"] == "single"]
    continual = [r for r in results if r["kind"] == "continual"]
    # where eps can decide: full FT's null count per matrix and seed; each run's count there
    sets = restrict(single)
    names = list(single[0]["stages"][0]["per_matrix"]) if single else []
    gaps = base_gaps({i: paths[s] for i, s in enumerate(seeds)}, names, c.detect.k)
    m: dict[str, Any] = {
        "pretrain.heldout_loss": sum(p["heldout_loss"] for p in pre) / len(pre),
        "pretrain.steps": c.pretrain.steps,
        # where the bases came from ("trained", "cache", "cache 2 of 3"; the report shows it)
        "pretrain.source": sources_summary([p["source"] for p in pre]),
        "pretrain.cpu_s": sum(p["cpu_s"] for p in pre),
        "finetune.task": c.task,
        "finetune.target_acc": c.finetune.target_acc,
        "finetune.runs": len(results),
    }
    m.update(single_metrics(single, c.finetune.target_acc, c.rules.acc_band, c.rules.low_rank_max))
    m.update(base_metrics(gaps, sets, single, c.detect.null_draws))
    m.update(mitigation_metrics(single))
    m.update(continual_metrics(continual, c.finetune.n_test))
    # CPU of the jobs run in other processes (the first pre-training and a serial executor's
    # jobs run here, in the study's own process time)
    away = [] if c.executor == "serial" else [*pre[1:], *results]
    m["timing.jobs_cpu_s"] = sum(x["cpu_s"] for x in away)
    m["timing.jobs_wall_s"] = sum(p["wall_s"] for p in pre) + sum(r["wall_s"] for r in results)
    _figures(c, run, single, continual, jobs)
    run.save_figure(plots.spectral_gaps(gaps, sets, single, c.detect.eps), "spectral_gaps")
    atomic_write_json(run.path / "spectra.json", {
        "k": c.detect.k, "eps": c.detect.eps, "null_draws": c.detect.null_draws,
        "seeds": {str(i): {"decidable": sets.get(i), "matrices": {
            n: {**g, "full_null_counts": next((r["stages"][0]["null_counts"].get(n) for r in single
                                               if r["type"] == "full" and r["seed_index"] == i),
                                              None)}
            for n, g in gaps[i].items()}} for i in gaps}})
    return m


def _figures(c: IntruderConfig, run: Any, single: list[dict[str, Any]],
             continual: list[dict[str, Any]], jobs: list[FinetuneJob]) -> None:
    from lmlab.runs import load_tensors
    from lmlab.studies.intruders import plots
    from lmlab.studies.intruders.detect import analyze
    from lmlab.studies.intruders.figures import cosine_matrices

    run.save_figure(plots.intruders_vs_rank(single), "intruders_vs_rank")
    run.save_figure(plots.forgetting_vs_intruders(single), "forgetting_vs_intruders")
    if any(r.get("mitigation") for r in single):
        run.save_figure(plots.lambda_sweep(single), "lambda_sweep")
    if continual:
        run.save_figure(plots.continual_curves(continual), "continual")
    for job in jobs:
        if job.save_path is None:
            continue
        tuned, _ = load_tensors(job.save_path)
        base, _ = load_tensors(job.base_path)
        rep = analyze({n: base[n] for n in tuned}, tuned, k=c.detect.k, eps=c.detect.eps,
                      names=list(tuned), device="cpu")
        label = "full" if job.method.kind == "full" else "lora"
        run.save_figure(cosine_matrices(rep), f"cosine_{label}")
