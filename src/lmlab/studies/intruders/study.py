"""The `intruders` study: Shuttleworth, Andreas, Torralba & Sharma (2024), "LoRA vs Full
Fine-tuning: An Illusion of Equivalence".

Three experiments, chosen by `experiment`:

- `tiny`: pre-train a small lmlab GPT on a synthetic language, then fine-tune it on a downstream
  task with full FT and with PEFT LoRA at several ranks under alpha = 2r, a fixed alpha and
  rsLoRA, over seeds; intruders, ||dW||_2 / sigma_k, forgetting (rise in held-out pre-training
  loss); continual learning over several tasks; a lambda sweep of the mitigation. The base's
  spectral gaps and a null count per matrix (`decidable.py`) mark where eps = 0.5 cannot decide;
  the `-decidable` claims count only the other matrices. Each seed's pre-trained base is kept
  in lmlab's cache folder, so a second run of the same recipe skips pre-training
  (`pretrain.source` = "cache"; `cache_base=false` pre-trains anew).
- `smol`: full FT against LoRA on the embedded SmolLM2-135M-Instruct (`smol.py`): an arbitrary
  24-way cipher (`smol_data.py`) that needs the weights to move, ||dW||_2 / sigma_k per method
  and matrix kind, and continual learning over 3 tasks; one seed, so the paired differences'
  intervals are over the model's matrices.
- `paper`: RoBERTa-base on the paper's classification tasks with the official settings, for a
  GPU with hub access (`paper.py`).

Every fine-tuning job goes through `lmlab.executor` (`executor=serial|process|ray`).
"""

from __future__ import annotations

import time
from typing import Any

from lmlab.runs import Run
from lmlab.studies.intruders.claims import checks, claims
from lmlab.studies.intruders.config import PRESETS, IntruderConfig
from lmlab.studies.intruders.paper import run_paper
from lmlab.studies.intruders.smol import run_smol
from lmlab.studies.intruders.tiny import run_tiny
from lmlab.study import Check, Claim, Study, StudyConfig

__all__ = ["IntruderConfig", "IntruderStudy"]


class IntruderStudy(Study):
    """Presets `tiny` (2-core CPU, minutes), `smol` (SmolLM2-135M, CPU, < 30 min), `paper` (GPU)."""

    id = "intruders"
    Config = IntruderConfig
    presets = PRESETS
    # wall s on a quiet 2-core machine: tiny in `make demo` on a fresh clone (807 CPU-s); smol
    # `lmlab run intruders --preset smol` alone, 2 workers (1,422 CPU-s, peak RSS 3.3 GB)
    expected_s = {"tiny": 460, "smol": 800}

    def validate(self, config: StudyConfig) -> None:
        """The Literal fields, then every method spec and the paper's runs (before any work)."""
        from lmlab.errors import LmlabError
        from lmlab.studies.intruders.experiments import parse_method
        from lmlab.studies.intruders.paper import GLUE, parse_run

        super().validate(config)
        assert isinstance(config, IntruderConfig)
        c = config
        specs = [("continual.methods", s) for s in c.continual.methods]
        specs += [("smol.methods", s) for s in c.smol.methods]
        specs += [("smol.continual_methods", s) for s in c.smol.continual_methods]
        specs += [("mitigation.method", c.mitigation.method)]
        for name, spec in specs:
            try:
                parse_method(spec)
            except LmlabError as e:
                raise LmlabError(f"intruders: {name}: {e}") from None
        if c.experiment == "paper":
            bad = [t for t in c.paper.tasks if t not in GLUE]
            if bad:
                raise LmlabError(f"intruders: paper.tasks: {', '.join(bad)} not wired; "
                                 f"expected items from {', '.join(GLUE)}")
            for spec in c.paper.runs:
                parse_run(spec)
        for name, value in (("seeds", c.seeds), ("workers", c.workers),
                            ("ranks", min(c.ranks, default=0)),
                            ("continual.seeds", c.continual.seeds)):
            if value < 1:
                raise LmlabError(f"intruders: {name} must be >= 1, got {value!r}")
        if c.model.d_model % c.model.n_head:
            raise LmlabError(f"intruders: model.d_model must be divisible by model.n_head = "
                             f"{c.model.n_head}, got {c.model.d_model}")

    def __init__(self) -> None:
        # The tooling: `lmlab intruders BASE TUNED ...` and `lmlab bench intruders`.
        from lmlab.studies.intruders.bench import bench_intruders
        from lmlab.studies.intruders.cli import intruders

        self.cli = intruders
        self.benchmarks = {"intruders": bench_intruders}

    def run(self, config: StudyConfig, run: Run) -> dict[str, Any]:
        assert isinstance(config, IntruderConfig)
        t0, c0 = time.perf_counter(), time.process_time()
        if config.experiment == "paper":
            metrics = run_paper(config, run)
        elif config.experiment == "smol":
            metrics = run_smol(config, run)
        else:
            metrics = run_tiny(config, run)
        metrics["timing.wall_s"] = time.perf_counter() - t0
        metrics["timing.main_cpu_s"] = time.process_time() - c0
        metrics["timing.cpu_s"] = metrics["timing.main_cpu_s"] + metrics.get("timing.jobs_cpu_s", 0)
        return metrics

    def claims(self, config: StudyConfig, metrics: dict[str, Any]) -> list[Claim]:
        assert isinstance(config, IntruderConfig)
        return claims(config, metrics)

    def checks(self, config: StudyConfig, metrics: dict[str, Any]) -> list[Check]:
        assert isinstance(config, IntruderConfig)
        return checks(config, metrics)


STUDY = IntruderStudy()
