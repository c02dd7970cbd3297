"""An OpenAI-compatible chat client on aiohttp: bounded concurrency, separate timeouts, jittered retries.

One `aiohttp.ClientSession` per backend with `TCPConnector(limit=concurrency)`: keep-alive
connections, 1xx interim answers skipped, gzip/deflate bodies decoded, chunked bodies of any
chunk-extension length, IPv6 hosts, the base URL's query (`?api-version=...`) kept on every request.
Proxies come from the environment once per backend (see `environment_proxy`).
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
from yarl import URL

from core.errors import LLMError
from core.llm.answers import error_detail, parse_completion, status_is_retryable
from core.llm.base import CallStats, ChatRequest, ChatResult, LLMRequestError
from core.textsafe import one_line

USER_AGENT = f"codefavor-workbench/0.1 aiohttp/{aiohttp.__version__}"
DEFAULT_MAX_RESPONSE_BYTES = 16 * 1024 * 1024
# Servers close idle keep-alive connections (uvicorn after 5 s); reusing one that old risks a reset.
KEEPALIVE_S = 4.0
# Status, header and chunk-size lines (chunk extensions included) may be this long.
MAX_LINE_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how long to wait between attempts (full-jitter exponential backoff)."""

    max_retries: int = 6
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0
    max_retry_after_s: float = 120.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to wait before attempt `attempt + 1`, honouring a server's Retry-After."""
        backoff = rng.uniform(0, min(self.max_delay_s, self.base_delay_s * 2**attempt))
        if retry_after is not None:
            return min(self.max_retry_after_s, retry_after) + rng.uniform(0, 0.1 * max(retry_after, 0.1))
        return backoff


def parse_retry_after(value: str | None, now: Callable[[], float] = time.time) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None when absent or bad."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - now())


def chat_completions_url(base_url: str) -> URL:
    """`{base_url}/chat/completions`, keeping the base URL's query; raise LLMError for a URL we cannot use."""
    try:
        base = URL(base_url.strip())
    except (ValueError, TypeError):
        raise LLMError(f"base URL {base_url!r} is not a URL") from None
    if base.scheme not in ("http", "https") or not base.host:
        raise LLMError(f"base URL {base_url!r}: expected http://HOST[:PORT]/PATH or https://...")
    return base.with_path(base.path.rstrip("/") + "/chat/completions").with_query(base.query)


def environment_proxy(url: URL) -> str | None:
    """The proxy the environment names for `url`, resolved once: HTTP(S)_PROXY, then ALL_PROXY, unless NO_PROXY.

    aiohttp's own `trust_env` reads HTTP(S)_PROXY and NO_PROXY but not ALL_PROXY, and looks them up
    in a thread on every request; resolving once per backend covers both. aiohttp speaks to
    http:// proxies only (CONNECT tunnels for https targets): a socks or https proxy is refused
    with an LLMError rather than bypassed.
    """
    from urllib.request import getproxies, proxy_bypass

    if url.host is None or proxy_bypass(url.host):
        return None
    proxies = getproxies()
    proxy = proxies.get(url.scheme or "http") or proxies.get("all")
    if not proxy:
        return None
    scheme = URL(proxy).scheme
    if scheme != "http":
        raise LLMError(f"proxy {URL(proxy).with_user(None).with_password(None)} from the environment: only "
                       "http:// proxies are supported (no socks or https proxies); set HTTPS_PROXY to an "
                       "http:// proxy or add the host to NO_PROXY")
    return proxy


