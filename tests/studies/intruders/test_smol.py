"""The smol experiment's parts that need no model: its tasks, its one-seed metrics (intervals
over matrices), and the claims and the matched-accuracy check computed from them."""

from __future__ import annotations

import pytest

from lmlab.errors import LmlabError
from lmlab.studies.intruders.claims import checks, claims_from_metrics
from lmlab.studies.intruders.config import PRESETS
from lmlab.studies.intruders.data import TOPICS
from lmlab.studies.intruders.smol_data import CODE_WORDS, NOUNS, smol_splits
from lmlab.studies.intruders.summary import single_metrics, smol_metrics


class WordTokenizer:
    """One id per whitespace-separated word (ids given out as words are first seen)."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return [self.ids.setdefault(w, len(self.ids)) for w in text.split()]


def _words(tok: WordTokenizer, ids: list[int]) -> list[str]:
    back = {i: w for w, i in tok.ids.items()}
    return [back[i] for i in ids]


def test_tasks_are_disjoint_splits_with_a_fixed_cipher_per_task() -> None:
    tok = WordTokenizer()
    splits = {t: smol_splits(tok, t, (60, 20, 20), 10, seed=3)
              for t in ("topic", "code_first", "code_last")}
    for t, parts in splits.items():
        texts = [tuple(p) for part in parts for p in part.prompts]
        assert len(set(texts)) == len(texts), t  # no text in two splits
        assert [len(p) for p in parts] == [60, 20, 20]
    topic_of = {n: i for i, ns in enumerate(TOPICS.values()) for n in ns}
    maps: dict[str, dict[str, int]] = {"code_first": {}, "code_last": {}}
    for t in ("topic", "code_first", "code_last"):
        for part in splits[t]:
            for p, y in zip(part.prompts, part.labels.tolist(), strict=True):
                nouns = [w for w in _words(tok, p) if w in topic_of]
                noun = nouns[-1] if t == "code_last" else nouns[0]
                if t == "topic":
                    assert y == topic_of[noun]
                else:  # one code per noun, the same in every split
                    assert maps[t].setdefault(noun, y) == y
    assert len(splits["code_first"][0].answers) == len(CODE_WORDS) == len(NOUNS)
    shared = set(maps["code_first"]) & set(maps["code_last"])
    assert sum(maps["code_first"][n] != maps["code_last"][n] for n in shared) > len(shared) // 2
    # the same seed gives the same examples; another seed others
    again = smol_splits(WordTokenizer(), "code_first", (60, 20, 20), 10, seed=3)
    assert again[0].labels.tolist() == splits["code_first"][0].labels.tolist()


def test_bad_task_and_colliding_answers_fail_in_one_line() -> None:
    with pytest.raises(LmlabError, match="unknown smol task"):
        smol_splits(WordTokenizer(), "sentiment", (4,), 8, seed=0)

    class OneToken(WordTokenizer):
        def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
            return [0] * len(text.split())

    with pytest.raises(LmlabError, match="same first token"):
        smol_splits(OneToken(), "topic", (4,), 8, seed=0)


def _run(method: str, counts: list[int], acc: float, forgetting: float,
         dw: float) -> dict:
    kind, rank, scheme = ("full", 0, "") if method == "full" else (
        "lora", int(method.split(".r")[1]), method.split(".")[0])
    stage = {"acc": acc, "val_acc": acc, "intruders": sum(counts), "forgetting": forgetting,
             "per_matrix": {f"layers.{i}.q_proj.weight": c for i, c in enumerate(counts)},
             "dw_over_sigma_k_max": dw, "dw_over_sigma_k_mean": dw / 2,
             "dw_over_sigma_k_median": dw / 2, "eff_rank_delta": 0.0, "steps": 10,
             "dw_kind": {"q_proj": [dw / 2, dw], "down_proj": [dw / 4, dw / 2]}}
    return {"method": method, "type": kind, "rank": rank, "scheme": scheme, "scaling": 2.0,
            "lr": 1e-4, "seed_index": 0, "stages": [stage]}


def _metrics(full_counts: list[int], accs: tuple[float, float] = (0.9, 0.91)) -> dict:
    runs = [_run("full", full_counts, accs[0], 0.01, 0.3),
            _run("alpha2r.r1", [1, 1, 1, 1, 1, 1, 0, 1], accs[1], 0.05, 3.0),
            _run("alpha2r.r8", [1, 1, 0, 1, 1, 0, 1, 1], accs[1], 0.04, 2.0),
            _run("alpha2r.r64", [0, 0, 1, 0, 0, 0, 0, 0], accs[1], 0.02, 0.8),
            _run("rslora.r64", [0, 0, 0, 0, 0, 0, 0, 0], accs[1], 0.02, 0.6)]
    m = single_metrics(runs, 0.0, 1.0, 8)
    m.update(smol_metrics(runs, 8))
    return m


def test_one_seed_intervals_are_over_matrices_and_decide_the_claims() -> None:
    m = _metrics([0] * 8)
    assert m["diff.over"] == "matrices" and m["diff.lowrank_vs_full.matrices"] == 8
    assert m["diff.lowrank_vs_full.mean"] == pytest.approx(6.5)  # (7 + 6) / 2 - 0
    assert 0 < m["diff.lowrank_vs_full.ci_lo"] <= 6.5 <= m["diff.lowrank_vs_full.ci_hi"]
    assert m["trend.alpha2r.drop.mean"] == pytest.approx(6.0)  # r=1 7 - r=64 1
    assert m["finetune.alpha2r.r1.dw.q_proj.max"] == 3.0
    assert m["finetune.full.dw.down_proj.median"] == pytest.approx(0.075)
    assert m["smol.matched.max_gap"] == pytest.approx(0.01)
    by = {c.id: c for c in claims_from_metrics(m, PRESETS["smol"].rules, "smol")}
    assert "over matrices" in by["lowrank-intruders"].statement
    assert by["lowrank-intruders"].holds is True
    assert by["rank-trend"].holds is True and "r=1 - r=64" in by["rank-trend"].measured
    assert by["rslora-high-rank"].holds is True
    assert "llm-scale" not in by and not any(c.endswith("-decidable") for c in by)
    # full FT with intruders in most matrices: "about none" fails; the rank trend needs the
    # counts never to rise with rank
    worse = _metrics([1, 1, 1, 0, 1, 1, 1, 1])
    by = {c.id: c for c in claims_from_metrics(worse, PRESETS["smol"].rules, "smol")}
    assert by["lowrank-intruders"].holds is False and by["rslora-high-rank"].holds is False
    # tiny's statements are unchanged (over seeds)
    tiny = {c.id: c for c in claims_from_metrics({}, PRESETS["tiny"].rules, "tiny")}
    assert "over seeds" in tiny["lowrank-intruders"].statement


def test_matched_accuracy_is_a_check_of_the_smol_runs() -> None:
    smol = PRESETS["smol"]
    (ok,) = checks(smol, _metrics([0] * 8, (0.90, 0.92)))
    assert ok.id == "matched-accuracy" and ok.holds is True and "0.020" in ok.measured
    (bad,) = checks(smol, _metrics([0] * 8, (0.90, 0.95)))
    assert bad.holds is False
    (none,) = checks(smol, {})
    assert none.holds is None
    assert checks(PRESETS["tiny"], _metrics([0] * 8)) == []
