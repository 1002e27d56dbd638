"""Where the detector can decide: spectral gaps, the null count, the decidable sets, the
restricted counts and the claims that judge them."""

from __future__ import annotations

import pytest
import torch

from lmlab.studies.intruders.decidable import (
    base_metrics,
    decidable_sets,
    null_counts,
    random_directions,
    restrict,
    short_name,
    spectral_gaps,
)


def _with_spectrum(s: torch.Tensor, rows: int, cols: int, seed: int) -> torch.Tensor:
    return random_directions(s, rows, cols, torch.Generator().manual_seed(seed)).float()


def test_spectral_gaps_and_short_names() -> None:
    w = torch.diag(torch.tensor([8.0, 4.0, 2.0, 1.0, 0.5]))
    g = spectral_gaps(w, k=3)
    assert g["sigma"] == pytest.approx([8, 4, 2, 1]) and g["gaps"] == pytest.approx([2, 2, 2])
    assert g["min_gap"] == pytest.approx(2.0)
    assert short_name("blocks.1.attn.o_proj.weight") == "l1_o_proj"
    assert short_name("model.layers.12.mlp.down_proj.weight") == "l12_down_proj"


def test_random_directions_keep_the_spectrum_and_lose_the_direction() -> None:
    g = torch.Generator().manual_seed(0)
    s = torch.tensor([3.0, 1.0, 0.25])
    n = random_directions(s, 40, 60, g)
    assert torch.linalg.svdvals(n)[:4] == pytest.approx([3.0, 1.0, 0.25, 0.0], abs=1e-9)
    # two draws share the spectrum, not the directions
    m = random_directions(s, 40, 60, g)
    u1, u2 = torch.linalg.svd(n)[0][:, 0], torch.linalg.svd(m)[0][:, 0]
    assert abs(float(u1 @ u2)) < 0.6


def test_the_null_flags_a_degenerate_top_k_and_spares_a_decaying_one() -> None:
    """The same update spectrum: no intruder from noise on a base whose top singular values
    fall by 2x each, several where the top 11 are equal (a cluster that rotates freely)."""
    decaying = torch.cat([2.0 ** -torch.arange(12.0), torch.full((20,), 1e-4)])
    flat = torch.cat([torch.ones(11), 0.5 * torch.ones(21)])
    base = {"decaying": _with_spectrum(decaying, 32, 48, 1),
            "flat": _with_spectrum(flat, 32, 48, 2)}
    update = torch.tensor([1e-4, 5e-5, 2e-5])  # well below every gap of the decaying base
    tuned = {n: (w.double() + _with_spectrum(update, 32, 48, 3).double()).float()
             for n, w in base.items()}
    counts = null_counts(base, tuned, k=10, eps=0.5, draws=3, seed=7)
    assert counts["decaying"] == [0, 0, 0]
    assert min(counts["flat"]) >= 1, counts
    assert counts == null_counts(base, tuned, k=10, eps=0.5, draws=3, seed=7)  # seeded


def _run(method: str, seed: int, per_matrix: dict[str, int], null: dict | None = None,
         rank: int = 0, scheme: str = "") -> dict:
    stage = {"per_matrix": per_matrix, "intruders": sum(per_matrix.values()),
             "null_counts": null or {}, "acc": 0.95, "forgetting": 0.1}
    return {"method": method, "type": "full" if method == "full" else "lora", "rank": rank,
            "scheme": scheme, "seed_index": seed, "stages": [stage]}


def test_decidable_sets_come_from_full_ft_and_restrict_every_method_of_its_seed() -> None:
    results = [
        _run("full", 0, {"a": 0, "b": 2, "c": 1}, {"a": [0, 0], "b": [1, 0], "c": [0, 0]}),
        _run("full", 1, {"a": 1, "b": 0, "c": 0}, {"a": [0, 2], "b": [0, 0], "c": [0, 0]}),
        _run("alpha2r.r1", 0, {"a": 3, "b": 4, "c": 0}, {"a": [1, 1], "b": [1, 1], "c": [1, 1]},
             1, "alpha2r"),
        _run("alpha2r.r1", 1, {"a": 5, "b": 1, "c": 2}, None, 1, "alpha2r"),
        _run("alpha2r.r1", 2, {"a": 5, "b": 1, "c": 2}, None, 1, "alpha2r"),  # no full FT
    ]
    # LoRA's own (large) null does not decide: full FT's does
    assert decidable_sets(results) == {0: ["a", "c"], 1: ["b", "c"]}
    restrict(results)
    got = [r["stages"][0].get("intruders_decidable") for r in results]
    assert got == [1, 0, 3, 3, None]
    gaps = {i: {n: {"sigma": [2.0, 1.0], "gaps": [g], "min_gap": g}
                for n, g in (("a", 1.01), ("b", 2.0), ("c", 1.5))} for i in (0, 1)}
    m = base_metrics(gaps, decidable_sets(results), results, draws=2)
    assert m["base.decidable.mean"] == 2.0 and m["base.decidable.min"] == 2
    assert m["base.a.decidable"] == 0.5 and m["base.c.decidable"] == 1.0
    assert m["base.undecidable"] == "a 1/2, b 1/2" and m["base.matrices"] == 3
    assert m["base.b.null"] == pytest.approx(0.25) and m["base.a.min_gap"] == pytest.approx(1.01)


