"""`lmlab llm chat` end to end on the embedded model, and every kind of bad input."""

from __future__ import annotations

import json

import pytest

from tests.llm.faults import free_port

HF = "hf:smollm2-135m-instruct"


def test_chat_json_with_the_local_backend(cli, smol_folder) -> None:
    r = cli("llm", "chat", "--model", HF, "--n", "2", "--max-tokens", "4", "--seed", "5", "--json",
            "--logprobs", "Name a prime number.")
    assert r.code == 0, r.err
    out = json.loads(r.out)
    assert set(out) == {"model", "source", "request", "completions", "usage"}
    assert out["source"] == HF and out["request"]["n"] == 2 and out["request"]["seed"] == 5
    assert [c["index"] for c in out["completions"]] == [0, 1]
    for c in out["completions"]:
        assert c["backend"] == "hf" and len(c["logprobs"]) == c["completion_tokens"] <= 4
    assert out["usage"]["completions"] == 2 and out["usage"]["calls"] == 1


def test_chat_plain_output_record_replay_and_run_accounting(cli, smol_folder, tmp_path) -> None:
    rec, run = tmp_path / "calls.jsonl", tmp_path / "run"
    args = ["--n", "2", "--max-tokens", "3", "--temperature", "0.5", "--seed", "1", "--system", "Be brief."]
    live = cli("llm", "chat", "--model", HF, *args, "--record", rec, "--run", run, "Hello")
    assert live.code == 0, live.err
    assert "--- sample 0" in live.out and "--- sample 1" in live.out
    assert f"[{HF}: 2 completion(s)" in live.err
    usage = json.loads((run / "llm_usage.json").read_text())
    assert usage["calls"] == 1 and usage["completions"] == 2
    replay = cli("llm", "chat", "--model", f"replay:{rec}", *args, "Hello")
    assert replay.code == 0, replay.err
    assert replay.out == live.out  # same texts, replayed offline
    raw = cli("llm", "chat", "--model", f"replay:{rec}", *args[:-2], "--raw", "Hello")
    assert raw.code == 2 and "replay miss" in raw.err  # a raw prompt is another request


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "vllm:x"], "unknown LLM backend 'vllm'"),
        (["--model", "openai:m@localhost:8000"], "must be a URL"),
        (["--model", "replay:/no/such/file.jsonl"], "replay file not found: /no/such/file.jsonl"),
        (["--model", "hf:/no/such/model"], "model folder not found: /no/such/model"),
        (["--n", "0"], "n must be an integer >= 1"),
        (["--temperature", "-1"], "temperature must be a number in [0, 100]"),
        (["--raw", "--system", "x"], "--system needs a chat request"),
        (["--timeout", "3"], "--timeout and --retries apply to openai: backends only"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(cli, args, message) -> None:
    r = cli("llm", "chat", *args, "Hi")
    assert r.code == 2
    assert message in r.err and r.err.count("\n") == 1 and r.out == ""


def test_unreachable_server_writes_nothing(cli, tmp_path) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    rec, run = tmp_path / "calls.jsonl", tmp_path / "run"
    r = cli("llm", "chat", "--model", f"openai:m@{url}", "--retries", "0", "--record", rec, "--run", run, "Hi")
    assert r.code == 2 and r.err.count("\n") == 1
    assert f"server at {url}: connection failed" in r.err and "after 1 attempt," in r.err
    assert not rec.exists() and not run.exists()
