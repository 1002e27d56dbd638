"""The importer of the paper's public release, on small files in each source's own format."""

from __future__ import annotations

import hashlib
import http.server
import math
import threading

import numpy as np
import pytest

from lmlab.errors import LmlabError
from lmlab.studies.scaling_laws import colpret as release
from lmlab.studies.scaling_laws.colpret import (
    build_compact_table,
    fetch_release,
    thin_log_spaced,
    to_int,
    to_str,
)

FAKE = {
    "aggregated_eval/olmo.csv": (
        "Step,model_name,num_params,a-validation/CrossEntropyLoss,b-validation/CrossEntropyLoss,"
        "c4_en-validation/Perplexity,downstream/piqa_acc\n"
        "1000,OLMo-1B ,1B,3.0,4.0,90.0,0.5\n"
        "2000,OLMo-1B ,1B,2.0,,50.0,0.6\n"
        "1000,OLMo-7B,7B,2.5,3.5,40.0,0.5\n"
        "1000,OLMo-7B-Twin-2T,7B,2.6,3.6,40.0,0.5\n"),
    "aggregated_eval/datablations_losses.csv": (
        "index,data,epochs,token_num,loss,num_params,model_args,tokens_per_epoch,flops,checkpoint\n"
        "0,c4,4,104857600,6.9,2.8B,{},1e9,1e20,x\n"
        "1,c4,4,209715200,6.3,2.8B,{},1e9,1e20,x\n"
        "2,oscar,14,104857600,7.1,8.7B,{},1e9,1e20,x\n"),
    "aggregated_eval/datablations_contour_losses.csv": (
        "index,data,epochs,token_num,openLM_loss,num_params,model_args,tokens_per_epoch,flops,"
        "checkpoint\n"
        "0,c4,1.0,4000000000.0,3.26,2810000000.0,{'name': '2b84b4b'},1.5e9,6.7e19,x\n"),
    "aggregated_eval/opt_trajectories.csv": (
        "model_name,model_size,steps,num_token,flops,ppl\n"
        "OPT,125m,2000,9.0,17.8,67.5\n"
        "OPT,175b,2000,9.0,17.8,20.0\n"),
    "aggregated_eval/t5_pile.csv": (
        'model_name,steps,val_perplexity,notes\n'
        'base,0,2.0,"a multi-line\nfield"\n'
        'base,1000,1.05,\n'
        'xxl,2000,1.04,\n'),
    "aggregated_eval/revisiting_lang.csv": (
        "Domain,Task,Model,Seen Examples,Loss,Training\n"
        'NMT,log_perplexity,"6 Enc, 6 Dec",500000.0,0.93,1\n'
        "LM,val_loss,1.68e+07,2000000.0,0.99,1\n"
        "LM,val_loss,1.68e+07,2000000.0,0.99,1\n"
        "LM,\"('qa', '1-shot')\",1.68e+07,2000000.0,0.5,1\n"),
    "aggregated_eval/llm360Mamba3B.csv": "step,loss,lr,grad_norm\n" + "".join(
        f"{s},{20.0 / s ** 0.1},1e-4,1.0\n" for s in range(4, 4 * 1203, 4)),
    "aggregated_eval/K2.csv": (
        "index,Step,k2 training - lm loss,k2 eval - race@0,tokens_seen,flops,num_params\n"
        "0,0,7.5,10.0,0,0,65B\n"
        "1,1,7.3,11.0,140210315.47320983,1e19,65B\n"),
    "raw_data/redPajama/2.4B.csv": "63.50160256410254, 2.39\n75.1640124198718, 2.36\n",
    "raw_data/redPajama/6.7B.csv": "39.312900641025635, 2.39\n",
}


