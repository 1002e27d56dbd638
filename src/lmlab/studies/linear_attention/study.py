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

import itertools
import math
import statistics
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Literal

from lmlab.study import Claim, Study, StudyConfig

__all__ = ["LinearAttentionConfig", "LinearAttentionStudy"]


@dataclass
class LinearAttentionConfig(StudyConfig):
    """Every knob of the three experiments; `tiny` and `paper` presets below."""

    executor: str = "serial"  # serial | process | ray: where the jobs of each sweep run
    threads: int = 1  # torch threads per job (tiny models run fastest on one; 0: leave as is)
    seeds: int = 3
    # (a) random teacher, Sec. 4.1 (tokens N(0, I/T), teacher entries N(0, 1/d))
    dims: tuple[int, ...] = (2, 4)
    seq_len: int = 20  # T; every prefix is an example
    n_train: int = 512  # N sequences
    n_val: int = 512
    teacher_heads: int = 1  # the paper's script draws a one-head teacher ...
    d_out: int = 1  # ... with V in R^{1 x d} (0: d_out = d)
    heads: tuple[int, ...] = (1, 2, 4, 16)  # MHLA students (only those <= d^2 run)
    layers: tuple[int, ...] = (2, 4)  # stacks of single-head linear attention
    softmax_layers: int = 1  # lmlab GPT blocks in the softmax baseline (0: none)
    softmax_width: int = 32
    steps: int = 1000
    batch_size: int = 64
    lr: float = 1e-2
    exact_d: int = 4  # Algorithm 1 at the paper's size, d_out = d (W is d^2 x d^2)
    exact_seq_len: int = 100
    exact_n_train: int = 2048
    rank_dims: tuple[int, ...] = (2, 3, 4)
    # (b) associative memory, Sec. 4.2 (width 2 d, d + 1 tokens)
    memory_d: int = 4
    memory_n: int = 4096
    memory_fractions: tuple[float, ...] = (0.0, 0.5, 0.9, 0.95, 0.98, 0.99, 1.0)
    memory_seeds: int = 2
    memory_heads: int = 4
    memory_steps: int = 1000
    memory_batch_size: int = 256
    memory_lr: float = 3e-2
    memory_gd_steps: int = 1000
    # (c) DFA execution, App. G.4
    dfa_vary: Literal["states", "symbols", "word_len"] = "states"
    dfa_values: tuple[int, ...] = (2,)
    dfa_fixed: int = 2  # the two quantities not varied (4 in the paper)
    dfa_n_train: tuple[int, ...] = (2048,)
    dfa_epochs: int = 10
    dfa_batch_size: int = 64
    dfa_lr: float = 1e-3
    dfa_layers: int = 2
    dfa_heads: int = 4
    dfa_width: int = 64
    dfa_seeds: int = 1

    def __post_init__(self) -> None:
        """Reject settings that cannot run, with one line naming the field (before any work)."""
        from lmlab.errors import LmlabError
        from lmlab.executor import BACKENDS

        def bad(field: str, why: str) -> LmlabError:
            return LmlabError(f"linear-attention: {field} {why}, got {getattr(self, field)!r}")

        if self.executor not in BACKENDS:
            raise bad("executor", f"must be one of {', '.join(BACKENDS)}")
        positive = ("seeds", "seq_len", "n_train", "steps", "batch_size", "exact_d",
                    "exact_seq_len", "exact_n_train", "memory_seeds", "memory_d", "memory_n",
                    "memory_heads", "memory_steps", "memory_batch_size", "dfa_fixed", "dfa_epochs",
                    "dfa_batch_size", "dfa_layers", "dfa_heads", "dfa_width", "dfa_seeds")
        for name in positive:
            if getattr(self, name) < 1:
                raise bad(name, "must be >= 1")
        for name in ("threads", "d_out", "softmax_layers", "memory_gd_steps"):
            if getattr(self, name) < 0:
                raise bad(name, "must be >= 0")
        if self.n_val < 2:
            raise bad("n_val", "must be >= 2")
        for name in ("lr", "memory_lr", "dfa_lr"):
            if not getattr(self, name) > 0:
                raise bad(name, "must be > 0")
        for name in ("dims", "memory_fractions"):
            if not getattr(self, name):
                raise bad(name, "needs at least one value")
        for name in ("dims", "heads", "layers", "rank_dims", "dfa_values", "dfa_n_train"):
            if any(v < 1 for v in getattr(self, name)):
                raise bad(name, "must hold values >= 1")
        if any(not 0.0 <= f <= 1.0 for f in self.memory_fractions):
            raise bad("memory_fractions", "must hold fractions in [0, 1]")
        if self.softmax_width % 4:
            raise bad("softmax_width", "must be divisible by the 4 attention heads")
        if self.dfa_width % self.dfa_heads:
            raise bad("dfa_width", f"must be divisible by dfa_heads = {self.dfa_heads}")


