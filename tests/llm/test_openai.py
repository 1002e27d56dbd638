"""The OpenAI-compatible backend against a real `transformers serve` on loopback, with faults
injected by a loopback proxy (429/500 to the first calls) and a server that never answers."""

from __future__ import annotations

import json
import time

import pytest

from lmlab.errors import LmlabError
from lmlab.llm import Request, get_backend, sample_seed
from lmlab.llm.openai_api import OpenAIBackend
from tests.llm.faults import FaultProxy, HtmlServer, StallServer, free_port

Q = "What is the capital of France?"
FAST = {"backoff": 0.02, "max_backoff": 0.1}


def test_chat_and_completion_calls(served, hf) -> None:
    b = get_backend(served.spec())
    chat, raw = b.generate([
        Request.chat(Q, max_tokens=8, temperature=0.0),
        Request(prompt="The capital of France is", max_tokens=6, temperature=0.0, stop=["."]),
    ])
    c, r = chat[0], raw[0]
    assert (c.backend, c.model, r.backend) == ("openai", served.model, "openai")
    assert c.prompt_tokens == 37 and 0 < c.completion_tokens <= 8 and c.latency_s > 0
    assert r.text == " Paris" and r.finish_reason == "stop"
    # The served model is the embedded model: greedy answers agree with the local backend.
    local = hf.generate([Request.chat(Q, max_tokens=8, temperature=0.0)])[0][0]
    assert c.text == local.text and c.prompt_tokens == local.prompt_tokens
    assert b.usage.totals["http_calls"] == 2 and b.usage.totals["completions"] == 2
    b.close()


def test_n_falls_back_to_separate_calls_and_never_sends_best_of(served) -> None:
    with FaultProxy(served.root) as proxy:
        b = OpenAIBackend(served.model, proxy.url)
        out = b.generate([Request.chat(Q, n=3, max_tokens=3, seed=7)])[0]
        assert [c.index for c in out] == [0, 1, 2] and all(c.text for c in out)
        assert [c.seed for c in out] == [7, sample_seed(7, 1), sample_seed(7, 2)]
        assert b.n_supported is False  # transformers serve ignores n: learned once
        first, *rest = proxy.bodies
        assert first["n"] == 3 and first["seed"] == 7
        assert [x.get("n") for x in rest] == [None, None]
        assert sorted(x["seed"] for x in rest) == sorted([sample_seed(7, 1), sample_seed(7, 2)])
        b.generate([Request.chat(Q, n=2, max_tokens=2)])  # now straight to one call per sample
        assert len(proxy.bodies) == 5 and all("n" not in x for x in proxy.bodies[3:])
        assert all("best_of" not in x for x in proxy.bodies)
        assert all("seed" not in x for x in proxy.bodies[3:])  # no seed given, none sent
        assert b.usage.totals["http_calls"] == 5 and b.usage.totals["completions"] == 5


def test_concurrency_is_limited(served) -> None:
    with FaultProxy(served.root, delay=0.3) as proxy:  # slow answers: calls overlap for sure
        b = OpenAIBackend(served.model, proxy.url, concurrency=2)
        out = b.generate([Request(prompt=f"{k} + {k} =", max_tokens=2, temperature=0.0) for k in range(5)])
        assert len(out) == 5 and proxy.posts == 5
        assert proxy.max_inflight == 2


def test_record_then_replay_offline(served, tmp_path) -> None:
    path = tmp_path / "served.jsonl"
    live_backend = get_backend(served.spec(), record=path)
    reqs = [Request.chat(Q, n=2, max_tokens=4, seed=3), Request(prompt="Hello,", max_tokens=3, temperature=0.0)]
    live = live_backend.generate(reqs)
    replayed = get_backend(f"replay:{path}").generate(reqs)
    assert replayed == live
    assert replayed[0][0].backend == "openai" and replayed[0][0].model == served.model
    with pytest.raises(LmlabError, match="replay miss"):
        get_backend(f"replay:{path}").generate([Request.chat(Q, n=2, max_tokens=4, seed=4)])


