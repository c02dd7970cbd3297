"""Imports point one way: core, stores and the job runners never pull in a UI library."""

from __future__ import annotations

import subprocess
import sys

TORCH_MODULES = frozenset({
    "core.evaluation.pair_rm",
    "core.llm.hf_chat",
    "core.training.attention",
    "core.training.callbacks",
    "core.training.dpo",
    "core.training.merge",
    "core.training.tiny",
    "core.training.train_main",
    "core.training.trainer",
    "core.training.verify",
})
# alembic's environment script runs only inside a migration (stores.migrations.upgrade).
ALEMBIC_ONLY = frozenset({"stores.migrations.env"})


def test_core_stores_and_runners_import_no_ui_library() -> None:
    # These modules hold the torch code that runs in training and judging subprocesses: they are the
    # only ones allowed to import torch at module level, so the base install never loads it.
    code = (
        "import sys, pkgutil, importlib, core, stores, workbench.jobs\n"
        f"torch_modules = {sorted(TORCH_MODULES | ALEMBIC_ONLY)!r}\n"
        "for pkg in (core, stores, workbench.jobs):\n"
        "    for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.'):\n"
        "        if info.name not in torch_modules:\n"
        "            importlib.import_module(info.name)\n"
        "print(sorted(m for m in ('textual', 'typer', 'rich', 'torch') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_import_linter_layers_contract_holds() -> None:
    result = subprocess.run(["lint-imports"], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