@pytest.fixture
def fake_release(tmp_path, monkeypatch):
    root = tmp_path / "ColPret"
    digests = {}
    for rel, text in FAKE.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        digests[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    monkeypatch.setattr(release, "FILES", digests)
    return root


def test_number_formats_of_colpret():
    assert to_int("2.8B") == 2_800_000_000 and to_int("125m") == 125_000_000
    assert to_int("7B") == 7_000_000_000 and to_int("1.68e+07") == 16_800_000
    assert to_str(2.8e9) == "2.80B" and to_str(1.75e11) == "0.17T" and to_str(4.0) == "4.0"
    assert to_str(1.3e9) == "1.30B" and to_str(1.25e8) == "0.12B"
    with pytest.raises(LmlabError):
        to_int("lots")


def test_thinning_keeps_the_ends_and_at_most_the_budget():
    tokens = np.concatenate([np.arange(1, 5000) * 1e6, [1e12]])
    keep = thin_log_spaced(tokens, 100)
    assert len(keep) <= 100 and len(set(keep.tolist())) == len(keep)
    assert 0 in keep and len(tokens) - 1 in keep
    assert np.all(np.diff(tokens[keep]) > 0)
    assert len(thin_log_spaced(tokens[:50], 100)) == 50  # short logs are left alone


def test_the_importer_applies_each_sources_rules(fake_release):
    t, report = build_compact_table(fake_release)
    assert any("checksums ok" in line for line in report)
    rows = {(m, d): (f, n, loss, a) for f, m, n, d, loss, a in zip(
        t.family, t.model, t.num_params, t.tokens, t.loss, t.arch, strict=True)}
    # OLMo: mean of the CrossEntropyLoss columns present, Step x 4e6, Twin-2T has no family.
    assert rows[("OLMo-1B", 4e9)] == ("olmo", 1e9, 3.5, "dec")
    assert rows[("OLMo-1B", 8e9)][2] == 2.0
    assert rows[("OLMo-7B-Twin-2T", 4e9)][0] == ""
    # datablations: names and families from N, data and epochs.
    assert rows[("GPT2-2.80B-c4-4.0", 104857600.0)][0] == "GPT2-c4-4.0"
    assert ("GPT2-8.70B-oscar-14.0", 104857600.0) in rows
    assert rows[("GPT2-2b84b4b", 4e9)][0] == ""
    # OPT: tokens = steps x batch by size; the perplexity kept as is.
    assert rows[("OPT-0.12B", 2000 * 5e5)][2] == 67.5
    assert rows[("OPT-0.17T", 2000 * 2e6)][1] == 175e9
    # T5-Pile: log2 of the validation perplexity, steps x 1e6, step 0 dropped.
    assert rows[("pile-t5-base", 1e9)][2] == pytest.approx(math.log2(1.05))
    assert rows[("pile-t5-base", 1e9)][3] == "enc-dec" and ("pile-t5-base", 0.0) not in rows
    # lambda: only val_loss rows of numeric models, duplicates merged.
    assert rows[("lambda-16.80M", 2e6)] == ("lambda", 16_800_000, 0.99, "enc-dec")
    assert sum(m.startswith("lambda") for m in t.model) == 1
    # Long logs thinned; K2's step-0 row dropped; redPajama tokens truncated to an integer.
    n_mamba = FAKE["aggregated_eval/llm360Mamba3B.csv"].count("\n") - 1
    assert n_mamba > 1000 and sum(t.model == "LLM360Mamba3B") <= 1000
    assert sum(t.model == "K2") == 1
    assert ("redPajama2.4", float(int(63.50160256410254 * 1e9))) in rows
    np.testing.assert_allclose(t.flops, 6 * t.num_params * t.tokens)


def test_a_wrong_checksum_is_refused(fake_release):
    (fake_release / "aggregated_eval/olmo.csv").write_text("Step,model_name\n", encoding="utf-8")
    with pytest.raises(LmlabError, match=r"olmo\.csv: SHA-256 .* does not match"):
        fetch_release(fake_release)
    with pytest.raises(LmlabError, match="not a folder"):
        fetch_release(fake_release / "nope")


def test_download_at_the_pinned_commit(fake_release, tmp_path, monkeypatch):
    # A loopback HTTP server stands in for GitHub (no test reaches the network).
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(  # noqa: E731
        *a, directory=str(fake_release), **k)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setattr(release, "RAW_URL",
                            f"http://127.0.0.1:{server.server_address[1]}/{{path}}")
        root = fetch_release(cache=tmp_path / "cache")
        assert root == tmp_path / "cache" / "colpret" / release.COMMIT
        assert (root / "aggregated_eval/K2.csv").read_text() == FAKE["aggregated_eval/K2.csv"]
        monkeypatch.setattr(release, "RAW_URL", "http://127.0.0.1:9/{path}")  # nothing listens
        assert fetch_release(cache=tmp_path / "cache") == root  # cached, checked, not refetched
        with pytest.raises(LmlabError, match=r"cannot download .* pass --clone"):
            fetch_release(cache=tmp_path / "other")
    finally:
        server.shutdown()


def test_the_release_rebuilds_the_shared_table_where_its_files_are_here(colpret):
    # The shared table came from the same commit: its rows of the sources rebuilt here are the
    # importer's rows (checked against the real release, outside the tests, to 0 difference).
    assert set(colpret.source.tolist()) - set(release.SOURCES) == {"bimix"}
