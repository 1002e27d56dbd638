"""The tiny experiment's plan: pre-training jobs, then every fine-tuning job, through the executor;
then metrics, figures and the saved per-model analyses."""

from __future__ import annotations

from typing import Any

from lmlab.device import device_name
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

__all__ = ["finetune_jobs", "run_cached", "run_tiny", "setup_of"]


def setup_of(c: IntruderConfig) -> Setup:
    """The jobs' shared settings from the configuration."""
    return Setup(d_model=c.d_model, n_layer=c.n_layer, n_head=c.n_head, seq_len=c.seq_len,
                 pretrain_steps=c.pretrain_steps, pretrain_batch=c.pretrain_batch,
                 pretrain_lr=c.pretrain_lr, heldout=c.heldout, text_len=c.text_len,
                 n_train=c.n_train, n_val=c.n_val, n_test=c.n_test, batch=c.batch,
                 max_steps=c.max_steps, eval_every=c.eval_every, target_acc=c.target_acc,
                 k=c.k, eps=c.eps, threads=1 if c.executor != "serial" else 0,
                 device=device_name(c.device))


def _seed(c: IntruderConfig, s: int) -> int:
    return c.seed * 1000 + s


def _lr(c: IntruderConfig, m: Method) -> float:
    return c.full_lr if m.kind == "full" else lora_lr(c.lora_lr, c.lr_rule, m.rank, m.scaling)


def methods(c: IntruderConfig) -> list[Method]:
    """Full FT and LoRA at every (scheme, rank) of the configuration."""
    out = [Method("full")]
    out += [parse_method(f"{s}:{r}", c.fixed_alpha, c.rslora_alpha)
            for s in c.schemes for r in c.ranks]
    return out


def finetune_jobs(c: IntruderConfig, base_paths: dict[int, str], run_dir: str
                  ) -> list[FinetuneJob]:
    """Single-task jobs (methods x seeds; the mitigation sweep rides on one method), then the
    continual-learning jobs."""
    setup = setup_of(c)
    mitigate = parse_method(c.mitigate_method, c.fixed_alpha, c.rslora_alpha)
    lowest = parse_method(f"alpha2r:{min(c.ranks)}", c.fixed_alpha, c.rslora_alpha)
    jobs = []
    for s in range(c.seeds):
        seed = _seed(c, s)
        for m in methods(c):
            save = None
            if s == 0 and m.name in ("full", lowest.name):
                save = f"{run_dir}/checkpoints/tuned-{m.name}-seed{seed}.safetensors"
            jobs.append(FinetuneJob(setup, seed, m, _lr(c, m), (c.task,), base_paths[seed],
                                    lambdas=c.lambdas if m == mitigate else (), save_path=save))
    for s in range(min(c.continual_seeds, c.seeds)):
        seed = _seed(c, s)
        for spec in c.continual_methods:
            m = parse_method(spec, c.fixed_alpha, c.rslora_alpha)
            jobs.append(FinetuneJob(setup, seed, m, _lr(c, m), tuple(c.continual_tasks),
                                    base_paths[seed], kind="continual"))
    return jobs


def run_cached(item: tuple[FinetuneJob, str]) -> dict[str, Any]:
    """`run_finetune`, its result kept as JSON at `path` so that a resumed run skips it."""
    from pathlib import Path

    from lmlab.runs import atomic_write_json, read_json

    job, path = item
    if Path(path).is_file():
        return read_json(path)
    result = run_finetune(job)
    atomic_write_json(path, result)
    return read_json(path)  # the same JSON values whether computed now or read back


def _result_path(run: Any, job: FinetuneJob) -> str:
    return str(run.checkpoint_dir / f"result-{job.kind}-{job.method.name}-seed{job.seed}.json")


def _cost(job: FinetuneJob) -> float:
    return len(job.tasks) * (1 + job.method.rank / 64) + 0.5 * len(job.lambdas)


def run_tiny(c: IntruderConfig, run: Any) -> dict[str, Any]:
    """Pre-train per seed (cached in the run folder), fine-tune everything, summarize."""
    from lmlab.executor import get_executor, map_jobs
    from lmlab.studies.intruders.summary import (
        continual_metrics,
        mitigation_metrics,
        single_metrics,
    )

    ex = get_executor(c.executor, max_workers=c.workers) if c.executor == "process" else \
        get_executor(c.executor)
    setup = setup_of(c)
    run.checkpoint_dir.mkdir(parents=True, exist_ok=True)
    seeds = [_seed(c, s) for s in range(c.seeds)]
    paths = {s: str(run.checkpoint_path(f"pretrained-seed{s}")) for s in seeds}
    pre = map_jobs(run_pretrain, [PretrainJob(setup, s, paths[s]) for s in seeds], ex, run=run,
                   progress="intruders: pre-training", describe=lambda i, r: f"seed {seeds[i]}")
    for p in pre:
        run.log(job="pretrain", **p)
    jobs = sorted(finetune_jobs(c, paths, str(run.path)), key=_cost, reverse=True)
    results = map_jobs(run_cached, [(j, _result_path(run, j)) for j in jobs], ex,
                       progress="intruders: fine-tuning", describe=lambda i, r: str(r.get("method", "")))
    for r in results:
        run.log(job="finetune", **{k: v for k, v in r.items() if k not in ("stages", "mitigation")},
                stages=[{k: v for k, v in st.items() if k != "per_matrix"} for st in r["stages"]],
                mitigation=r["mitigation"])
    single = [r for r in results if r["kind"] == "single"]
    continual = [r for r in results if r["kind"] == "continual"]
    m: dict[str, Any] = {
        "pretrain.heldout_loss": sum(p["heldout_loss"] for p in pre) / len(pre),
        "pretrain.steps": c.pretrain_steps,
        "task": c.task,
        "task.target_acc": c.target_acc,
        "runs": len(results),
    }
    m.update(single_metrics(single, c.target_acc, c.acc_band))
    m.update(mitigation_metrics(single))
    m.update(continual_metrics(continual))
    m["timing.jobs_cpu_s"] = sum(p["cpu_s"] for p in pre) + sum(r["cpu_s"] for r in results)
    m["timing.jobs_wall_s"] = sum(p["wall_s"] for p in pre) + sum(r["wall_s"] for r in results)
    _figures(c, run, single, continual, jobs)
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
        rep = analyze({n: base[n] for n in tuned}, tuned, k=c.k, eps=c.eps, names=list(tuned),
                      device="cpu")
        label = "full" if job.method.kind == "full" else "lora"
        run.save_figure(cosine_matrices(rep), f"cosine_{label}")
