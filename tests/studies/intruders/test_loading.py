"""Loading weights to compare: HF folders, embedded model, run checkpoints, files, PEFT adapters."""

from __future__ import annotations

import json
import math
import pickle

import pytest
import torch
from safetensors.torch import save_file

from lmlab.errors import LmlabError
from lmlab.runs import Run
from lmlab.studies.intruders.detect import analyze, select_matrices
from lmlab.studies.intruders.loading import load_adapter, load_pair, load_weights, merge_adapter


def test_the_adapter_merge_equals_peft_merge_and_unload(llama_folders):
    base, tuned = load_pair(llama_folders["base"], adapter=llama_folders["adapter"])
    peft_merged = load_weights(llama_folders["merged"])
    linear = select_matrices(base)
    assert len(linear) == 14
    for key in linear:
        assert not torch.equal(tuned[key], base[key]), key  # every adapted matrix moved
        torch.testing.assert_close(tuned[key], peft_merged[key], rtol=1e-6, atol=1e-6)
    for key in base.keys() - set(linear):  # norms and embeddings untouched
        assert torch.equal(tuned[key], base[key])


def test_adapter_scaling_follows_rslora_and_the_patterns(llama_folders):
    ad = load_adapter(llama_folders["adapter"])
    q = "model.layers.0.self_attn.q_proj.weight"
    down = "model.layers.1.mlp.down_proj.weight"
    up = "model.layers.1.mlp.up_proj.weight"
    assert ad.rank(q) == 2 and ad.scaling[q] == pytest.approx(8 / math.sqrt(2))
    assert ad.scaling[down] == pytest.approx(3 / 2) and ad.scaling[up] == pytest.approx(8 / 2)
    assert set(ad.a) == set(ad.b) and len(ad.a) == 14


def test_plain_lora_scaling_is_alpha_over_r(tmp_path, make_llama):
    import peft

    model = make_llama(seed=5, layers=1)
    pm = peft.get_peft_model(model, peft.LoraConfig(r=3, lora_alpha=5, target_modules=["v_proj"]))
    for name, p in pm.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(p)
    pm.save_pretrained(tmp_path / "ad")
    base = {k: v.clone() for k, v in model.state_dict().items() if "lora" not in k}
    base = {k.replace("base_model.model.", "").replace(".base_layer", ""): v for k, v in base.items()}
    ad = load_adapter(tmp_path / "ad")
    key = "model.layers.0.self_attn.v_proj.weight"
    assert ad.scaling[key] == pytest.approx(5 / 3)
    merged = merge_adapter(base, ad)
    want = pm.merge_and_unload().state_dict()[key]
    torch.testing.assert_close(merged[key], want, rtol=1e-6, atol=1e-6)


def test_embedded_model_by_name(llama_folders, monkeypatch):
    """The embedded name resolves through lmlab.models to its converted folder (stood in for by
    the tiny Llama, so the suite does not convert SmolLM2; `lmlab bench intruders` reads it)."""
    from lmlab.models import EMBEDDED

    monkeypatch.setattr(EMBEDDED["smollm2-135m-instruct"], "ensure_converted",
                        lambda: llama_folders["base"])
    w = load_weights("SmolLM2-135M-Instruct",
                     only=lambda k: k.startswith("model.layers.0.") and k.endswith("proj.weight"))
    assert sorted(w) == sorted(f"model.layers.0.{p}.weight" for p in (
        "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
        "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"))
    assert w["model.layers.0.mlp.gate_proj.weight"].shape == (96, 64)


def test_lmlab_run_checkpoints_and_plain_files(tmp_path):
    weights = {"blocks.0.attn.q_proj.weight": torch.randn(8, 8), "ln.bias": torch.zeros(8)}
    run = Run(tmp_path / "run")
    run.save_checkpoint({**{f"model/{k}": v for k, v in weights.items()},
                         "optim/0/exp_avg": torch.ones(8, 8), "rng/cpu": torch.zeros(3)},
                        state={"step": 3})
    for spec in (tmp_path / "run", run.checkpoint_path()):
        got = load_weights(spec)
        assert set(got) == set(weights)
        assert torch.equal(got["blocks.0.attn.q_proj.weight"], weights["blocks.0.attn.q_proj.weight"])
    save_file(weights, tmp_path / "w.safetensors")
    torch.save(weights, tmp_path / "w.pt")
    torch.save({"state_dict": weights, "epoch": 3}, tmp_path / "nested.pth")
    for name in ("w.safetensors", "w.pt", "nested.pth"):
        assert set(load_weights(tmp_path / name)) == set(weights), name


