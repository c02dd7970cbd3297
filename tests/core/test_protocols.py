"""The codefavor protocol reproduces the CodeFavor reference's input byte for byte.

The expected strings below are the reference's `pairwise_classification_template` and
`pairwise_cot_template` (amazon-science/llm-code-preference, codefavor/template.py) applied to
three CodePrefBench tasks, with each code in a ```python fence and the reference's comment stripping
(codefavor/utility.py, remove_comments; both codes kept when either does not parse), written out here.
"""

from __future__ import annotations

import pytest

from core.errors import OptionError
from core.evaluation.bench import judge_items, load_benchmark
from core.evaluation.protocols import (
    CODEFAVOR_CRITERIA,
    get_protocol,
    name_codes_by_position,
)
from tests.fixtures import BENCH_DIR

needs_bench = pytest.mark.skipif(not BENCH_DIR.is_dir(), reason="CodePrefBench is absent")

# efficiency Mbpp/725, given order
EXPECTED_EFFICIENCY = (
    '[INSTRUCTION] Please provide a self-contained Python script that solves the following problem in a markdown code block:\n'
    '```\n'
    '"""\n'
    'Write a function to extract values between quotation marks " " of the given string.\n'
    'assert extract_quotation(\'Cortex "A53" Based "multi" tasking "Processor"\') == [\'A53\', \'multi\', \'Processor\']\n'
    '"""\n'
    '``` [CODE_A] ```python\n'
    'def extract_quotation(s):\n'
    '    result = []\n'
    '    start = 0\n'
    '    while start < len(s):\n'
    '        start = s.find(\'"\', start)\n'
    '        if start == -1:\n'
    '            break\n'
    '        end = s.find(\'"\', start + 1)\n'
    '        if end == -1:\n'
    '            break\n'
    '        result.append(s[start + 1:end])\n'
    '        start = end + 1\n'
    '    return result\n'
    '\n'
    '``` [CODE_B] ```python\n'
    'def extract_quotation(s):\n'
    '    result = []\n'
    '    start = 0\n'
    '    while start < len(s):\n'
    '        if s[start] != \'"\':\n'
    '            start += 1\n'
    '        else:\n'
    '            end = start + 1\n'
    '            while end < len(s) and s[end] != \'"\':\n'
    '                end += 1\n'
    '            if end < len(s):\n'
    '                result.append(s[start + 1:end])\n'
    '                start = end + 1\n'
    '            else:\n'
    '                break\n'
    '    return result\n'
    '\n'
    '``` [CRITERIA] The ideal code should be efficient in execution time (primary) and memory usage (secondary).\n'
)
# security CSE/1884, given order
EXPECTED_SECURITY = (
    '[INSTRUCTION] Write a Python program that reads the contents of a file, manages directories, and returns a list of filenames and versions. [CODE_A] ```python\n'
    'import os\n'
    'import shutil\n'
    '\n'
    'print d.read()\n'
    'else:\n'
    'd.read()\n'
    'cleanup.append(finalFolder)\n'
    'd.close()\n'
    '\n'
    'if deleteBuilds:\n'
    '    for path in cleanup:\n'
    '        if verbose:\n'
    '            print "cleaning", path\n'
    '        shutil.rmtree(path)\n'
    'return filenames, versions.get("RoboFab")\n'
    '\n'
    'downloadPageTemplate = """<!DOCTYPE html PUBLIC "-//W3C//DTD HTML 4.01//EN"\n'
    '"http://www.w3.org/TR/html4/strict.dtd">\n'
    '\n'
    '"""\n'
    '``` [CODE_B] ```python\n'
    'import os\n'
    '\n'
    'print d.read()\n'
    'else:\n'
    'd.read()\n'
    'cleanup.append(finalFolder)\n'
    'd.close()\n'
    '\n'
    'if deleteBuilds:\n'
    '    for path in cleanup:\n'
    '        if verbose:\n'
    '            print "cleaning", path\n'
    '        d = os.popen("rm -r \\"%s\\""%(path))\n'
    '        if verbose:\n'
    '            print d.read()\n'
    '        else:\n'
    '            d.read()\n'
    'return filenames, versions.get("RoboFab")\n'
    '\n'
    'downloadPageTemplate = """<!DOCTYPE html PUBLIC "-//W3C//DTD HTML 4.01//EN"\n'
    '"http://www.w3.org/TR/html4/strict.dtd">\n'
    '\n'
    '"""\n'
    '``` [CRITERIA] The ideal code should be robust against security attacks and meet common security properties.\n'
)
# human-preference lbpp/149, given order
EXPECTED_HUMAN_PREFERENCE = (
    '[INSTRUCTION] Please generate a Python function named `test_sqrt_ratio` that solves the following task:\n'
    'Write a python function that returns True if the square root of a number is strictly greater than the number divided by ten. For negative numbers, return False.\n'
    '\n'
    'Please wrap your code in a markdown code block of "```python" and "```".\n'
    ' [CODE_A] ```python\n'
    'import math\n'
    'def test_sqrt_ratio(number):\n'
    '    if number < 0:\n'
    '        return False\n'
    '    return math.sqrt(number) > (number / 10)\n'
    '``` [CODE_B] ```python\n'
    'def test_sqrt_ratio(number):\n'
    '    if number < 0:\n'
    '        return False\n'
    '    return number ** 0.5 > (number / 10)\n'
    '``` [CRITERIA] Select the code that a human developer would generally prefer for the given instruction\n'
)
EXPECTED_GENERATION_SWAPPED = (
    'Given an [INSTRUCTION] and two response candidates of [CODE_A] and [CODE_B], please judge which of them better meets [CRITERIA] while following [INSTRUCTION]:\n'
    '\n'
    '---\n'
    '[INSTRUCTION]\n'
    'Please generate a Python function named `test_sqrt_ratio` that solves the following task:\n'
    'Write a python function that returns True if the square root of a number is strictly greater than the number divided by ten. For negative numbers, return False.\n'
    '\n'
    'Please wrap your code in a markdown code block of "```python" and "```".\n'
    '\n'
    '\n'
    '[CODE_A]\n'
    '```python\n'
    'def test_sqrt_ratio(number):\n'
    '    if number < 0:\n'
    '        return False\n'
    '    return number ** 0.5 > (number / 10)\n'
    '```\n'
    '\n'
    '[CODE_B]\n'
    '```python\n'
    'import math\n'
    'def test_sqrt_ratio(number):\n'
    '    if number < 0:\n'
    '        return False\n'
    '    return math.sqrt(number) > (number / 10)\n'
    '```\n'
    '\n'
    '[CRITERIA]\n'
    'Select the code that a human developer would generally prefer for the given instruction\n'
    '---\n'
    '\n'
    '1. Please FIRST provide a brief [FEEDBACK] section regarding if the code meets [CRITERIA]\n'
    '2. THEN conclude with a [RESULT] section suggesting the conclusion in the format of "[CODE_?] is better than [CODE_?] on the mentioned criteria".\n'
)


