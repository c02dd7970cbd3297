"""One renderer: export, training and judging give a model the same token ids for the same pair."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.evaluation.bench import JudgeItem
from core.evaluation.protocols import get_protocol
from core.training.export import ExportOptions, ExportPair, write_export
from core.training.train_data import read_examples

pytest.importorskip("torch")

PAIRS = [
    ExportPair(1, "critic-evol", "Sum a list of numbers.", "Use the builtin.",
               'def total(xs):\n    """Add them."""\n    return sum(xs)  # fast\n',
               "def total(xs):\n    s = 0\n    for x in xs:\n        s += x\n    return s\n",
               "[IMPROVED_CODE] uses sum; [NAIVE_CODE] loops."),
    ExportPair(2, "commit-instruct", "Open a file safely.", "Close the handle.",
               "with open(p) as f:\n    data = f.read()\n", "f = open(p)\ndata = f.read()\n",
               "The improved code closes the file, the initial attempt leaks it."),
]


def _judge_item(pair: ExportPair, protocol: str, chosen_first: bool) -> JudgeItem:
    chosen, rejected = get_protocol(protocol).strip_pair(pair.chosen, pair.rejected)
    code_a, code_b = (chosen, rejected) if chosen_first else (rejected, chosen)
    return JudgeItem("correctness", str(pair.pair_id), "given" if chosen_first else "swapped", pair.instruction,
                     code_a, code_b, pair.criteria, "A" if chosen_first else "B", protocol)


@pytest.mark.parametrize("protocol", ["codefavor", "workbench"])
@pytest.mark.parametrize("template", ["plain", "chat", "chat-with-bos"])
def test_export_training_and_judging_give_identical_token_ids(
    tiny_model_dir: Path, tmp_path: Path, protocol: str, template: str
) -> None:
    from transformers import AutoTokenizer

    from core.evaluation.judges import parse_judge_spec
    from core.evaluation.pair_rm import PairRMJudge, judge_messages
    from core.evaluation.prompts import batch_prompt_ids
    from core.training.packing import IGNORE, encode

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    if template == "plain":
        tokenizer.chat_template = None
    elif template == "chat-with-bos":
        tokenizer.chat_template = "{{ bos_token }}" + tokenizer.chat_template
    out = tmp_path / "export"
    write_export(iter(PAIRS), out, ExportOptions(formats=("classification",), validation_fraction=0.0,
                                                 protocol=protocol), filter_spec=[], created_at="x")
    examples = read_examples(out / "classification", "classification")
    trained = {}
    for example in examples:
        encoded = encode(tokenizer, example, "classification")
        prompt = [token for token, label in zip(encoded.input_ids, encoded.labels) if label == IGNORE]
        trained[(example.messages[0][1], example.target)] = prompt
    assert len(trained) == 4
    items = [_judge_item(pair, protocol, first) for pair in PAIRS for first in (True, False)]
    judged = batch_prompt_ids(tokenizer, [judge_messages(item) for item in items])
    for item, ids in zip(items, judged):
        user = judge_messages(item)[0]["content"]
        assert trained[(user, item.gt)] == ids
        if template == "chat-with-bos":
            assert ids[0] != tokenizer.bos_token_id  # the reference's judge drops the template's BOS
    judge = PairRMJudge(parse_judge_spec(f"pair-rm:{tiny_model_dir}"), _model(tiny_model_dir), tokenizer,
                        device="cpu", batch_size=2, max_batch_tokens=100_000)
    assert [output.prompt_tokens for output in judge.decide(items)] == [len(ids) for ids in judged]


def _model(path: Path) -> object:
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path).eval()


def test_generation_export_drops_feedback_that_names_neither_code(tmp_path: Path) -> None:
    silent = ExportPair(3, "critic-evol", "Sort.", "Speed.", "x = sorted(y)\n", "y.sort()\nx = y\n", "It is faster.")
    manifest = write_export(iter([*PAIRS, silent]), tmp_path / "g", ExportOptions(formats=("generation",),
                            validation_fraction=0.0), filter_spec=[], created_at="x").data
    assert manifest["records"]["generation"]["train"] == 4
    assert manifest["dropped"] == {"generation": {"feedback names neither code": 2}}
    targets = [e.target for e in read_examples(tmp_path / "g" / "generation", "generation")]
    assert "[CODE_A] closes the file, [CODE_B] leaks it.\n[RESULT]\nTherefore, [CODE_A] is better than [CODE_B] on [CRITERIA]." in targets
