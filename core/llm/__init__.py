"""The LLM layer: one chat interface over OpenAI-compatible servers and local transformers models."""

from core.llm.base import CallStats, ChatBackend, ChatRequest, ChatResult, LLMRequestError, Message, SamplingParams
from core.llm.specs import BackendSpec, make_backend, parse_spec

__all__ = [
    "BackendSpec",
    "CallStats",
    "ChatBackend",
    "ChatRequest",
    "ChatResult",
    "LLMRequestError",
    "Message",
    "SamplingParams",
    "make_backend",
    "parse_spec",
]
