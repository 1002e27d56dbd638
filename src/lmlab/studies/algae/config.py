"""Configuration of the `algae` study and its presets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from lmlab.study import StudyConfig


@dataclass
class AlgaeConfig(StudyConfig):
    """Every knob of the study. Worlds, calibration worlds and detector-test worlds are drawn
    from separate seed streams of `seed` (`lmlab.seeding.derive`)."""

    # worlds: a hidden true reward, one demonstration per training room, held-out rooms
    seeds: int = 5  # worlds per demonstration count for the method comparison
    demos: tuple[int, ...] = (1, 2, 3, 5, 10)
    n_test: int = 4  # held-out rooms per world
    train_sizes: tuple[int, ...] = (7, 8)
    test_sizes: tuple[int, ...] = (8, 10)
    beta_demo: float = 5.0  # demonstrators' rationality (soft-VI rollouts of beta * r*)
    horizon_per_size: int = 2  # horizon = this * room size
    # the designer's initial features (library names); one true feature is missing from them
    initial_features: tuple[str, ...] = ("distance_to_goal", "on_water")
    # evaluation only: the true feature that F0 misses (recovery is measured against it) and the
    # library feature that completes F0 in the calibration worlds (the detector's calibration)
    true_missing: str = "fragile_proximity"
    completing_feature: str = "near_vase"
    # the missing-feature detector
    detector: Literal["loglik", "typicality", "beta"] = "loglik"
    calib_seeds: int = 20  # calibration worlds (threshold per demonstration count)
    detector_seeds: int = 20  # test worlds for the detector's hit and false-alarm rates
    # the loop and the IRL fits
    max_iters: int = 3
    l2: float = 1e-2
    deep_steps: int = 150  # deep MaxEnt IRL optimiser steps
    # proposers: the library ablation everywhere, the LM on `lm_seeds` x `lm_demos`
    proposers: tuple[str, ...] = ("library", "lm")
    lm: str = "hf:qwen2.5-coder-0.5b-instruct"
    lm_samples: int = 4  # answers per LM call
    lm_temperature: float = 0.8
    lm_max_tokens: int = 160
    lm_seeds: int = 2
    lm_demos: tuple[int, ...] = (3,)
    # the continuous 2-D navigation task (sampled partition estimate)
    nav_seeds: int = 5
    nav_demos: int = 10
    nav_samples: int = 2000  # sampled trajectories for the partition estimate
    executor: str = "serial"


# tiny: offline on 2 CPU cores. 5 worlds x demos {1,2,3,5,10} x (initial, all, oracle, deep,
# ALGAE-library); the detector calibrated on 20 worlds and tested on 20 more per demo count; the
# LM proposer (Qwen2.5-Coder-0.5B-Instruct) on 2 worlds x 3 demos, 4 samples per call; the
# continuous task on 5 worlds. Measured on a mostly quiet 2-core machine (a test suite running
# beside it), OMP_NUM_THREADS=1: 5:57 wall, 283 CPU-s (user + sys), of which the 5 LM calls took
# 272 s wall; the LM wrote 3 valid features of 20 samples (0.15) and recovered the missing one in
# neither world. With `--set lm=hf:smollm2-135m-instruct` the preset takes 2:41 wall, 147 CPU-s
# (valid-code rate 0.12). Under heavy load (load ~18) two torch threads made one 0.5B call cost
# 537 CPU-s: on a busy machine, set OMP_NUM_THREADS=1.
TINY = AlgaeConfig()

# paper: a served coder model proposing on every world and demo count, larger rooms, 10 worlds.
PAPER = AlgaeConfig(
    seeds=10,
    n_test=8,
    train_sizes=(7, 8, 9, 10, 11, 12),
    test_sizes=(8, 10, 12),
    calib_seeds=40,
    detector_seeds=40,
    max_iters=5,
    deep_steps=400,
    lm="openai:Qwen2.5-Coder-32B-Instruct@http://127.0.0.1:8000/v1",
    lm_samples=8,
    lm_max_tokens=400,
    lm_seeds=10,
    lm_demos=(1, 2, 3, 5, 10),
    nav_seeds=10,
    nav_samples=10000,
)

PRESETS: dict[str, AlgaeConfig] = {"tiny": TINY, "paper": PAPER}
