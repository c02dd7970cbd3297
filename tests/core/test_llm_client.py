"""The real OpenAI-compatible client against a loopback server that injects faults."""

from __future__ import annotations

import asyncio
import time

import pytest

from core.errors import LLMError, OptionError
from core.llm import ChatRequest, SamplingParams, make_backend, parse_spec
from core.llm.accounting import Budget, Meter, Price, cache_key, parse_budget
from core.llm.openai_client import OpenAIChatBackend, RetryPolicy, parse_retry_after
from tests.llm_server import LoopbackLLM

FAST_RETRY = RetryPolicy(max_retries=3, base_delay_s=0.01, max_delay_s=0.05)
REQUEST = ChatRequest(({"role": "user", "content": "hello"},), SamplingParams(max_tokens=16))


def backend_for(server: LoopbackLLM, **kwargs: object) -> OpenAIChatBackend:
    options = {"retry": FAST_RETRY, "timeout_s": 2.0, "seed": 1, **kwargs}
    return OpenAIChatBackend("loop-model", server.base_url, **options)  # type: ignore[arg-type]


async def ask(server: LoopbackLLM, request: ChatRequest = REQUEST, **kwargs: object) -> tuple[object, OpenAIChatBackend]:
    backend = backend_for(server, **kwargs)
    try:
        return await backend.chat(request), backend
    finally:
        await backend.aclose()


@pytest.fixture
def server() -> LoopbackLLM:
    with LoopbackLLM(lambda messages: "answer to " + messages[-1]["content"]) as running:
        yield running


async def test_answer_carries_text_usage_latency(server: LoopbackLLM) -> None:
    result, _ = await ask(server)
    assert result.text == "answer to hello"  # type: ignore[attr-defined]
    assert result.prompt_tokens >= 1 and result.completion_tokens >= 1  # type: ignore[attr-defined]
    assert result.latency_s > 0 and result.finish_reason == "stop"  # type: ignore[attr-defined]
    assert server.requests[0]["model"] == "loop-model" and server.requests[0]["max_tokens"] == 16


@pytest.mark.parametrize("transport", ["http1", "httpx"])
@pytest.mark.parametrize("fault", ["429:0.05", "500", "drop", "badjson"])
async def test_transient_faults_are_retried(server: LoopbackLLM, fault: str, transport: str) -> None:
    server.add_faults(fault, fault)
    result, backend = await ask(server, transport=transport)
    assert result.text == "answer to hello"  # type: ignore[attr-defined]
    assert backend.retries_done == 2
    assert len(server.requests) == 3


async def test_retry_after_is_honoured(server: LoopbackLLM) -> None:
    server.add_faults("429:0.4")
    started = time.perf_counter()
    await ask(server)
    assert time.perf_counter() - started >= 0.4


@pytest.mark.parametrize("transport", ["http1", "httpx"])
async def test_slow_answer_past_timeout_is_retried(server: LoopbackLLM, transport: str) -> None:
    server.add_faults("slow:3")
    result, backend = await ask(server, timeout_s=0.3, transport=transport)
    assert result.text == "answer to hello" and backend.retries_done == 1  # type: ignore[attr-defined]


async def test_retries_run_out_into_one_llm_error(server: LoopbackLLM) -> None:
    server.add_faults(*["500"] * 10)
    with pytest.raises(LLMError, match="gave up after 4 attempts"):
        await ask(server)


@pytest.mark.parametrize("transport", ["http1", "httpx"])
async def test_client_errors_are_not_retried_and_never_show_the_key(
    server: LoopbackLLM, monkeypatch: pytest.MonkeyPatch, transport: str
) -> None:
    monkeypatch.setenv("LOOP_KEY", "sk-secret-123")
    server.add_faults("401")
    with pytest.raises(LLMError) as caught:
        await ask(server, api_key_env="LOOP_KEY", transport=transport)
    assert "401" in str(caught.value) and "sk-secret" not in str(caught.value)
    assert server.requests[0]["model"] == "loop-model"
    assert len(server.requests) == 1


@pytest.mark.parametrize("framing", ["chunked", "close"])
async def test_chunked_and_close_delimited_answers(server: LoopbackLLM, framing: str) -> None:
    server.add_faults(framing)
    backend = backend_for(server)
    try:
        first = await backend.chat(REQUEST)
        second = await backend.chat(REQUEST)  # after "close" the pool opens a new connection
    finally:
        await backend.aclose()
    assert first.text == second.text == "answer to hello" and backend.retries_done == 0


async def test_truncated_content_reports_length(server: LoopbackLLM) -> None:
    server.add_faults("truncate")
    result, _ = await ask(server)
    assert result.finish_reason == "length"  # type: ignore[attr-defined]


async def test_concurrency_is_bounded(server: LoopbackLLM) -> None:
    server.delay_s = 0.1
    backend = backend_for(server, concurrency=4)
    started = time.perf_counter()
    results = await backend.chat_many([REQUEST] * 12)
    elapsed = time.perf_counter() - started
    await backend.aclose()
    assert len(results) == 12
    assert elapsed >= 0.3  # 12 requests, 4 at a time, 0.1 s each


def test_retry_after_parsing() -> None:
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=lambda: 1445412470.0) == 10.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_spec_syntax() -> None:
    spec = parse_spec("openai:Qwen/Qwen2.5-Coder-7B@http://127.0.0.1:8000/v1?key_env=MY_KEY&concurrency=64")
    assert (spec.kind, spec.target, spec.base_url) == ("openai", "Qwen/Qwen2.5-Coder-7B", "http://127.0.0.1:8000/v1")
    assert spec.options == {"key_env": "MY_KEY", "concurrency": "64"}
    assert parse_spec("openai:gpt-4o-mini").base_url == "https://api.openai.com/v1"
    assert parse_spec("hf:/models/tiny?batch_size=4").target == "/models/tiny"
    assert parse_spec("vllm:3").target == "3"
    for bad in ("gpt-4o", "openai:", "foo:bar", "openai:m?colour=red"):
        with pytest.raises(OptionError):
            parse_spec(bad)
    backend = make_backend("openai:m@http://127.0.0.1:9/v1?concurrency=3")
    assert backend.model_name == "m" and backend.concurrency == 3  # type: ignore[attr-defined]
    asyncio.run(backend.aclose())
    with pytest.raises(OptionError):
        make_backend("vllm:1")


def test_budget_and_meter() -> None:
    assert parse_budget("50k") == Budget(max_tokens=50_000)
    assert parse_budget("$2.50") == Budget(max_cost=2.5)
    assert parse_budget("3usd") == Budget(max_cost=3.0)
    with pytest.raises(OptionError):
        parse_budget("lots")
    from core.llm.base import ChatResult

    meter = Meter(budget=Budget(max_cost=1.0), prices={"m": Price(1_000_000.0, 0.0)})
    meter.add("m", ChatResult("x", prompt_tokens=1, completion_tokens=5, latency_s=0.1))
    assert meter.cost == pytest.approx(1.0) and meter.tokens == 6 and meter.exhausted()


def test_cache_key_covers_model_version_messages_and_params() -> None:
    messages = ({"role": "user", "content": "hi"},)
    base = cache_key("m", "v1", messages, SamplingParams())
    assert base == cache_key("m", "v1", messages, SamplingParams())
    assert base != cache_key("m2", "v1", messages, SamplingParams())
    assert base != cache_key("m", "v2", messages, SamplingParams())
    assert base != cache_key("m", "v1", ({"role": "user", "content": "hi!"},), SamplingParams())
    assert base != cache_key("m", "v1", messages, SamplingParams(temperature=0.5))
