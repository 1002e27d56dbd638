"""A full offline episode with a real model: saved, re-scored from disk, replayed bit for bit."""

from __future__ import annotations

import os

import pytest

from lmlab.llm import get_backend
from lmlab.studies.peoplejoin.agents import make_agent
from lmlab.studies.peoplejoin.environment import Limits, episode
from lmlab.studies.peoplejoin.evaluate import judge_all, rescore, transcript_path
from lmlab.studies.peoplejoin.metrics import JudgeCache, score_transcript
from lmlab.studies.peoplejoin.rollout import run_episodes
from lmlab.studies.peoplejoin.teammates import LLMTeammates, ScriptedRequester

# The agent studies' model; a folder or another spec can stand in (LMLAB_PEOPLEJOIN_TEST_MODEL).
MODEL = os.environ.get("LMLAB_PEOPLEJOIN_TEST_MODEL", "hf:qwen2.5-coder-0.5b-instruct")


def _episode(org, item, spec):
    return episode(item, org, make_agent("reactive", org, spec), LLMTeammates(org, spec),
                   ScriptedRequester(item.question), Limits(max_actions=3, max_turns=2))


@pytest.mark.slow
@pytest.mark.timeout(3600)  # about 2-3 CPU-minutes; far longer on a crowded machine
def test_real_model_episode_rescored_and_replayed(org, items, tmp_path):
    item = items[1]  # split table: bob and carol each hold part of the books
    record = tmp_path / "llm_record.jsonl"
    lm = get_backend(MODEL, record=record)
    t = run_episodes([_episode(org, item, MODEL)], {"agent": lm, "teammate": lm})[0]
    assert t.llm_calls["agent"] >= 1 and t.steps
    cache = JudgeCache(tmp_path / "judge_cache.jsonl")
    judged = judge_all([t], lm, cache, MODEL)[0]
    row = score_transcript(t, item, judged)
    t.save(transcript_path(tmp_path, t.agent, t.datum_id))
    # from disk: the same numbers
    again = rescore(tmp_path, {i.datum_id: i for i in items}, MODEL)
    assert again == [row]
    assert row["match"] in (0.0, 50.0, 100.0)
    # every call was recorded: the replay backend reproduces the episode exactly, offline
    replay = get_backend(f"replay:{record}")
    t2 = run_episodes([_episode(org, item, MODEL)], {"agent": replay, "teammate": replay})[0]
    assert [s.raw for s in t2.steps] == [s.raw for s in t.steps]
    assert t2.digest() == t.digest()
