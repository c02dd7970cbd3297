from __future__ import annotations

from pathlib import Path

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


def test_pack_fills_rows_without_exceeding_capacity() -> None:
    from core.training.packing import pack

    rows = pack([5, 3, 8, 2, 7, 1], capacity=10)
    assert sorted(index for row in rows for index in row) == [0, 1, 2, 3, 4, 5]
    assert all(sum([5, 3, 8, 2, 7, 1][i] for i in row) <= 10 for row in rows)
    assert len(rows) == 3


def test_packed_and_padded_batches_give_the_same_loss(tiny_model_dir: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from core.training.packing import collate_packed, collate_padded, encode, pack, summed_target_loss

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    items = [encode(tokenizer, example, "classification") for example in _examples()]
    assert all(item.target_count == 1 for item in items)
    rows = [[items[i] for i in row] for row in pack([len(i.input_ids) for i in items], 400)]
    assert len(rows) < len(items)  # several examples really share a row
    with torch.no_grad():
        packed = summed_target_loss(model, collate_packed(rows, tokenizer.pad_token_id))
        padded = summed_target_loss(model, collate_padded(items, tokenizer.pad_token_id))
        one_by_one = sum(summed_target_loss(model, collate_padded([item], tokenizer.pad_token_id)) for item in items)
    assert torch.isfinite(packed)
    assert packed.item() == pytest.approx(padded.item(), rel=1e-4)
    assert packed.item() == pytest.approx(one_by_one.item(), rel=1e-4)


def test_packing_without_position_reset_would_differ(tiny_model_dir: Path) -> None:
    """Guards the test above: attention across packed examples does change the loss."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from core.training.packing import collate_packed, encode, summed_target_loss

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    items = [encode(tokenizer, example, "classification") for example in _examples()[:3]]
    batch = collate_packed([items], tokenizer.pad_token_id)
    leaky = dict(batch, position_ids=torch.arange(batch["input_ids"].shape[1]).unsqueeze(0))
    with torch.no_grad():
        assert summed_target_loss(model, batch).item() != pytest.approx(
            summed_target_loss(model, leaky).item(), rel=1e-4
        )
