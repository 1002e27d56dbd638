"""The `misinfo-eval` study: build the seven conditions' feeds, explain, simulate, score.

A run writes a feeds folder (``feeds/``: ``feeds.csv`` and one filled ``<condition>.csv`` per
condition) that `lmlab misinfo-eval serve --feeds RUN/feeds --db study.db` serves to people as
the paper's human study; an annotation sheet of every LLM explanation (``annotation_sheet.csv``,
the five questions blank); and, when `simulate` is on, the answers of simulated participants
(``responses.csv``, every row marked ``simulated:<model>``), scored as a human table would be.
Metrics of simulated participants start with ``sim.``: they are model outputs, not the paper's
result.

Measured on the shared 2-core development machine (load average ~15-19, so wall times are
inflated several-fold; CPU seconds are the comparable number), one torch thread
(OMP_NUM_THREADS=1; with two threads on that oversubscribed machine generation was >10x slower):

* tiny with ``llm=hf:smollm2-135m-instruct n_feeds=1 participants_per_condition=1 attempts=1
  explain_max_tokens=60`` (10 explanations, 35 prompts): 49 CPU-s user + 2 s system, 3:01 wall;
* the tiny preset with ``llm=hf:smollm2-135m-instruct participants_per_condition=4`` (30
  explanations, 140 prompts): 189 CPU-s user + 8 s system, 20:41 wall on the loaded machine
  (explanations 618 s wall, simulated participants 574 s wall);
* the tiny preset as configured (Qwen2.5-Coder-0.5B, 3 participants per condition) was still
  running at the branch's deadline on that machine: not yet measured.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from lmlab.errors import LmlabError
from lmlab.studies.misinfo_eval.config import PRESETS, MisinfoEvalConfig
from lmlab.study import Check, Claim, Study, StudyConfig

__all__ = ["STUDY", "MisinfoEvalStudy"]


def _say(msg: str) -> None:
    print(f"misinfo-eval: {msg}", file=sys.stderr, flush=True)


class MisinfoEvalStudy(Study):
    """MisinfoEval: Generative AI in the Era of 'Alternative Facts' (Gabriel et al., 2024)."""

    id = "misinfo-eval"
    Config = MisinfoEvalConfig
    presets = PRESETS
    expected_s = {"tiny": 375}  # wall s measured in `make demo` on a fresh clone, quiet 2-core machine (373 CPU-s)

    def __init__(self) -> None:
        from lmlab.studies.misinfo_eval.cli import app

        self.cli = app

    def validate(self, config: StudyConfig) -> None:
        super().validate(config)
        from lmlab.studies.misinfo_eval.conditions import CONDITIONS
        from lmlab.studies.misinfo_eval.data import Demographics

        assert isinstance(config, MisinfoEvalConfig)
        c = config
        bad = [x for x in c.conditions if x not in CONDITIONS]
        if bad:
            raise LmlabError(f"conditions: unknown {', '.join(bad)}; choose from {', '.join(CONDITIONS)}")
        if not c.conditions or len(set(c.conditions)) != len(c.conditions):
            raise LmlabError("conditions: name each condition once, at least one")
        for g in c.groups:
            Demographics.from_key(g)
        if c.feeds == "file" and not Path(c.feeds_file).is_file():
            raise LmlabError(f"feeds_file {c.feeds_file!r} not found (needed by feeds=file)")
        if c.feeds == "release" and not c.release_dir:
            raise LmlabError("feeds=release needs release_dir (where the release's CSVs are kept)")
        if c.annotation_file and not Path(c.annotation_file).is_file():
            raise LmlabError(f"annotation_file {c.annotation_file!r} not found")
        checks = [(c.n_feeds >= 1, "n_feeds must be >= 1"),
                  (1 <= c.max_words <= 1000, "max_words must be in [1, 1000]"),
                  (c.attempts >= 1, "attempts must be >= 1"),
                  (c.participants_per_condition >= 1, "participants_per_condition must be >= 1"),
                  (c.n_boot >= 100, "n_boot must be >= 100"), (c.batch >= 1, "batch must be >= 1"),
                  (not c.simulate or "control" in c.conditions,
                   "simulate needs the control condition (gains are over control)")]
        for ok, msg in checks:
            if not ok:
                raise LmlabError(msg)
        from lmlab.llm import parse_spec

        parse_spec(c.llm)

    def run(self, config: StudyConfig, run: Any) -> dict[str, Any]:
        from lmlab.studies.misinfo_eval.pipeline import run_study

        assert isinstance(config, MisinfoEvalConfig)
        start = time.perf_counter()
        metrics = run_study(config, run, _say)
        metrics["timing.total_s"] = time.perf_counter() - start
        return metrics

    def claims(self, config: StudyConfig, metrics: dict[str, Any]) -> list[Claim]:
        from lmlab.studies.misinfo_eval.claims import claims

        return claims(config, metrics)

    def checks(self, config: StudyConfig, metrics: dict[str, Any]) -> list[Check]:
        from lmlab.studies.misinfo_eval.claims import checks

        return checks(config, metrics)


STUDY = MisinfoEvalStudy()
