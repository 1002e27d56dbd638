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

from typing import Any

from lmlab.executor import map_jobs
from lmlab.runs import Run
from lmlab.studies.linear_attention.claims import checks, claims
from lmlab.studies.linear_attention.config import PRESETS, LinearAttentionConfig
from lmlab.study import Check, Claim, Study

__all__ = ["LinearAttentionConfig", "LinearAttentionStudy"]


def _bench(**kwargs: Any) -> dict:
    """Algorithm 1 vs gradient-trained MHLA: time to held-out MSE/Var < 1e-6."""
    from lmlab.studies.linear_attention.bench import bench_linear_attention

    return bench_linear_attention(**kwargs)


class LinearAttentionStudy(Study):
    """Algorithm 1, its certificate, and the paper's three experiments."""

    id = "linear-attention"
    Config = LinearAttentionConfig
    presets = PRESETS
    expected_s = {"tiny": 150}  # wall s measured in `make demo` on a fresh clone, quiet 2-core machine (145 CPU-s)

    def __init__(self) -> None:
        from lmlab.studies.linear_attention.cli import app

        self.cli = app
        self.benchmarks = {"linear-attention": _bench}

    def run(self, config: LinearAttentionConfig, run: Run) -> dict[str, Any]:
        """All jobs of the three experiments in one sweep (one progress bar, one ETA), in a
        shuffled order so the pace so far predicts the rest; then the metrics and figures."""
        import numpy as np

        from lmlab.device import device_name
        from lmlab.studies.linear_attention import analysis, figures
        from lmlab.studies.linear_attention.experiments import describe, plan, run_job

        p = plan(config, device_name(config.device))
        jobs = p.all()
        order = np.random.default_rng(0).permutation(len(jobs)).tolist()  # display order only
        done = map_jobs(run_job, [jobs[i] for i in order], config.executor, run=run,
                        progress="linear-attention", describe=lambda i, r: describe(r))
        results: list[Any] = [None] * len(jobs)
        for k, i in enumerate(order):
            results[i] = done[k]
        parts = p.split(results)
        for name, rs in parts.items():
            for r in rs:
                run.log(step=None, experiment=name, **{k: v for k, v in r.items() if k != "curve"})

        metrics: dict[str, Any] = analysis.design_metrics(config)
        teacher, table = analysis.teacher_metrics(config, parts["paper_size"], parts["exact"],
                                                  parts["sgd"])
        metrics.update(teacher)
        metrics.update(analysis.memory_metrics(parts["memory"]))
        if parts["dfa"]:
            metrics.update(analysis.dfa_generator_metrics(config))
            metrics.update(analysis.dfa_metrics(config, parts["dfa"]))
        figures.figure_teacher(run, table)
        figures.figure_memory(run, parts["memory"])
        if parts["dfa"]:
            figures.figure_dfa(run, config, parts["dfa"])
        return metrics

    def claims(self, config: LinearAttentionConfig, metrics: dict[str, Any]) -> list[Claim]:
        return claims(config, metrics)

    def checks(self, config: LinearAttentionConfig, metrics: dict[str, Any]) -> list[Check]:
        return checks(config, metrics)


STUDY = LinearAttentionStudy()
