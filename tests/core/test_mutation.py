"""Rule-based mutation: each kind's exact variant, the checks a variant must pass, commit-signal pairs."""

from __future__ import annotations

import ast
import random

import pytest

from core.curation.analysis import BanditRunner
from core.evaluation.protocols import CODEFAVOR_CRITERIA as CRITERIA
from core.synthesis.mutation import (
    MutationCounts,
    commit_signal_pairs,
    extract_functions,
    instruction_for,
    mutate_source,
)
from core.synthesis.mutation_kinds import KINDS, FunctionSource, kinds_for

# kind: (original function, seed, expected variant, modules the variant adds)
CASES: dict[str, tuple[str, int, str, tuple[str, ...]]] = {
    "off-by-one": (
        "def tail(xs):\n    return [xs[i] for i in range(1, len(xs) + 1)]",
        0, "def tail(xs):\n    return [xs[i] for i in range(1, len(xs))]", ()),
    "flipped-comparison": (
        "def clamp(x, low):\n    if x < low:\n        return low\n    return x",
        0, "def clamp(x, low):\n    if x > low:\n        return low\n    return x", ()),
    "dropped-edge-case": (
        "def mean(xs):\n    if not xs:\n        raise ValueError('empty')\n    return sum(xs) / len(xs)",
        0, "def mean(xs):\n    return sum(xs) / len(xs)", ()),
    "wrong-return": (
        "def area(w, h):\n    return w * h",
        0, "def area(w, h):\n    return w", ()),
    "eval-of-input": (
        "def parse(text):\n    return int(text)",
        0, "def parse(text):\n    return eval(text)", ()),
    "yaml-load": (
        "def read(stream):\n    return yaml.safe_load(stream)",
        0, "def read(stream):\n    return yaml.load(stream, Loader=yaml.Loader)", ()),
    "pickle-of-input": (
        "def decode(blob):\n    return json.loads(blob)",
        0, "def decode(blob):\n    return pickle.loads(blob)", ("pickle",)),
    "shell-true": (
        "def listing(folder):\n    return subprocess.check_output(['ls', '-l', folder])",
        0, "def listing(folder):\n    return subprocess.check_output(' '.join(['ls', '-l', folder]), shell=True)", ()),
    "weak-hash": (
        "def digest(password, salt):\n    return hashlib.pbkdf2_hmac('sha256', password, salt, 100000)",
        0, "def digest(password, salt):\n    return hashlib.sha1(salt + password).digest()", ()),
    "sql-by-formatting": (
        "def find(cur, name):\n    cur.execute('SELECT id FROM users WHERE name = ?', (name,))\n    return cur.fetchall()",
        0, "def find(cur, name):\n    cur.execute(\"SELECT id FROM users WHERE name = '%s'\" % (name,))\n"
           "    return cur.fetchall()", ()),
    "verify-false": (
        "def fetch(url):\n    return requests.get(url, timeout=10, verify=True)",
        0, "def fetch(url):\n    return requests.get(url, timeout=10, verify=False)", ()),
    "tempfile-mktemp": (
        "def scratch():\n    fd, path = tempfile.mkstemp(prefix='wb')\n    os.close(fd)\n    return path",
        0, "def scratch():\n    path = tempfile.mktemp(prefix='wb')\n    fd = os.open(path, os.O_RDWR | os.O_CREAT)\n"
           "    os.close(fd)\n    return path", ("os",)),
    "list-membership": (
        "def keep_known(words, known):\n    allowed = {w.lower() for w in known}\n"
        "    return [w for w in words if w.lower() in allowed]",
        0, "def keep_known(words, known):\n    allowed = [w.lower() for w in known]\n"
           "    return [w for w in words if w.lower() in allowed]", ()),
    "string-concat": (
        "def initials(names):\n    return ''.join((n[0] for n in names if n))",
        0, "def initials(names):\n    text = ''\n    for n in names:\n        if n:\n            text += n[0]\n    return text",
        ()),
    "repeated-in-loop": (
        "def scan(xs):\n    n = len(xs)\n    i = 0\n    while i < n:\n        i += 1\n    return i",
        0, "def scan(xs):\n    i = 0\n    while i < len(xs):\n        i += 1\n    return i", ()),
    "quadratic-dedupe": (
        "def unique(items):\n    seen = set()\n    out = []\n    for item in items:\n        if item not in seen:\n"
        "            seen.add(item)\n            out.append(item)\n    return out",
        0, "def unique(items):\n    out = []\n    for item in items:\n        if item not in out:\n"
           "            out.append(item)\n    return out", ()),
}

