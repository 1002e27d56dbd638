"""The configuration of a misinfo-eval run and its presets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from lmlab.studies.misinfo_eval.conditions import CONDITIONS
from lmlab.study import StudyConfig


@dataclass
class MisinfoEvalConfig(StudyConfig):
    """Every knob of a run; `--set key=value` overrides any of them."""

    # Where the feeds come from: generated here, or the release's file (in `release_dir`,
    # downloaded there from the pinned commit when missing), or a feeds CSV of your own.
    feeds: Literal["synthetic", "release", "file"] = "synthetic"
    feeds_file: str = ""
    release_dir: str = ""
    n_feeds: int = 4  # synthetic feeds (5 posts each)
    conditions: tuple[str, ...] = CONDITIONS
    # The explanation writer: any lmlab.llm spec (hf:..., openai:MODEL@URL, replay:FILE).
    llm: str = "hf:qwen2.5-coder-0.5b-instruct"
    max_words: int = 100
    attempts: int = 3  # generations per explanation before repairing the last one
    explain_max_tokens: int = 160
    explain_temperature: float = 0.7
    # Personalized explanations are written for these group keys
    # (politics_race_education_gender_age) and for every simulated persona's group.
    groups: tuple[str, ...] = ()
    mrf_model: str = ""  # a local folder of the MRF GPT-2 model; empty: condition skipped
    # Simulated participants (an extension: model outputs, never the paper's human result).
    simulate: bool = True
    participants_per_condition: int = 6
    participant_temperature: float = 0.7
    preference: bool = True
    # Annotation statistics of an annotation sheet in the release's layout; empty: the
    # release's exp_annot.csv when release_dir holds it.
    annotation_file: str = ""
    n_boot: int = 2000
    batch: int = 16  # requests per LLM call


PRESETS: dict[str, MisinfoEvalConfig] = {
    # Offline, CPU: 2 synthetic feeds (10 posts); generic explanations for every post and
    # personalized ones for the personalized participants' groups, by Qwen2.5-Coder-0.5B; 3
    # simulated participants per condition (18 x 5 answers, 15 preference questions; MRF
    # skipped: no model); scoring, figures, claims. Measured (OMP_NUM_THREADS=1, another
    # one-thread run beside it on the 2 cores): 6:25 wall, 364 CPU-s (25 explanations, 105
    # simulated answers, all readable). The same preset with
    # `--set llm=hf:smollm2-135m-instruct --set participants_per_condition=4` costs ~4x less;
    # its measured run is in the study docstring.
    "tiny": MisinfoEvalConfig(n_feeds=2, participants_per_condition=3, attempts=2,
                              explain_max_tokens=130),
    # The release's 30 feeds (downloaded from the pinned commit) with a served model writing the
    # generic and personalized explanations for a set of groups; no simulated participants: the
    # human study is run with `lmlab misinfo-eval serve` on the feeds folder this run writes.
    "paper": MisinfoEvalConfig(
        feeds="release", release_dir="data/misinfo-eval",
        llm="openai:Qwen/Qwen2.5-7B-Instruct@http://127.0.0.1:8000/v1",
        groups=("conservative_white_college_male_18-29", "liberal_white_college_female_30-44",
                "moderate_black_high-school_male_45-64", "liberal_hispanic_college_female_18-29",
                "conservative_white_high-school_female_65+"),
        simulate=False, preference=False, batch=32,
    ),
}
