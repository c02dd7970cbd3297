"""Read what an OpenAI-compatible server sent back, in every framing such servers are known to use.

- a chat completion (`choices[0].message.content`, or a legacy `choices[0].text`; content as a
  string or as a list of typed parts);
- server-sent events (`data: {...}` chunks ending `data: [DONE]`), which some servers and proxies
  send even when `stream` is false, and newline-delimited JSON chunks;
- an error object, whatever the HTTP status: OpenAI's `{"error": {...}}`, vLLM's and SGLang's
  `{"object": "error", "message": ..., "code": 404}`, FastAPI's `{"detail": ...}`, or an error
  event inside a stream.

Reasoning is set aside: a `reasoning_content` / `reasoning` field, thinking parts of the content,
and `<think>` blocks in the text (core.llm.reasoning).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from core.llm.base import LLMRequestError, normalise_finish_reason
from core.llm.reasoning import split_reasoning
from core.textsafe import one_line

_DETAIL_CHARS = 300
# Words in an error object's type or code that mean "try again later".
_TRANSIENT_WORDS = ("rate_limit", "rate limit", "overloaded", "server_error", "timeout", "unavailable",
                    "temporarily", "try again")


@dataclass(frozen=True, slots=True)
class Completion:
    """The parts of an answer the workbench uses."""

    text: str
    reasoning: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int


def status_is_retryable(status: int) -> bool:
    """Whether an HTTP status may succeed on a later attempt: 408, 409, 425, 429 and 5xx but 501 and 505."""
    return status in (408, 409, 425, 429) or (status >= 500 and status not in (501, 505))


def error_detail(body: bytes, limit: int = _DETAIL_CHARS) -> str:
    """The server's own error message from a body (an error object's message, else the text), one line."""
    text = body.decode("utf-8", errors="replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        found = _error_of(data)
        if found is not None:
            return one_line(found[0], limit)
    return one_line(text, limit) if text else "no detail"


def parse_completion(body: bytes, content_type: str = "") -> Completion:
    """Read a 2xx answer; raise LLMRequestError (kind error_body or malformed) for anything else."""
    text = body.decode("utf-8", errors="replace").lstrip("\ufeff")
    stripped = text.lstrip()
    if stripped.startswith(("data:", "event:", "id:", ":")):
        return _from_chunks(_sse_payloads(text))
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        lines = [line for line in text.splitlines() if line.strip()]
        if len(lines) > 1 and exc.msg == "Extra data":
            return _from_chunks(lines)
        raise _malformed(text, content_type) from None
    if not isinstance(data, dict):
        raise LLMRequestError(f"not a chat-completions answer: {one_line(text, _DETAIL_CHARS)}", kind="malformed")
    _raise_error_object(data)
    return _from_completion(data)


def _malformed(text: str, content_type: str) -> LLMRequestError:
    stripped = text.strip()
    # A JSON body cut short may come whole on the next attempt; a web page or plain text will not.
    looks_cut = stripped.startswith(("{", "[")) and "html" not in content_type.lower()
    kind_of_body = content_type or "no content type"
    what = "an incomplete JSON answer" if looks_cut else f"not a chat-completions answer ({kind_of_body})"
    return LLMRequestError(f"{what}: {one_line(stripped, _DETAIL_CHARS) or 'empty body'}", kind="malformed",
                           retryable=looks_cut)


def _error_of(data: dict[str, Any]) -> tuple[str, Any] | None:
    """(message, code or type) when `data` is an error object, else None."""
    if "choices" in data:
        return None
    if data.get("object") == "error" or (data.get("type") == "error" and "error" not in data):
        return str(data.get("message") or data.get("detail") or "no message"), data.get("code") or data.get("type")
    error = data.get("error")
    if isinstance(error, dict):
        message = error.get("message") or error.get("msg") or json.dumps(error, ensure_ascii=False)
        return str(message), error.get("code") or error.get("type") or error.get("status")
    if isinstance(error, str) and error:
        return error, data.get("code") or data.get("status")
    detail = data.get("detail")
    if detail:
        return (detail if isinstance(detail, str) else json.dumps(detail, ensure_ascii=False)), data.get("code")
    if isinstance(data.get("message"), str) and not data.get("id"):
        return str(data["message"]), data.get("code") or data.get("status")
    return None


def _raise_error_object(data: dict[str, Any]) -> None:
    found = _error_of(data)
    if found is None:
        return
    message, code = found
    code_text = str(code or "").strip()
    if code_text.isdigit():
        retryable = status_is_retryable(int(code_text))
    else:
        retryable = any(word in f"{code_text} {message}".lower() for word in _TRANSIENT_WORDS)
    label = f" {code_text}" if code_text else ""
    raise LLMRequestError(f"the server answered with an error{label}: {one_line(message, _DETAIL_CHARS)}",
                          kind="error_body", retryable=retryable)


def _content_parts(content: Any) -> tuple[str, str]:
    """(text, reasoning) of a message's content: a string or a list of typed parts."""
    if content is None:
        return "", ""
    if isinstance(content, str):
        return content, ""
    if isinstance(content, list):
        texts: list[str] = []
        thoughts: list[str] = []
        for part in content:
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, dict):
                kind = str(part.get("type", "text"))
                value = part.get("text") or part.get("thinking") or part.get("reasoning") or ""
                if isinstance(value, list):  # Mistral's thinking part nests text parts
                    value = "".join(str(p.get("text", "")) for p in value if isinstance(p, dict))
                (thoughts if kind in ("thinking", "reasoning", "redacted_thinking") else texts).append(str(value))
        return "".join(texts), "".join(thoughts)
    raise LLMRequestError(f"the answer's content is a {type(content).__name__}, not text", kind="malformed")


