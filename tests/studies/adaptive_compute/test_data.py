"""Sample tables, query generation, verifiers, the sandbox and resumable collection."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from lmlab.errors import LmlabError
from lmlab.llm import Backend, Completion
from lmlab.studies.adaptive_compute.collect import CollectSettings, collect
from lmlab.studies.adaptive_compute.queries import ARITHMETIC_LEVELS, make_queries
from lmlab.studies.adaptive_compute.tables import (
    QueryRecord,
    Sample,
    SampleTable,
    read_table,
    write_table,
)
from lmlab.studies.adaptive_compute.verifiers import (
    CodeTests,
    RewardModel,
    exact_match,
    extract_number,
)


def _rec(qid: str, rewards: list[float], split: str = "train") -> QueryRecord:
    return QueryRecord(qid, split, "arithmetic", f"q {qid}", [Sample(str(r), r, 2.0) for r in rewards],
                       answer="1", meta={"level": 3}, greedy=Sample("1", 1.0, 1.0),
                       features={"hidden": [0.5, -1.0], "prompt_tokens": 7})


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_table_round_trip(tmp_path, suffix):
    t = SampleTable([_rec("a", [1.0, 0.0]), _rec("b", [0.0, 0.0], "test")])
    p = write_table(t, tmp_path / f"t{suffix}")
    back = read_table(p)
    assert [r.to_dict() for r in back] == [r.to_dict() for r in t]
    assert back.rewards().tolist() == [[1.0, 0.0], [0.0, 0.0]]
    assert back.subset("test").feature("hidden").shape == (1, 2)


def test_table_validation_one_line(tmp_path):
    with pytest.raises(LmlabError, match="duplicate query id 'a'"):
        SampleTable([_rec("a", [1.0]), _rec("a", [0.0])])
    with pytest.raises(LmlabError, match="ragged sample counts") as e:
        SampleTable([_rec("a", [1.0, 0.0]), _rec("b", [0.0])])
    assert "\n" not in str(e.value)
    row = _rec("a", [1.0, 0.0]).to_dict()
    row["samples"][1]["reward"] = None
    (tmp_path / "bad.jsonl").write_text(json.dumps(row) + "\n")
    with pytest.raises(LmlabError, match="sample 1: missing or non-finite reward"):
        read_table(tmp_path / "bad.jsonl")
    (tmp_path / "x.csv").write_text("")
    with pytest.raises(LmlabError, match=r"jsonl or \.parquet"):
        read_table(tmp_path / "x.csv")


def test_queries_are_seeded_and_correct():
    qs = make_queries(48, seed=3)
    assert qs == make_queries(48, seed=3)
    assert len({q.id for q in qs}) == 48
    levels = {q.meta["kind"] for q in qs if q.domain == "arithmetic"}
    assert levels == {name for name, *_ in ARITHMETIC_LEVELS}
    for q in qs:
        if q.domain == "arithmetic":
            expr = q.prompt.split("What is ")[1].split("?")[0]
            assert str(eval(expr)) == q.answer  # the generator's own arithmetic
        assert exact_match(q, [f"The answer is {q.answer}."]) == [1.0]
    assert make_queries(10, seed=4)[0].prompt != qs[0].prompt


def test_extract_number_conventions():
    assert extract_number("so 12 + 3 = 15") == "15"
    assert extract_number("work: 7 apples ... #### 1,234") == "1234"
    assert extract_number("15.0") == "15"
    assert extract_number("no digits") is None
    assert extract_number("-8") == "-8"


def test_code_tests_in_sandbox():
    from lmlab.studies.adaptive_compute.queries import Query

    q = Query("c1", "code", "def add(a, b):\n", "", {"entry_point": "add",
              "test": "def check(f):\n    assert f(2, 3) == 5\n"})
    ct = CodeTests(timeout_s=2.0)
    assert ct(q, ["    return a + b\n", "    return a - b\n", "    while True:\n        pass\n",
                  "    import os\n    return a + b\n"]) == [1.0, 0.0, 0.0, 0.0]
    # a HumanEval-style prompt with its imports, answered in a fenced block
    q = Query("c2", "code", "from typing import List\nimport math\n\ndef norm(xs: List[float]) -> float:\n", "",
              {"entry_point": "norm", "test": "def check(f):\n    assert f([3.0, 4.0]) == 5.0\n"})
    fenced = "```python\nfrom typing import List\nimport math\ndef norm(xs: List[float]) -> float:\n" \
             "    return math.sqrt(sum(x * x for x in xs))\n```"
    assert ct(q, ["    return math.sqrt(sum(x * x for x in xs))\n", fenced]) == [1.0, 1.0]


def test_reward_model_convention():
    rm = RewardModel(lambda texts: [float(len(t)) for t in texts])
    from lmlab.studies.adaptive_compute.queries import Query

    q = Query("x", "chat", "hi", "")
    assert rm(q, ["a", "bbb"]) == [4.0, 6.0]


class FakeLM(Backend):
    """A scripted backend: the right answer for even-numbered samples of easy queries."""

    kind = "fake"

    def __init__(self, fail_after: int | None = None):
        super().__init__("fake")
        self.calls = 0
        self.fail_after = fail_after

    def _generate(self, requests, stats):
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise RuntimeError("interrupted")
        out = []
        for r in requests:
            text = r.messages[-1]["content"]
            a, op, b = text.split("What is ")[1].split("?")[0].split() if "What is" in text else ("0", "+", "0")
            right = str(eval(f"{a}{op}{b}"))
            rng = np.random.default_rng(r.seed)
            out.append([Completion(right if rng.random() < 0.5 else "7", "stop", 5, 2, 0.0, "fake", "fake", j)
                        for j in range(r.n)])
        return out

    def hidden_states(self, requests, layer):
        return torch.tensor([[float(len(r.messages[-1]["content"])), float(layer)] for r in requests])


def test_collect_is_resumable(tmp_path):
    qs = make_queries(20, seed=0, domains=("arithmetic",))
    splits = {q.id: "train" for q in qs}
    s = CollectSettings(n=4, chunk=6, hidden_layer=3, seed=1)
    full, st = collect(qs, splits, FakeLM(), exact_match, tmp_path / "full.jsonl", s)
    assert st.queries == 20 and st.samples == 100 and st.resumed == 0  # 4 samples + 1 greedy
    with pytest.raises(RuntimeError):
        collect(qs, splits, FakeLM(fail_after=1), exact_match, tmp_path / "part.jsonl", s)  # 1 chunk
    lm = FakeLM()
    part, st2 = collect(qs, splits, lm, exact_match, tmp_path / "part.jsonl", s)
    assert st2.resumed == 6 and st2.queries == 14
    assert [r.to_dict() for r in part] == [r.to_dict() for r in full]
    again, st3 = collect(qs, splits, FakeLM(fail_after=0), exact_match, tmp_path / "part.jsonl", s)
    assert st3.queries == 0 and len(again) == 20
    t = read_table(tmp_path / "full.jsonl")
    assert t.feature("hidden")[:, 1].tolist() == [3.0] * 20
    assert t.greedy_rewards().shape == (20,)
    with pytest.raises(LmlabError, match="has 4 samples"):
        collect(qs, splits, FakeLM(), exact_match, tmp_path / "full.jsonl", CollectSettings(n=8))
