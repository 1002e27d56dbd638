"""The `linear-attention` study: Yau et al. (2024), "Learning Linear Attention in Polynomial Time".

Three experiments, each a list of independent jobs run through the configured executor:

(a) random MHLA teacher (Sec. 4.1): Algorithm 1 against gradient-trained MHLA with 1 to d^2
    heads, stacks of single-head linear attention, and lmlab's softmax GPT, over `dims` and
    `seeds`; plus Algorithm 1 at the paper's size (d = 4, T = 100, N = 2048) and the rank of the
    cubic design for d = 2, 3, 4.
(b) associative memory (Sec. 4.2): mixtures of identifiable (Gaussian) and non-identifiable
    (orthonormal) memories; the certificate's smallest eigenvalue against the p-distance to the
    truth of Algorithm 1 (exact, and by gradient descent run from a random start) and of an MHLA
    trained by Adam.
(c) DFA execution (App. G.4): lmlab's GPT learns to run random automata in context; the grid of
    the paper (one of states / alphabet / word length varied, training sizes N) in `paper`.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

from lmlab.executor import map_jobs
from lmlab.runs import Run
from lmlab.stats import median, spearman
from lmlab.studies.linear_attention.claims import checks, claims
from lmlab.studies.linear_attention.config import PRESETS, LinearAttentionConfig
from lmlab.study import Check, Claim, Study

__all__ = ["LinearAttentionConfig", "LinearAttentionStudy"]


def _label(kind: str, size: int) -> str:
    return f"mhla_{size}h" if kind == "mhla" else f"{kind}_{size}L"


def _bench(**kwargs: Any) -> dict:
    """Algorithm 1 vs gradient-trained MHLA: time to held-out MSE/Var < 1e-6."""
    from lmlab.studies.linear_attention.bench import bench_linear_attention

    return bench_linear_attention(**kwargs)


class LinearAttentionStudy(Study):
    """Algorithm 1, its certificate, and the paper's three experiments."""

    id = "linear-attention"
    Config = LinearAttentionConfig
    presets = PRESETS

    def __init__(self) -> None:
        from lmlab.studies.linear_attention.cli import app

        self.cli = app
        self.benchmarks = {"linear-attention": _bench}

    # -- run ----------------------------------------------------------------------------------
    def run(self, config: LinearAttentionConfig, run: Run) -> dict[str, Any]:
        from lmlab.device import device_name
        from lmlab.executor import get_executor

        device = device_name(config.device)
        ex = get_executor(config.executor)
        metrics: dict[str, Any] = {}
        metrics.update(self._teacher(config, run, ex, device))
        metrics.update(self._memory(config, run, ex, device))
        metrics.update(self._automaton(config, run, ex, device))
        return metrics

    def _teacher(self, cfg: LinearAttentionConfig, run: Any, ex: Any, device: str) -> dict[str, Any]:
        import torch

        from lmlab.studies.linear_attention.data import gaussian_sequences
        from lmlab.studies.linear_attention.experiments import ExactJob, SgdJob, exact_job, sgd_job
        from lmlab.studies.linear_attention.features import full_features
        from lmlab.studies.linear_attention.mhla import n_independent

        m: dict[str, Any] = {}
        # The rank of the cubic design on Gaussian inputs.
        g = torch.Generator().manual_seed(cfg.seed)
        for d in cfg.rank_dims:
            X = full_features(gaussian_sequences(g, 4 * n_independent(d), 8, d))
            m[f"design_rank_d{d}"] = int(torch.linalg.matrix_rank(X))
        # Algorithm 1 at the paper's size, one per seed.
        big = [ExactJob(cfg.seed + s, cfg.exact_d, cfg.exact_seq_len, cfg.exact_n_train,
                        teacher_heads=cfg.teacher_heads, threads=cfg.threads, device=device)
               for s in range(cfg.seeds)]
        big_res = map_jobs(exact_job, big, ex, run=run, progress="linear-attention: Algorithm 1, paper size")
        for key in ("val_nmse", "pdist_rel", "heads_gap_rel"):
            m[f"alg1_paper_size_{key}"] = max(r[key] for r in big_res)
        m["alg1_paper_size_n_heads"] = max(r["n_heads"] for r in big_res)
        m["alg1_paper_size_wall_s"] = median([r["wall_s"] for r in big_res])
        run.log(step=0, experiment="alg1_paper_size", **{k: v for k, v in m.items()})

        # Algorithm 1 and the gradient-trained models on the sweep's data.
        exact = [ExactJob(cfg.seed + s, d, cfg.seq_len, cfg.n_train, cfg.n_val, cfg.teacher_heads,
                          cfg.d_out, cfg.threads, device) for d in cfg.dims for s in range(cfg.seeds)]
        sgd = []
        for d in cfg.dims:
            models = [("mhla", h) for h in cfg.heads if h <= d * d]
            models += [("stacked", L) for L in cfg.layers]
            if cfg.softmax_layers:
                models.append(("softmax", cfg.softmax_layers))
            for kind, size in models:
                for s in range(cfg.seeds):
                    sgd.append(SgdJob(cfg.seed + s, d, cfg.seq_len, cfg.n_train, kind, size,
                                      cfg.steps, cfg.batch_size, cfg.lr, cfg.n_val,
                                      cfg.teacher_heads, cfg.d_out, cfg.softmax_width,
                                      threads=cfg.threads, device=device))
        exact_res = map_jobs(exact_job, exact, ex, run=run, progress="linear-attention: Algorithm 1")
        sgd_res = map_jobs(sgd_job, sgd, ex, run=run, progress="linear-attention: gradient-trained",
                           describe=lambda i, r: f"d={r['d']} {_label(r['kind'], r['size'])}")
        for r in exact_res + sgd_res:
            run.log(step=None, experiment="teacher", **{k: v for k, v in r.items() if k != "curve"})

        table: dict[int, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        for r in exact_res:
            table[r["d"]]["alg1"].append(r["val_nmse"])
        for r in sgd_res:
            table[r["d"]][_label(r["kind"], r["size"])].append(r["val_nmse"])
        for d, rows in table.items():
            for label, vals in rows.items():
                m[f"d{d}_{label}_val_nmse"] = median(vals)
        for r in sgd_res:
            if r["kind"] == "mhla" and r["size"] == r["d"] ** 2:
                key = f"d{r['d']}_mhla_d2h_pdist_rel"
                m[key] = min(m.get(key, math.inf), r["pdist_rel"])
        m["sgd_wall_s"] = sum(r["wall_s"] for r in sgd_res)
        self._figure_teacher(run, table)
        return m

    def _memory(self, cfg: LinearAttentionConfig, run: Any, ex: Any, device: str) -> dict[str, Any]:
        from lmlab.studies.linear_attention.experiments import MemoryJob, memory_job

        jobs = [MemoryJob(cfg.seed + s, cfg.memory_d, cfg.memory_n, f, cfg.memory_heads,
                          cfg.memory_steps, cfg.memory_batch_size, cfg.memory_lr,
                          cfg.memory_gd_steps, threads=cfg.threads, device=device)
                for s in range(cfg.memory_seeds) for f in cfg.memory_fractions]
        res = map_jobs(memory_job, jobs, ex, run=run, progress="linear-attention: associative memory",
                       describe=lambda i, r: f"fraction {r['frac']:g}")
        for r in res:
            run.log(step=None, experiment="memory", **r)
        m: dict[str, Any] = {}
        by_frac: dict[float, list[dict[str, Any]]] = defaultdict(list)
        for r in res:
            by_frac[r["frac"]].append(r)
        for f, rs in sorted(by_frac.items()):
            tag = f"mem_f{f:g}"
            m[f"{tag}_lambda_min"] = median([r["lambda_min"] for r in rs])
            for k in ("pdist_exact", "pdist_gd", "pdist_erm_random_start", "pdist_sgd"):
                m[f"{tag}_{k}"] = median([r[k] for r in rs])
        lam = [r["lambda_min"] for r in res]
        m["mem_spearman_exact"] = spearman(lam, [r["pdist_exact"] for r in res])[0]
        m["mem_spearman_gd"] = spearman(lam, [r["pdist_gd"] for r in res])[0]
        m["mem_spearman_sgd"] = spearman(lam, [r["pdist_sgd"] for r in res])[0]
        ident = [r for r in res if r["identifiable"]]
        nonid = [r for r in res if not r["identifiable"]]
        m["mem_n_identifiable"] = len(ident)
        m["mem_n_nonidentifiable"] = len(nonid)
        m["mem_identifiable_max_erm_pdist"] = max((r["pdist_erm_random_start"] for r in ident), default=math.nan)
        m["mem_nonidentifiable_min_erm_pdist"] = min((r["pdist_erm_random_start"] for r in nonid), default=math.nan)
        m["mem_max_pdist_exact"] = max(r["pdist_exact"] for r in res)
        pure = [r for r in res if r["frac"] == 0.0]
        orth = [r for r in res if r["frac"] == 1.0]
        m["mem_lambda_min_gaussian"] = min((r["lambda_min"] for r in pure), default=math.nan)
        m["mem_lambda_min_orthonormal"] = max((r["lambda_min"] for r in orth), default=math.nan)
        self._figure_memory(run, res)
        return m

    def _automaton(self, cfg: LinearAttentionConfig, run: Any, ex: Any, device: str) -> dict[str, Any]:
        from lmlab.seeding import numpy_rng
        from lmlab.studies.linear_attention.automaton import (
            DfaJob,
            Vocab,
            dfa_job,
            encode_example,
            history_consistent,
            random_dfa,
        )

        m: dict[str, Any] = {}
        if not cfg.dfa_values or not cfg.dfa_n_train:
            return m
        # The generator, checked on fresh examples of every grid point.
        rng = numpy_rng(cfg.seed, 402)
        consistent, lengths_ok = True, True
        for v in cfg.dfa_values:
            q, a, L = self._dfa_shape(cfg, v)
            for _ in range(20):
                dfa = random_dfa(rng, q, a)
                toks, mask = encode_example(dfa, rng.integers(a, size=L), rng)
                consistent &= history_consistent(toks, Vocab(q, a), L)
                lengths_ok &= len(toks) == Vocab(q, a).seq_len(L) and int(mask.sum()) == 5 * L
        m["dfa_history_consistent"] = int(consistent)
        m["dfa_format_ok"] = int(lengths_ok)
        jobs = []
        for v in cfg.dfa_values:
            q, a, L = self._dfa_shape(cfg, v)
            for n in cfg.dfa_n_train:
                for s in range(cfg.dfa_seeds):
                    jobs.append(DfaJob(cfg.seed + s, q, a, L, n, cfg.dfa_epochs, cfg.dfa_batch_size,
                                       cfg.dfa_lr, cfg.dfa_layers, cfg.dfa_heads, cfg.dfa_width,
                                       threads=cfg.threads, device=device))
        res = map_jobs(dfa_job, jobs, ex, run=run, progress="linear-attention: DFA execution")
        for r in res:
            run.log(step=None, experiment="dfa", **r)
        # The job is chosen on validation (which also stopped it); its test accuracy is reported.
        chosen = max(res, key=lambda r: r["val_history_acc"])
        m["dfa_history_acc"] = chosen["history_acc"]
        m["dfa_state_acc"] = chosen["state_acc"]
        m["dfa_val_history_acc"] = chosen["val_history_acc"]
        reached = 0
        for v in cfg.dfa_values:
            q, a, L = self._dfa_shape(cfg, v)
            # the fewest tokens whose run reached 99% on validation; counted if test agrees
            hits = sorted((r for r in res if (r["n_states"], r["n_symbols"], r["word_len"])
                           == (q, a, L) and r["val_reached_99"]), key=lambda r: r["train_tokens"])
            first = hits[0] if hits else None
            ok = first is not None and first["reached_99"]
            m[f"dfa_{cfg.dfa_vary}{v}_tokens_to_99"] = first["train_tokens"] if ok else None
            m[f"dfa_{cfg.dfa_vary}{v}_test_acc_at_99"] = first["history_acc"] if first else None
            reached += bool(ok)
        m["dfa_points_reached_99"] = reached
        m["dfa_wall_s"] = sum(r["wall_s"] for r in res)
        self._figure_dfa(run, cfg, res)
        return m

    @staticmethod
    def _dfa_shape(cfg: LinearAttentionConfig, v: int) -> tuple[int, int, int]:
        q = v if cfg.dfa_vary == "states" else cfg.dfa_fixed
        a = v if cfg.dfa_vary == "symbols" else cfg.dfa_fixed
        L = v if cfg.dfa_vary == "word_len" else cfg.dfa_fixed
        return q, a, L

    # -- figures ------------------------------------------------------------------------------
    @staticmethod
    def _figure_teacher(run: Any, table: dict[int, dict[str, list[float]]]) -> None:
        from lmlab.plotting import pyplot

        plt = pyplot()

        dims = sorted(table)
        fig, axes = plt.subplots(1, len(dims), figsize=(5 * len(dims), 4), squeeze=False)
        for ax, d in zip(axes[0], dims, strict=True):
            labels = list(table[d])
            for i, label in enumerate(labels):
                vals = [max(v, 1e-32) for v in table[d][label]]
                color = "tab:red" if label == "alg1" else ("tab:blue" if label.startswith("mhla") else "tab:gray")
                ax.scatter([i] * len(vals), vals, color=color, alpha=0.6, s=18)
                ax.plot([i - 0.3, i + 0.3], [median(vals)] * 2, color=color)
            ax.set_xticks(range(len(labels)), [lb.replace("_", " ") for lb in labels], rotation=45,
                          ha="right")
            ax.set_yscale("log")
            ax.set_title(f"random MHLA teacher, d = {d}")
            ax.set_ylabel("held-out MSE / Var(y)")
        fig.tight_layout()
        run.save_figure(fig, "mse_vs_heads_layers")

    @staticmethod
    def _figure_memory(run: Any, res: list[dict[str, Any]]) -> None:
        from lmlab.plotting import pyplot

        plt = pyplot()

        fig, ax = plt.subplots(figsize=(6, 4))
        floor = 1e-9
        lam = [max(r["lambda_min"], floor) for r in res]
        for key, label, color in (("pdist_exact", "Algorithm 1, exact min-norm", "tab:red"),
                                  ("pdist_gd", "Algorithm 1 by gradient descent", "tab:orange"),
                                  ("pdist_sgd", "MHLA trained by Adam", "tab:blue")):
            ax.scatter(lam, [max(r[key], 1e-16) for r in res], label=label, color=color, s=20)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(f"smallest eigenvalue of Lambda_D (0 shown at {floor:g})")
        ax.set_ylabel("relative p-distance to the truth")
        ax.set_title("associative memory: certificate vs recovery")
        ax.legend(fontsize=8)
        fig.tight_layout()
        run.save_figure(fig, "eigenvalue_vs_pdistance")

    @staticmethod
    def _figure_dfa(run: Any, cfg: LinearAttentionConfig, res: list[dict[str, Any]]) -> None:
        from lmlab.plotting import pyplot

        plt = pyplot()

        fig, ax = plt.subplots(figsize=(6, 4))
        key = {"states": "n_states", "symbols": "n_symbols", "word_len": "word_len"}[cfg.dfa_vary]
        for v in cfg.dfa_values:
            rs = sorted((r for r in res if r[key] == v), key=lambda r: r["train_tokens"])
            ax.plot([r["train_tokens"] for r in rs], [r["history_acc"] for r in rs], "o-",
                    label=f"{cfg.dfa_vary} = {v}")
        ax.axhline(0.99, color="gray", ls="--", lw=1)
        ax.set_xscale("log")
        ax.set_xlabel("training tokens (N x sequence length)")
        ax.set_ylabel("test next-token accuracy (history)")
        ax.set_title("DFA execution in context")
        ax.legend(fontsize=8)
        fig.tight_layout()
        run.save_figure(fig, "dfa_accuracy")

    # -- claims and checks -----------------------------------------------------------------------
    def claims(self, config: LinearAttentionConfig, metrics: dict[str, Any]) -> list[Claim]:
        return claims(config, metrics)

    def checks(self, config: LinearAttentionConfig, metrics: dict[str, Any]) -> list[Check]:
        return checks(config, metrics)


STUDY = LinearAttentionStudy()