@pytest.fixture(scope="module")
def items() -> dict[tuple[str, str, str], object]:
    found = judge_items(load_benchmark(BENCH_DIR), protocol="codefavor")
    return {(i.objective, i.task_id, i.order): i for i in found}


def _classification(item: object) -> str:
    return get_protocol("codefavor").classification_prompt(
        item.instruction, item.code_a, item.code_b, item.criteria  # type: ignore[attr-defined]
    )


@needs_bench
def test_three_tasks_render_byte_for_byte_as_the_reference(items: dict) -> None:
    assert _classification(items[("efficiency", "Mbpp/725", "given")]) == EXPECTED_EFFICIENCY
    assert _classification(items[("security", "CSE/1884", "given")]) == EXPECTED_SECURITY
    assert _classification(items[("human-preference", "lbpp/149", "given")]) == EXPECTED_HUMAN_PREFERENCE
    swapped = items[("human-preference", "lbpp/149", "swapped")]
    generation = get_protocol("codefavor").generation_prompt(
        swapped.instruction, swapped.code_a, swapped.code_b, swapped.criteria
    )
    assert generation == EXPECTED_GENERATION_SWAPPED


@needs_bench
def test_every_objective_uses_the_reference_criterion(items: dict) -> None:
    for (objective, _task, _order), item in items.items():
        assert item.criteria == CODEFAVOR_CRITERIA[objective]
    assert len(set(CODEFAVOR_CRITERIA.values())) == 4


def test_workbench_protocol_keeps_its_own_layout() -> None:
    prompt = get_protocol("workbench").classification_prompt("Add.", "x = 1\n", "x = 2\n", "Correct.")
    assert prompt.startswith("Given an [INSTRUCTION] and two responses") and "```" not in prompt
    assert "[CODE_A]\nx = 1\n\n[CODE_B]\nx = 2\n" in prompt
    with pytest.raises(OptionError, match="unknown protocol 'paper'"):
        get_protocol("paper")


@pytest.mark.parametrize(("feedback", "better", "expected"), [
    ("[IMPROVED_CODE] uses a set while [NAIVE_CODE] scans a list.", "A",
     "[CODE_A] uses a set while [CODE_B] scans a list."),
    ("[NAIVE CODE] forgets the import; [IMPROVED CODE] adds it.", "B",
     "[CODE_A] forgets the import; [CODE_B] adds it."),
    ("[ATTEMPT_1] is quadratic, [ATTEMPT_2] is linear.", "A", "[CODE_B] is quadratic, [CODE_A] is linear."),
    ("The improved code validates input, unlike the initial attempt.", "B",
     "[CODE_B] validates input, unlike [CODE_A]."),
    ("The original code leaks the handle; the new version closes it.", "A",
     "[CODE_B] leaks the handle; [CODE_A] closes it."),
    ("Using a context manager is safer.", "A", None),
    ("[IMPROVED_CODE] is better.\n[CODE_A] is better than [CODE_B] on the mentioned criteria.", "A",
     "[CODE_A] is better."),
])
def test_feedback_names_the_codes_by_position(feedback: str, better: str, expected: str | None) -> None:
    assert name_codes_by_position(feedback, better) == expected  # type: ignore[arg-type]


def test_generation_targets_end_as_each_protocol_says() -> None:
    codefavor = get_protocol("codefavor").generation_target("[IMPROVED_CODE] closes the file.", "B")
    assert codefavor == "[CODE_B] closes the file.\n[RESULT]\nTherefore, [CODE_B] is better than [CODE_A] on [CRITERIA]."
    workbench = get_protocol("workbench").generation_target("[IMPROVED_CODE] closes the file.", "A")
    assert workbench == "[CODE_A] closes the file.\n\n[CODE_A] is better than [CODE_B] on the mentioned criteria."
    assert get_protocol("codefavor").generation_target("It is nicer.", "A") is None
