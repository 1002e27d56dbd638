"""Hugging Face folders and hub ids: tiny random models saved and loaded back, and one-line
errors for everything a user can get wrong. Nothing here reaches the network."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
import torch
import transformers

from lmlab.errors import LmlabError, MissingDependency
from lmlab.models import hf, load_model, model_path

WORDS = ["<unk>", "<pad>", "<eos>", "the", "cat", "sat", "on", "mat", "a", "dog", "ran"]


def _one_line(e: pytest.ExceptionInfo) -> str:
    msg = str(e.value)
    assert msg and "\n" not in msg, msg
    return msg


def _tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers

    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>", eos_token="<eos>"
    )


@pytest.fixture
def llama_folder(tmp_path: Path) -> tuple[Path, torch.nn.Module]:
    """A tiny random LlamaForCausalLM with a word-level tokenizer, saved as a model folder."""
    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        vocab_size=32, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
        pad_token_id=1, eos_token_id=2, bos_token_id=None,
    )
    model = transformers.LlamaForCausalLM(config).eval()
    folder = tmp_path / "tiny-llama"
    model.save_pretrained(folder)
    _tokenizer().save_pretrained(folder)
    return folder, model


@pytest.fixture
def gpt2_folder(tmp_path: Path) -> tuple[Path, torch.nn.Module]:
    """A tiny random GPT2LMHeadModel saved without a tokenizer."""
    torch.manual_seed(1)
    config = transformers.GPT2Config(vocab_size=40, n_positions=32, n_embd=32, n_layer=2, n_head=2)
    model = transformers.GPT2LMHeadModel(config).eval()
    folder = tmp_path / "tiny-gpt2"
    model.save_pretrained(folder)
    return folder, model


def _logits(model: torch.nn.Module, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(ids).logits


def test_llama_folder_round_trip(llama_folder: tuple) -> None:
    folder, original = llama_folder
    model, tokenizer = load_model(folder)
    assert type(model).__name__ == "LlamaForCausalLM" and not model.training
    ids = tokenizer("the cat sat on the mat", return_tensors="pt").input_ids
    assert ids.tolist() == [[3, 4, 5, 6, 3, 7]]
    torch.testing.assert_close(_logits(model, ids), _logits(original, ids))
    # a string path works as well, and model_path gives the folder back
    again, _ = load_model(str(folder))
    torch.testing.assert_close(_logits(again, ids), _logits(original, ids))
    assert model_path(folder) == folder.resolve() == model_path(str(folder))


def test_gpt2_folder_weights_only(gpt2_folder: tuple) -> None:
    folder, original = gpt2_folder
    model, tokenizer = load_model(folder, with_tokenizer=False, dtype="bf16")
    assert tokenizer is None
    assert type(model).__name__ == "GPT2LMHeadModel"
    assert next(model.parameters()).dtype == torch.bfloat16
    ids = torch.tensor([[1, 5, 9, 2]])
    torch.testing.assert_close(
        _logits(model.float(), ids), _logits(original, ids), atol=0.05, rtol=0.05
    )


def test_folder_without_tokenizer_says_so(gpt2_folder: tuple) -> None:
    folder, _ = gpt2_folder
    with pytest.raises(LmlabError) as e:
        load_model(folder)
    assert "no tokenizer files" in _one_line(e) and "with_tokenizer=False" in str(e.value)


def test_missing_folder(tmp_path: Path) -> None:
    for spec in (tmp_path / "nope", str(tmp_path / "nope"), "./no/such/model-folder"):
        with pytest.raises(LmlabError) as e:
            load_model(spec)
        assert "not found" in _one_line(e)
    with pytest.raises(LmlabError):
        model_path(tmp_path / "nope")


def test_folder_that_is_not_a_model(tmp_path: Path, gpt2_folder: tuple) -> None:
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "README.md").write_text("hello")
    with pytest.raises(LmlabError) as e:
        load_model(tmp_path / "notes")
    assert "no config.json" in _one_line(e)

    weightless = tmp_path / "weightless"
    weightless.mkdir()
    (weightless / "config.json").write_text((gpt2_folder[0] / "config.json").read_text())
    with pytest.raises(LmlabError) as e:
        load_model(weightless)
    assert "no weights" in _one_line(e)


def test_a_safetensors_file_is_not_a_model(gpt2_folder: tuple) -> None:
    weights = gpt2_folder[0] / "model.safetensors"
    assert weights.is_file()
    with pytest.raises(LmlabError) as e:
        load_model(weights)
    assert "weights file, not a model" in _one_line(e)
    with pytest.raises(LmlabError):
        model_path(str(weights))


def test_folder_of_a_model_that_is_not_a_causal_lm(tmp_path: Path) -> None:
    config = transformers.ViTConfig(
        hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
        image_size=8, patch_size=4,
    )
    transformers.ViTModel(config).save_pretrained(tmp_path / "vit")
    with pytest.raises(LmlabError) as e:
        load_model(tmp_path / "vit", with_tokenizer=False)
    assert "cannot load a causal language model" in _one_line(e)


def test_offline_hub_id_fails_fast_with_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # read at import
    start = time.perf_counter()
    with pytest.raises(LmlabError) as e:
        load_model("lmlab-tests/no-such-model")
    msg = _one_line(e)
    assert "hub is unreachable" in msg and "local model folder" in msg
    with pytest.raises(LmlabError) as e:
        model_path("lmlab-tests/no-such-model")
    assert "hub is unreachable" in _one_line(e)
    assert time.perf_counter() - start < 20


def test_transformers_missing(monkeypatch: pytest.MonkeyPatch, llama_folder: tuple) -> None:
    monkeypatch.setitem(sys.modules, "transformers", None)  # makes `import transformers` fail
    with pytest.raises(MissingDependency) as e:
        load_model(llama_folder[0])
    assert "lmlab[hf]" in _one_line(e) and e.value.package == "transformers"


def test_spec_classification() -> None:
    for hub_id in ("gpt2", "HuggingFaceTB/SmolLM2-135M", "org/name.v1_2"):
        assert not hf.looks_like_path(hub_id), hub_id
    for path in ("./x", "/abs/x", "~/m", "a/b/c", "x.safetensors", "w.gguf", "C:\\m", "bad id"):
        assert hf.looks_like_path(path), path


def test_dtypes_and_devices(llama_folder: tuple) -> None:
    assert hf.resolve_dtype("bf16") is torch.bfloat16
    assert hf.resolve_dtype("torch.float16") is torch.float16
    assert hf.resolve_dtype(None) is torch.float32
    with pytest.raises(LmlabError) as e:
        hf.resolve_dtype("float8")
    assert "unknown dtype" in _one_line(e)
    with pytest.raises(LmlabError) as e:
        load_model(llama_folder[0], device="warp-drive")
    assert "unknown device" in _one_line(e)