TINY = LinearAttentionConfig()
PAPER = LinearAttentionConfig(
    threads=0,
    dims=(2, 4, 8, 16),
    seq_len=100,
    n_train=2048,
    heads=(1, 2, 4, 8, 16, 64, 256),
    layers=(2, 4),
    softmax_layers=2,
    softmax_width=128,
    steps=16_000,  # 500 epochs of 2048 sequences in batches of 64 (the script)
    memory_n=2**14,
    memory_seeds=3,
    memory_fractions=(0.0, 0.95, 0.96, 0.97, 0.98, 0.99, 1.0),
    memory_steps=20_000,
    memory_gd_steps=10_000,
    dfa_values=(2, 3, 4, 5, 6),
    dfa_fixed=4,
    dfa_n_train=(16, 64, 256, 1024, 4096, 16384, 65536),
    dfa_epochs=100,
    dfa_lr=2.5e-4,
    dfa_layers=4,
    dfa_heads=16,
    dfa_width=2048,
    dfa_batch_size=64,
)


def _median(xs: list[float]) -> float:
    return float(statistics.median(xs))


def _label(kind: str, size: int) -> str:
    return f"mhla_{size}h" if kind == "mhla" else f"{kind}_{size}L"


def _spearman(x: list[float], y: list[float]) -> float:
    import scipy.stats

    if len(x) < 3 or len(set(x)) < 2 or len(set(y)) < 2:
        return float("nan")
    return float(scipy.stats.spearmanr(x, y).statistic)


def _bench(**kwargs: Any) -> dict:
    """Algorithm 1 vs gradient-trained MHLA: time to held-out MSE/Var < 1e-6."""
    from lmlab.studies.linear_attention.bench import bench_linear_attention

    return bench_linear_attention(**kwargs)