def _reasoning_field(message: dict[str, Any]) -> str:
    for name in ("reasoning_content", "reasoning", "thinking"):
        value = message.get(name)
        if isinstance(value, str) and value:
            return value
    return ""


def _usage(data: dict[str, Any]) -> tuple[int, int]:
    usage = data.get("usage")
    if not isinstance(usage, dict):
        return 0, 0
    prompt = usage.get("prompt_tokens", usage.get("input_tokens"))
    completion = usage.get("completion_tokens", usage.get("output_tokens"))
    try:
        return int(prompt or 0), int(completion or 0)
    except (TypeError, ValueError):
        return 0, 0


def _first_choice(data: dict[str, Any]) -> dict[str, Any]:
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        detail = one_line(json.dumps(data, ensure_ascii=False), _DETAIL_CHARS)
        raise LLMRequestError(f"the answer holds no choices: {detail}", kind="malformed")
    return choices[0]


def _from_completion(data: dict[str, Any]) -> Completion:
    choice = _first_choice(data)
    message = choice.get("message") or choice.get("delta") or {}
    if not isinstance(message, dict):
        raise LLMRequestError("the answer's message is not an object", kind="malformed")
    if message.get("content") is None and isinstance(choice.get("text"), str):
        text, thoughts = choice["text"], ""  # a legacy completions answer
    else:
        text, thoughts = _content_parts(message.get("content"))
    prompt_tokens, completion_tokens = _usage(data)
    return _finish(text, [_reasoning_field(message), thoughts], choice.get("finish_reason"),
                   prompt_tokens, completion_tokens)


def _finish(text: str, reasoning: list[str], finish_reason: Any, prompt_tokens: int,
            completion_tokens: int) -> Completion:
    answer, inline = split_reasoning(text)
    parts = [part for part in (*reasoning, inline) if part]
    return Completion(answer, "\n\n".join(parts), normalise_finish_reason(finish_reason), prompt_tokens,
                      completion_tokens)


def _sse_payloads(text: str) -> list[str]:
    """The data of each server-sent event, in order, up to `[DONE]`."""
    payloads: list[str] = []
    data_lines: list[str] = []
    for line in [*text.splitlines(), ""]:
        if not line.strip():
            if data_lines:
                payload = "\n".join(data_lines)
                data_lines = []
                if payload.strip() == "[DONE]":
                    break
                payloads.append(payload)
            continue
        if line.startswith(":"):
            continue  # an SSE comment (keep-alive)
        field, _, value = line.partition(":")
        if field == "data":
            data_lines.append(value[1:] if value.startswith(" ") else value)
    return payloads


def _from_chunks(payloads: list[str]) -> Completion:
    """Join streamed chunks (SSE data or JSON lines) into one answer."""
    texts: list[str] = []
    thoughts: list[str] = []
    finish_reason: Any = None
    prompt_tokens = completion_tokens = 0
    seen = False
    for payload in payloads:
        try:
            chunk = json.loads(payload)
        except ValueError:
            raise LLMRequestError(f"a streamed chunk is not JSON: {one_line(payload, _DETAIL_CHARS)}",
                                  kind="malformed", retryable=True) from None
        if not isinstance(chunk, dict):
            continue
        _raise_error_object(chunk)
        usage = _usage(chunk)
        if any(usage):
            prompt_tokens, completion_tokens = usage
        choices = chunk.get("choices")
        if not isinstance(choices, list) or not choices:
            continue  # a usage-only chunk
        choice = choices[0] if isinstance(choices[0], dict) else {}
        message = choice.get("delta") or choice.get("message") or {}
        if isinstance(message, dict):
            text, thought = _content_parts(message.get("content"))
            texts.append(text)
            thoughts.extend(part for part in (_reasoning_field(message), thought) if part)
        if isinstance(choice.get("text"), str):
            texts.append(choice["text"])
        finish_reason = choice.get("finish_reason") or finish_reason
        seen = True
    if not seen:
        raise LLMRequestError("a streamed answer without any chunk", kind="malformed", retryable=True)
    if finish_reason is None:
        raise LLMRequestError("a streamed answer that stopped before its end", kind="malformed", retryable=True)
    return _finish("".join(texts), ["".join(thoughts)], finish_reason, prompt_tokens, completion_tokens)
