"""A local transformers chat backend: concurrent chats are gathered into batches for `generate`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from core.errors import LLMError
from core.llm.base import CallStats, ChatRequest, ChatResult, LLMRequestError, SamplingParams
from core.llm.reasoning import split_reasoning


def _load(path: str, device: str, dtype: str | None) -> tuple[Any, Any]:
    location = Path(path).expanduser()
    kwargs: dict[str, Any] = {}
    if dtype:
        kwargs["dtype"] = getattr(torch, dtype)
    if location.suffix == ".gguf":
        folder, gguf = str(location.parent), location.name
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=gguf)
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=gguf, **kwargs)
    else:
        tokenizer = AutoTokenizer.from_pretrained(str(location) if location.exists() else path)
        model = AutoModelForCausalLM.from_pretrained(str(location) if location.exists() else path, **kwargs)
    tokenizer.padding_side = "left"  # decoder-only batches must be padded on the left
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.to(device)  # type: ignore[arg-type]
    model.eval()
    return tokenizer, model


class TransformersChatBackend:
    """Answers chats with a local causal LM, batching the requests that arrive together."""

    def __init__(self, path: str, *, batch_size: int = 8, device: str | None = None, dtype: str | None = None,
                 max_tokens: int | None = None) -> None:
        # A cap on new tokens changes the answers, so it is part of the name (and of every cache key).
        self.model_name = (Path(path).name or path) + (f"[max_tokens={max_tokens}]" if max_tokens else "")
        self.batch_size = batch_size
        self.max_tokens = max_tokens
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        try:
            self._tokenizer, self._model = _load(path, self.device, dtype)
        except (OSError, ValueError) as exc:
            raise LLMError(f"cannot load model {path}: {str(exc).splitlines()[0]}") from None
        self.stats = CallStats()
        self._queue: list[tuple[ChatRequest, asyncio.Future[ChatResult]]] = []
        self._runner: asyncio.Task[None] | None = None

    async def chat(self, request: ChatRequest) -> ChatResult:
        """Answer one chat; chats sent concurrently share a `generate` batch."""
        future: asyncio.Future[ChatResult] = asyncio.get_running_loop().create_future()
        self._queue.append((request, future))
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._drain())
        return await future

    async def chat_many(self, requests: Sequence[ChatRequest]) -> list[ChatResult]:
        """Answer several chats in batches, in order."""
        return list(await asyncio.gather(*(self.chat(request) for request in requests)))

    async def _drain(self) -> None:
        await asyncio.sleep(0)  # let callers that start in the same tick join the batch
        while self._queue:
            # Chats that differ only in their seed share a batch, seeded with the first one's seed
            # (N samples of one prompt would otherwise run one by one).
            params = replace(self._queue[0][0].params, seed=None)
            batch = [entry for entry in self._queue if replace(entry[0].params, seed=None) == params][: self.batch_size]
            for entry in batch:
                self._queue.remove(entry)
            self.stats.attempts += len(batch)
            try:
                results = await asyncio.to_thread(self.generate, [request for request, _ in batch])
            except Exception as exc:  # one bad batch fails its own chats, not the backend
                for _request, future in batch:
                    self.stats.failed("generate")
                    if not future.done():
                        future.set_exception(LLMRequestError(f"{self.model_name}: generation failed: {exc}",
                                                             kind="generate"))
                continue
            for (_request, future), result in zip(batch, results):
                if not future.done():
                    future.set_result(result)

    def generate(self, requests: Sequence[ChatRequest]) -> list[ChatResult]:
        """Generate answers for chats sharing one set of sampling parameters (blocking)."""
        started = time.perf_counter()
        params: SamplingParams = requests[0].params
        prompts = [
            self._tokenizer.apply_chat_template(list(r.messages), tokenize=False, add_generation_prompt=True)
            for r in requests
        ]
        encoded = self._tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
        sampling: dict[str, Any] = {"do_sample": params.temperature > 0}
        if params.temperature > 0:
            sampling.update(temperature=params.temperature, top_p=params.top_p)
            if params.seed is not None:
                torch.manual_seed(params.seed)
        with torch.no_grad():
            output = self._model.generate(
                **encoded, max_new_tokens=min(params.max_tokens, self.max_tokens or params.max_tokens), pad_token_id=self._tokenizer.pad_token_id, **sampling
            )
        prompt_width = encoded["input_ids"].shape[1]
        latency = time.perf_counter() - started
        results = []
        eos = self._model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [eos]) | {self._tokenizer.eos_token_id}
        for row, attention in zip(output, encoded["attention_mask"]):
            new_tokens = row[prompt_width:]
            ended = any(int(t) in eos_ids for t in new_tokens)
            kept = [int(t) for t in new_tokens if int(t) != self._tokenizer.pad_token_id]
            text = self._tokenizer.decode(kept, skip_special_tokens=True)
            finish = "stop" if ended else "length"
            for stop in params.stop:
                if stop in text:
                    text, finish = text[: text.index(stop)], "stop"
            completion = len([t for t in kept if t not in eos_ids])
            answer, reasoning = split_reasoning(text)
            results.append(ChatResult(text=answer, prompt_tokens=int(attention.sum()), completion_tokens=completion,
                                      latency_s=latency, finish_reason=finish, reasoning=reasoning))
        return results

    async def aclose(self) -> None:
        """Free the model's memory."""
        self._model = None
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
