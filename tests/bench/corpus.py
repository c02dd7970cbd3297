"""Benchmark inputs: CodePrefBench choices and function-sized snippets of the standard library."""

from __future__ import annotations

import ast
import gzip
import json
import random
import sysconfig
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / ".." / "shared" / "codeprefbench"


def bench_choices(folder: Path = BENCH) -> list[list[str]]:
    """The two choices of every CodePrefBench task."""
    tasks = []
    for file in sorted(folder.glob("*.jsonl.gz")):
        with gzip.open(file, "rt", encoding="utf-8") as handle:
            tasks += [json.loads(line)["choices"] for line in handle if line.strip()]
    return tasks


def stdlib_snippets(count: int, seed: int = 0) -> list[str]:
    """Top-level functions and classes of the standard library, 100-3000 characters, shuffled."""
    snippets = []
    for path in sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py")):
        source = path.read_text(encoding="utf-8", errors="replace")
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                segment = ast.get_source_segment(source, node)
                if segment and 100 < len(segment) < 3000:
                    snippets.append(segment)
    random.Random(seed).shuffle(snippets)
    return (snippets * (count // max(len(snippets), 1) + 1))[:count]


def perturb(code: str, rng: random.Random, rate: float) -> str:
    """Replace a fraction of characters: a near copy of a benchmark snippet."""
    chars = list(code)
    for _ in range(int(len(chars) * rate)):
        chars[rng.randrange(len(chars))] = rng.choice("xyz_ (\n")
    return "".join(chars)


def mixed_snippets(count: int, contaminated_fraction: float = 0.05, seed: int = 0) -> list[str]:
    """Mostly unrelated code with a few near copies of benchmark code, like a real pair corpus."""
    rng = random.Random(seed)
    bench = [code for choices in bench_choices() for code in choices]
    snippets = stdlib_snippets(count, seed)
    for index in range(count):
        if rng.random() < contaminated_fraction:
            snippets[index] = perturb(rng.choice(bench), rng, rng.choice((0.0, 0.05, 0.1, 0.2)))
    return snippets
