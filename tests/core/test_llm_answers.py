"""Reading OpenAI-compatible answers: framings, error objects, reasoning set aside."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.llm.answers import error_detail, parse_completion
from core.llm.base import LLMRequestError
from core.llm.reasoning import split_reasoning


def completion(message: dict[str, object], finish: str = "stop") -> bytes:
    return json.dumps({"id": "x", "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                       "usage": {"prompt_tokens": 7, "completion_tokens": 3}}).encode()


@pytest.mark.parametrize(("text", "answer"), [
    ("<think>\nIs it [YES]?\n</think>\n[NO] Stylistic only.", "[NO] Stylistic only."),
    ("<THINK>x</THINK>[NO] a", "[NO] a"),
    ("<thinking>Instruction: draft one</thinking>\n[INSTRUCTION]\nreal", "[INSTRUCTION]\nreal"),
    ("<reasoning>r</reasoning>\n\n<think>more</think>\nfinal", "final"),
    ("Let me think. [YES]\n</think>\n\n[NO] Stylistic only.", "[NO] Stylistic only."),  # template opened it
    ("[THINK]hmm[/THINK][NO] b", "[NO] b"),
    ("\u25c1think\u25b7hmm\u25c1/think\u25b7 [NO] c", "[NO] c"),
    ("<|begin_of_thought|>t<|end_of_thought|>\n<|begin_of_solution|>[NO] d<|end_of_solution|>", "[NO] d"),
    ("<|channel|>analysis<|message|>maybe YES<|end|><|start|>assistant<|channel|>final<|message|>[NO] e<|return|>",
     "[NO] e"),
    ("<think>still thinking when the tokens ran out", ""),
])
def test_reasoning_is_set_aside(text: str, answer: str) -> None:
    final, reasoning = split_reasoning(text)
    assert final == answer and reasoning


@pytest.mark.parametrize("text", [
    "[NO] plain answer",
    "```html\n<think>\n</think>\n```\n[YES] code that prints tags",
    "print('<think>') is fine here\n[YES]",
    "",
])
def test_text_without_reasoning_is_unchanged(text: str) -> None:
    assert split_reasoning(text) == (text, "")


_PLAIN = st.text(alphabet=st.characters(blacklist_characters="<>[]\u25c1|"), max_size=200)


@given(reasoning=_PLAIN, answer=_PLAIN)
def test_a_leading_think_block_never_leaks_and_the_answer_survives(reasoning: str, answer: str) -> None:
    final, aside = split_reasoning(f"<think>{reasoning}</think>\n{answer}")
    assert final == answer.strip() and aside == reasoning.strip()
    assert split_reasoning(answer) == (answer, "")


def test_completion_with_reasoning_field_and_content_parts() -> None:
    parsed = parse_completion(completion({"content": "[NO] x", "reasoning_content": "[YES]?"}))
    assert (parsed.text, parsed.reasoning, parsed.prompt_tokens, parsed.completion_tokens) == ("[NO] x", "[YES]?", 7, 3)
    parts = parse_completion(completion({"content": [{"type": "thinking", "thinking": "[YES]?"},
                                                     {"type": "text", "text": "[NO] y"}]}))
    assert (parts.text, parts.reasoning) == ("[NO] y", "[YES]?")
    legacy = parse_completion(json.dumps({"choices": [{"text": "old", "finish_reason": "max_tokens"}]}).encode())
    assert (legacy.text, legacy.finish_reason) == ("old", "length")


def test_server_sent_events_and_json_lines_are_joined() -> None:
    chunks = [{"choices": [{"delta": {"reasoning_content": "hmm"}}]},
              {"choices": [{"delta": {"content": "Hel"}}]},
              {"choices": [{"delta": {"content": "lo"}, "finish_reason": "length"}]},
              {"choices": [], "usage": {"prompt_tokens": 4, "completion_tokens": 2}}]
    sse = "".join(f"data:{json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
    for body in (sse, "\n".join(json.dumps(c) for c in chunks)):
        parsed = parse_completion(body.encode())
        assert (parsed.text, parsed.reasoning, parsed.finish_reason, parsed.prompt_tokens) == ("Hello", "hmm", "length", 4)


@pytest.mark.parametrize(("body", "message", "retryable"), [
    ({"object": "error", "message": "The model `m` does not exist.", "code": 404}, "The model `m` does not exist.",
     False),
    ({"error": {"message": "Rate limit reached", "type": "rate_limit_exceeded"}}, "Rate limit reached", True),
    ({"error": {"message": "context too long", "type": "invalid_request_error", "code": 400}}, "context too long",
     False),
    ({"error": "model is loading"}, "model is loading", False),
    ({"detail": "Not authenticated"}, "Not authenticated", False),
    ({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}, "Overloaded", True),
])
def test_error_objects_are_errors_whatever_the_status(body: dict[str, object], message: str, retryable: bool) -> None:
    with pytest.raises(LLMRequestError) as caught:
        parse_completion(json.dumps(body).encode())
    assert message in str(caught.value) and caught.value.kind == "error_body"
    assert caught.value.retryable is retryable
    assert error_detail(json.dumps(body).encode()) == message


def test_error_event_inside_a_stream() -> None:
    body = b'data: {"choices": [{"delta": {"content": "a"}}]}\n\ndata: {"error": {"message": "upstream died", ' \
           b'"type": "server_error"}}\n\n'
    with pytest.raises(LLMRequestError, match="upstream died") as caught:
        parse_completion(body)
    assert caught.value.retryable


@pytest.mark.parametrize(("body", "retryable"), [
    (b'{"choices": [{"message": {"content": "cut', True),
    (b"<html><body>Sign in</body></html>", False),
    (b'{"id": "x", "choices": []}', False),
    (b'data: {"choices": [{"delta": {"content": "a"}}]}\n\n', True),  # a stream that stopped early
    (b"", False),
])
def test_bodies_that_are_not_answers(body: bytes, retryable: bool) -> None:
    with pytest.raises(LLMRequestError) as caught:
        parse_completion(body, "text/html" if body.startswith(b"<") else "application/json")
    assert caught.value.kind == "malformed" and caught.value.retryable is retryable


def test_error_detail_is_one_sanitized_line() -> None:
    detail = error_detail(b'{"error": {"message": "bad\\u001b[2J\\nsecond line"}}')
    assert "\x1b" not in detail and "\n" not in detail and detail.startswith("bad")
