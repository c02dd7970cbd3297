"""Benchmark inputs: CodePrefBench choices and function-sized snippets of the standard library."""

from __future__ import annotations

import ast
import gzip
import json
import os
import random
import sysconfig
from pathlib import Path

BENCH = Path(os.environ.get("WORKBENCH_BENCH") or Path(__file__).resolve().parents[2] / ".." / "shared" / "codeprefbench")


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


_SMALL_FUNCTION_MODULES = ("textwrap", "shlex", "fractions", "statistics", "heapq", "bisect", "difflib", "calendar",
                           "ipaddress", "argparse", "configparser", "csv", "gettext", "tarfile", "zipfile", "pathlib",
                           "inspect", "typing", "dataclasses", "enum")


def near_duplicate_corpus(count: int, seed: int = 0, max_chars: int = 500) -> list[str]:
    """Short library functions and edited copies of them (spread typos, renamed names, lines added or
    removed, up to three edits each): pairs at every similarity around a near-duplicate threshold."""
    import re

    rng = random.Random(seed)
    bases = []
    for name in _SMALL_FUNCTION_MODULES:  # a few modules: parsing the whole library takes a minute
        path = Path(sysconfig.get_paths()["stdlib"]) / f"{name}.py"
        source = path.read_text(encoding="utf-8")
        lines = source.splitlines(keepends=True)
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef) and node.end_lineno is not None:
                segment = "".join(lines[node.lineno - 1:node.end_lineno])
                if 100 < len(segment) < max_chars:
                    bases.append(segment)
    rng.shuffle(bases)
    bases = bases[:max(count // 8, 1)]

    def edit(code: str) -> str:
        kind = rng.random()
        if kind < 0.3:
            return perturb(code, rng, rng.choice((0.01, 0.03, 0.05, 0.08)))
        if kind < 0.6:
            names = sorted(set(re.findall(r"\b[a-z_][a-z_0-9]{2,}\b", code)))
            for name in rng.sample(names, min(len(names), rng.randint(1, 3))):
                code = re.sub(rf"\b{name}\b", name[:2] + "q", code)
            return code
        lines = code.splitlines()
        for _ in range(rng.randint(1, 3)):
            position = rng.randrange(len(lines) + 1)
            if lines and rng.random() < 0.5:
                del lines[min(position, len(lines) - 1)]
            else:
                lines.insert(position, f"    x = compute({rng.randrange(100)})")
        return "\n".join(lines)

    corpus = []
    for _ in range(count):
        code = rng.choice(bases)
        for _edit in range(rng.choice((0, 1, 1, 2, 3))):
            code = edit(code)
        corpus.append(code)
    return corpus