class OpenAIChatBackend:
    """Talks to any server speaking the OpenAI chat-completions protocol (vLLM, SGLang, llama.cpp, hosted APIs)."""

    def __init__(
        self,
        model: str,
        base_url: str,
        *,
        api_key_env: str = "OPENAI_API_KEY",
        concurrency: int = 32,
        timeout_s: float = 120.0,
        connect_timeout_s: float = 10.0,
        retry: RetryPolicy | None = None,
        seed: int | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        self.model_name = model
        self.base_url = base_url.rstrip("/")
        self.endpoint = chat_completions_url(base_url)
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.max_response_bytes = max_response_bytes
        self.retry = retry or RetryPolicy()
        self.stats = CallStats()
        self._rng = random.Random(seed)
        self._semaphore = asyncio.Semaphore(concurrency)
        self._proxy = environment_proxy(self.endpoint)
        self._where = one_line(f"{model} at {self.endpoint.with_query(None).with_user(None).with_password(None)}")
        self._headers = {"Content-Type": "application/json", "Accept": "application/json", "User-Agent": USER_AGENT}
        api_key = os.environ.get(api_key_env, "")
        if any(ch in api_key for ch in "\r\n\x00"):
            raise LLMError(f"the API key in ${api_key_env} holds a line break; fix the variable")
        if api_key:  # the key lives in this header only: never in the store, logs or errors
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._session: aiohttp.ClientSession | None = None

    @property
    def retries_done(self) -> int:
        """Retries sent so far."""
        return self.stats.retries

    def _session_now(self) -> aiohttp.ClientSession:
        # Created on first use: a session belongs to the event loop that is running.
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self.concurrency, limit_per_host=0, keepalive_timeout=KEEPALIVE_S,
                                             ttl_dns_cache=300)
            self._session = aiohttp.ClientSession(
                connector=connector,
                headers=self._headers,
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=self.connect_timeout_s,
                                              sock_read=self.timeout_s),
                max_line_size=MAX_LINE_BYTES,
                max_field_size=MAX_LINE_BYTES,
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self._session

    def _payload(self, request: ChatRequest) -> dict[str, Any]:
        params = request.params
        payload: dict[str, Any] = {
            "model": self.model_name,
            "messages": [dict(message) for message in request.messages],
            "max_tokens": params.max_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "stream": False,
        }
        if params.seed is not None:
            payload["seed"] = params.seed
        if params.stop:
            payload["stop"] = list(params.stop)
        return payload

    async def chat(self, request: ChatRequest) -> ChatResult:
        """Answer one chat, retrying what may pass later; raise LLMRequestError when it cannot be answered.

        Retried: 408/409/425/429 and 5xx (but 501/505), timeouts, refused or reset connections, and
        bodies cut short. Not retried: other 4xx, an error object the server calls permanent, an
        answer that is not HTTP/1.x or exceeds `max_response_bytes`.
        """
        body = json.dumps(self._payload(request)).encode("utf-8")
        async with self._semaphore:
            for attempt in range(self.retry.max_retries + 1):
                started = time.perf_counter()
                self.stats.attempts += 1
                try:
                    return await self._send(body, started)
                except _Retryable as exc:
                    self.stats.failed(exc.error.kind)
                    if attempt == self.retry.max_retries:
                        raise LLMRequestError(
                            f"{self._where}: gave up after {attempt + 1} attempt{'s' if attempt else ''} ({exc.error})",
                            kind=exc.error.kind, retryable=True,
                        ) from None
                    self.stats.retries += 1
                    await asyncio.sleep(self.retry.delay(attempt, exc.retry_after, self._rng))
                except LLMRequestError as exc:
                    self.stats.failed(exc.kind)
                    raise LLMRequestError(f"{self._where}: {exc}", kind=exc.kind, retryable=False) from None
        raise AssertionError("unreachable")

    async def _send(self, body: bytes, started: float) -> ChatResult:
        session = self._session_now()
        try:
            post = session.post(self.endpoint, data=body, proxy=self._proxy, allow_redirects=False)
            async with post as response:
                status = response.status
                content = await self._read_capped(response)
                headers = response.headers
        except (asyncio.TimeoutError, aiohttp.ServerTimeoutError) as exc:
            connecting = isinstance(exc, aiohttp.ConnectionTimeoutError)
            what = f"no connection within {self.connect_timeout_s:g} s" if connecting \
                else f"no answer within {self.timeout_s:g} s"
            raise _Retryable(LLMRequestError(what, kind="timeout", retryable=True)) from None
        except aiohttp.ClientProxyConnectionError as exc:
            error = LLMRequestError(f"proxy unreachable: {exc.os_error}", kind="proxy", retryable=True)
            raise _Retryable(error) from None
        except aiohttp.ClientSSLError as exc:
            raise LLMRequestError(f"TLS failed: {exc}", kind="tls") from None
        except aiohttp.ClientConnectorError as exc:
            errno = exc.os_error.errno
            reason = os.strerror(errno) if errno else _first_line(exc.os_error)
            raise _Retryable(LLMRequestError(f"connection failed: {reason} ({exc.host}:{exc.port})",
                                             kind="connect", retryable=True)) from None
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, OSError) as exc:  # reset, cut short
            raise _Retryable(LLMRequestError(f"connection failed: {type(exc).__name__}: {_first_line(exc)}",
                                             kind="connect", retryable=True)) from None
        except aiohttp.ClientResponseError as exc:  # the answer is not well-formed HTTP/1.x
            raise LLMRequestError(_protocol_message(exc), kind="protocol") from None
        except aiohttp.ClientError as exc:
            raise LLMRequestError(f"{type(exc).__name__}: {_first_line(exc)}", kind="protocol") from None
        if 200 <= status < 300:
            try:
                completion = parse_completion(content, headers.get("Content-Type", ""))
            except LLMRequestError as exc:
                if exc.retryable:
                    raise _Retryable(exc) from None
                raise
            return ChatResult(
                text=completion.text, prompt_tokens=completion.prompt_tokens,
                completion_tokens=completion.completion_tokens, latency_s=time.perf_counter() - started,
                finish_reason=completion.finish_reason, reasoning=completion.reasoning,
            )
        kind = "http_429" if status == 429 else "http_5xx" if status >= 500 else "http_4xx"
        if 300 <= status < 400:
            detail = f"redirected to {headers.get('Location', '?')}: use that URL as the base URL"
        else:
            detail = error_detail(content)
        error = LLMRequestError(f"HTTP {status}: {detail}", kind=kind, retryable=status_is_retryable(status))
        if error.retryable:
            raise _Retryable(error, _retry_after(headers))
        raise error

    async def _read_capped(self, response: aiohttp.ClientResponse) -> bytes:
        cap = self.max_response_bytes
        length = response.content_length
        if length is not None and "Content-Encoding" not in response.headers:
            if length > cap:
                raise LLMRequestError(f"the answer is {length:,} bytes, over the {cap:,}-byte cap", kind="too_large")
            return await response.read()
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.content.iter_chunked(64 * 1024):  # decoded bytes: a gzip bomb stops here too
            size += len(chunk)
            if size > cap:
                raise LLMRequestError(f"the answer is over the {cap:,}-byte cap", kind="too_large")
            chunks.append(chunk)
        return b"".join(chunks)

    async def chat_many(self, requests: Sequence[ChatRequest]) -> list[ChatResult]:
        """Answer several chats concurrently (bounded by `concurrency`), in order."""
        return list(await asyncio.gather(*(self.chat(request) for request in requests)))

    async def aclose(self) -> None:
        """Close the session and its connections."""
        if self._session is not None and not self._session.closed:
            await self._session.close()


class _Retryable(Exception):
    def __init__(self, error: LLMRequestError, retry_after: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


def _retry_after(headers: Any) -> float | None:
    milliseconds = headers.get("retry-after-ms")
    if milliseconds:
        try:
            return max(0.0, float(milliseconds) / 1000)
        except ValueError:
            pass
    return parse_retry_after(headers.get("Retry-After"))


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return one_line(lines[0], 200) if lines else type(exc).__name__


def _protocol_message(exc: aiohttp.ClientResponseError) -> str:
    message = str(exc.message)
    if "\\x00\\x00" in message or "PRI * HTTP/2" in message:
        return ("the server answered with HTTP/2 frames (an HTTP/2-only endpoint); this client speaks "
                "HTTP/1.1: use the server's HTTP/1.1 port or an HTTP/1.1 proxy in front of it")
    return f"a malformed HTTP answer: {one_line(' '.join(message.split()), 200)}"
