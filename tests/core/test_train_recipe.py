from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.errors import RecipeError
from core.training.recipes import deepspeed_config, load_train_recipe, parse_train_recipe, recipe_from_dict
from core.training.train_data import mix, read_examples
from tests.train_fixtures import write_export

RECIPES = Path(__file__).resolve().parents[2] / "recipes" / "train"
BASE = {"base_model": "m", "datasets": [{"path": "d.jsonl"}]}


def test_defaults_are_the_papers() -> None:
    recipe = parse_train_recipe(BASE)
    hyper = recipe.hyperparameters
    assert (hyper.batch_size, hyper.sequence_length, hyper.packing, hyper.learning_rate) == (32, 2048, True, 5e-6)
    assert (hyper.schedule, hyper.warmup_steps, hyper.bf16, hyper.gradient_checkpointing) == ("cosine", 40, True, True)
    assert (hyper.epochs, hyper.weight_decay, hyper.max_grad_norm) == (2.0, 0.0, 1.0)
    assert recipe.modeling == "classification" and deepspeed_config(recipe) is None


# The paper's training setup per base model (Liu et al., arXiv 2410.03837, Appendix), as written in
# the reference's Axolotl recipes (amazon-science/llm-code-preference, scripts/axolotl/recipe/):
# base_model, learning_rate, num_epochs, micro_batch_size x gradient_accumulation_steps x 8 GPUs,
# sequence_len, sample_packing, lr_scheduler, warmup_steps, weight_decay, max_grad_norm, seed.
PAPER = {
    "gemma-2-9b": {"base_model": "google/gemma-2-9b-it", "learning_rate": 2e-6},
    "llama-3-8b": {"base_model": "meta-llama/Meta-Llama-3-8B-Instruct", "learning_rate": 5e-6},
    "mistral-7b-instruct": {"base_model": "mistralai/Mistral-7B-Instruct-v0.3", "learning_rate": 5e-6},
    "mistral-nemo": {"base_model": "mistralai/Mistral-Nemo-Instruct-2407", "learning_rate": 5e-6},
}
PAPER_SHARED = {"epochs": 2.0, "batch_size": 32, "sequence_length": 2048, "packing": True, "schedule": "cosine",
                "warmup_steps": 40, "weight_decay": 0.0, "max_grad_norm": 1.0, "bf16": True}
# Seeds of the reference recipes; mistral/gen-critic-evol-from-llama3-70b.yaml alone uses 111.
PAPER_SEEDS = {"mistral-7b-instruct-generation-critic-evol": 111}


@pytest.mark.parametrize("model", sorted(PAPER))
@pytest.mark.parametrize("modeling", ["classification", "generation"])
@pytest.mark.parametrize("data", ["commit-instruct", "critic-evol", "mixture"])
def test_every_paper_recipe_carries_the_papers_hyperparameters(model: str, modeling: str, data: str) -> None:
    path = RECIPES / f"{model}-{modeling}-{data}.yaml"
    recipe = load_train_recipe(path)
    hyper = recipe.hyperparameters
    assert (recipe.base_model, recipe.modeling) == (PAPER[model]["base_model"], modeling)
    assert hyper.learning_rate == PAPER[model]["learning_rate"]
    assert {key: getattr(hyper, key) for key in PAPER_SHARED} == PAPER_SHARED
    assert hyper.max_steps is None and recipe.seed == PAPER_SEEDS.get(recipe.name, 666)
    assert "scripts/axolotl/recipe/" in path.read_text()  # each file names the reference recipe it follows
    sources = {"commit-instruct": ["exports/commit-instruct"], "critic-evol": ["exports/critic-evol"],
               "mixture": ["exports/commit-instruct", "exports/critic-evol"]}
    assert [spec.path for spec in recipe.datasets] == sources[data]


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"modeling": "regression"}, "modeling"),
        ({"datasets": []}, "datasets"),
        ({"datasets": [{"path": "a", "export": 1}]}, "datasets[0]"),
        ({"datasets": [{"path": "a", "weight": -1}]}, "datasets[0].weight"),
        ({"datasets": [{"path": "a", "weight": float("inf")}]}, "datasets[0].weight"),
        ({"hyperparameters": {"learning_rate": "fast"}}, "hyperparameters.learning_rate"),
        ({"hyperparameters": {"batch_size": 30, "micro_batch_size": 4}}, "hyperparameters.micro_batch_size"),
        ({"hyperparameters": {"lr": 1.0}}, "hyperparameters.lr"),
        ({"hyperparameters": {"sequence_length": 1_000_000_000_000}}, "hyperparameters.sequence_length"),
        ({"hyperparameters": {"batch_size": True}}, "hyperparameters.batch_size"),
        ({"deepspeed": {"stage": 1}}, "deepspeed.stage"),
        ({"deepspeed": {"stage": 2, "offload": "all"}}, "deepspeed.offload"),
        ({"colour": "red"}, "colour"),
        ({"seed": "42"}, "seed"),
    ],
)
def test_errors_name_file_key_and_fix(change: dict, key: str) -> None:
    with pytest.raises(RecipeError) as caught:
        parse_train_recipe({**BASE, **change}, source="recipes/x.yaml")
    assert str(caught.value).startswith(f"recipes/x.yaml: {key}: ")


