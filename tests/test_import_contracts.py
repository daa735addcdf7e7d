"""The layering stated as import-linter contracts in pyproject.toml holds, and breaking it is
caught: core imports neither the trainer, the UI, the importers nor Qt; the trainer imports
neither the UI nor Qt; the importers import neither the trainer, the UI nor Qt; no module
circles, counting imports inside functions."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

LINT = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    """``lint-imports`` run on the tree at ``root`` with its pyproject.toml's contracts."""
    return subprocess.run([sys.executable, "-c", LINT, "--no-cache", "--no-logo"], cwd=root,
                          capture_output=True, text=True, timeout=300)


def test_the_contracts_hold():
    done = lint_imports(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Contracts: 4 kept, 0 broken." in done.stdout


BREAKS = {
    "core imports Qt": ("core/tensor.py", "import PySide6  # noqa\n",
                        "core imports neither the trainer, the UI nor Qt BROKEN"),
    "train imports the UI": ("train/state.py", "import dlstudio.ui.theme  # noqa\n",
                             "the trainer imports neither the UI nor Qt BROKEN"),
    "core imports an importer": ("core/tensor.py", "import dlstudio.interop.builder  # noqa\n",
                                 "core imports neither the trainer, the UI nor Qt BROKEN"),
    "an importer imports the UI": ("interop/shapes.py", "import dlstudio.ui.theme  # noqa\n",
                                   "the importers import neither the trainer, the UI nor Qt BROKEN"),
    "a circle through an import inside a function": (
        "core/tensor.py", "def _circle():\n    from dlstudio.core import analysis  # noqa\n",
        "No cycles are allowed in dlstudio.core."),
}


@pytest.mark.parametrize("where,line,message", BREAKS.values(), ids=BREAKS.keys())
def test_a_broken_contract_fails_the_check(tmp_path, where, line, message):
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    shutil.copytree(ROOT / "dlstudio", tmp_path / "dlstudio", ignore=shutil.ignore_patterns("__pycache__"))
    with (tmp_path / "dlstudio" / where).open("a") as file:
        file.write("\n\n" + line)
    done = lint_imports(tmp_path)
    assert done.returncode == 1 and message in done.stdout, done.stdout + done.stderr
