"""What the tests of the generative tasks (gan, vae, diffusion) share: a fit that records
events, a graph's problems, bit-exact resume, and the checks of drawn image samples."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file

from dlstudio import analyze
from dlstudio.cli import main
from dlstudio.train import Recorder, RunDir, StepEnd, Trainer
from dlstudio.train.sampling import sample_run
from tests.train.helpers import graph_of


def fit(doc: dict[str, Any], **options: Any) -> tuple[Trainer, Any, Recorder]:
    recorder = Recorder()
    trainer = Trainer(graph_of(doc), callbacks=[recorder], **options)
    return trainer, trainer.fit(), recorder


def problems(doc: dict[str, Any]) -> list[str]:
    return [d.one_line() for d in analyze(graph_of(doc)).diagnostics]


def assert_resume_is_bit_exact(doc: dict[str, Any], folder: Path, split_after: int,
                               weights: Sequence[str], files: Sequence[str]) -> None:
    """A run stopped after ``split_after`` steps and resumed ends with the ``weights`` files,
    the metrics (timings aside) and the ``files`` of the run trained in one go."""
    fit(doc, run_dir=RunDir(folder / "whole"))
    fit(doc, run_dir=RunDir(folder / "split"), max_steps=split_after)
    _, result, rec = fit(doc, run_dir=RunDir(folder / "split"), resume=True)
    assert result.reason == "completed" and rec.of_type(StepEnd)[0].step == split_after + 1
    for name in weights:
        whole, split = load_file(str(folder / "whole" / name)), load_file(str(folder / "split" / name))
        assert all(torch.equal(whole[k], split[k]) for k in whole), name
    without_time = lambda r: [{k: v for k, v in m.items() if "seconds" not in k} for m in r.read_metrics()]
    assert without_time(RunDir(folder / "split")) == without_time(RunDir(folder / "whole"))
    for name in files:
        assert (folder / "split" / name).read_bytes() == (folder / "whole" / name).read_bytes()


def assert_digit_samples_follow_the_seed(run: Path) -> None:
    """Five samples are 1x8x8 images in the digits' range 0..16, the same for the same seed."""
    samples = sample_run(RunDir(run), 5, seed=3)
    assert isinstance(samples, np.ndarray) and samples.shape == (5, 1, 8, 8) and samples.dtype == np.float32
    assert samples.min() >= 0 and samples.max() <= 16 and samples.max() > 1
    assert np.array_equal(samples, sample_run(RunDir(run), 5, seed=3))
    assert not np.array_equal(samples, sample_run(RunDir(run), 5, seed=4))


def assert_sample_command_writes_a_grid_or_an_array(run: Path, folder: Path, capsys: Any) -> None:
    """``dlstudio sample`` writes 64 digits as an 8x8 grid PNG, or as the array it draws."""
    assert main(["sample", str(run), "--n", "64", "-o", str(folder / "grid.png")]) == 0
    with Image.open(folder / "grid.png") as image:
        assert image.size == ((1 + 8 * 9) * 4, (1 + 8 * 9) * 4) and image.mode == "L"
    assert main(["sample", str(run), "--n", "64", "--seed", "1", "-o", str(folder / "samples.npz")]) == 0
    samples = np.load(folder / "samples.npz")["samples"]
    assert samples.shape == (64, 1, 8, 8)
    assert np.array_equal(samples, sample_run(RunDir(run), 64, seed=1))
    assert "wrote" in capsys.readouterr().err
