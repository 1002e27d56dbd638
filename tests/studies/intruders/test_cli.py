"""`lmlab intruders BASE [TUNED] [--adapter PATH] ...` through the real entry point."""

from __future__ import annotations

import json

import pytest


def one_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    return lines[0]


def test_table_with_an_adapter_over_its_base(cli, llama_folders):
    r = cli("intruders", llama_folders["base"], "--adapter", llama_folders["adapter"],
            "--device", "cpu")
    assert r.code == 0, r.err
    for word in ("q_proj", "down_proj", "intruders", "||dW||/sigma_k"):
        assert word in r.out
    assert "total: 14 intruder dimensions in 14 matrices" in r.out
    assert "attn 8, mlp 6, qv 4" in r.out


def test_json_of_the_merged_model_equals_the_adapter_route(cli, llama_folders):
    merged = cli("intruders", llama_folders["base"], llama_folders["merged"], "--json")
    adapter = cli("intruders", llama_folders["base"], "--adapter", llama_folders["adapter"],
                  "--json")
    assert merged.code == adapter.code == 0, merged.err + adapter.err
    a, b = json.loads(merged.out), json.loads(adapter.out)
    assert a["total"] == b["total"] == 14
    assert a["by_target"] == {"all-linear": 14, "attn": 8, "mlp": 6, "qv": 4}
    assert [m["count"] for m in a["matrices"]] == [m["count"] for m in b["matrices"]] == [1] * 14
    for x, y in zip(a["matrices"], b["matrices"], strict=True):
        assert x["max_cos"] == pytest.approx(y["max_cos"], abs=1e-5)
    assert a["sweep"]["0.5"] == 14 and a["sweep"]["0.9"] >= 14
    assert a["k"] == 10 and a["eps"] == 0.5


def test_options_targets_k_and_eps(cli, llama_folders):
    r = cli("intruders", llama_folders["base"], llama_folders["merged"], "--targets", "qv",
            "--k", "3", "--eps", "0.2", "--json")
    assert r.code == 0, r.err
    out = json.loads(r.out)
    assert {m["kind"] for m in out["matrices"]} == {"q_proj", "v_proj"}
    assert all(len(m["max_cos"]) == 3 for m in out["matrices"])
    assert out["total"] == sum(sum(c < 0.2 for c in m["max_cos"]) for m in out["matrices"])
    r = cli("intruders", llama_folders["base"], llama_folders["merged"], "--targets",
            "gate_proj,up_proj", "--json")
    assert r.code == 0, r.err
    assert {m["kind"] for m in json.loads(r.out)["matrices"]} == {"gate_proj", "up_proj"}


def test_out_writes_the_figures_and_the_report(cli, llama_folders, tmp_path):
    out = tmp_path / "figs"
    r = cli("intruders", llama_folders["base"], "--adapter", llama_folders["adapter"], "--out", out)
    assert r.code == 0, r.err
    names = {p.name for p in out.iterdir()}
    assert names == {"intruders.json", "cosine_similarity.png", "intruders_per_layer.png",
                     "epsilon_sweep.png"}
    for p in out.glob("*.png"):
        data = p.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000, p.name
    report = json.loads((out / "intruders.json").read_text())
    assert report["total"] == 14 and report["adapter"] == str(llama_folders["adapter"])


def test_same_model_has_no_intruders(cli, llama_folders):
    r = cli("intruders", llama_folders["base"], llama_folders["base"], "--json")
    assert r.code == 0, r.err
    assert json.loads(r.out)["total"] == 0


def test_bad_input_is_one_line_exit_2_and_writes_nothing(cli, llama_folders, tmp_path, make_llama):
    small = tmp_path / "small"
    make_llama(seed=1, hidden=32).save_pretrained(small)
    out = tmp_path / "out"
    cases = [
        ((llama_folders["base"], tmp_path / "missing"), "no such file or folder"),
        ((llama_folders["base"], small), "do not match: 14 of 14 matrices differ"),
        ((small, "--adapter", llama_folders["adapter"]), "does not fit the base"),
        ((llama_folders["base"],), "give the tuned model"),
        ((llama_folders["base"], llama_folders["merged"], "--k", "0"), "--k must be at least 1"),
        ((llama_folders["base"], llama_folders["merged"], "--targets", "nope"), "no matrices"),
        ((llama_folders["adapter"], llama_folders["merged"]), "is a PEFT adapter"),
    ]
    for args, want in cases:
        r = cli("intruders", *args, "--out", out)
        assert r.code == 2, (args, r.out, r.err)
        line = one_line(r.err)
        assert want in line and line.startswith("error:"), (want, line)
        assert r.out == ""
        assert not out.exists()