# More sites and shapes of the same kinds.
MORE_CASES: list[tuple[str, str, str]] = [
    ("off-by-one", "def head(xs, k):\n    return xs[:k]", "def head(xs, k):\n    return xs[:k - 1]"),
    ("wrong-return", "def is_even(n):\n    return not n % 2", "def is_even(n):\n    return n % 2"),
    ("wrong-return", "def ok():\n    return True", "def ok():\n    return False"),
    ("flipped-comparison", "def has(xs, x):\n    return x in xs", "def has(xs, x):\n    return x not in xs"),
    ("weak-hash", "def h(data):\n    return hashlib.new('sha256', data).hexdigest()",
     "def h(data):\n    return hashlib.new('sha1', data).hexdigest()"),
    ("yaml-load", "def read(s):\n    return yaml.load(s, Loader=yaml.SafeLoader)",
     "def read(s):\n    return yaml.load(s, Loader=yaml.Loader)"),
    ("tempfile-mktemp", "def f(data):\n    with tempfile.NamedTemporaryFile(mode='w', delete=False) as out:\n"
     "        out.write(data)\n    return out.name",
     "def f(data):\n    with open(tempfile.mktemp(), 'w') as out:\n        out.write(data)\n    return out.name"),
    ("list-membership", "def vowels(text):\n    total = 0\n    for ch in text:\n        if ch in {'a', 'e'}:\n"
     "            total += 1\n    return total",
     "def vowels(text):\n    total = 0\n    for ch in text:\n        if ch in ['a', 'e']:\n            total += 1\n"
     "    return total"),
    ("string-concat", "def shout(words):\n    parts = []\n    for word in words:\n        parts.append(word.upper())\n"
     "    return ''.join(parts)",
     "def shout(words):\n    parts = ''\n    for word in words:\n        parts += word.upper()\n    return parts"),
    ("repeated-in-loop", "def ranks(scores):\n    ordered = sorted(scores)\n    return [ordered.index(s) for s in scores]",
     "def ranks(scores):\n    return [sorted(scores).index(s) for s in scores]"),
    ("quadratic-dedupe", "def distinct(xs):\n    return list(dict.fromkeys(xs))",
     "def distinct(xs):\n    return [item for index, item in enumerate(xs) if item not in xs[:index]]"),
]

# Shapes a kind must leave alone: applying it would change the result or break the code.
NOT_APPLICABLE: list[tuple[str, str]] = [
    ("repeated-in-loop", "def grow(xs):\n    n = len(xs)\n    for _ in range(3):\n        xs.append(n)\n    return xs"),
    ("repeated-in-loop", "def f(xs):\n    n = len(xs)\n    for i in range(n):\n        print(i)"),
    ("string-concat", "def initials(names, n):\n    return ''.join((n[0] for n in names if n))"),
    ("string-concat", "def join(words):\n    return ', '.join(words)"),
    ("list-membership", "def first_repeat(xs):\n    seen = set()\n    for x in xs:\n        if x in seen:\n"
     "            return x\n        seen.add(x)"),
    ("quadratic-dedupe", "def unique(items, seen):\n    out = []\n    for item in items:\n        if item not in seen:\n"
     "            seen.add(item)\n            out.append(item)\n    return seen"),
    ("wrong-return", "def name(x):\n    return str(x)"),
    ("dropped-edge-case", "def f(x):\n    if x:\n        return 1"),
    ("eval-of-input", "def parse():\n    return int('3')"),
    ("sql-by-formatting", "def q(cur, rows):\n    cur.executemany('INSERT INTO t VALUES (?)', rows)"),
    ("shell-true", "def run(cmd):\n    return subprocess.run(cmd, shell=True)"),
]

