"""The shared checks behind both front ends: degenerate pairs, JSONL files, model specs and local
model names, merge weights, output paths, benchmark files."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.curation.pairs import pair_problem, read_pairs_jsonl, same_code
from core.errors import BenchmarkError, DataError, OptionError
from core.jsonl import read_jsonl_objects
from core.llm.specs import check_spec
from core.localmodels import context_length, require_local_model
from core.outputs import check_output_file, check_output_folder
from core.synthesis.steps import Filtered, finish_pair
from core.training.weights import merge_weights

CODE = "def total(xs):\n    t = 0\n    for x in xs:\n        t += x  # add\n    return t\n"


def test_same_code_ignores_whitespace_but_not_tokens_or_comments() -> None:
    assert same_code(CODE, CODE.replace("    ", "  ").replace("\n", "\r\n") + "\n\n")
    assert same_code(CODE, CODE.replace("t = 0", "t=0").replace("\n", "   \n"))
    assert not same_code(CODE, CODE.replace("t += x", "t -= x"))
    assert not same_code(CODE, CODE.replace("# add", "# sum"))
    assert not same_code("if a:\n    b\nc\n", "if a:\n    b\n    c\n")  # indentation is structure
    assert same_code("int f() {  return 1; }", "int f() {\n  return 1;\n}\n")
    assert not same_code("x = 'a b'", "x = 'a  b'")  # inside a string, spaces are content


@given(st.lists(st.sampled_from(["x = 1", "y = x + 2", "if y:", "    z = y", "print(z)"]), min_size=1, max_size=8),
       st.sampled_from(["", " ", "\t", "  "]), st.integers(min_value=0, max_value=3))
def test_trailing_space_and_blank_lines_never_make_code_different(lines: list[str], tail: str, blanks: int) -> None:
    code = "\n".join(lines) + "\n"
    padded = "\n".join(line + tail for line in lines) + "\n" * (blanks + 1)
    assert same_code(code, padded)


def test_pair_problem_is_the_one_check_of_every_path() -> None:
    assert pair_problem(CODE, CODE.replace("    ", "\t")) is not None
    assert pair_problem("", "x = 1") == "the chosen code is empty"
    assert pair_problem("x = 1", " \n") == "the rejected code is empty"
    assert pair_problem(CODE, CODE.replace("t = 0", "t = 1")) is None
    outcome = finish_pair(instruction="i", criteria="c", chosen=CODE, rejected=CODE + "\n\n",
                          feedback="[IMPROVED_CODE] is better than [NAIVE_CODE].",
                          language="python", strip=False, meta={})
    assert isinstance(outcome, Filtered) and outcome.reason == "both codes are the same"


def test_the_store_refuses_a_degenerate_pair_and_stores_nothing(tmp_path: Path) -> None:
    from core.curation.pairs import NewPair
    from stores.curation.pairs import count_pairs, import_pairs
    from stores.db import make_engine

    engine = make_engine(tmp_path / "wb.db")
    good = NewPair("i", "c", CODE, CODE.replace("t = 0", "t = 1"))
    with pytest.raises(DataError, match="pair 2 of 2: chosen and rejected are the same code"):
        import_pairs(engine, [good, NewPair("i", "c", CODE, CODE + " \n")])
    assert count_pairs(engine) == 0


def _lines(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "in.jsonl"
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "in.jsonl: no records: the file is empty"),
        (b"\n \n\r\n", "in.jsonl: no records: the file is empty"),
        (b'{"a": 1}\n{"a": "caf\xe9"}\n', "in.jsonl:2:11: not UTF-8 text (byte 0xe9)"),
        (b'{"a": 1}\n\n{"a": "\\ud83d"}\n', "in.jsonl:3: field a holds a lone surrogate escape (\\ud83d)"),
        (b'{"a": {"b": ["\\udc00"]}}\n', "in.jsonl:1: field a.b[0] holds a lone surrogate escape (\\udc00)"),
        (b'{"a": 1}\n{"a": 1,}\n', "in.jsonl:2:9: not valid JSON"),
        (b'"text"\n', "in.jsonl:1: expected a JSON object, found a string"),
    ],
)
def test_jsonl_errors_name_file_and_line(tmp_path: Path, data: bytes, message: str) -> None:
    with pytest.raises(DataError) as caught:
        list(read_jsonl_objects(_lines(tmp_path, data)))
    assert str(caught.value).endswith(message) or message in str(caught.value)


def test_jsonl_keeps_a_line_separator_inside_a_string(tmp_path: Path) -> None:
    path = _lines(tmp_path, '{"a": "x\u2028y\u0085z"}\n'.encode())  # str.splitlines() would cut both
    assert list(read_jsonl_objects(path)) == [(1, {"a": "x\u2028y\u0085z"})]
    bom = _lines(tmp_path, '\ufeff{"a": 1}\n'.encode())
    assert list(read_jsonl_objects(bom)) == [(1, {"a": 1})]
    with pytest.raises(OptionError, match="no such file"):
        list(read_jsonl_objects(tmp_path / "nope.jsonl"))


def test_pairs_jsonl_refuses_the_same_code_with_its_line(tmp_path: Path) -> None:
    pair = {"instruction": "i", "criteria": "c", "chosen": CODE, "rejected": CODE.replace("t = 0", "t = 1")}
    same = {**pair, "rejected": CODE.replace("    ", "   ")}
    path = _lines(tmp_path, (json.dumps(pair) + "\n" + json.dumps(same) + "\n").encode())
    with pytest.raises(DataError, match=r"in.jsonl:2: chosen and rejected are the same code"):
        list(read_pairs_jsonl(path))


@pytest.mark.parametrize(
    ("spec", "env", "message"),
    [
        ("openai:@", {}, "after '@' comes the server's URL"),
        ("openai:m@localhost:8000/v1", {}, "after '@' comes the server's URL"),
        ("openai:m@http://127.0.0.1:99999/v1", {}, "not a number from 1 to 65535"),
        ("openai:m@http://:80/v1", {}, "is not an http(s) URL with a host"),
        ("openai:m@http://h:1/v1?key_env=UNSET", {}, "$UNSET (named by key_env) is not set"),
        ("openai:m@http://h:1/v1?key_env=", {}, "key_env is empty"),
        ("openai:gpt-4o", {}, "the hosted OpenAI API needs a key: set $OPENAI_API_KEY"),
        ("openai:gpt-4o", {"OPENAI_API_KEY": "sk-1\nx"}, "holds a line break"),
        ("openai:m@http://h:1/v1?timeout=0", {}, "timeout must be a positive number"),
        ("openai:m@http://h:1/v1?retries=x", {}, "retries must be a whole number"),
        ("openai:m@http://h:1/v1?retries=-1", {}, "retries must not be negative"),
        ("hf:/no/such/model", {}, "is not a local folder or .gguf file, and hub downloads are unavailable"),
        ("vllm:abc", {}, "takes the id"),
    ],
)
def test_model_specs_are_checked_before_any_request(spec: str, env: dict[str, str], message: str) -> None:
    with pytest.raises(OptionError) as caught:
        check_spec(spec, env=env)
    assert message in str(caught.value)


def test_valid_specs_pass(tmp_path: Path) -> None:
    assert check_spec("openai:gpt-4o", env={"OPENAI_API_KEY": "sk-1"}).base_url == "https://api.openai.com/v1"
    assert check_spec("openai:m@http://[::1]:8000/v1?key_env=K", env={"K": "k"}).target == "m"
    assert check_spec(f"hf:{tmp_path}?max_tokens=8", env={}).kind == "hf"
    assert check_spec("vllm:3", env={}).target == "3"


def test_local_model_names(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"n_positions": 1024}')
    require_local_model(str(tmp_path), what="--tokenizer")
    assert context_length(tmp_path) == 1024
    with pytest.raises(OptionError, match="--tokenizer: org/model is not a local folder, and hub downloads"):
        require_local_model("org/model", what="--tokenizer", env={})
    require_local_model("org/model", what="--tokenizer", env={"WORKBENCH_HUB_DOWNLOADS": "1"})
    with pytest.raises(OptionError, match="is a file; pass the model's folder"):
        require_local_model(str(tmp_path / "config.json"), what="x")


@pytest.mark.parametrize(
    ("values", "count", "message"),
    [
        (["inf", "1"], 2, "merge weight 'inf' is not a finite number"),
        (["nan", "1"], 2, "merge weight 'nan' is not a finite number"),
        (["a", "b"], 2, "merge weight 'a' is not a number"),
        (["-1", "2"], 2, "must be positive numbers, not '-1'"),
        (["0", "0"], 2, "must be positive numbers, not '0'"),
        (["1"], 2, "2 checkpoints but 1 weights"),
        (["1e308", "1e308"], 2, "too large to add up"),
        (None, 1, "merging needs at least two checkpoints"),
    ],
)
def test_merge_weights_are_checked_before_any_tensor(values: list[str] | None, count: int, message: str) -> None:
    with pytest.raises(OptionError, match=message):
        merge_weights(values, count)


def test_merge_weights_default_to_equal_and_keep_their_values() -> None:
    assert merge_weights(None, 3) == (1.0, 1.0, 1.0)
    assert merge_weights(["0.25", 0.75], 2) == (0.25, 0.75)


def test_output_paths_are_checked_without_leaving_anything(tmp_path: Path) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(OptionError, match="the folder is not empty; choose a new folder, or pass --force"):
        check_output_folder(tmp_path / "full", force_option="--force")
    assert check_output_folder(tmp_path / "full", allow_existing=True) == tmp_path / "full"
    assert check_output_folder(tmp_path / "new" / "deeper") == tmp_path / "new" / "deeper"
    with pytest.raises(OptionError, match="is not a writable folder"):
        check_output_folder("/proc/workbench-out")
    with pytest.raises(OptionError, match="use a .csv or .svg file name"):
        check_output_file(tmp_path / "cdf.png", what="--cdf-out", suffixes=(".csv", ".svg"))
    with pytest.raises(OptionError, match="does not exist"):
        check_output_file(tmp_path / "none" / "cdf.csv", what="--cdf-out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full"]


def _objective_file(folder: Path, records: list[dict[str, object]], extra: bytes = b"") -> Path:
    from core.evaluation.bench import OBJECTIVES, objective_file

    folder.mkdir(exist_ok=True)
    for objective in OBJECTIVES:
        data = "".join(json.dumps(record) + "\n" for record in records).encode() + extra
        (folder / objective_file(objective)).write_bytes(gzip.compress(data))
    return folder


def test_benchmark_repeats_and_identical_choices_are_refused(tmp_path: Path) -> None:
    from core.evaluation.bench import load_benchmark

    task = {"task_id": "t/0", "instruction": "Add.", "gt_choice": 0, "choices": ["def f():\n    return 1\n",
                                                                                  "def f():\n    return 2\n"]}
    swapped = {**task, "choices": task["choices"][::-1], "gt_choice": 1}
    second_pair = {**task, "choices": [task["choices"][0], "def f():\n    return 3\n"]}
    assert len(load_benchmark(_objective_file(tmp_path / "ok", [task, second_pair])).tasks["correctness"]) == 2
    with pytest.raises(BenchmarkError, match="line 2: task t/0 repeats line 1"):
        load_benchmark(_objective_file(tmp_path / "dup", [task, swapped]))
    same = {**task, "choices": [task["choices"][0], task["choices"][0].replace("    ", "  ")]}
    with pytest.raises(BenchmarkError, match="line 1: task t/0: both choices are the same code"):
        load_benchmark(_objective_file(tmp_path / "same", [same]))
    with pytest.raises(BenchmarkError, match="line 2: not UTF-8 text"):
        load_benchmark(_objective_file(tmp_path / "latin1", [task], extra=b'{"task_id": "caf\xe9"}\n'))
