"""Scoring a transcript: Match (LLM judge), the execution check, efficiency, people P/R.

Everything here reads only a `Transcript` (and, for the execution check, its item), so a saved
run can be re-scored from disk. The release's edge cases are kept: with nobody contacted,
precision is 0; with an empty reference set (the requester removed), recall is 1.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lmlab.llm import Request
from lmlab.studies.peoplejoin.data import QAItem
from lmlab.studies.peoplejoin.sqlexec import answer_check
from lmlab.studies.peoplejoin.teammates import prompt
from lmlab.studies.peoplejoin.transcript import AGENT, Transcript

__all__ = [
    "NO_ANSWER",
    "JudgeCache",
    "answer_text",
    "contacted",
    "efficiency",
    "judge_request",
    "match_from_judge",
    "parse_judge",
    "people_scores",
    "score_transcript",
]


def contacted(t: Transcript) -> set[str]:
    """The distinct people the agent messaged, the requester excluded."""
    return {m.recipient for m in t.messages if m.sender == AGENT and m.recipient != t.requester_id}


def people_scores(t: Transcript) -> tuple[float, float]:
    """(precision, recall) of the people contacted against the reference people."""
    c = contacted(t)
    r = set(t.reference_people) - {t.requester_id}
    precision = len(c & r) / len(c) if c else 0.0
    recall = len(c & r) / len(r) if r else 1.0
    return precision, recall


def _words(text: str) -> int:
    return len(text.split())


def efficiency(t: Transcript) -> dict[str, float]:
    """Message and word counts per direction, people contacted, wall time and tokens."""
    me = t.requester_id
    out = dict.fromkeys((
        "msgs.requester_to_agent", "msgs.agent_to_requester", "msgs.teammates_to_agent",
        "msgs.agent_to_teammates", "words.requester_to_agent", "words.agent_to_requester",
        "words.teammates_to_agent", "words.agent_to_teammates"), 0.0)
    for m in t.messages:
        if m.kind != "message":
            continue
        if m.sender == me and m.recipient == AGENT:
            d = "requester_to_agent"
        elif m.sender == AGENT and m.recipient == me:
            d = "agent_to_requester"
        elif m.recipient == AGENT:
            d = "teammates_to_agent"
        else:
            d = "agent_to_teammates"
        out[f"msgs.{d}"] += 1
        out[f"words.{d}"] += _words(m.content)
    out["msgs.total"] = sum(v for k, v in out.items() if k.startswith("msgs."))
    out["words.total"] = sum(v for k, v in out.items() if k.startswith("words."))
    out["people_contacted"] = float(len(contacted(t)))
    out["wall_s"] = float(t.wall_s)
    out["tokens"] = float(sum(t.tokens.values()))
    out["actions"] = float(len(t.steps))
    out["invalid_actions"] = float(sum(not s.valid for s in t.steps))
    return out


def answer_text(t: Transcript) -> str:
    """What the agent told the requester after her request (the greeting excluded)."""
    msgs = [m for m in t.messages if m.kind == "message"]
    first_request = next((i for i, m in enumerate(msgs) if m.sender == t.requester_id), len(msgs))
    return "\n".join(m.content for m in msgs[first_request:]
                     if m.sender == AGENT and m.recipient == t.requester_id)


# -- the judge ---------------------------------------------------------------------------------
_SCORE = re.compile(r"score\s*[:=]\s*\**\s*(-?\d+(?:\.\d+)?)", re.IGNORECASE)


def parse_judge(text: str) -> int | None:
    """The judge's score (clipped to 0..2) from its ``score:`` line; None when there is none."""
    m = _SCORE.findall(text or "")
    if not m:
        bare = re.match(r"\s*([012])\b", text or "")  # a bare "2": small judges drop the label
        return int(bare[1]) if bare else None
    return int(min(2, max(0, round(float(m[-1])))))


def match_from_judge(text: str) -> float:
    """Match in percent: score x 50, a missing score counts 0 (the release's rule)."""
    s = parse_judge(text)
    return 0.0 if s is None else 50.0 * s


NO_ANSWER = "score: 0 (no answer was sent to the requester; the judge was not asked)"
_REF_CHARS = 1500


def judge_request(t: Transcript, *, max_tokens: int = 8) -> Request | None:
    """The judge's prompt, or None when the agent sent no answer (then Match is 0 and no model
    is asked). The fixed system message holds the rubric and five graded examples; the user
    message holds only the question, the reference rows and what the agent told the requester,
    so a small judge compares values instead of reading the whole conversation."""
    answer = answer_text(t)
    if not answer.strip():
        return None
    ref = t.reference_answer if len(t.reference_answer) <= _REF_CHARS else \
        t.reference_answer[:_REF_CHARS] + " ...(more rows)"
    text = f"Question: {t.question}\nReference: {ref}\nAnswer: {answer[:2000]}\n->"
    return Request.chat(text, system=prompt("judge"), temperature=0.0, max_tokens=max_tokens)


@dataclass
class JudgeCache:
    """Judge outputs keyed by (item, transcript digest, judge model), one JSON line each.

    (The release keyed only by item, so a new run's transcripts were scored by stale verdicts.)
    """

    path: Path

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        self._data: dict[tuple[str, str, str], str] = {}
        if self.path.is_file():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    d = json.loads(line)
                    self._data[(d["datum_id"], d["digest"], d["judge"])] = d["output"]
                except (json.JSONDecodeError, KeyError):
                    continue

    @staticmethod
    def key(t: Transcript, judge: str) -> tuple[str, str, str]:
        return (t.datum_id, t.digest(), judge)

    def get(self, t: Transcript, judge: str) -> str | None:
        return self._data.get(self.key(t, judge))

    def put(self, t: Transcript, judge: str, output: str) -> None:
        k = self.key(t, judge)
        self._data[k] = output
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"datum_id": k[0], "digest": k[1], "judge": k[2],
                                "output": output}) + "\n")
            f.flush()
            os.fsync(f.fileno())


def score_transcript(t: Transcript, item: QAItem, judge_output: str | None) -> dict[str, Any]:
    """Every per-item number of one transcript (Match is None without a judge output)."""
    precision, recall = people_scores(t)
    answer = answer_text(t)
    return {
        "datum_id": t.datum_id, "agent": t.agent, "kind": t.item_kind,
        "match": None if judge_output is None else match_from_judge(judge_output),
        "exec": float(answer_check(answer, item)) if answer else 0.0,
        "precision": precision, "recall": recall,
        "answered": float(bool(answer)), "end": t.end_reason,
        **efficiency(t),
    }