def _recipe_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "r.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_yaml_errors_give_line_and_column(tmp_path: Path) -> None:
    head = "name: r\nbase_model: m\ndatasets:\n  - path: d.jsonl\nhyperparameters:\n  batch_size: 8\n"
    cases = {
        "\tmicro_batch_size: 4\n": ("r.yaml:7:1: not valid YAML", "'\\t'"),
        "  learnig_rate: 1.0e-5\n": ("r.yaml:7:3: hyperparameters.learnig_rate: unknown key", "did you mean learning_rate?"),
        "  sequence_length: 1000000000000\n": ("r.yaml:7:20: hyperparameters.sequence_length:", "1048576"),
        "  micro_batch_size: 3\n": ("r.yaml:7:21: hyperparameters.micro_batch_size: must divide batch_size (8)", ""),
        "name: again\n": ("r.yaml:7:1: name: key given twice (first at line 1)", ""),
    }
    for tail, (start, detail) in cases.items():
        with pytest.raises(RecipeError) as caught:
            load_train_recipe(_recipe_file(tmp_path, head + tail))
        message = str(caught.value)
        assert message.startswith(str(tmp_path / start)) and detail in message, message
        assert "\n" not in message


def test_exponent_without_a_dot_is_a_number(tmp_path: Path) -> None:
    text = "base_model: m\ndatasets: [d.jsonl]\nhyperparameters: {learning_rate: 5e-6, epochs: 2E0, weight_decay: 1e-2}\n"
    hyper = load_train_recipe(_recipe_file(tmp_path, text)).hyperparameters
    assert (hyper.learning_rate, hyper.epochs, hyper.weight_decay) == (5e-6, 2.0, 0.01)
    assert load_train_recipe(_recipe_file(tmp_path, text.replace("5e-6", "5.0e-6"))).hyperparameters == hyper


def test_a_merge_key_may_be_overridden_but_a_key_may_not_repeat(tmp_path: Path) -> None:
    from core.config import parse_yaml

    merged = parse_yaml("base: &b {batch_size: 8, packing: false}\nh:\n  <<: *b\n  batch_size: 16\n", source="m.yaml")
    assert merged.data["h"] == {"batch_size": 16, "packing": False}
    with pytest.raises(RecipeError, match="m.yaml:4:3: h.batch_size: key given twice"):
        parse_yaml("h:\n  <<: {packing: false}\n  batch_size: 8\n  batch_size: 16\n", source="m.yaml")


def test_recipe_from_dict_round_trips_and_validates() -> None:
    from dataclasses import replace

    recipe = parse_train_recipe({**BASE, "datasets": [{"export": 3, "weight": 2}]}, source="r.yaml")
    assert recipe_from_dict(json.loads(json.dumps(recipe.to_dict()))) == recipe
    broken = recipe.to_dict()
    broken["hyperparameters"]["sequence_length"] = 8
    with pytest.raises(RecipeError, match="r.yaml: hyperparameters.sequence_length: "):
        recipe_from_dict(broken)
    with pytest.raises(ValueError):  # replace() validates as well
        replace(recipe.hyperparameters, batch_size=-1)


def test_bad_yaml_and_missing_file(tmp_path: Path) -> None:
    from core.errors import OptionError

    bad = tmp_path / "bad.yaml"
    bad.write_text("base_model: [unclosed\n")
    with pytest.raises(RecipeError, match="bad.yaml:2:1: not valid YAML"):
        load_train_recipe(bad)
    with pytest.raises(OptionError, match="no such recipe file"):
        load_train_recipe(tmp_path / "nope.yaml")
    bad.write_bytes(b"name: caf\xe9\n")
    with pytest.raises(RecipeError, match="bad.yaml:1:10: not UTF-8"):
        load_train_recipe(bad)


def test_zero3_config_gathers_weights_on_save() -> None:
    recipe = parse_train_recipe({**BASE, "deepspeed": {"stage": 3, "offload": "optimizer"}})
    config = deepspeed_config(recipe)
    assert config is not None
    assert config["zero_optimization"]["stage3_gather_16bit_weights_on_model_save"] is True
    assert config["zero_optimization"]["offload_optimizer"]["device"] == "cpu"
    # Batch sizes, accumulation, clipping and bf16 come from the Trainer's arguments, so they cannot disagree.
    assert config["train_batch_size"] == config["gradient_accumulation_steps"] == "auto"


def test_every_shipped_recipe_is_valid() -> None:
    paths = sorted(RECIPES.glob("*.yaml"))
    assert len(paths) >= 24 + 6
    names = {load_train_recipe(path).name for path in paths}
    assert len(names) == len(paths)


