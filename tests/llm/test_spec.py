"""One string chooses a backend: parsing, normalization, and one-line errors for bad specs."""

from __future__ import annotations

import pytest

from lmlab.errors import LmlabError
from lmlab.llm import Spec, get_backend, parse_spec


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("hf", Spec("hf", "smollm2-135m-instruct")),
        ("hf:", Spec("hf", "smollm2-135m-instruct")),
        ("hf:smollm2-135m-instruct", Spec("hf", "smollm2-135m-instruct")),
        ("HF:/models/my-llama", Spec("hf", "/models/my-llama")),
        ("hf:HuggingFaceTB/SmolLM2-360M-Instruct", Spec("hf", "HuggingFaceTB/SmolLM2-360M-Instruct")),
        ("openai:gpt-4o-mini", Spec("openai", "gpt-4o-mini")),
        ("openai:llama3.2:1b@http://127.0.0.1:11434/v1",
         Spec("openai", "llama3.2:1b", "http://127.0.0.1:11434/v1")),
        ("openai:m@http://localhost:8000", Spec("openai", "m", "http://localhost:8000/v1")),
        ("openai:m@http://localhost:8000/", Spec("openai", "m", "http://localhost:8000/v1")),
        ("openai:org/m@https://api.example.com/api/v1/", Spec("openai", "org/m", "https://api.example.com/api/v1")),
        ("openai:user@corp/model@http://h:1/v1", Spec("openai", "user@corp/model", "http://h:1/v1")),
        ("replay:calls.jsonl", Spec("replay", "calls.jsonl")),
        ("llamacpp:/m/q.gguf", Spec("llamacpp", "/m/q.gguf")),
        ("replay:/tmp/c.jsonl#hf:smollm2-135m-instruct",
         Spec("replay", "/tmp/c.jsonl", source="hf:smollm2-135m-instruct")),
    ],
)
def test_specs_parse(spec: str, expected: Spec) -> None:
    assert parse_spec(spec) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "empty LLM backend spec"),
        ("   ", "empty LLM backend spec"),
        ("vllm:foo", "unknown LLM backend 'vllm'"),
        ("smollm2", "unknown LLM backend 'smollm2'"),
        ("openai:", "names no model"),
        ("openai:@http://127.0.0.1:8000/v1", "names no model"),
        ("openai:m@localhost:8000", "must be a URL"),
        ("openai:m@ftp://host/v1", "malformed server URL"),
        ("openai:m@http://", "malformed server URL"),
        ("openai:m@http://host:99999999/v1", "malformed port"),
        ("replay:", "names no file"),
        ("replay:#hf:x", "names no file"),
    ],
)
def test_malformed_specs_are_one_line_errors(spec: str, message: str) -> None:
    with pytest.raises(LmlabError, match=message) as e:
        parse_spec(spec)
    assert "\n" not in str(e.value)
    if "unknown" in message:
        assert "hf:MODEL, llamacpp:MODEL, openai:MODEL@http://HOST:PORT/v1 or replay:FILE" in str(e.value)


def test_unknown_backend_options_are_named() -> None:
    with pytest.raises(LmlabError, match=r"unknown option\(s\) temperature for the openai backend"):
        get_backend("openai:m@http://127.0.0.1:9/v1", temperature=0.5)
    with pytest.raises(LmlabError, match="for the replay backend; it takes none"):
        get_backend("replay:x.jsonl", timeout=3)


def test_missing_models_and_files_are_one_line_errors(tmp_path) -> None:
    with pytest.raises(LmlabError, match="model folder not found"):
        get_backend(f"hf:{tmp_path / 'no-such-model'}")
    with pytest.raises(LmlabError, match="replay file not found"):
        get_backend(f"replay:{tmp_path / 'none.jsonl'}")
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(LmlabError, match="holds no recorded calls"):
        get_backend(f"replay:{tmp_path / 'empty.jsonl'}")


def test_openai_backend_reads_the_key_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("MY_KEY", "sk-test-123")
    b = get_backend("openai:m@http://127.0.0.1:9/v1", api_key_env="MY_KEY")
    assert b.client.api_key == "sk-test-123" and b.base_url == "http://127.0.0.1:9/v1"
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert get_backend("openai:m@http://127.0.0.1:9/v1").client.api_key == "EMPTY"
