"""DPO with dynamic pair selection (Code-Optimise) and SFT on chosen solutions, with the tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from core.errors import RecipeError
from core.training.preference import draw_pairs, group_members, prompt_group, read_preference_records
from core.training.recipes import load_train_recipe, parse_train_recipe
from tests.train_fixtures import write_preference_pairs, write_recipe

RECIPES = Path(__file__).resolve().parents[2] / "recipes" / "train"


def test_each_epoch_draws_one_pair_per_group_seeded() -> None:
    members = group_members([f"p{index // 4}" for index in range(40)])  # 10 groups of 4 pairs
    assert len(members) == 10 and members[1] == [4, 5, 6, 7]
    epochs = [draw_pairs(members, seed=7, epoch=epoch) for epoch in range(6)]
    for drawn in epochs:
        assert sorted(row // 4 for row in drawn) == list(range(10))  # exactly one row from every group
    assert epochs == [draw_pairs(members, seed=7, epoch=epoch) for epoch in range(6)]  # same seed, same draws
    assert draw_pairs(members, seed=8, epoch=0) != epochs[0]
    # A new pair each epoch: over six epochs every group sees more than one of its pairs.
    assert all(len({row for drawn in epochs for row in drawn if row // 4 == group}) > 1 for group in range(10))


def test_preference_records_name_their_group(tmp_path: Path) -> None:
    path = tmp_path / "dpo.jsonl"
    rows = [{"prompt": "p", "chosen": "a", "rejected": "b", "group": 12, "pair_id": 3},
            {"prompt": "q", "chosen": "a", "rejected": "b"},
            {"instruction": "q", "criteria": "c", "chosen": "a", "rejected": "c"}]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    records = read_preference_records(path)
    assert [(r.group, r.pair_id) for r in records] == [("12", 3), (prompt_group("q"), None), (prompt_group("q"), None)]
    assert prompt_group("q").startswith("instruction:") and prompt_group("q") != prompt_group("p")
    path.write_text(json.dumps({"prompt": "p", "chosen": "a", "rejected": "a"}) + "\n")
    with pytest.raises(RecipeError, match="dpo.jsonl:1: chosen and rejected are the same"):
        read_preference_records(path)
    path.write_text('{"prompt": "p", "chosen": "a"}\n')
    with pytest.raises(RecipeError, match="dpo.jsonl:1: a DPO row needs"):
        read_preference_records(path)


def test_dpo_recipes_are_validated() -> None:
    base = {"base_model": "m", "datasets": ["d.jsonl"], "method": "dpo"}
    recipe = parse_train_recipe(base)
    assert (recipe.modeling, recipe.dpo.pair_selection, recipe.dpo.beta) == ("policy", "dynamic", 0.1)
    assert recipe.hyperparameters.packing is False
    for change, key in (({"modeling": "classification"}, " modeling: "), ({"dpo": {"beta": 0}}, " dpo.beta: "),
                        ({"dpo": {"pair_selection": "first"}}, " dpo.pair_selection: "),
                        ({"hyperparameters": {"packing": True}}, " hyperparameters.packing: "),
                        ({"method": "ppo"}, " method: ")):
        with pytest.raises(RecipeError, match=key):
            parse_train_recipe({**base, **change}, source="r.yaml")
    with pytest.raises(RecipeError, match=" dpo: "):
        parse_train_recipe({"base_model": "m", "datasets": ["d.jsonl"], "dpo": {"beta": 0.2}})


def _events(run_dir: Path, kind: str) -> list[dict]:
    lines = (run_dir / "events.jsonl").read_text(encoding="utf-8").splitlines()
    return [event for event in map(json.loads, lines) if event["type"] == kind]


def test_dpo_draws_a_new_pair_per_problem_each_epoch_and_logs_it(tiny_model_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("trl")
    from core.training.trainer import train

    data = write_preference_pairs(tmp_path / "dpo" / "train.jsonl", groups=3, pairs_per_group=3)
    recipe_path = write_recipe(tmp_path / "r.yaml", tiny_model_dir, data, tmp_path / "run", modeling="policy",
                               top={"method": "dpo", "dpo": {"beta": 0.1}, "seed": 5}, batch_size=3,
                               micro_batch_size=1, max_steps=None, epochs=3, learning_rate=1.0e-3, warmup_steps=0,
                               packing=False)
    outcome = train(load_train_recipe(recipe_path), tmp_path / "run")
    assert outcome.state == "done" and outcome.step == 3  # one step per epoch: 3 problems, batch of 3
    draws = _events(tmp_path / "run", "pair_draw")
    assert [draw["epoch"] for draw in draws] == [0, 1, 2]
    records = read_preference_records(data)
    members = group_members([record.group for record in records])
    for draw in draws:
        assert sorted(pair["group"] for pair in draw["pairs"]) == ["HumanEval/0", "HumanEval/1", "HumanEval/2"]
        assert [pair["row"] for pair in draw["pairs"]] == draw_pairs(members, 5, draw["epoch"])
        assert all(pair["pair_id"] == records[pair["row"]].pair_id for pair in draw["pairs"])
    assert len({tuple(pair["row"] for pair in draw["pairs"]) for draw in draws}) > 1
    metrics = _events(tmp_path / "run", "metric")
    assert len(metrics) == 3 and all("reward_margin" in event for event in metrics)
    assert _events(tmp_path / "run", "checkpoint")[-1]["verified"] is True


def _shipped(name: str, model_dir: Path, data: Path, out: Path, recipe_path: Path) -> Path:
    """A shipped recipe pointed at the tiny offline model and a temporary export."""
    raw = yaml.safe_load((RECIPES / name).read_text(encoding="utf-8"))
    raw.update(base_model=str(model_dir), datasets=[str(data)], output_dir=str(out))
    recipe_path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return recipe_path


def test_the_shipped_dpo_smoke_recipe_runs_with_the_tiny_model(tiny_model_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("trl")
    from core.training.trainer import train

    data = write_preference_pairs(tmp_path / "dpo" / "train.jsonl", groups=4, pairs_per_group=3)
    recipe = load_train_recipe(_shipped("smollm2-135m-dpo-code-optimise-cpu-smoke.yaml", tiny_model_dir, data,
                                        tmp_path / "run", tmp_path / "r.yaml"))
    outcome = train(recipe, tmp_path / "run")
    assert outcome.state == "done" and outcome.step == recipe.hyperparameters.max_steps
    epochs = [draw["epoch"] for draw in _events(tmp_path / "run", "pair_draw")]
    assert epochs == list(range(len(epochs))) and len(epochs) >= 2  # one logged draw per epoch
    assert _events(tmp_path / "run", "checkpoint")[-1]["verified"] is True


def test_sft_on_chosen_solutions_learns_each_distinct_solution_once(tiny_model_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("trl")
    from core.training.train_data import read_examples
    from core.training.trainer import train

    data = write_preference_pairs(tmp_path / "dpo" / "train.jsonl", groups=4, pairs_per_group=3)
    examples = read_examples(data, "policy")
    assert len(examples) == 4 and all(example.target.startswith("def f") for example in examples)
    recipe = load_train_recipe(_shipped("smollm2-135m-sft-code-optimise-cpu-smoke.yaml", tiny_model_dir, data,
                                        tmp_path / "run", tmp_path / "r.yaml"))
    assert (recipe.method, recipe.modeling) == ("sft", "policy")
    outcome = train(recipe, tmp_path / "run")
    assert outcome.state == "done" and outcome.step == recipe.hyperparameters.max_steps
    assert _events(tmp_path / "run", "info")[0]["message"].startswith("4 examples")
