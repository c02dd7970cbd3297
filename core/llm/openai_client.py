"""An OpenAI-compatible chat client: bounded async concurrency, timeouts, jittered retries."""

from __future__ import annotations

import asyncio
import email.utils
import json
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from core.errors import LLMError
from core.llm.base import ChatRequest, ChatResult
from core.llm.http1 import ConnectionDropped, Http1Pool

_HAS_TIMEOUT = hasattr(asyncio, "timeout")
if TYPE_CHECKING:
    import httpx

RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524})


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


class _Retryable(Exception):
    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class OpenAIChatBackend:
    """Talks to any server speaking the OpenAI chat-completions protocol (vLLM, SGLang, hosted APIs)."""

    def __init__(
        self,
        model: str,
        base_url: str,
        *,
        api_key_env: str = "OPENAI_API_KEY",
        concurrency: int = 32,
        timeout_s: float = 120.0,
        retry: RetryPolicy | None = None,
        seed: int | None = None,
        transport: str = "auto",
    ) -> None:
        self.model_name = model
        self.base_url = base_url.rstrip("/")
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self.retry = retry or RetryPolicy()
        self.retries_done = 0
        self._rng = random.Random(seed)
        self._semaphore = asyncio.Semaphore(concurrency)
        headers = {"Content-Type": "application/json"}
        api_key = os.environ.get(api_key_env, "")
        if api_key:  # the key lives in this header only: never in the store, logs or errors
            headers["Authorization"] = f"Bearer {api_key}"
        self._pool: Http1Pool | None = None
        self._client: httpx.AsyncClient | None = None
        if transport == "auto":
            transport = "httpx" if _proxied(self.base_url) else "http1"
        if transport == "http1":
            try:
                self._pool = Http1Pool(self.base_url, max_connections=concurrency, headers=headers)
            except ValueError:
                raise LLMError(f"the API key in ${api_key_env} holds a line break; fix the variable") from None
        else:
            # Deferred: importing httpx pulls in rich, which core must not load.
            import httpx

            self._client = httpx.AsyncClient(
                base_url=self.base_url,
                headers=headers,
                timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 10.0)),
                limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
            )

    def _payload(self, request: ChatRequest) -> dict[str, Any]:
        params = request.params
        payload: dict[str, Any] = {
            "model": self.model_name,
            "messages": [dict(message) for message in request.messages],
            "max_tokens": params.max_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
        }
        if params.seed is not None:
            payload["seed"] = params.seed
        if params.stop:
            payload["stop"] = list(params.stop)
        return payload

    async def chat(self, request: ChatRequest) -> ChatResult:
        """Answer one chat, retrying transient failures; raise LLMError when retries run out."""
        body = json.dumps(self._payload(request)).encode("utf-8")
        async with self._semaphore:
            last_reason = ""
            for attempt in range(self.retry.max_retries + 1):
                started = time.perf_counter()
                try:
                    return await self._send(body, started)
                except _Retryable as exc:
                    last_reason = str(exc)
                    if attempt == self.retry.max_retries:
                        break
                    self.retries_done += 1
                    await asyncio.sleep(self.retry.delay(attempt, exc.retry_after, self._rng))
            raise LLMError(
                f"{self.model_name} at {self.base_url}: gave up after {self.retry.max_retries + 1} "
                f"attempts ({last_reason})"
            )

    async def _send(self, body: bytes, started: float) -> ChatResult:
        status, headers, content = await self._post(body)
        if status in RETRYABLE_STATUS:
            raise _Retryable(f"HTTP {status}", parse_retry_after(headers.get("retry-after")))
        if status >= 400:
            raise LLMError(f"{self.model_name} at {self.base_url}: HTTP {status}: {_error_detail(content)}")
        try:
            data = json.loads(content)
            choice = data["choices"][0]
            text = choice["message"].get("content") or ""
            usage = data.get("usage") or {}
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            raise _Retryable("malformed JSON in the answer") from None
        return ChatResult(
            text=text,
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            latency_s=time.perf_counter() - started,
            finish_reason=str(choice.get("finish_reason") or "stop"),
        )

    async def _post(self, body: bytes) -> tuple[int, dict[str, str], bytes]:
        if self._pool is None:
            return await self._post_httpx(body)
        try:
            if _HAS_TIMEOUT:  # no extra task per request, unlike wait_for
                async with asyncio.timeout(self.timeout_s):  # type: ignore[attr-defined]
                    answer = await self._pool.post("/chat/completions", body)
            else:
                answer = await asyncio.wait_for(self._pool.post("/chat/completions", body), self.timeout_s)
        except (TimeoutError, asyncio.TimeoutError):
            raise _Retryable(f"no answer within {self.timeout_s:g} s") from None
        except (OSError, ConnectionDropped) as exc:
            raise _Retryable(f"connection failed: {type(exc).__name__}") from None
        return answer.status, answer.headers, answer.body

    async def _post_httpx(self, body: bytes) -> tuple[int, dict[str, str], bytes]:
        import httpx

        assert self._client is not None
        try:
            response = await self._client.post("/chat/completions", content=body)
        except httpx.TimeoutException:
            raise _Retryable(f"no answer within {self.timeout_s:g} s") from None
        except httpx.TransportError as exc:
            raise _Retryable(f"connection failed: {type(exc).__name__}") from None
        return response.status_code, dict(response.headers), response.content

    async def chat_many(self, requests: Sequence[ChatRequest]) -> list[ChatResult]:
        """Answer several chats concurrently (bounded by `concurrency`), in order."""
        return list(await asyncio.gather(*(self.chat(request) for request in requests)))

    async def aclose(self) -> None:
        """Close the connection pool."""
        if self._pool is not None:
            await self._pool.aclose()
        if self._client is not None:
            await self._client.aclose()


def _error_detail(content: bytes) -> str:
    try:
        detail = json.loads(content).get("error", {})
        message = detail.get("message") if isinstance(detail, dict) else str(detail)
    except (ValueError, AttributeError):
        message = content.decode("utf-8", errors="replace")
    lines = (message or "").strip().splitlines()
    return lines[0][:200] if lines else "no detail"


def _proxied(base_url: str) -> bool:
    """True when the environment routes this URL through a proxy (only httpx speaks to proxies)."""
    from urllib.request import getproxies, proxy_bypass

    host = urlsplit(base_url).hostname or ""
    scheme = urlsplit(base_url).scheme
    return bool(getproxies().get(scheme)) and not proxy_bypass(host)
