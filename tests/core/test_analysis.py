"""Analysis of hand-written pairs: parse validity, radon metrics, bandit findings, diffs."""

from __future__ import annotations

from core.curation.analysis import BanditRunner, PairCode, analyse_pairs, analyse_stream, changed_lines, normalise

SAFE = "def add(a, b):\n    return a + b\n"
UNSAFE = "import subprocess\n\ndef run(cmd):\n    return subprocess.call(cmd, shell=True)\n"
BRANCHY = "def sign(x):\n    if x > 0:\n        return 1\n    elif x < 0:\n        return -1\n    return 0\n"


def analyse_one(chosen: str, rejected: str) -> object:
    return analyse_pairs([PairCode(1, chosen, rejected)])[0]


def test_metrics_and_deltas_on_parsing_code() -> None:
    result = analyse_one(BRANCHY, SAFE)
    assert result.chosen.parses and result.rejected.parses
    assert result.chosen.cyclomatic == 3 and result.rejected.cyclomatic == 1
    assert result.deltas["cc_delta"] == 2
    assert result.chosen.loc > result.rejected.loc
    assert 0 < result.chosen.maintainability <= 100
    assert result.chosen.halstead_volume > 0
    assert result.diff_size > 0 and not result.identical


def test_bandit_findings_per_side_and_delta() -> None:
    result = analyse_one(SAFE, UNSAFE)
    assert result.chosen.findings == ()
    ids = {finding.test_id for finding in result.rejected.findings}
    assert "B602" in ids  # subprocess call with shell=True
    b602 = next(f for f in result.rejected.findings if f.test_id == "B602")
    assert b602.line == 4 and b602.severity == "HIGH"
    assert result.deltas["bandit_delta"] == -len(result.rejected.findings)


def test_code_that_does_not_parse_and_empty_code() -> None:
    result = analyse_one("def broken(:\n    pass\n", "")
    assert not result.chosen.parses and result.chosen.cyclomatic == 0 and result.chosen.loc == 2
    assert result.rejected.parses and result.rejected.loc == 0  # empty code is a valid module
    assert result.chosen.findings == () and result.rejected.findings == ()
    assert result.length_ratio == len("def broken(:\n    pass\n")


def test_non_ascii_code() -> None:
    code = 'def grüß(名前):\n    """Grüße."""\n    return f"héllo {名前}"  # ☃\n'
    result = analyse_one(code, code.replace("héllo", "hallo"))
    assert result.chosen.parses and result.chosen.cyclomatic == 1
    assert not result.identical and result.diff_size == 1


def test_identical_after_normalisation() -> None:
    commented = "def add(a, b):\n    # add them\n    return a   +   b\n"
    result = analyse_one(commented, SAFE)
    assert result.identical and result.chosen_norm_hash == result.rejected_norm_hash
    assert normalise(commented) == normalise(SAFE)


def test_five_thousand_line_file() -> None:
    big = "".join(f"def f{i}(x):\n    if x:\n        return {i}\n    return -x\n\n" for i in range(1000))
    assert big.count("\n") == 5000
    result = analyse_one(big, big.replace("return 7\n", "return 8\n", 1))
    # radon's total complexity (what MI uses): decision points of the whole file plus one
    assert result.chosen.parses and result.chosen.cyclomatic == 1001 and result.chosen.loc == 4000
    assert result.diff_size == 1


def test_bandit_runner_caches_by_content() -> None:
    runner = BanditRunner()
    first = runner.scan([UNSAFE, SAFE, UNSAFE])
    assert first[0] == first[2] and first[1] == ()
    assert runner.scan([UNSAFE]) == [first[0]]


def test_bandit_runner_matches_bandit_on_files_of_the_same_code(tmp_path) -> None:  # noqa: ANN001
    # The runner feeds snippets through bandit's public API; the findings are those bandit reports
    # for the same code on disk, with nosec honoured and unparsable code giving none.
    from bandit.core import config, manager

    snippets = [
        "import subprocess\nsubprocess.call('ls', shell=True)\nimport pickle\npickle.loads(b'')\n",
        "import pickle\npickle.loads(b'')  # nosec\n",
        "def (:\n",
        "password = 'hunter2'\nassert password\n",
    ]
    expected = []
    for index, code in enumerate(snippets):
        path = tmp_path / f"s{index}.py"
        path.write_text(code, encoding="utf-8")
        bandit = manager.BanditManager(config.BanditConfig(), "file", quiet=True)
        bandit.discover_files([str(path)])
        bandit.run_tests()
        expected.append(tuple(sorted(((i.test_id, int(i.lineno)) for i in bandit.get_issue_list()), key=lambda f: (f[1], f[0]))))
    found = [tuple((f.test_id, f.line) for f in findings) for findings in BanditRunner().scan(snippets)]
    assert found == [tuple((test_id, line) for test_id, line in e) for e in expected]
    assert found[0] and found[1] == (("B403", 1),) and found[2] == () and found[3]  # line 2 is nosec


def test_pool_gives_the_same_results_as_one_process() -> None:
    pairs = [PairCode(i, BRANCHY if i % 2 else UNSAFE, SAFE) for i in range(6)]
    chunks = [pairs[:3], pairs[3:]]
    pooled = [r for chunk in analyse_stream(chunks, workers=2) for r in chunk]
    single = [r for chunk in analyse_stream(chunks, workers=1) for r in chunk]
    assert pooled == single and [r.pair_id for r in pooled] == list(range(6))


def test_changed_lines() -> None:
    assert changed_lines("a\nb\nc\n", "a\nB\nc\nd\n") == ({2}, {2, 4})
