"""The pairwise classifier judge: a causal LM answers "A" or "B"; logits only at the last position."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from core.errors import OptionError
from core.evaluation.bench import JudgeItem
from core.evaluation.judges import UNDECIDED, JudgeOutput, JudgeSpec, pair_rm_decision
from core.evaluation.prompts import batch_prompt_ids, prompt_ids, render_prompt
from core.evaluation.protocols import get_protocol


def load_model_and_tokenizer(path: str | Path, *, device: str, dtype: torch.dtype) -> tuple[Any, Any]:
    """Load a causal LM and its tokenizer from a folder, or from a `.gguf` file by its folder."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model_path = Path(path).expanduser()
    extra: dict[str, Any] = {}
    if model_path.suffix == ".gguf":
        extra["gguf_file"] = model_path.name
        model_path = model_path.parent
    if not model_path.exists():
        raise OptionError(f"pair-rm model {model_path} does not exist")
    try:
        tokenizer = AutoTokenizer.from_pretrained(model_path, **extra)
        model = AutoModelForCausalLM.from_pretrained(model_path, dtype=dtype, **extra)
    except (OSError, ValueError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise OptionError(f"cannot load pair-rm model {path}: {first_line}") from None
    model.to(device)  # type: ignore[arg-type]
    model.eval()
    return model, tokenizer


def single_token_id(tokenizer: Any, label: str) -> int:
    """The id of a label that must be one token, as the classification layout requires."""
    ids = tokenizer.encode(label, add_special_tokens=False)
    if len(ids) != 1:
        raise OptionError(f"the tokenizer splits {label!r} into {len(ids)} tokens; pair-rm needs one")
    return int(ids[0])


def judge_messages(item: JudgeItem) -> list[dict[str, str]]:
    """The item's classification prompt (in its protocol's layout) as one user turn."""
    user = get_protocol(item.protocol).classification_prompt(item.instruction, item.code_a, item.code_b, item.criteria)
    return [{"role": "user", "content": user}]


def chat_prompt(tokenizer: Any, item: JudgeItem) -> str:
    """The text the classifier reads, through the one renderer shared with export and training."""
    return render_prompt(tokenizer, judge_messages(item))


class PairRMJudge:
    """Batched, length-sorted pairwise classifier; bf16 on GPU, float32 on CPU."""

    def __init__(
        self,
        spec: JudgeSpec,
        model: Any,
        tokenizer: Any,
        *,
        device: str,
        batch_size: int,
        max_batch_tokens: int,
    ) -> None:
        self.spec = spec
        self.model = model
        self.tokenizer = tokenizer
        self.device = device
        self.batch_size = batch_size
        self.max_batch_tokens = max_batch_tokens
        # A few batches per committed chunk: full batches, and a kill loses seconds of work.
        self.preferred_chunk = batch_size * 4
        self.id_a = single_token_id(tokenizer, "A")
        self.id_b = single_token_id(tokenizer, "B")
        self.max_length = _context_length(model, tokenizer)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.lineage: dict[str, Any] = {
            "path": spec.argument,
            "name_or_path": str(getattr(model.config, "_name_or_path", "")),
            "architecture": type(model).__name__,
            "dtype": str(next(model.parameters()).dtype).removeprefix("torch."),
            "device": device,
        }

    @classmethod
    def load(cls, spec: JudgeSpec, *, device: str | None = None, batch_size: int | None = None) -> PairRMJudge:
        """Load the model a `pair-rm:PATH` spec names onto `device` (cuda when available)."""
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise OptionError("device cuda requested but torch sees no GPU; use --device cpu")
        dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
        model, tokenizer = load_model_and_tokenizer(spec.argument, device=device, dtype=dtype)
        on_gpu = device.startswith("cuda")
        return cls(
            spec, model, tokenizer, device=device,
            batch_size=batch_size or (128 if on_gpu else 8),
            max_batch_tokens=131072 if on_gpu else 16384,
        )

    def decide(self, items: Sequence[JudgeItem]) -> list[JudgeOutput]:
        """Answer every item; prompts run in length-sorted batches and come back in input order."""
        encoded = batch_prompt_ids(self.tokenizer, [judge_messages(item) for item in items])
        outputs: list[JudgeOutput | None] = [None] * len(items)
        order = sorted(range(len(items)), key=lambda index: len(encoded[index]))
        fitting = [i for i in order if len(encoded[i]) <= self.max_length]
        for index in order:
            if len(encoded[index]) > self.max_length:
                outputs[index] = JudgeOutput(
                    UNDECIDED,
                    raw=f"prompt of {len(encoded[index])} tokens exceeds the model's {self.max_length}",
                    prompt_tokens=len(encoded[index]),
                )
        for batch in self._batches(fitting, encoded):
            started = time.perf_counter()
            logits = self._last_logits([encoded[i] for i in batch])
            each = (time.perf_counter() - started) / len(batch)
            for index, (logit_a, logit_b) in zip(batch, logits.tolist()):
                raw = json.dumps({"A": round(logit_a, 5), "B": round(logit_b, 5)})
                outputs[index] = JudgeOutput(
                    pair_rm_decision(raw), raw=raw, latency_s=each, prompt_tokens=len(encoded[index])
                )
        return [output for output in outputs if output is not None]

    def _batches(self, indices: list[int], encoded: list[list[int]]) -> list[list[int]]:
        batches: list[list[int]] = []
        current: list[int] = []
        for index in indices:
            longest = len(encoded[index])  # indices are sorted, so the newest is the longest
            if current and (len(current) >= self.batch_size or longest * (len(current) + 1) > self.max_batch_tokens):
                batches.append(current)
                current = []
            current.append(index)
        if current:
            batches.append(current)
        return batches

    @torch.inference_mode()
    def _last_logits(self, sequences: list[list[int]]) -> torch.Tensor:
        """Logits of "A" and "B" at each sequence's last token: shape (batch, 2)."""
        return last_position_logits(self.model, sequences, self.pad_id, (self.id_a, self.id_b), self.device)

    def close(self) -> None:
        """Drop the model and free GPU memory."""
        self.model = None
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def last_position_logits(
    model: Any,
    sequences: list[list[int]],
    pad_id: int,
    label_ids: tuple[int, int],
    device: str,
    *,
    padding_side: str = "left",
) -> torch.Tensor:
    """Run the base model on a padded batch and apply the LM head to each last real position only."""
    longest = max(len(seq) for seq in sequences)
    input_ids = torch.full((len(sequences), longest), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), longest), dtype=torch.long)
    for row, seq in enumerate(sequences):
        span = slice(longest - len(seq), longest) if padding_side == "left" else slice(0, len(seq))
        input_ids[row, span] = torch.tensor(seq, dtype=torch.long)
        mask[row, span] = 1
    input_ids, mask = input_ids.to(device), mask.to(device)
    # Positions count real tokens only, so left padding gives the same positions as batch size 1.
    position_ids = (mask.cumsum(dim=1) - 1).clamp(min=0)
    base = model.get_decoder() if hasattr(model, "get_decoder") else model.base_model
    hidden = base(input_ids=input_ids, attention_mask=mask, position_ids=position_ids).last_hidden_state
    if padding_side == "left":
        last = hidden[:, -1, :]
    else:
        rows = torch.arange(len(sequences), device=hidden.device)
        last = hidden[rows, mask.sum(dim=1) - 1, :]
    logits = model.get_output_embeddings()(last)
    return logits[:, list(label_ids)].float().cpu()