KIND_BY_NAME = {kind.name: kind for kind in KINDS}


def test_every_kind_has_a_case_and_each_objective_its_kinds() -> None:
    assert set(CASES) == set(KIND_BY_NAME)
    assert [k.name for k in kinds_for("correctness")] == [
        "off-by-one", "flipped-comparison", "dropped-edge-case", "wrong-return"]
    assert len(kinds_for("security")) == 8 and len(kinds_for("efficiency")) == 4


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_kind_makes_its_exact_variant(name: str) -> None:
    source, seed, expected, imports = CASES[name]
    variant = KIND_BY_NAME[name].apply(FunctionSource(source), random.Random(seed))
    assert variant is not None
    assert ast.unparse(ast.fix_missing_locations(variant.function)) == expected
    assert variant.imports == imports


@pytest.mark.parametrize(("name", "source", "expected"), MORE_CASES)
def test_more_shapes_of_the_same_kinds(name: str, source: str, expected: str) -> None:
    variant = KIND_BY_NAME[name].apply(FunctionSource(source), random.Random(0))
    assert variant is not None and ast.unparse(ast.fix_missing_locations(variant.function)) == expected


@pytest.mark.parametrize(("name", "source"), NOT_APPLICABLE)
def test_kinds_leave_shapes_alone_where_the_rewrite_would_be_wrong(name: str, source: str) -> None:
    assert KIND_BY_NAME[name].apply(FunctionSource(source), random.Random(0)) is None


def test_the_seed_picks_the_site_and_the_original_is_never_changed() -> None:
    source = FunctionSource("def f(a, b, c):\n    if a < b:\n        return 1\n    if b == c:\n        return 2\n    return 3")
    before = ast.dump(source.node)
    sites = {ast.unparse(KIND_BY_NAME["flipped-comparison"].apply(source, random.Random(seed)).function)  # type: ignore[union-attr]
             for seed in range(12)}
    assert len(sites) == 2
    assert ast.dump(source.node) == before


def test_instructions_come_from_the_signature_and_the_docstring() -> None:
    tree = ast.parse('class Box:\n    async def size(self, unit: str = "cm") -> int:\n'
                     '        """Return the size.\n\n        In whole units.\n        """\n        return 1\n')
    method = tree.body[0].body[0]  # type: ignore[attr-defined]
    assert instruction_for(method, "Box") == (
        "Write a Python function `async def size(self, unit: str='cm') -> int` (a method of class `Box`).\n\n"
        "Return the size.\n\nIn whole units."
    )
    functions, skipped = extract_functions(
        "import os\nimport sys as system\nfrom json import loads\n\n"
        "def f(p):\n    '''Doc.'''\n    return os.path.join(p, loads('1'))\n\n"
        "def g():\n    '''Only a docstring.'''\n"
    )
    assert skipped == 1 and [f.qualname for f in functions] == ["f"]
    assert functions[0].code == "import os\nfrom json import loads\n\n\ndef f(p):\n    return os.path.join(p, loads('1'))\n"


SOURCE = '''
import hashlib
import json
import sqlite3


def total(xs):
    """Sum the numbers in xs."""
    if not xs:
        return 0
    result = 0
    for i in range(len(xs)):
        result += xs[i]
    return result


def load(text):
    """Parse a JSON document."""
    return json.loads(text)


def version(cur, value):
    cur.execute("PRAGMA user_version = ?", (value,))


def password_hash(password, salt):
    return hashlib.sha256(salt + password).hexdigest()


def unique(items):
    seen = set()
    out = []
    for item in items:
        if item not in seen:
            seen.add(item)
            out.append(item)
    return out
'''