def test_restricted_metrics_and_claims_judge_the_restricted_count() -> None:
    from lmlab.studies.intruders.claims import claims_from_metrics
    from lmlab.studies.intruders.summary import single_metrics

    def run(method, rank, scheme, seed, every, decidable):
        return {"method": method, "type": "full" if method == "full" else "lora", "rank": rank,
                "scheme": scheme, "scaling": 2.0, "lr": 1e-3, "seed_index": seed,
                "stages": [{"acc": 0.95, "intruders": every, "intruders_decidable": decidable,
                            "forgetting": 0.1 * every + 0.01 * seed + 0.001 * rank,
                            "null_intruders": 1.0, "dw_over_sigma_k_max": 2.0,
                            "dw_over_sigma_k_median": 0.5, "dw_over_sigma_k_mean": 1,
                            "eff_rank_delta": 0, "steps": 10}]}

    results = []
    for s in range(4):  # over all matrices full FT has 3; over the decidable ones none
        results.append(run("full", 0, "", s, 3.0, 0.0))
        for k, d in ((1, 4.0 + s % 2), (8, 3.0), (64, 1.0)):
            results.append(run(f"alpha2r.r{k}", k, "alpha2r", s, 4.0, d))
        results.append(run("rslora.r64", 64, "rslora", s, 4.0, 0.0))
    m = single_metrics(results, 0.95, 0.05)
    assert m["finetune.full.intruders_decidable"] == 0.0
    assert m["finetune.alpha2r.r1.seed1.intruders_decidable"] == 5.0
    assert m["finetune.full.null_intruders"] == 1.0
    assert m["finetune.full.dw_over_sigma_k_median"] == 0.5
    assert m["decidable.diff.lowrank_vs_full.ci_lo"] > 0 and m["diff.lowrank_vs_full.mean"] == 1.0
    assert m["decidable.trend.alpha2r.ci_hi"] < 0
    m.update({"base.null_draws": 4, "base.decidable.mean": 9.0, "base.matrices": 12,
              "base.undecidable": "l1_o_proj 3/3"})
    by_id = {c.id: c for c in claims_from_metrics(m)}
    assert by_id["lowrank-intruders"].holds is False  # full FT's 3 over every matrix
    assert by_id["lowrank-intruders-decidable"].holds is True
    assert by_id["rank-trend-decidable"].holds is True
    assert by_id["rslora-high-rank-decidable"].holds is True
    assert "||dW||_2/sigma_k" in str(by_id["lowrank-intruders"].measured)
    d = by_id["lowrank-intruders-decidable"]
    assert d.statement.startswith("Counting only the matrices where eps can decide")
    assert "over all matrices" in str(d.measured) and "l1_o_proj 3/3" in str(d.measured)
    # no null measured: the restricted claims are untestable, not false
    plain = {c.id: c for c in claims_from_metrics({k: v for k, v in m.items()
                                                    if not k.startswith("decidable.")
                                                    and "intruders_decidable" not in k})}
    assert all(plain[f"{k}-decidable"].holds is None for k in
               ("lowrank-intruders", "rank-trend", "forgetting-intruders", "rslora-high-rank"))
    # no matrix decidable anywhere: untestable
    m["base.decidable.mean"] = 0.0
    empty = {c.id: c for c in claims_from_metrics(m)}
    assert empty["lowrank-intruders-decidable"].holds is None
    assert "no matrix is decidable" in str(empty["lowrank-intruders-decidable"].measured)