@torch.inference_mode()
def full_logits_pairs(model: Any, tokenizer: Any, items: Sequence[JudgeItem], device: str) -> list[tuple[float, float]]:
    """The reference evaluator's way: one prompt at a time, logits for every position; (A, B) last."""
    id_a, id_b = single_token_id(tokenizer, "A"), single_token_id(tokenizer, "B")
    pairs = []
    for item in items:
        ids = torch.tensor([prompt_ids(tokenizer, judge_messages(item))], dtype=torch.long)
        logits = model(input_ids=ids.to(device)).logits[0, -1].float()
        pairs.append((float(logits[id_a]), float(logits[id_b])))
    return pairs


def full_logits_decisions(model: Any, tokenizer: Any, items: Sequence[JudgeItem], device: str) -> list[str]:
    """Decisions of the batch-1 full-logits loop, for checking the batched judge."""
    return [
        UNDECIDED if a == b else ("A" if a > b else "B") for a, b in full_logits_pairs(model, tokenizer, items, device)
    ]


def _context_length(model: Any, tokenizer: Any) -> int:
    limits = [getattr(model.config, "max_position_embeddings", None), getattr(tokenizer, "model_max_length", None)]
    usable = [int(limit) for limit in limits if isinstance(limit, int) and 0 < limit < 10_000_000]
    return min(usable) if usable else 8192