class LinearAttentionStudy(Study):
    """Algorithm 1, its certificate, and the paper's three experiments."""

    id = "linear-attention"
    Config = LinearAttentionConfig
    presets = {"tiny": TINY, "paper": PAPER}

    def __init__(self) -> None:
        from lmlab.studies.linear_attention.cli import app

        self.cli = app
        self.benchmarks = {"linear-attention": _bench}

    # -- run ----------------------------------------------------------------------------------
    def run(self, config: LinearAttentionConfig, run: Any) -> dict[str, Any]:
        from lmlab.device import resolve_device
        from lmlab.executor import get_executor

        device = str(resolve_device(config.device))
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
        big_res = ex.map(exact_job, big)
        for key in ("val_nmse", "pdist_rel", "heads_gap_rel"):
            m[f"alg1_paper_size_{key}"] = max(r[key] for r in big_res)
        m["alg1_paper_size_n_heads"] = max(r["n_heads"] for r in big_res)
        m["alg1_paper_size_wall_s"] = _median([r["wall_s"] for r in big_res])
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
        exact_res = ex.map(exact_job, exact)
        sgd_res = ex.map(sgd_job, sgd)
        for r in exact_res + sgd_res:
            run.log(step=None, experiment="teacher", **{k: v for k, v in r.items() if k != "curve"})

        table: dict[int, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        for r in exact_res:
            table[r["d"]]["alg1"].append(r["val_nmse"])
        for r in sgd_res:
            table[r["d"]][_label(r["kind"], r["size"])].append(r["val_nmse"])
        for d, rows in table.items():
            for label, vals in rows.items():
                m[f"d{d}_{label}_val_nmse"] = _median(vals)
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
        res = ex.map(memory_job, jobs)
        for r in res:
            run.log(step=None, experiment="memory", **r)
        m: dict[str, Any] = {}
        by_frac: dict[float, list[dict[str, Any]]] = defaultdict(list)
        for r in res:
            by_frac[r["frac"]].append(r)
        for f, rs in sorted(by_frac.items()):
            tag = f"mem_f{f:g}"
            m[f"{tag}_lambda_min"] = _median([r["lambda_min"] for r in rs])
            for k in ("pdist_exact", "pdist_gd", "pdist_erm_random_start", "pdist_sgd"):
                m[f"{tag}_{k}"] = _median([r[k] for r in rs])
        lam = [r["lambda_min"] for r in res]
        m["mem_spearman_exact"] = _spearman(lam, [r["pdist_exact"] for r in res])
        m["mem_spearman_gd"] = _spearman(lam, [r["pdist_gd"] for r in res])
        m["mem_spearman_sgd"] = _spearman(lam, [r["pdist_sgd"] for r in res])
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
        res = ex.map(dfa_job, jobs)
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
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        dims = sorted(table)
        fig, axes = plt.subplots(1, len(dims), figsize=(5 * len(dims), 4), squeeze=False)
        for ax, d in zip(axes[0], dims, strict=True):
            labels = list(table[d])
            for i, label in enumerate(labels):
                vals = [max(v, 1e-32) for v in table[d][label]]
                color = "tab:red" if label == "alg1" else ("tab:blue" if label.startswith("mhla") else "tab:gray")
                ax.scatter([i] * len(vals), vals, color=color, alpha=0.6, s=18)
                ax.plot([i - 0.3, i + 0.3], [statistics.median(vals)] * 2, color=color)
            ax.set_xticks(range(len(labels)), [lb.replace("_", " ") for lb in labels], rotation=45,
                          ha="right")
            ax.set_yscale("log")
            ax.set_title(f"random MHLA teacher, d = {d}")
            ax.set_ylabel("held-out MSE / Var(y)")
        fig.tight_layout()
        run.save_figure(fig, "mse_vs_heads_layers")

    @staticmethod
    def _figure_memory(run: Any, res: list[dict[str, Any]]) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

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
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

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

    # -- claims -------------------------------------------------------------------------------
    def claims(self, config: LinearAttentionConfig, metrics: dict[str, Any]) -> list[Claim]:
        cfg, m = config, metrics
        out: list[Claim] = []
        nmse, pd = m["alg1_paper_size_val_nmse"], m["alg1_paper_size_pdist_rel"]
        out.append(Claim.check(
            "alg1_exact",
            f"Algorithm 1 recovers a realizable random MHLA teacher (d={cfg.exact_d}, "
            f"T={cfg.exact_seq_len}, N={cfg.exact_n_train}) to floating-point precision",
            "held-out MSE/Var(y) < 1e-12 and p-distance < 1e-8 relative",
            f"MSE/Var(y) {nmse:.2g}, p-distance {pd:.2g}",
            nmse < 1e-12 and pd < 1e-8,
        ))
        gap, nh = m["alg1_paper_size_heads_gap_rel"], m["alg1_paper_size_n_heads"]
        out.append(Claim.check(
            "alg1_heads",
            "the learned W folds back (SVD) into at most d^2 heads that reproduce the regression",
            "<= d^2 heads, outputs equal to 1e-8",
            f"{nh} heads (d^2 = {cfg.exact_d ** 2}), max relative gap {gap:.2g}",
            nh <= cfg.exact_d**2 and gap < 1e-8,
        ))
        from lmlab.studies.linear_attention.mhla import n_independent

        ranks = {d: m[f"design_rank_d{d}"] for d in cfg.rank_dims}
        out.append(Claim.check(
            "design_rank",
            "the cubic design on Gaussian inputs has rank exactly d^2(d+1)/2",
            ", ".join(f"d={d}: {n_independent(d)}" for d in cfg.rank_dims),
            ", ".join(f"d={d}: {r}" for d, r in ranks.items()),
            all(r == n_independent(d) for d, r in ranks.items()),
        ))
        # d^2 heads vs everything else, per d (medians over seeds).
        verdicts, parts, match = [], [], []
        for d in cfg.dims:
            mine = m.get(f"d{d}_mhla_{d * d}h_val_nmse")
            if mine is None:
                continue
            others = {k[len(f"d{d}_"):-len("_val_nmse")]: v for k, v in m.items()
                      if k.startswith(f"d{d}_") and k.endswith("_val_nmse")
                      and k not in (f"d{d}_mhla_{d * d}h_val_nmse", f"d{d}_alg1_val_nmse")}
            best_name, best = min(others.items(), key=lambda kv: kv[1]) if others else ("-", math.inf)
            verdicts.append(mine <= best)
            parts.append(f"d={d}: {mine:.2g} vs best other {best:.2g} ({best_name})")
            match.append((d, mine))
        out.append(Claim.check(
            "d2_heads_best",
            "among gradient-trained models, MHLA with d^2 heads reaches the lowest held-out error; "
            "fewer heads, stacked single-head layers and the softmax transformer do not do better",
            "d^2 heads best (Fig. 1)",
            "; ".join(parts) or "not run",
            all(verdicts) if verdicts else None,
        ))
        out.append(Claim.check(
            "d2_heads_match_alg1",
            "gradient-trained MHLA with d^2 heads matches Algorithm 1, approaching floating-point "
            "precision",
            "held-out MSE/Var(y) near float precision (read here as < 1e-6)",
            "; ".join(f"d={d}: {v:.2g} (Algorithm 1: {m[f'd{d}_alg1_val_nmse']:.2g})" for d, v in match)
            or "not run",
            all(v < 1e-6 for _, v in match) if match else None,
        ))
        lg, lo = m["mem_lambda_min_gaussian"], m["mem_lambda_min_orthonormal"]
        out.append(Claim.check(
            "certificate_separates",
            "the certificate's smallest eigenvalue is positive for Gaussian memories and 0 for "
            "orthonormal-key memories",
            "lambda_min > 0 (Gaussian), <= 1e-10 (orthonormal)",
            f"Gaussian {lg:.3g}, orthonormal {lo:.2g}",
            None if math.isnan(lg) or math.isnan(lo) else (lg > 1e-10 and lo <= 1e-10),
        ))
        ident_max = m["mem_identifiable_max_erm_pdist"]
        nonid_min = m["mem_nonidentifiable_min_erm_pdist"]
        testable = m["mem_n_identifiable"] > 0 and m["mem_n_nonidentifiable"] > 0
        out.append(Claim.check(
            "positive_lambda_unique",
            "a positive smallest eigenvalue implies a unique learned function: every empirical-risk "
            "minimizer (here: the one nearest a random start) equals the truth in p-space, while "
            "at lambda_min = 0 minimizers that fit the data differ from the truth",
            "unique iff lambda_min > 0 (Thm. 3)",
            f"max p-distance over {m['mem_n_identifiable']} certified sets {ident_max:.2g}; "
            f"min over {m['mem_n_nonidentifiable']} uncertified {nonid_min:.2g}",
            (ident_max < 1e-8 and nonid_min > 1e-3) if testable else None,
        ))
        for key, who in (("gd", f"Algorithm 1's objective minimized by {cfg.memory_gd_steps} "
                                "full-batch gradient-descent steps from a random start"),
                         ("sgd", f"MHLA ({cfg.memory_heads} heads) trained by Adam")):
            rho = m[f"mem_spearman_{key}"]
            out.append(Claim.check(
                f"pdist_falls_{key}",
                f"p-distance to the truth falls as the smallest eigenvalue rises ({who})",
                "Spearman rho < 0 (Fig. 2)",
                f"rho = {rho:.3f}",
                None if math.isnan(rho) else rho < 0,
            ))
        if "dfa_history_acc" in m:
            out.append(Claim.check(
                "dfa_generator",
                "DFA execution data: a table of 5|Q||Sigma| tokens and a history consistent with it",
                "format of App. G.4",
                f"format ok: {bool(m['dfa_format_ok'])}, history consistent: {bool(m['dfa_history_consistent'])}",
                m["dfa_format_ok"] and m["dfa_history_consistent"],
            ))
            acc = m["dfa_history_acc"]
            out.append(Claim.check(
                "dfa_learned",
                "a softmax transformer learns to execute automata in context (99% next-token "
                "accuracy on the history of unseen automaton-word pairs)",
                "99% reached on test (App. G.4), the run chosen on validation",
                f"test history accuracy {acc:.3f} (next-state tokens {m['dfa_state_acc']:.3f}; "
                f"validation {m['dfa_val_history_acc']:.3f})",
                acc >= 0.99,
            ))
            tokens = [(v, m[f"dfa_{cfg.dfa_vary}{v}_tokens_to_99"]) for v in cfg.dfa_values]
            tokens = [(v, t) for v, t in tokens if t is not None]
            if len(tokens) >= 3:
                logs = [math.log(t) for _, t in tokens]
                steps = [b - a for a, b in itertools.pairwise(logs)]
                sub = all(b <= a + 1e-12 for a, b in itertools.pairwise(steps))
                out.append(Claim.check(
                    "dfa_subexponential",
                    f"tokens needed for 99% grow sub-exponentially in {cfg.dfa_vary}",
                    "suggestive of sub-exponential dependence",
                    ", ".join(f"{v}: {t}" for v, t in tokens),
                    sub,
                ))
            else:
                out.append(Claim.untestable(
                    "dfa_subexponential",
                    f"tokens needed for 99% grow sub-exponentially in {cfg.dfa_vary}",
                    "suggestive of sub-exponential dependence",
                    f"needs >= 3 grid points reaching 99% ({len(tokens)} here); run the paper preset",
                ))
        return out
