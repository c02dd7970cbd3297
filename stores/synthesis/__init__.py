"""Synthesis data: instructions, work items, conversations, the response cache and LLM servers."""
