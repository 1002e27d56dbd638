"""The `adaptive-compute` study: Damani, Shenfeld, Peng, Bobu & Andreas (ICLR 2025), "Learning
How Hard to Think: Input-Adaptive Allocation of LM Computation".

A run (1) generates arithmetic and word problems of graded difficulty, (2) collects N sampled
answers and one greedy answer per query from a language model, scored by exact match, with each
prompt's last-token hidden state (cached in the run folder, reused on --resume), (3) fits the
MLP probe (train, chosen on val) and the heuristic baselines, and (4) on the held-out test queries
compares adaptive best-of-k allocation (greedy over the batch, and per-query thresholds) against
uniform best-of-k, random, the heuristics and the oracle, and routes between greedy decoding and
best-of-k sampling. `table=PATH` skips (1)-(2) and analyses a table collected elsewhere.
"""

from __future__ import annotations

import hashlib
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from lmlab.errors import LmlabError
from lmlab.seeding import derive
from lmlab.studies.adaptive_compute.analysis import AnalysisSettings, SplitData, analyze
from lmlab.studies.adaptive_compute.claims import checks, claims
from lmlab.studies.adaptive_compute.config import PRESETS, AdaptiveComputeConfig
from lmlab.studies.adaptive_compute.tables import QueryRecord, SampleTable, read_table
from lmlab.study import Check, Claim, Study, validate_literals

__all__ = ["AdaptiveComputeStudy"]

DOMAINS = ("arithmetic", "word")


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _children_cpu_s() -> float:
    """CPU seconds of this process's finished children (the collection's worker processes)."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _say(msg: str) -> None:
    print(f"[adaptive-compute] {msg}", file=sys.stderr, flush=True)


def split_of(ids: list[str], c: AdaptiveComputeConfig) -> dict[str, str]:
    """Seeded train/val/test assignment of query ids."""
    order = np.random.default_rng(derive(c.seed, "splits")).permutation(len(ids))
    n_tr, n_va = round(c.train_frac * len(ids)), round(c.val_frac * len(ids))
    out = {}
    for rank, i in enumerate(order):
        out[ids[i]] = "train" if rank < n_tr else "val" if rank < n_tr + n_va else "test"
    return out


def _collection_key(c: AdaptiveComputeConfig) -> str:
    """A short hash of everything that determines the collected samples: the cache file's name."""
    keys = ("model", "dtype", "domains", "n_queries", "n_samples", "temperature", "max_tokens",
            "hidden_layer", "seed", "train_frac", "val_frac")
    blob = json.dumps({k: getattr(c, k) for k in keys}, sort_keys=True, default=list)
    return hashlib.sha256(blob.encode()).hexdigest()[:10]


def split_data(records: list[QueryRecord], pilot_m: int) -> dict[str, SplitData]:
    """Arrays of each split from the table's records."""
    from lmlab.studies.adaptive_compute.predictors import pilot_agreement
    from lmlab.studies.adaptive_compute.verifiers import extract_number

    table = SampleTable(records)
    out = {}
    for split in ("train", "val", "test"):
        t = table.subset(split)
        if len(t) == 0:
            raise LmlabError(f"the {split} split is empty: more queries or other split fractions needed")
        rewards = t.rewards()
        binary = bool(np.all((rewards == 0) | (rewards == 1)))
        if binary:
            pilot = pilot_agreement([[extract_number(s.text) for s in r.samples[:pilot_m]] for r in t])
        else:
            pilot = 1.0 - rewards[:, :pilot_m].std(axis=1)
        has_greedy = all(r.greedy is not None for r in t)
        levels = [r.meta.get("level") for r in t]
        out[split] = SplitData(
            rewards=rewards, features=t.feature("hidden"),
            prompt_len=t.feature("prompt_tokens") if all("prompt_tokens" in r.features for r in t)
            else np.array([len(r.prompt) for r in t], dtype=float),
            pilot=pilot, greedy=t.greedy_rewards() if has_greedy else None,
            level=np.array(levels, dtype=float) if None not in levels else None,
        )
    return out


