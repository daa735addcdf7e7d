"""Layering: the training engine imports no Qt, and checking a training section imports no torch."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT

ENGINE = ["dlstudio.train", "dlstudio.train.trainer", "dlstudio.train.command", "dlstudio.train.exporting",
          "dlstudio.train.console", "dlstudio.train.data", "dlstudio.train.distributed"]


def modules_after(code: str) -> set[str]:
    script = f"import sys\n{code}\nprint('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True, cwd=ROOT)
    return set(out.stdout.split())


def test_engine_imports_no_qt():
    loaded = modules_after("\n".join(f"import {name}" for name in ENGINE))
    assert not {m for m in loaded if m.startswith(("PySide6", "shiboken6", "pyqtgraph", "dlstudio.ui"))}


def test_loading_and_checking_a_training_section_imports_no_torch():
    loaded = modules_after(
        "from dlstudio import analyze, load_graph\n"
        "analysis = analyze(load_graph('graphs/cnn_digits.json'))\n"
        "assert analysis.ok and analysis.graph.training is not None")
    assert "torch" not in loaded and "sklearn" not in loaded