def test_pairs_become_both_orders_and_mix_follows_weights(tmp_path: Path) -> None:
    data = write_export(tmp_path / "a.jsonl", copies=1)
    examples = read_examples(data, "classification")
    assert len(examples) == 8 and {e.target for e in examples} == {"A", "B"}
    generation = read_examples(data, "generation")
    assert generation[0].target == "[CODE_A] is right.\n[RESULT]\nTherefore, [CODE_A] is better than [CODE_B] on [CRITERIA]."
    small = examples[:2]
    mixed = mix([(examples, 1.0), (small, 3.0)], seed=0)
    assert sum(1 for e in mixed if e in small) > len(mixed) / 2
    assert mix([(examples, 1.0), (small, 3.0)], seed=0) == mixed


def test_unknown_row_shape_names_the_line(tmp_path: Path) -> None:
    data = tmp_path / "d.jsonl"
    data.write_text('{"prompt": "x", "target": "A"}\n{"foo": 1}\n')
    with pytest.raises(RecipeError, match="d.jsonl:2: unknown row shape"):
        read_examples(data, "classification")


def test_launcher_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util
    import sys

    from core.errors import OptionError
    from core.training.runs import trainer_command

    plain = parse_train_recipe(BASE, source="r.yaml")
    assert trainer_command(plain, tmp_path, python="py") == ["py", "-m", "core.training.train_main", str(tmp_path)]
    launched = ["py", "-m", "accelerate.commands.launch", "--config_file", str(tmp_path / "accelerate.yaml"),
                "--module", "core.training.train_main", str(tmp_path)]
    assert trainer_command(plain, tmp_path, gpus=2, python="py") == launched  # DDP on the GPUs of one node
    with pytest.raises(OptionError, match="'hyperparameters.batch_size': 32 is not a multiple of micro_batch_size 4 x 3"):
        trainer_command(plain, tmp_path, gpus=3)
    hosts = tmp_path / "hosts"
    hosts.write_text("node1 slots=8\nnode2 slots=8\n")
    with pytest.raises(OptionError, match="key 'deepspeed.stage'"):
        trainer_command(plain, tmp_path, gpus=2, nodes=2, hostfile=hosts)
    zero3 = parse_train_recipe({**BASE, "deepspeed": {"stage": 3}, "hyperparameters": {"micro_batch_size": 1}},
                               source="r.yaml")
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "deepspeed" else real_find_spec(name, *a))
    with pytest.raises(OptionError, match="pip install deepspeed"):
        trainer_command(zero3, tmp_path)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object() if name == "deepspeed" else None)
    with pytest.raises(OptionError, match="--hostfile"):
        trainer_command(zero3, tmp_path, gpus=8, nodes=2)
    with pytest.raises(OptionError, match="--hostfile nowhere: no such file"):
        trainer_command(zero3, tmp_path, gpus=8, nodes=2, hostfile=Path("nowhere"))
    command = trainer_command(zero3, tmp_path, gpus=8, nodes=2, hostfile=hosts, python=sys.executable)
    assert command[1:] == launched[1:]


def test_launch_files_are_accelerate_and_deepspeed_configs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util
    import json

    from accelerate.commands.config.config_args import load_config_from_file

    from core.training.runs import launch_files

    assert launch_files(parse_train_recipe(BASE), tmp_path) == {}  # one process: no launcher
    ddp = launch_files(parse_train_recipe(BASE), tmp_path, gpus=4)
    (tmp_path / "accelerate.yaml").write_text(ddp["accelerate.yaml"])
    config = load_config_from_file(str(tmp_path / "accelerate.yaml"))
    assert (config.distributed_type, config.num_processes, config.num_machines) == ("MULTI_GPU", 4, 1)
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: object() if name == "deepspeed" else real_find_spec(name, *a))
    zero3 = parse_train_recipe({**BASE, "deepspeed": {"stage": 3}, "hyperparameters": {"micro_batch_size": 2}},
                               source="r.yaml")
    hosts = tmp_path / "hosts"
    hosts.write_text("node1 slots=8\nnode2 slots=8\n")
    files = launch_files(zero3, tmp_path, gpus=8, nodes=2, hostfile=hosts)
    (tmp_path / "accelerate.yaml").write_text(files["accelerate.yaml"])
    config = load_config_from_file(str(tmp_path / "accelerate.yaml"))
    assert (config.distributed_type, config.num_processes, config.num_machines) == ("DEEPSPEED", 16, 2)
    assert config.deepspeed_config == {
        "deepspeed_config_file": str(tmp_path / "deepspeed.json"), "zero3_init_flag": True,
        "deepspeed_multinode_launcher": "pdsh", "deepspeed_hostfile": str(hosts),
    }
    assert json.loads(files["deepspeed.json"])["zero_optimization"]["stage"] == 3