def test_a_file_gives_one_pair_per_function_and_objective_deterministically() -> None:
    bandit = BanditRunner()
    counts = MutationCounts()
    pairs = mutate_source(SOURCE, seed=7, bandit=bandit, counts=counts, seen=set())
    again = mutate_source(SOURCE, seed=7, bandit=bandit, counts=MutationCounts(), seen=set())
    assert pairs == again
    keys = [(p.objective, p.function) for p in pairs]
    assert len(keys) == len(set(keys))
    assert {p.function for p in pairs if p.objective == "efficiency"} == {"unique"}  # the only loop to slow
    for pair in pairs:
        assert pair.criteria == CRITERIA[pair.objective]
        assert pair.chosen != pair.rejected
        ast.parse(pair.chosen)
        ast.parse(pair.rejected)
        assert pair.instruction.startswith(f"Write a Python function `def {pair.function}(")
    security = {p.function: p for p in pairs if p.objective == "security"}
    assert set(security) == {"load", "password_hash"}
    assert security["password_hash"].added_findings == ("B324",)
    assert security["load"].added_findings in (("B307",), ("B301",))  # B403 (import pickle) is low severity
    # The PRAGMA query built by formatting is not SQL bandit recognises: dropped, and counted.
    assert counts.dropped["sql-by-formatting: no new bandit finding"] == 1
    assert "version" not in security
    assert counts.functions == 5 and sum(counts.pairs.values()) == len(pairs)
    total = next(p for p in pairs if p.function == "total" and p.objective == "correctness")
    assert total.instruction == "Write a Python function `def total(xs)`.\n\nSum the numbers in xs."
    assert '"""' not in total.chosen and total.chosen.startswith("def total(xs):\n    if not xs:")


def test_functions_seen_before_in_the_run_are_not_mutated_again() -> None:
    seen: set[str] = set()
    counts = MutationCounts()
    first = mutate_source(SOURCE, objectives=("correctness",), bandit=BanditRunner(), counts=counts, seen=seen)
    second = mutate_source(SOURCE + "\n\ndef extra(x):\n    return x + 1\n", objectives=("correctness",),
                           bandit=BanditRunner(), counts=counts, seen=seen)
    # total and unique have something to break; load, version and password_hash return calls or nothing.
    assert [p.function for p in first] == ["total", "unique"] and [p.function for p in second] == ["extra"]
    assert counts.repeated_functions == 5
    assert mutate_source("def broken(:\n", bandit=BanditRunner(), counts=counts) == []
    assert counts.unparsable_files == 1


def test_commit_signal_prefers_the_change_that_removes_a_finding() -> None:
    old = ("import subprocess\nimport yaml\n\n"
           "def read(s):\n    return yaml.load(s, Loader=yaml.Loader)\n\n"
           "def run(cmd):\n    return subprocess.run(cmd, shell=True)\n\n"
           "def same(x):\n    return x\n")
    new = ("import subprocess\nimport yaml\n\n"
           "def read(s):\n    return yaml.safe_load(s)\n\n"
           "def run(cmd):\n    return subprocess.run(cmd, shell=True, check=eval('True'))\n\n"
           "def same(x):\n    return x\n")
    pairs = commit_signal_pairs(old, new, bandit=BanditRunner())
    assert [(p.function, p.removed_findings) for p in pairs] == [("read", ("B506",))]
    pair = pairs[0]
    assert pair.chosen == "import yaml\n\n\ndef read(s):\n    return yaml.safe_load(s)\n"
    assert pair.rejected == "import yaml\n\n\ndef read(s):\n    return yaml.load(s, Loader=yaml.Loader)\n"
    assert pair.criteria == CRITERIA["security"] and "B506" in pair.feedback
    # Reversed, read gains B506 (no pair) while run loses the eval: a change may not trade one finding for another.
    reverse = commit_signal_pairs(new, old, bandit=BanditRunner())
    assert [(p.function, p.removed_findings) for p in reverse] == [("run", ("B307",))]
    assert commit_signal_pairs("def f(:\n", new, bandit=BanditRunner()) == []


def test_low_severity_findings_make_no_commit_signal_pair() -> None:
    old = "def check(x):\n    assert x > 0\n    return x\n"
    new = "def check(x):\n    if x <= 0:\n        raise ValueError(x)\n    return x\n"
    assert commit_signal_pairs(old, new, bandit=BanditRunner()) == []  # B101 (assert) is low severity
