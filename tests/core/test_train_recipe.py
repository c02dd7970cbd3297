from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import RecipeError
from core.training.recipes import deepspeed_config, load_train_recipe, parse_train_recipe
from core.training.train_data import mix, read_examples
from tests.train_fixtures import write_export

RECIPES = Path(__file__).resolve().parents[2] / "recipes" / "train"
BASE = {"base_model": "m", "datasets": [{"path": "d.jsonl"}]}


def test_defaults_are_the_papers() -> None:
    recipe = parse_train_recipe(BASE)
    hyper = recipe.hyperparameters
    assert (hyper.batch_size, hyper.sequence_length, hyper.packing, hyper.learning_rate) == (32, 2048, True, 5e-6)
    assert (hyper.schedule, hyper.warmup_steps, hyper.bf16, hyper.gradient_checkpointing) == ("cosine", 40, True, True)
    assert recipe.modeling == "classification" and deepspeed_config(recipe) is None


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"modeling": "regression"}, "'modeling'"),
        ({"datasets": []}, "'datasets'"),
        ({"datasets": [{"path": "a", "export": 1}]}, "'datasets[0]'"),
        ({"datasets": [{"path": "a", "weight": -1}]}, "'datasets[0].weight'"),
        ({"hyperparameters": {"learning_rate": "5e-6"}}, "'hyperparameters.learning_rate'"),
        ({"hyperparameters": {"batch_size": 30, "micro_batch_size": 4}}, "'hyperparameters.micro_batch_size'"),
        ({"hyperparameters": {"lr": 1.0}}, "'hyperparameters.lr'"),
        ({"deepspeed": {"stage": 1}}, "'deepspeed.stage'"),
        ({"deepspeed": {"stage": 2, "offload": "all"}}, "'deepspeed.offload'"),
        ({"colour": "red"}, "'colour'"),
    ],
)
def test_errors_name_file_key_and_fix(change: dict, key: str) -> None:
    with pytest.raises(RecipeError) as caught:
        parse_train_recipe({**BASE, **change}, source="recipes/x.yaml")
    message = str(caught.value)
    assert message.startswith("recipes/x.yaml: key ") and key in message


def test_bad_yaml_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("base_model: [unclosed\n")
    with pytest.raises(RecipeError, match="bad.yaml: not valid YAML"):
        load_train_recipe(bad)
    with pytest.raises(RecipeError, match="no such recipe file"):
        load_train_recipe(tmp_path / "nope.yaml")


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
    assert generation[0].target.endswith("is better than [CODE_B] on the mentioned criteria.")
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
