"""The real OpenAI-compatible client against a loopback server that injects faults."""

from __future__ import annotations

import asyncio
import time

import pytest

from core.errors import LLMError, OptionError
from core.llm import ChatRequest, SamplingParams, make_backend, parse_spec
from core.llm.accounting import Budget, Meter, Price, cache_key, parse_budget
from core.llm.base import LLMRequestError
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


@pytest.mark.parametrize("fault", ["429:0.05", "500", "drop", "badjson", "reset"])
async def test_transient_faults_are_retried(server: LoopbackLLM, fault: str) -> None:
    server.add_faults(fault, fault)
    result, backend = await ask(server)
    assert result.text == "answer to hello"  # type: ignore[attr-defined]
    assert backend.retries_done == 2
    assert len(server.requests) == 3


async def test_retry_after_is_honoured(server: LoopbackLLM) -> None:
    server.add_faults("429:0.4")
    started = time.perf_counter()
    await ask(server)
    assert time.perf_counter() - started >= 0.4


async def test_slow_answer_past_timeout_is_retried(server: LoopbackLLM) -> None:
    server.add_faults("slow:3")
    result, backend = await ask(server, timeout_s=0.3)
    assert result.text == "answer to hello" and backend.retries_done == 1  # type: ignore[attr-defined]


async def test_retries_run_out_into_one_llm_error(server: LoopbackLLM) -> None:
    server.add_faults(*["500"] * 10)
    with pytest.raises(LLMError, match="gave up after 4 attempts"):
        await ask(server)