class AdaptiveComputeStudy(Study):
    """Learning How Hard to Think (Damani et al., ICLR 2025)."""

    id = "adaptive-compute"
    Config = AdaptiveComputeConfig
    presets = PRESETS
    expected_s = {"tiny": 245}  # wall s measured in `make demo` on a fresh clone, quiet 2-core machine (457 CPU-s)

    def validate(self, config: AdaptiveComputeConfig) -> None:  # type: ignore[override]
        validate_literals(config)
        c = config
        problems = [
            (c.n_samples >= 1, f"n_samples must be >= 1, got {c.n_samples}"),
            (c.workers >= 1, f"workers must be >= 1, got {c.workers}"),
            (c.chunk >= 1 and c.batch_size >= 1, f"chunk and batch_size must be >= 1, got {c.chunk}, {c.batch_size}"),
            (0 <= c.b_min <= c.b_max <= c.n_samples,
             f"need 0 <= b_min <= b_max <= n_samples, got b_min={c.b_min}, b_max={c.b_max}, n_samples={c.n_samples}"),
            (all(c.b_min <= k <= c.b_max for k in c.uniform_k) and c.uniform_k,
             f"uniform_k {c.uniform_k} must lie within [b_min, b_max] = [{c.b_min}, {c.b_max}]"),
            (c.b_min <= c.fixed_budget <= c.b_max, f"fixed_budget {c.fixed_budget} outside [b_min, b_max]"),
            (c.b_min <= c.compare_budget <= c.b_max, f"compare_budget {c.compare_budget} outside [b_min, b_max]"),
            (1 <= c.pilot_m <= c.compare_budget, f"pilot_m must lie in 1..compare_budget, got {c.pilot_m}"),
            (1 <= c.routing_k <= c.n_samples, f"routing_k must lie in 1..n_samples, got {c.routing_k}"),
            (0 < c.train_frac and 0 < c.val_frac and c.train_frac + c.val_frac < 1,
             f"train_frac and val_frac must be > 0 with a sum < 1, got {c.train_frac}, {c.val_frac}"),
            (c.n_queries >= 30, f"n_queries must be >= 30 (three splits with room), got {c.n_queries}"),
            (0 <= c.temperature <= 2, f"temperature must lie in [0, 2], got {c.temperature}"),
            (all(d in DOMAINS for d in c.domains) and c.domains,
             f"domains must be among {', '.join(DOMAINS)}, got {c.domains}"),
            (c.n_boot >= 100, f"n_boot must be >= 100, got {c.n_boot}"),
            (c.predictor != "lora" or c.model.startswith("hf"),
             f"predictor=lora fine-tunes the model itself: it needs an hf: model, got {c.model!r}"),
        ]
        for ok, msg in problems:
            if not ok:
                raise LmlabError(msg)
        if c.table:
            if not Path(c.table).is_file():
                raise LmlabError(f"table={c.table}: no such file")
        else:
            from lmlab.llm import parse_spec

            parse_spec(c.model)

    # -- run ------------------------------------------------------------------------------------
    def run(self, config: AdaptiveComputeConfig, run: Any) -> dict[str, Any]:
        c = config
        metrics: dict[str, Any] = {}
        if c.table:
            records = read_table(c.table).records
            metrics["collect.source"] = f"table {c.table}"
        else:
            records, cm = self._collect(c, run)
            metrics.update(cm)
        if len({len(r.samples) for r in records}) != 1 or len(records[0].samples) < c.b_max:
            raise LmlabError(f"every query needs at least b_max={c.b_max} samples")
        data = split_data(records, c.pilot_m)
        settings = AnalysisSettings.from_config(c)
        t0, cpu0 = time.perf_counter(), _cpu_s()
        _say("fitting predictors, allocating, bootstrapping")
        external = self._lora(c, records) if c.predictor == "lora" else None
        a = analyze(data["train"], data["val"], data["test"], settings, external)
        metrics.update(a.metrics)
        metrics["analysis.wall_s"], metrics["analysis.cpu_s"] = time.perf_counter() - t0, _cpu_s() - cpu0
        metrics.update(self._levels(records))
        for name, curve in a.curves.items():
            for b, q in zip(curve.budget, curve.quality, strict=True):
                if abs(b - round(b * 4) / 4) < 1e-9:  # log the curve at quarter-sample steps
                    run.log(curve=name, budget=float(b), quality=float(q))
        self._figures(c, run, a, data)
        return metrics

    def _lora(self, c: AdaptiveComputeConfig, records: list[QueryRecord]) -> dict[str, np.ndarray]:
        """The LoRA head's pass-rate predictions for every split (trained on train, kept by val)."""
        from lmlab.device import resolve_device
        from lmlab.llm import parse_spec
        from lmlab.models import load_model
        from lmlab.studies.adaptive_compute.lora import LoraProbe

        spec = parse_spec(c.model)
        if spec.kind != "hf":
            raise LmlabError("predictor=lora needs an hf: model (it fine-tunes the model itself)")
        lm, tok = load_model(spec.target, device=resolve_device(c.device))
        table = SampleTable(records)
        split = {k: table.subset(k) for k in ("train", "val", "test")}
        prompts = {k: [r.prompt for r in t] for k, t in split.items()}
        labels = {k: t.rewards().mean(1) for k, t in split.items()}
        _say("training the LoRA head")
        probe = LoraProbe(lm, tok, layer=c.hidden_layer, r=c.lora_r, epochs=c.lora_epochs, seed=derive(c.seed, "lora"))
        probe.fit(prompts["train"], labels["train"], prompts["val"], labels["val"])
        return {k: probe.predict(v) for k, v in prompts.items()}

    def _collect(self, c: AdaptiveComputeConfig, run: Any) -> tuple[list[QueryRecord], dict[str, Any]]:
        """Collect the sample table in chunks of `chunk` queries, fanned out to `workers` processes
        (each finished chunk kept in the run folder: a resumed run re-collects only the rest), and
        write it whole as `samples-<key>.jsonl`."""
        from lmlab.executor import get_executor, map_jobs
        from lmlab.studies.adaptive_compute.collect import (
            CollectJob,
            CollectSettings,
            collect_job,
            release_backends,
        )
        from lmlab.studies.adaptive_compute.queries import make_queries
        from lmlab.studies.adaptive_compute.tables import write_table

        queries = make_queries(c.n_queries, c.seed, tuple(c.domains))
        splits = split_of([q.id for q in queries], c)
        t0, cpu0 = time.perf_counter(), _cpu_s() + _children_cpu_s()
        hf = c.model.startswith("hf")
        options: tuple[tuple[str, Any], ...] = ()
        if hf:
            options = (("device", c.device), ("batch_size", c.batch_size), ("seed", c.seed), ("dtype", c.dtype))
        settings = CollectSettings(n=c.n_samples, temperature=c.temperature, max_tokens=c.max_tokens,
                                   greedy=True, hidden_layer=c.hidden_layer if hf else None,
                                   chunk=c.chunk, seed=c.seed)
        workers = max(1, c.workers) if c.executor == "process" else 1
        jobs = [CollectJob(c.model, options, settings, tuple(queries[i:i + c.chunk]),
                           tuple((q.id, splits[q.id]) for q in queries[i:i + c.chunk]),
                           threads=1 if workers > 1 else 0)
                for i in range(0, len(queries), c.chunk)]
        executor = get_executor(c.executor, max_workers=workers)
        try:
            results = map_jobs(collect_job, jobs, executor, run=run, progress="adaptive-compute: collection",
                               describe=lambda i, r: f"{len(r.rows)} queries, {r.stats.wall_s:.0f} s")
        finally:
            release_backends()
        records = [QueryRecord.from_dict(d) for r in results for d in r.rows]
        path = write_table(SampleTable(records), Path(run.path) / f"samples-{_collection_key(c)}.jsonl")
        samples = sum(r.stats.samples for r in results)
        sample_wall = sum(r.stats.sample_wall_s for r in results)
        tokens = sum(r.stats.tokens for r in results)
        m = {
            "collect.source": c.model, "collect.table": path.name, "collect.queries": len(records),
            "collect.samples": samples, "collect.workers": workers,
            "collect.samples_per_s": samples / sample_wall if sample_wall > 0 else float("nan"),
            "collect.tokens_per_sample": tokens / samples if samples else float("nan"),
            "collect.job_wall_s": sum(r.stats.wall_s for r in results),
            "collect.wall_s": time.perf_counter() - t0,
            "collect.cpu_s": _cpu_s() + _children_cpu_s() - cpu0,  # the workers' included
        }
        _say(f"collected {len(records)} queries in {m['collect.wall_s']:.0f} s "
             f"({m['collect.samples_per_s']:.2f} samples/s per worker)")
        return records, m

    @staticmethod
    def _levels(records: list[QueryRecord]) -> dict[str, Any]:
        """Pass rates per kind of query over all splits (what the model finds hard), and the
        shares of queries never solved, always solved, and in between."""
        out: dict[str, Any] = {}
        p = np.array([np.mean([s.reward for s in r.samples]) for r in records])
        kinds = [str(r.meta.get("kind", r.domain)) for r in records]
        for kind in sorted(set(kinds)):
            sel = np.array([k == kind for k in kinds])
            out[f"data.kind.{kind}.pass_rate"] = float(p[sel].mean())
        out["data.all.frac_p0"] = float(np.mean(p == 0))
        out["data.all.frac_p1"] = float(np.mean(p == 1))
        out["data.all.frac_between"] = float(np.mean((p > 0) & (p < 1)))
        return out

    def _figures(self, c: AdaptiveComputeConfig, run: Any, a: Any, data: dict[str, SplitData]) -> None:
        from lmlab.studies.adaptive_compute.figures import (
            calibration_figure,
            quality_budget_figure,
            routing_figure,
        )

        src = Path(c.table).name if c.table else c.model
        run.save_figure(quality_budget_figure(a, f"{src}: adaptive best-of-k (test split)", tuple(c.uniform_k)),
                        "quality_vs_budget")
        if a.routing:
            run.save_figure(routing_figure(a, c.routing_k), "routing")
        if "probe" in a.predictions:
            test = data["test"]
            run.save_figure(calibration_figure(a.predictions["probe"], test.rewards.mean(1), test.level),
                            "probe_calibration")

    # -- claims ---------------------------------------------------------------------------------
    def claims(self, config: AdaptiveComputeConfig, metrics: dict[str, Any]) -> list[Claim]:  # type: ignore[override]
        return claims(config, metrics)

    def checks(self, config: AdaptiveComputeConfig, metrics: dict[str, Any]) -> list[Check]:  # type: ignore[override]
        return checks(config, metrics)


STUDY = AdaptiveComputeStudy()