class _Payload:
    def __reduce__(self):
        return (print, ("this must never run",))


def one_line(e: pytest.ExceptionInfo) -> str:
    msg = str(e.value)
    assert "\n" not in msg, msg
    return msg


def test_checkpoints_are_never_unpickled(tmp_path, capsys):
    with open(tmp_path / "evil.pt", "wb") as f:
        pickle.dump({"w": _Payload()}, f)
    with pytest.raises(LmlabError) as e:
        load_weights(tmp_path / "evil.pt")
    assert "evil.pt" in one_line(e)
    assert "this must never run" not in capsys.readouterr().out


def test_user_errors_are_one_line(tmp_path, llama_folders):
    cases = {
        "no such file or folder": tmp_path / "missing",
        "PEFT adapter": llama_folders["adapter"],
        "holds no weights": tmp_path / "empty",
        "unknown weights file type": tmp_path / "w.txt",
        "cannot read safetensors": tmp_path / "broken.safetensors",
    }
    (tmp_path / "empty").mkdir()
    (tmp_path / "w.txt").write_text("x")
    (tmp_path / "broken.safetensors").write_bytes(b"\x00" * 20)
    for want, spec in cases.items():
        with pytest.raises(LmlabError) as e:
            load_weights(spec)
        assert want in one_line(e), (want, str(e.value))
    with pytest.raises(LmlabError) as e:
        load_weights("nobody-here/no-such-model-xyz")  # a hub id, offline in the tests
    assert "no-such-model-xyz" in one_line(e)
    save_file({"m.q_proj.base_layer.weight": torch.ones(2, 2),
               "m.q_proj.lora_A.default.weight": torch.ones(1, 2)}, tmp_path / "peft.safetensors")
    with pytest.raises(LmlabError, match="unmerged PEFT model"):
        load_weights(tmp_path / "peft.safetensors")
    with pytest.raises(LmlabError, match="not a PEFT adapter folder"):
        load_adapter(llama_folders["base"])
    with pytest.raises(LmlabError, match="give the tuned model"):
        load_pair(llama_folders["base"])


def test_an_adapter_for_another_model_is_one_error(tmp_path, llama_folders, make_llama):
    other = make_llama(seed=1, hidden=32)
    other.save_pretrained(tmp_path / "small")
    with pytest.raises(LmlabError) as e:
        load_pair(tmp_path / "small", adapter=llama_folders["adapter"])
    msg = one_line(e)
    assert "does not fit the base: 14 of 14" in msg and "(10 more)" in msg


def test_models_of_different_shapes_are_one_error_listing_them(tmp_path, llama_folders,
                                                             make_llama):
    other = make_llama(seed=1, hidden=32)
    other.save_pretrained(tmp_path / "small")
    base, tuned = load_weights(llama_folders["base"]), load_weights(tmp_path / "small")
    with pytest.raises(LmlabError) as e:
        analyze(base, tuned, device="cpu")
    msg = one_line(e)
    assert "14 of 14 matrices differ" in msg
    assert "model.layers.0.self_attn.q_proj.weight: base (64, 64) vs tuned (32, 32)" in msg


def test_a_malformed_adapter_config_is_one_error(tmp_path, llama_folders):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(llama_folders["adapter"], bad)
    (bad / "adapter_config.json").write_text("{not json")
    with pytest.raises(LmlabError, match="not valid JSON"):
        load_adapter(bad)
    cfg = json.loads((llama_folders["adapter"] / "adapter_config.json").read_text())
    (bad / "adapter_config.json").write_text(json.dumps({**cfg, "use_dora": True}))
    with pytest.raises(LmlabError, match="DoRA"):
        load_adapter(bad)
