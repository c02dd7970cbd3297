"""The LLM layer: one chat interface over OpenAI-compatible servers and local transformers models."""

from core.llm.base import ChatBackend, ChatRequest, ChatResult, Message, SamplingParams

__all__ = ["ChatBackend", "ChatRequest", "ChatResult", "Message", "SamplingParams"]
