"""A model with tied weights trains, resumes and exports (safetensors refuses shared tensors)."""

from __future__ import annotations

import shutil
from pathlib import Path

from safetensors.torch import load_file

from dlstudio.cli import main

TIED = Path(__file__).parent / "tied_lm.json"


def test_a_tied_language_model_trains_resumes_and_exports_its_weights(tmp_path):
    graph = tmp_path / "tied.json"
    shutil.copy(TIED, graph)
    run = tmp_path / "run"
    assert main(["run", str(graph), "--out", str(run), "--max-steps", "3", "--json"]) == 0
    assert main(["run", str(graph), "--resume", str(run), "--max-steps", "6", "--json"]) == 0
    final = load_file(str(run / "model.safetensors"))
    assert final["head.weight"].equal(final["wte.weight"])
    out = tmp_path / "model.py"
    assert main(["export", str(graph), "--weights", str(run), "--to", "python", "-o", str(out)]) == 0
    exported = load_file(str(out.with_suffix(".safetensors")))
    assert exported["head.weight"].equal(final["wte.weight"])
