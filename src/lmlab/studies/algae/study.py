"""The `algae` study: orchestration of calibration, detector test, method comparison, LM runs,
the continuous task and the implementation checks. Metric keys are dotted:
``<method>.d<demos>.<metric>.{mean,ci_lo,ci_hi}``, ``detector.d<demos>.{hit,false_alarm}``,
``lm.*``, ``nav.*``, ``check.*``."""

from __future__ import annotations

import contextlib
import sys
import time
from collections import defaultdict
from typing import Any

import numpy as np

from lmlab.errors import LmlabError
from lmlab.executor import torch_threads
from lmlab.plotting import pyplot
from lmlab.progress import job_progress, work_progress
from lmlab.seeding import derive
from lmlab.stats import bootstrap_ci
from lmlab.study import Check, Claim, Study, validate_literals

from .claims import checks, claims
from .config import PRESETS, AlgaeConfig
from .detector import STATISTICS, Detector, calibrate
from .environment import TRUE_FEATURES
from .experiment import WorldSpec, detector_stats, method_job
from .features import LIBRARY_BY_NAME

METHODS = ("initial", "all", "oracle", "deep", "algae_library")


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@contextlib.contextmanager
def _single_thread():
    """One BLAS/torch thread: these problems are tiny, and extra threads only contend."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # optional: without it, numpy keeps its default threads
        ctx: Any = contextlib.nullcontext()
    else:
        ctx = threadpool_limits(1)
    with torch_threads(1), ctx:
        yield


def _ci(xs: list[float], seed: int) -> dict[str, float]:
    iv = bootstrap_ci(np.asarray(xs, float), seed=seed)
    return {"mean": iv.value, "ci_lo": iv.lo, "ci_hi": iv.hi}


class AlgaeStudy(Study):
    id = "algae"
    Config = AlgaeConfig
    presets = PRESETS
    expected_s = {"tiny": 300}  # wall s measured in `make demo` on a fresh clone, quiet 2-core machine (295 CPU-s)

    def validate(self, config: AlgaeConfig) -> None:  # type: ignore[override]
        validate_literals(config)
        bad = [n for n in config.initial_features if n not in LIBRARY_BY_NAME]
        if bad or config.completing_feature not in LIBRARY_BY_NAME:
            raise LmlabError(f"algae: unknown library feature(s) {bad or [config.completing_feature]}; "
                             f"known: {', '.join(LIBRARY_BY_NAME)}")
        if config.true_missing not in TRUE_FEATURES:
            raise LmlabError(f"algae: true_missing must be one of {', '.join(TRUE_FEATURES)}")
        if not config.demos or min(config.demos) < 1 or max(config.demos) > 50:
            raise LmlabError("algae: demos must be demonstration counts in [1, 50]")
        for name in ("seeds", "n_test", "calib_seeds", "detector_seeds", "horizon_per_size"):
            if getattr(config, name) < 1:
                raise LmlabError(f"algae: {name} must be >= 1, got {getattr(config, name)}")
        if any(not 5 <= s <= 16 for s in (*config.train_sizes, *config.test_sizes)):
            raise LmlabError("algae: room sizes must be in [5, 16]")
        unknown = set(config.proposers) - {"library", "lm"}
        if unknown:
            raise LmlabError(f"algae: unknown proposer(s) {sorted(unknown)}; use library, lm")
        if "lm" in config.proposers and config.lm_seeds > config.seeds:
            raise LmlabError("algae: lm_seeds must be <= seeds (the LM runs on the same worlds)")
        if "lm" in config.proposers and not set(config.lm_demos) <= set(config.demos):
            raise LmlabError("algae: lm_demos must be a subset of demos")

    def claims(self, config: AlgaeConfig, metrics: dict[str, Any]) -> list[Claim]:  # type: ignore[override]
        return claims(config, metrics)

    def checks(self, config: AlgaeConfig, metrics: dict[str, Any]) -> list[Check]:  # type: ignore[override]
        return checks(config, metrics)

    # ------------------------------------------------------------------------------------------
    def run(self, config: AlgaeConfig, run: Any) -> dict[str, Any]:  # type: ignore[override]
        self.validate(config)
        t0, c0 = time.perf_counter(), time.process_time()
        world = WorldSpec(n_train=max(config.demos), n_test=config.n_test,
                          train_sizes=tuple(config.train_sizes),
                          test_sizes=tuple(config.test_sizes), beta_demo=config.beta_demo,
                          horizon_per_size=config.horizon_per_size)
        metrics: dict[str, Any] = {}
        with _single_thread():
            thresholds = self._detector(config, world, run, metrics)
            rows = self._methods(config, world, thresholds, run, metrics)
            if "lm" in config.proposers:
                self._lm(config, world, thresholds, run, metrics)
            self._nav(config, run, metrics)
            from .checks import implementation_checks

            metrics.update(implementation_checks(config.seed))
        self._figure(config, rows, run)
        metrics["timing.wall_s"] = time.perf_counter() - t0
        metrics["timing.cpu_s"] = time.process_time() - c0
        return metrics

    def _detector(self, config: AlgaeConfig, world: WorldSpec, run: Any,
                  metrics: dict[str, Any]) -> dict[int, float]:
        """Thresholds from calibration worlds; hit and false-alarm rates on fresh worlds."""
        thresholds = {}
        for n in config.demos:
            args = (n, tuple(config.initial_features), config.completing_feature, config.l2)
            cal = [detector_stats(world, derive(config.seed, "calib", i), *args)
                   for i in range(config.calib_seeds)]
            test = [detector_stats(world, derive(config.seed, "detector", i), *args)
                    for i in range(config.detector_seeds)]
            for stat in STATISTICS:
                thr, margin = calibrate([c["complete"][stat] for c in cal],
                                        [c["missing"][stat] for c in cal])
                hit = float(np.mean([t["missing"][stat] < thr for t in test]))
                fa = float(np.mean([t["complete"][stat] < thr for t in test]))
                key = f"detector.d{n}" if stat == config.detector else f"detector_{stat}.d{n}"
                metrics.update({f"{key}.threshold": thr, f"{key}.calib_margin": margin,
                                f"{key}.hit": hit, f"{key}.false_alarm": fa})
                if stat == config.detector:
                    thresholds[n] = thr
            run.log(stage="detector", demos=n, threshold=thresholds[n],
                    hit=metrics[f"detector.d{n}.hit"],
                    false_alarm=metrics[f"detector.d{n}.false_alarm"])
            _say(f"algae: detector at {n} demos: hit {metrics[f'detector.d{n}.hit']:.2f}, "
                 f"false alarm {metrics[f'detector.d{n}.false_alarm']:.2f}")
        metrics["detector.seeds"] = config.detector_seeds
        return thresholds

    def _methods(self, config: AlgaeConfig, world: WorldSpec, thresholds: dict[int, float],
                 run: Any, metrics: dict[str, Any]) -> list[dict[str, Any]]:
        from lmlab.executor import map_jobs

        jobs = [(derive(config.seed, "world", i), n) for i in range(config.seeds)
                for n in config.demos]
        specs = [dict(world=world, seed=s, n_demos=n, initial=tuple(config.initial_features),
                      true_missing=config.true_missing,
                      detector=Detector(config.detector, thresholds[n]), l2=config.l2,
                      max_iters=config.max_iters, deep_steps=config.deep_steps,
                      methods=METHODS) for s, n in jobs]
        def log(i: int, r: dict[str, Any]) -> None:
            run.log(stage="methods", **{k: v for k, v in r.items() if not k.endswith("_features")})

        def describe(i: int, r: dict[str, Any]) -> str:
            return (f"world {r['seed'] % 10000} x {r['demos']} demos: regret algae "
                    f"{r['algae_library.regret']:.3f}, all {r['all.regret']:.3f}, "
                    f"deep {r['deep.regret']:.3f}")

        # through map_jobs with the run: each finished world is kept, and --resume skips it
        with job_progress("algae: methods", len(specs), then=log, describe=describe) as on_result:
            rows = map_jobs(_job, specs, config.executor, on_result=on_result, run=run)
        by: dict[tuple[str, int, str], list[float]] = defaultdict(list)
        for r in rows:
            for k, v in r.items():
                if isinstance(v, float) and "." in k:
                    method, metric = k.split(".", 1)
                    by[(method, r["demos"], metric)].append(v)
        for (method, n, metric), xs in by.items():
            for stat, v in _ci(xs, derive(config.seed, "ci", method, n, metric)).items():
                metrics[f"{method}.d{n}.{metric}.{stat}"] = v
        # paired per-world regret differences at few demonstrations (<= 3)
        few = [r for r in rows if r["demos"] <= 3]
        for other in ("deep", "all", "initial"):
            d = [r["algae_library.regret"] - r[f"{other}.regret"] for r in few]
            for stat, v in _ci(d, derive(config.seed, "diff", other)).items():
                metrics[f"few.algae_library_minus_{other}.regret.{stat}"] = v
        fired = [r for r in rows if r["algae_library.added"] > 0 or r["algae_library.stop"] != "explained"]
        metrics["algae_library.runs"] = len(rows)
        metrics["algae_library.fired_runs"] = len(fired)
        rec = [r["algae_library.recovered"] for r in rows if r["demos"] >= 3]
        for stat, v in _ci(rec, derive(config.seed, "recovery")).items():
            metrics[f"algae_library.recovery_d3plus.{stat}"] = v
        metrics["algae_library.iterations_max"] = max(r["algae_library.iterations"] for r in rows)
        metrics["algae_library.added_max"] = max(r["algae_library.added"] for r in rows)
        return rows

    def _lm(self, config: AlgaeConfig, world: WorldSpec, thresholds: dict[int, float], run: Any,
            metrics: dict[str, Any]) -> None:
        from lmlab.llm import get_backend

        from .proposers import LMProposer

        backend = get_backend(config.lm, run=run, record=run.path / "llm_record.jsonl")
        rows = []
        samples = parsed = 0
        runs = [(i, n) for i in range(config.lm_seeds) for n in config.lm_demos]
        with work_progress("algae: LM proposer", len(runs), unit="runs") as shown:
            for i, n in runs:
                s = derive(config.seed, "world", i)
                prop = LMProposer(backend, samples=config.lm_samples,
                                  temperature=config.lm_temperature,
                                  max_tokens=config.lm_max_tokens,
                                  seed=derive(config.seed, "lm", i, n) % 2**31)
                r = method_job(world, s, n, tuple(config.initial_features), config.true_missing,
                               Detector(config.detector, thresholds[n]), l2=config.l2,
                               max_iters=config.max_iters, deep_steps=config.deep_steps,
                               methods=("algae_lm",), proposer=prop)
                r["algae_lm.lm_calls"] = float(prop.calls)
                r["algae_lm.samples"] = float(len(prop.log))
                samples += len(prop.log)
                parsed += sum(x["parsed"] for x in prop.log)
                rows.append(r)
                run.log(stage="lm", seed=s, demos=n, calls=prop.calls, samples=len(prop.log),
                        valid=r["algae_lm.valid"], recovered=r["algae_lm.recovered"],
                        regret=r["algae_lm.regret"], stop=r["algae_lm.stop"],
                        added=r["algae_lm.added_features"], answers=prop.log)
                shown.update(len(rows), f"world {i} x {n} demos: {prop.calls} calls, "
                                        f"{int(r['algae_lm.valid'])}/{len(prop.log)} valid, "
                                        f"recovered {bool(r['algae_lm.recovered'])}")
        valid = sum(r["algae_lm.valid"] for r in rows)
        metrics["lm.model"] = config.lm
        metrics["lm.calls"] = float(sum(r["algae_lm.lm_calls"] for r in rows))
        metrics["lm.samples"] = float(samples)
        metrics["lm.parsed_rate"] = parsed / samples if samples else float("nan")
        metrics["lm.valid_code_rate"] = valid / samples if samples else float("nan")
        metrics["lm.runs"] = len(rows)
        metrics["lm.fired_runs"] = sum(r["algae_lm.stop"] != "explained" or r["algae_lm.added"] > 0
                                       for r in rows)
        for metric in ("regret", "recovered", "success", "corr", "added"):
            xs = [r[f"algae_lm.{metric}"] for r in rows]
            for stat, v in _ci(xs, derive(config.seed, "lm-ci", metric)).items():
                metrics[f"algae_lm.{metric}.{stat}"] = v

    def _nav(self, config: AlgaeConfig, run: Any, metrics: dict[str, Any]) -> None:
        from .navigation import nav_experiment

        rows = [nav_experiment(derive(config.seed, "nav", i), config.nav_demos,
                               config.nav_samples) for i in range(config.nav_seeds)]
        for k in rows[0]:
            for stat, v in _ci([r[k] for r in rows], derive(config.seed, "nav-ci", k)).items():
                metrics[f"nav.{k}.{stat}"] = v
        run.log(stage="nav", rows=rows)

    def _figure(self, config: AlgaeConfig, rows: list[dict[str, Any]], run: Any) -> None:
        import matplotlib.ticker

        plt = pyplot()

        fig, ax = plt.subplots(figsize=(6, 4))
        labels = {"algae_library": "ALGAE (library proposer)", "all": "IRL, all features",
                  "initial": "IRL, initial features", "oracle": "IRL, oracle features",
                  "deep": "deep MaxEnt IRL"}
        ns = sorted(config.demos)
        for m in METHODS:
            means, lo, hi = [], [], []
            for n in ns:
                xs = [r[f"{m}.regret"] for r in rows if r["demos"] == n]
                iv = bootstrap_ci(np.asarray(xs), seed=derive(config.seed, "fig", m, n))
                means.append(iv.value)
                lo.append(iv.value - iv.lo)
                hi.append(iv.hi - iv.value)
            ax.errorbar(ns, means, yerr=[lo, hi], marker="o", capsize=3, label=labels[m])
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xticks(ns)
        ax.set_xticklabels([str(n) for n in ns])
        ax.set_xlabel("demonstrations")
        ax.set_ylabel("normalised regret on held-out rooms")
        ax.set_title(f"algae: regret vs demonstrations ({config.seeds} worlds, 95% CI)")
        ax.legend(fontsize=8)
        run.save_figure(fig, "regret_vs_demos")


def _job(spec: dict[str, Any]) -> dict[str, Any]:
    return method_job(**spec)


STUDY = AlgaeStudy()
