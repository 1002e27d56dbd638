"""The ALGAE loop, the detector, proposers' parsing, and the leakage guarantee."""

import dataclasses

import numpy as np
import pytest

from lmlab.llm import Completion
from lmlab.llm.backend import Backend
from lmlab.studies.algae.detector import Detector, calibrate
from lmlab.studies.algae.environment import TRUE_FEATURES
from lmlab.studies.algae.experiment import WorldSpec, detector_stats, method_job
from lmlab.studies.algae.features import FeatureSpec, library, validate
from lmlab.studies.algae.loop import run_algae
from lmlab.studies.algae.problem import Observations
from lmlab.studies.algae.proposers import (
    LibraryProposer,
    LMProposer,
    ProposerInput,
    parse_feature,
)

WORLD = WorldSpec(n_train=5, n_test=2, train_sizes=(7,), test_sizes=(8,), beta_demo=5.0)
F0 = ("distance_to_goal", "on_water")


def test_calibrate_picks_the_separating_cut():
    thr, margin = calibrate([0.0, 0.1, 0.2], [-1.0, -0.9])
    assert -0.9 < thr < 0.0 and margin == 1.0


def test_detector_separates_missing_from_complete_at_five_demos():
    stats = [detector_stats(WORLD, 100 + i, 5, F0, "near_vase", 1e-2) for i in range(6)]
    miss = np.mean([s["missing"]["loglik"] for s in stats])
    comp = np.mean([s["complete"]["loglik"] for s in stats])
    assert miss < comp - 0.05


def test_library_loop_adds_the_missing_feature_then_stops():
    obs = WORLD.problem(7).observations(5)
    # a threshold between the missing and the complete fits of THIS world (a unit test of the
    # loop's mechanics; the study calibrates it on separate worlds)
    st = detector_stats(WORLD, 7, 5, F0, "near_vase", 1e-2)
    thr = (st["missing"]["loglik"] + st["complete"]["loglik"]) / 2
    res = run_algae(obs, library(F0), LibraryProposer(), Detector("loglik", thr), max_iters=3)
    assert [f.name for f in res.added] == ["near_vase"]
    assert res.stop_reason == "explained" and len(res.iterations) == 2
    # with the complete set, nothing is added
    res2 = run_algae(obs, library((*F0, "near_vase")), LibraryProposer(),
                     Detector("loglik", thr), max_iters=3)
    assert res2.added == [] and res2.stop_reason == "explained"


def test_parse_feature_variants():
    text = "# name: avoid vases\n```python\ndef feature(s):\n    return 1.0\n```"
    f = parse_feature(text, "x")
    assert f.name == "avoid_vases" and f.code.startswith("def feature(s):")
    f = parse_feature("Sure!\ndef near(s):\n    return 0.0\n", "x")
    assert f is not None and "feature = near" in f.code
    assert parse_feature("I cannot help with that.", "x") is None


def test_validation_rejects_bad_and_duplicate_features():
    obs = WORLD.problem(1).observations(2)
    states = [lay.state_dict(0) for lay in obs.layouts]
    have = library(F0)
    bad = FeatureSpec("bad", "", "def feature(s):\n    return s['nope']\n")
    assert not validate(bad, states, obs.layouts, have).ok
    const = FeatureSpec("c", "", "def feature(s):\n    return 2.0\n")
    assert "constant" in validate(const, states, obs.layouts, have).reason
    dup = FeatureSpec("w", "", "def feature(s):\n    return 3.0 * float(s['cell']['wet'])\n")
    assert "duplicates on_water" in validate(dup, states, obs.layouts, have).reason
    good = FeatureSpec("v", "", "def feature(s):\n    return float(any(c['fragile'] for c in "
                                "s['neighbors']))\n")
    assert validate(good, states, obs.layouts, have).ok


class _Scripted(Backend):
    """A fake chat backend for plumbing tests only (never used for results)."""

    kind = "replay"

    def __init__(self, answers):
        super().__init__("scripted")
        self.answers = answers
        self.prompts = []

    def _generate(self, requests, stats):
        out = []
        for r in requests:
            self.prompts.append(r.messages)
            out.append([Completion(a, "stop", 1, 1, 0.0, "replay", "scripted", index=j)
                        for j, a in enumerate(self.answers[: r.n])])
        return out


class _Spy:
    def __init__(self, inner):
        self.inner, self.name, self.uses_lm, self.inputs = inner, inner.name, inner.uses_lm, []

    def propose(self, inp):
        self.inputs.append(inp)
        return self.inner.propose(inp)


def _strings(obj):
    if isinstance(obj, str):
        yield obj
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for f in dataclasses.fields(obj):
            yield from _strings(getattr(obj, f.name))
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from _strings(k)
            yield from _strings(v)
    elif isinstance(obj, list | tuple | frozenset | set):
        for v in obj:
            yield from _strings(v)


@pytest.mark.parametrize("kind", ["library", "lm"])
def test_no_proposer_sees_the_true_reward(kind):
    problem = WORLD.problem(11)
    answers = ["# name: vase\n```python\ndef feature(s):\n    return float(s['cell']['fragile'] "
               "or any(c['fragile'] for c in s['neighbors']))\n```", "no code here"]
    backend = _Scripted(answers)
    inner = LibraryProposer() if kind == "library" else LMProposer(backend, samples=2)
    spy = _Spy(inner)
    r = method_job(WORLD, 11, 5, F0, "fragile_proximity", Detector("loglik", 0.0), l2=1e-2,
                   max_iters=2, deep_steps=1,
                   methods=("algae_lm",) if kind == "lm" else ("algae_library",),
                   proposer=spy if kind == "lm" else None) if kind == "lm" else None
    if kind == "library":  # drive the loop directly with the spy (the job builds its own)
        run_algae(problem.observations(5), library(F0), spy, Detector("loglik", 0.0),
                  max_iters=2)
    assert spy.inputs, "the detector (threshold 0) must fire and consult the proposer"
    # a proposer input holds exactly these fields, none of them the reward
    assert {f.name for f in dataclasses.fields(ProposerInput)} == {
        "task", "state_api", "features", "demos_text", "contrast", "observations"}
    assert {f.name for f in dataclasses.fields(Observations)} == {
        "layouts", "demos", "horizon_per_size"}
    texts = [s for inp in spy.inputs for s in _strings(inp)]
    texts += [m["content"] for msgs in backend.prompts for m in msgs]
    blob = "\n".join(texts)
    for name in TRUE_FEATURES:
        assert name not in blob
    for w in problem.reward.theta:
        assert repr(float(w)) not in blob and f"{abs(w):.3f}" not in blob
    assert repr(problem.reward) not in blob and "RewardSpec" not in blob
    if kind == "lm":
        assert r["algae_lm.proposed"] >= 1 and backend.prompts


def test_lm_calls_are_recorded_and_replay_to_the_same_features(tmp_path):
    from lmlab.llm import Recorder, ReplayBackend

    answers = ["# name: vase\n```python\ndef feature(s):\n    return float(any(c['fragile'] "
               "for c in s['neighbors']))\n```", "```python\ndef feature(s):\n    return s['x']\n```"]
    path = tmp_path / "calls.jsonl"
    obs = WORLD.problem(3).observations(3)

    def go(backend):
        prop = LMProposer(backend, samples=2, seed=5)
        res = run_algae(obs, library(F0), prop, Detector("loglik", 0.0), max_iters=2)
        return [(f.name, f.code_hash) for f in res.added], prop.calls

    first = go(Recorder(_Scripted(answers), path))
    again = go(ReplayBackend(path))
    assert first == again and first[1] == 2
