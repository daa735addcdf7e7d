"""New graphs train headless, and runs land in the runs folder, never beside the examples."""

from __future__ import annotations

import pytest

from dlstudio.cli import main
from dlstudio.core.io import save_graph
from dlstudio.core.starter import TEMPLATES
from dlstudio.train.rundir import RUNS_ENV, runs_folder
from tests.conftest import GRAPHS


@pytest.mark.parametrize("key", sorted(TEMPLATES))
def test_every_template_trains_a_step_headless(key, tmp_path):
    path = tmp_path / f"{key}.json"
    save_graph(TEMPLATES[key].graph(), path)
    out = tmp_path / "run"
    assert main(["run", str(path), "--max-steps", "1", "--out", str(out), "--json"]) == 0
    assert (out / "model.safetensors").exists()


def test_a_run_of_an_example_lands_under_runs_in_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.delenv(RUNS_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    before = set(GRAPHS.iterdir())
    assert main(["run", str(GRAPHS / "mlp_digits.json"), "--max-steps", "1", "--json"]) == 0
    [run] = list((tmp_path / "runs").iterdir())
    assert (run / "model.safetensors").exists()
    assert set(GRAPHS.iterdir()) == before


def test_the_runs_folder_can_be_set(tmp_path, monkeypatch):
    monkeypatch.setenv(RUNS_ENV, str(tmp_path / "elsewhere"))
    assert runs_folder() == tmp_path / "elsewhere"