def test_cli_chat_returns_n_completions(served, cli) -> None:
    r = cli("llm", "chat", "--model", served.spec(), "--n", "4", "--max-tokens", "4", "--json", "Name a color.")
    assert r.code == 0, r.err
    out = json.loads(r.out)
    assert len(out["completions"]) == 4 and [c["index"] for c in out["completions"]] == [0, 1, 2, 3]
    assert all(c["backend"] == "openai" and c["text"] for c in out["completions"])
    assert out["usage"]["completions"] == 4 and out["usage"]["http_calls"] == 4


@pytest.mark.parametrize("status", [429, 500, 503])
def test_transient_errors_are_retried(served, status) -> None:
    with FaultProxy(served.root, status=status, fail_first=2, retry_after=0) as proxy:
        b = OpenAIBackend(served.model, proxy.url, max_retries=3, **FAST)
        c = b.generate([Request(prompt="Hello,", max_tokens=2, temperature=0.0)])[0][0]
        assert c.text
        assert proxy.statuses == [status, status, 200]
        assert b.usage.totals["retries"] == 2 and b.usage.totals["http_calls"] == 3


def test_persistent_errors_end_after_bounded_retries(served) -> None:
    with FaultProxy(served.root, status=500, fail_first=10**6) as proxy:
        b = OpenAIBackend(served.model, proxy.url, max_retries=2, **FAST)
        with pytest.raises(LmlabError) as e:
            b.generate([Request.chat("Hi", max_tokens=2)])
        assert proxy.posts == 3
    msg = str(e.value)
    assert msg.startswith(f"OpenAI-compatible server at {proxy.url}: HTTP 500 (injected failure 3)")
    assert "after 3 attempts" in msg and "chat 'Hi'" in msg and "\n" not in msg


def test_client_errors_are_not_retried(served) -> None:
    with FaultProxy(served.root) as proxy:
        b = OpenAIBackend("no-such-model", proxy.url, max_retries=3, **FAST)
        with pytest.raises(LmlabError, match=r"rejected the request \(HTTP 400: Server is pinned to") as e:
            b.generate([Request.chat("Hi", max_tokens=2)])
        assert proxy.posts == 1 and "\n" not in str(e.value)


def test_a_stalled_server_times_out() -> None:
    with StallServer() as stall:
        b = OpenAIBackend("m", stall.url, timeout=0.5, max_retries=1, **FAST)
        start = time.monotonic()
        with pytest.raises(LmlabError) as e:
            b.generate([Request.chat("Hi")])
        assert time.monotonic() - start < 5
        assert stall.requests == 2
    assert f"server at {stall.url}: no answer within the 0.5 s timeout, after 2 attempts" in str(e.value)


def test_an_unreachable_server_is_one_line_with_the_url() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    b = OpenAIBackend("m", url, max_retries=1, **FAST)
    with pytest.raises(LmlabError) as e:
        b.generate([Request.chat("Hi")])
    msg = str(e.value)
    assert msg.startswith(f"OpenAI-compatible server at {url}: connection failed (")
    assert "after 2 attempts" in msg and "\n" not in msg
    assert b.usage.totals["calls"] == 0  # a failed call is not accounted as done


def test_a_server_that_is_not_openai_compatible_is_named() -> None:
    with HtmlServer() as html:
        b = OpenAIBackend("m", html.url, max_retries=0)
        with pytest.raises(LmlabError) as e:
            b.generate([Request.chat("Hi")])
    assert f"{html.url} did not answer like an OpenAI-compatible server (got str: <html>" in str(e.value)


def test_backoff_is_exponential_with_full_jitter_and_honours_retry_after() -> None:
    b = OpenAIBackend("m", "http://127.0.0.1:9/v1", backoff=0.5, max_backoff=4.0)
    for attempt, cap in [(0, 0.5), (1, 1.0), (2, 2.0), (3, 4.0), (6, 4.0)]:
        delays = [b._delay(attempt, None) for _ in range(200)]
        assert all(0 <= d <= cap for d in delays) and max(delays) > cap / 2
    assert b._delay(0, 3.0) >= 3.0 and b._delay(0, 100.0) == 4.0


def test_hidden_states_need_the_local_backend() -> None:
    b = OpenAIBackend("m", "http://127.0.0.1:9/v1")
    with pytest.raises(LmlabError, match="hidden states need the local hf backend"):
        b.generate([Request.chat("Hi", hidden_layer=3)])
