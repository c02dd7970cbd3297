from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from core.training.train_data import TrainExample

torch = pytest.importorskip("torch")


def _examples() -> list[TrainExample]:
    codes = ["def f(x):\n    return x + 1\n", "import os\nprint(os.getcwd())\n", "for i in range(3):\n    pass\n"]
    examples = []
    for index in range(7):
        code = codes[index % 3] * (1 + index % 4)
        examples.append(TrainExample((("user", f"Which is better? {code}"),), "A" if index % 2 else "B"))
    return examples


def _rows(tokenizer: Any) -> list[dict[str, list[int]]]:
    from core.training.packing import IGNORE, encode

    items = [encode(tokenizer, example, "classification") for example in _examples()]
    assert all(item.target_count == 1 for item in items)
    return [{"input_ids": list(item.input_ids), "labels": [label if label != IGNORE else -100 for label in item.labels]}
            for item in items]


def _summed_loss(model: Any, batch: dict[str, Any]) -> float:
    inputs = {key: value for key, value in batch.items() if key != "labels"}
    with torch.no_grad():  # as in training: with a cache, transformers would not derive the packed mask
        logits = model(**inputs, use_cache=False).logits[:, :-1].float()
    targets = batch["labels"][:, 1:]
    return torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100, reduction="sum"
    ).item()


def _model(model_dir: Path, attention: str) -> Any:
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(model_dir, attn_implementation=attention).eval()


def test_packed_and_padded_batches_give_the_same_loss(tiny_model_dir: Path) -> None:
    """TRL's best-fit-decreasing packing into padding-free rows, on both attention paths, against padding."""
    from datasets import Dataset
    from transformers import AutoTokenizer
    from trl import pack_dataset
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    from core.training.attention import SEGMENT_SDPA, packed_attention_implementation

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    rows = _rows(tokenizer)
    packed_rows = list(pack_dataset(Dataset.from_list(rows), 400, "bfd"))
    assert len(packed_rows) < len(rows)  # several examples really share a row
    packed_batch = DataCollatorForLanguageModeling(tokenizer.pad_token_id, padding_free=True)(packed_rows)
    padded_batch = DataCollatorForLanguageModeling(tokenizer.pad_token_id)(rows)
    assert packed_attention_implementation() == SEGMENT_SDPA  # no FlashAttention on this machine
    segment, sdpa = _model(tiny_model_dir, SEGMENT_SDPA), _model(tiny_model_dir, "sdpa")
    packed = _summed_loss(segment, packed_batch)
    masked = _summed_loss(sdpa, packed_batch)  # SDPA with the block-diagonal mask transformers builds
    padded = _summed_loss(sdpa, padded_batch)
    one_by_one = sum(_summed_loss(sdpa, DataCollatorForLanguageModeling(tokenizer.pad_token_id)([row])) for row in rows)
    assert torch.isfinite(torch.tensor(packed))
    assert packed == pytest.approx(padded, rel=1e-4)
    assert masked == pytest.approx(padded, rel=1e-4)
    assert padded == pytest.approx(one_by_one, rel=1e-4)


def test_packing_without_sequence_boundaries_would_differ(tiny_model_dir: Path) -> None:
    """Guards the test above: attention across packed examples does change the loss."""
    from transformers import AutoTokenizer
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    from core.training.attention import SEGMENT_SDPA, packed_attention_implementation

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    rows = _rows(tokenizer)[:3]
    batch = DataCollatorForLanguageModeling(tokenizer.pad_token_id, padding_free=True)(rows)
    width = batch["input_ids"].shape[1]
    leaky = {"input_ids": batch["input_ids"], "labels": batch["labels"],
             "position_ids": torch.arange(width).unsqueeze(0)}
    packed_attention_implementation()
    model = _model(tiny_model_dir, SEGMENT_SDPA)
    assert _summed_loss(model, batch) != pytest.approx(_summed_loss(model, leaky), rel=1e-4)