async def test_client_errors_are_not_retried_and_never_show_the_key(
    server: LoopbackLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOOP_KEY", "sk-secret-123")
    server.add_faults("401")
    with pytest.raises(LLMError) as caught:
        await ask(server, api_key_env="LOOP_KEY")
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


# ---- the transport: probed defects of a hand-written client, as kinds ----------------------------

@pytest.mark.parametrize("framing", ["103", "gzip", "chunkext", "sse"])
async def test_answers_in_every_framing_are_read_first_time(server: LoopbackLLM, framing: str) -> None:
    server.add_faults(framing)
    result, backend = await ask(server)
    assert result.text == "answer to hello" and result.finish_reason == "stop"  # type: ignore[attr-defined]
    assert result.prompt_tokens >= 1  # type: ignore[attr-defined]
    assert backend.stats.attempts == 1 == len(server.requests) and backend.stats.retries == 0


async def test_http2_only_server_fails_fast_with_a_clear_error(server: LoopbackLLM) -> None:
    server.add_faults("h2")
    started = time.perf_counter()
    with pytest.raises(LLMRequestError) as caught:
        await ask(server, timeout_s=20.0)
    assert time.perf_counter() - started < 5  # not the 20 s read timeout, and never retried
    assert caught.value.kind == "protocol" and "HTTP/2" in str(caught.value)
    assert len(server.requests) == 1


async def test_bad_chunk_size_fails_the_request_with_one_error(server: LoopbackLLM) -> None:
    server.add_faults("badchunk")
    backend = backend_for(server)
    try:
        with pytest.raises(LLMRequestError, match="a malformed HTTP answer: Chunk size") as caught:
            await backend.chat(REQUEST)
        assert caught.value.kind == "protocol" and backend.stats.attempts == 1
        assert (await backend.chat(REQUEST)).text == "answer to hello"  # the backend is still usable
    finally:
        await backend.aclose()


async def test_ipv6_host_and_base_url_query_are_kept() -> None:
    with LoopbackLLM(lambda messages: "v6", host="::1") as server:
        backend = OpenAIChatBackend("m", server.base_url + "?api-version=2024-06-01", retry=FAST_RETRY)
        try:
            result = await backend.chat(REQUEST)
        finally:
            await backend.aclose()
    assert result.text == "v6"
    head = server.heads[0]
    assert head["target"] == "/v1/chat/completions?api-version=2024-06-01"
    assert head["host"] == f"[::1]:{server.port}"
    assert head["user-agent"].startswith("codefavor-workbench/") and "gzip" in head["accept-encoding"]


def test_spec_keeps_a_url_query_and_refuses_near_misses() -> None:
    spec = parse_spec("openai:gpt-4o@https://x.example/openai/deployments/d?api-version=2024-06-01&concurrency=8")
    assert spec.base_url == "https://x.example/openai/deployments/d?api-version=2024-06-01"
    assert spec.options == {"concurrency": "8"}
    with pytest.raises(OptionError, match="did you mean 'concurrency'"):
        parse_spec("openai:m@http://127.0.0.1:8000/v1?concurency=8")
    with pytest.raises(OptionError, match="timeout must be a positive"):
        make_backend("openai:m@http://127.0.0.1:8000/v1?timeout=0")


async def test_connect_and_read_timeouts_are_separate(server: LoopbackLLM) -> None:
    server.add_faults("slow:0.6")  # longer than the connect timeout, shorter than the read timeout
    result, backend = await ask(server, connect_timeout_s=0.2, timeout_s=3.0)
    assert result.text == "answer to hello" and backend.stats.retries == 0  # type: ignore[attr-defined]


async def test_answers_over_the_size_cap_are_refused(server: LoopbackLLM) -> None:
    big = LoopbackLLM(lambda messages: "x" * 300_000).start()
    try:
        for framing in ("", "gzip"):  # a gzip body is capped on its decoded size
            if framing:
                big.add_faults(framing)
            backend = OpenAIChatBackend("m", big.base_url, retry=FAST_RETRY, max_response_bytes=100_000)
            try:
                with pytest.raises(LLMRequestError) as caught:
                    await backend.chat(REQUEST)
            finally:
                await backend.aclose()
            assert caught.value.kind == "too_large" and "100,000-byte cap" in str(caught.value)
        assert len(big.requests) == 2  # never retried
    finally:
        big.stop()


async def test_connection_refused_is_retried_then_one_error_with_the_cause() -> None:
    backend = OpenAIChatBackend("m", "http://127.0.0.1:9/v1", retry=FAST_RETRY)
    try:
        with pytest.raises(LLMRequestError) as caught:
            await backend.chat(REQUEST)
    finally:
        await backend.aclose()
    assert caught.value.kind == "connect" and caught.value.retryable
    assert "Connection refused" in str(caught.value) and "gave up after 4 attempts" in str(caught.value)
    assert backend.stats.attempts == 4 and backend.stats.retries == 3 and backend.stats.failures == {"connect": 4}


@pytest.mark.parametrize("status", ["400", "401", "403", "404", "422", "redirect"])
async def test_client_errors_are_never_retried(server: LoopbackLLM, status: str) -> None:
    server.add_faults(status)
    with pytest.raises(LLMRequestError) as caught:
        await ask(server)
    assert len(server.requests) == 1 and not caught.value.retryable
    assert caught.value.kind == "http_4xx"


@pytest.mark.parametrize("status", ["429", "500", "502", "503", "504", "408"])
async def test_transient_statuses_are_retried_and_counted(server: LoopbackLLM, status: str) -> None:
    server.add_faults(status, status)
    result, backend = await ask(server)
    assert result.text == "answer to hello"  # type: ignore[attr-defined]
    kind = "http_429" if status == "429" else "http_5xx" if status.startswith("5") else "http_4xx"
    assert backend.stats.failures == {kind: 2} and backend.stats.attempts == len(server.requests) == 3


async def test_error_object_in_a_200_is_reported_verbatim_and_not_retried(server: LoopbackLLM) -> None:
    server.add_faults("error200:404")
    with pytest.raises(LLMRequestError) as caught:
        await ask(server)
    assert "The model `loop-model` does not exist." in str(caught.value)
    assert caught.value.kind == "error_body" and len(server.requests) == 1


async def test_transient_error_object_in_a_200_is_retried(server: LoopbackLLM) -> None:
    server.add_faults("error200:503")
    result, backend = await ask(server)
    assert result.text == "answer to hello" and backend.stats.failures == {"error_body": 1}  # type: ignore[attr-defined]


async def test_web_page_in_a_200_is_not_retried(server: LoopbackLLM) -> None:
    server.add_faults("html")
    with pytest.raises(LLMRequestError, match="not a chat-completions answer"):
        await ask(server)
    assert len(server.requests) == 1


async def test_error_detail_is_sanitized() -> None:
    hostile = LoopbackLLM().start()
    try:
        hostile.add_faults("error200:404")  # its message names the model
        hostile.responder = lambda messages: "unused"
        backend = OpenAIChatBackend("m\x1b[2J", hostile.base_url, retry=FAST_RETRY)
        try:
            with pytest.raises(LLMRequestError) as caught:
                await backend.chat(REQUEST)
        finally:
            await backend.aclose()
    finally:
        hostile.stop()
    assert "\x1b" not in str(caught.value) and "m\u241b[2J` does not exist" in str(caught.value)


@pytest.mark.parametrize("variable", ["ALL_PROXY", "HTTP_PROXY", "all_proxy"])
async def test_environment_proxies_are_used(server: LoopbackLLM, monkeypatch: pytest.MonkeyPatch, variable: str) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    # The loopback server plays the proxy: the target host does not exist, so only the proxy can answer.
    monkeypatch.setenv(variable, f"http://127.0.0.1:{server.port}")
    backend = OpenAIChatBackend("m", "http://llm.invalid:8000/v1", retry=FAST_RETRY)
    try:
        result = await backend.chat(REQUEST)
    finally:
        await backend.aclose()
    assert result.text == "answer to hello"
    assert server.heads[0]["target"] == "http://llm.invalid:8000/v1/chat/completions"


async def test_no_proxy_and_unsupported_proxies(server: LoopbackLLM, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ALL_PROXY", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    result, _ = await ask(server)
    assert result.text == "answer to hello"  # type: ignore[attr-defined]
    monkeypatch.delenv("NO_PROXY")
    monkeypatch.setenv("ALL_PROXY", "socks5://user:secret@127.0.0.1:1080")
    with pytest.raises(LLMError, match="only http:// proxies") as caught:
        OpenAIChatBackend("m", server.base_url)
    assert "secret" not in str(caught.value)


# ---- answers: reasoning set aside, truncation reported ------------------------------------------

@pytest.mark.parametrize("framing", ["", "sse"])
async def test_reasoning_field_and_think_blocks_are_set_aside(framing: str) -> None:
    answers = iter([
        {"content": "[NO] Stylistic only.", "reasoning_content": "Maybe [YES]? No."},
        "<think>\nThe change looks good. [YES]\n</think>\n[NO] Stylistic only.",
        {"content": "Okay, thinking. [YES]\n</think>\n\n[NO] Stylistic only."},
    ])
    with LoopbackLLM(lambda messages: next(answers)) as server:
        backend = backend_for(server)
        try:
            for _ in range(3):
                if framing:
                    server.add_faults(framing)
                result = await backend.chat(REQUEST)
                assert result.text == "[NO] Stylistic only." and "[YES]" in result.reasoning
        finally:
            await backend.aclose()


@pytest.mark.parametrize("reason", ["length", "max_tokens", "model_length"])
async def test_every_spelling_of_truncation_reads_as_length(reason: str) -> None:
    with LoopbackLLM(lambda messages: {"content": "def f(", "finish_reason": reason}) as server:
        result, _ = await ask(server)
    assert result.finish_reason == "length" and result.truncated  # type: ignore[attr-defined]
