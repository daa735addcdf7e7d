"""The gan task on a tiny GAN over the digits: the checks of ``training.gan``, the parts
compiled from one graph, alternating steps with two optimizers, the per-epoch grid, bit-exact
resume and ``dlstudio sample`` writing a grid or an array in the data's value range."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from dlstudio import analyze
from dlstudio.cli import main
from dlstudio.core.codegen import part_plan, plan_module
from dlstudio.core.compiler import build_module
from dlstudio.core.io import graph_to_json, load_graph
from dlstudio.train import EpochEnd, RunDir, StepEnd
from dlstudio.train.tasks.gan import GanTask
from tests.train.generative import (
    assert_digit_samples_follow_the_seed,
    assert_resume_is_bit_exact,
    assert_sample_command_writes_a_grid_or_an_array,
    fit,
    problems,
)
from tests.train.helpers import graph_of

GENERATOR = [("z", "Input", {"shape": [8]}), ("g1", "Linear", {"out_features": 64}), ("gt", "Tanh", {}),
             ("gu", "Unflatten", {"dim": 1, "unflattened_size": [1, 8, 8]}), ("fake", "Output", {})]
DISCRIMINATOR = [("image", "Input", {"shape": [1, 8, 8]}), ("df", "Flatten", {}),
                 ("d1", "Linear", {"out_features": 16}), ("da", "LeakyReLU", {"negative_slope": 0.2}),
                 ("drop", "Dropout", {"p": 0.2}), ("d2", "Linear", {"out_features": 1}), ("score", "Output", {})]


def tiny_gan(gan: dict[str, Any] | None = None, chains: tuple = (GENERATOR, DISCRIMINATOR),
             **training: Any) -> dict[str, Any]:
    """A one-layer generator (noise [8] -> 1x8x8 in [-1, 1]) and an MLP discriminator."""
    settings = {"generator": "fake", "discriminator": "score", "noise": "z", "real": "image",
                "generator_lr": 0.002, "discriminator_lr": 0.001, "grid": 16, **(gan or {})}
    section = {"task": "gan", "dataset": {"name": "digits"}, "gan": settings, "epochs": 2,
               "batch_size": 64, "validation_split": 0.2, "seed": 0, **training}
    nodes = [{"id": i, "type": t, "params": p} for chain in chains for i, t, p in chain]
    edges = [{"source": a[0], "target": b[0]} for chain in chains for a, b in zip(chain, chain[1:], strict=False)]
    return {"format": "dlstudio.graph", "version": 1, "name": "tiny gan", "training": section,
            "nodes": nodes, "edges": edges}


# --- the file and its checks ----------------------------------------------------------------------

def test_a_gan_section_round_trips_and_a_file_without_it_saves_without_it(tmp_path):
    graph = graph_of(tiny_gan())
    text = graph_to_json(graph)
    (tmp_path / "gan.json").write_text(text)
    assert graph_to_json(load_graph(tmp_path / "gan.json")) == text and '"gan": {' in text
    del_gan = tiny_gan()
    del del_gan["training"]["gan"]
    assert '"gan": {' not in graph_to_json(graph_of(del_gan))


def test_a_good_gan_has_no_problems_and_its_noise_needs_no_dataset_field():
    assert problems(tiny_gan()) == []


def test_a_gan_without_its_section_says_what_to_add():
    doc = tiny_gan()
    del doc["training"]["gan"]
    [problem] = problems(doc)
    assert "a GAN needs training.gan" in problem and '"generator": "<Output id>"' in problem


def test_a_gan_without_a_discriminator_output_is_refused():
    doc = tiny_gan(chains=(GENERATOR, DISCRIMINATOR[:-1]))
    assert any("a GAN needs a discriminator, but the graph has only one Output" in p for p in problems(doc))


def test_roles_must_name_nodes_of_their_kind():
    found = problems(tiny_gan({"discriminator": "d2", "noise": None}))
    assert "the GAN's discriminator 'd2' is not an Output node (set training.gan.discriminator to one of: " \
           "fake, score)" in found
    assert "the GAN's noise is not set (set training.gan.noise to one of: z, image)" in found


def test_a_generator_whose_output_differs_from_the_real_data_is_refused_with_the_shape_to_make():
    generator = [*GENERATOR[:3], ("gu", "Unflatten", {"dim": 1, "unflattened_size": [4, 4, 4]}), GENERATOR[4]]
    [problem] = problems(tiny_gan(chains=(generator, DISCRIMINATOR)))
    assert problem == ("fake: the generator gives [N, 4, 4, 4] but the real data 'image' is [N, 1, 8, 8] "
                       "(make the generator's last layers produce [1, 8, 8])")


def test_a_discriminator_must_give_one_score_per_sample():
    wide = [*DISCRIMINATOR[:5], ("d2", "Linear", {"out_features": 10}), DISCRIMINATOR[6]]
    [problem] = problems(tiny_gan(chains=(GENERATOR, wide)))
    assert "one score per sample, but 'score' gives [N, 10]" in problem and "out_features=1" in problem


def test_a_generator_that_reads_the_real_data_is_refused():
    doc = tiny_gan()
    doc["nodes"].append({"id": "mix", "type": "Add"})
    doc["edges"] = [e for e in doc["edges"] if e["target"] != "fake"]
    doc["edges"] += [{"source": "gu", "target": "mix.in0"}, {"source": "image", "target": "mix.in1"},
                     {"source": "mix", "target": "fake"}]
    assert any("'fake' reads image besides 'z'" in p for p in problems(doc))


def test_noise_must_be_numbers_of_fixed_sizes():
    generator = [("z", "Input", {"shape": ["T"], "dtype": "int64"}), *GENERATOR[1:]]
    found = problems(tiny_gan(chains=(generator, DISCRIMINATOR)))
    assert any("noise Input 'z' has dtype int64" in p for p in found)
    assert any("noise Input 'z' has shape [N, T]" in p for p in found)


def test_the_noise_is_fed_by_the_task_not_the_data():
    doc = tiny_gan(dataset={"name": "digits", "inputs": {"z": "y", "image": "x"}})
    assert any("the noise Input 'z' is bound to dataset field 'y', but the task feeds it noise" in p
               for p in problems(doc))


def test_a_gan_section_under_another_task_is_reported_unused():
    doc = tiny_gan(task="supervised", loss={"type": "MSELoss", "output": "fake", "target": "x"},
                   dataset={"name": "digits", "inputs": {"z": "x", "image": "x"}})
    assert any("training.gan is set but the task is supervised" in p for p in problems(doc))


# --- the parts --------------------------------------------------------------------------------------

def test_each_part_is_compiled_from_the_nodes_its_output_needs_and_shares_the_whole_modules_layers():
    analysis = analyze(graph_of(tiny_gan()))
    plan = plan_module(analysis)
    whole = build_module(plan).eval()
    generator = build_module(part := part_plan(plan, analysis, "fake"), shared=whole)
    assert [node for _, node in part.arguments] == ["z"] and part.outputs == ["fake"]
    assert {s.node_id for s in part.statements} == {"g1", "gt", "gu"}
    assert {id(t) for t in generator.parameters()} == {id(t) for t in whole.g1.parameters()}
    z, image = torch.randn(3, 8), torch.randn(3, 1, 8, 8)
    discriminator = build_module(part_plan(plan, analysis, "score"), shared=whole)
    fake, score = whole(z, image)
    assert torch.equal(generator(z), fake) and torch.equal(discriminator(image), score)


# --- training ---------------------------------------------------------------------------------------

def test_a_step_trains_both_parts_with_their_own_optimizers_and_names_both_losses(tmp_path):
    trainer, result, rec = fit(tiny_gan(), run_dir=RunDir(tmp_path / "run"))
    assert result.reason == "completed"
    step = rec.of_type(StepEnd)[0]
    assert set(step.losses) == {"loss/total", "loss/discriminator", "loss/generator"}
    assert step.loss == pytest.approx(step.losses["loss/discriminator"] + step.losses["loss/generator"])
    metrics = rec.of_type(EpochEnd)[-1].metrics
    assert list(metrics) == ["train_loss", "train_loss/discriminator", "train_loss/generator",
                             "val_loss", "val_loss/generator", "val_loss/discriminator"]
    assert all(np.isfinite(v) for v in metrics.values())
    optimizers = trainer.parts.optimizers
    assert list(optimizers) == ["discriminator", "generator"]
    assert optimizers["generator"].param_groups[0]["lr"] == 0.002
    assert optimizers["discriminator"].param_groups[0]["betas"] == (0.5, 0.999)
    module = trainer.parts.module
    assert {id(t) for t in optimizers["generator"].param_groups[0]["params"]} == {id(t) for t in module.g1.parameters()}


def test_the_real_data_is_scaled_to_the_tanh_range_and_the_original_range_is_recorded(tmp_path):
    trainer, _, _ = fit(tiny_gan(epochs=1), run_dir=RunDir(tmp_path / "run"))
    real = trainer.parts.train_inputs[0]
    assert real.min().item() == -1.0 and real.max().item() == 1.0
    assert RunDir(tmp_path / "run").read_record()["data"]["sample_range"] == [0.0, 16.0]


def test_a_fixed_noise_grid_is_saved_after_each_epoch(tmp_path):
    fit(tiny_gan(), run_dir=RunDir(tmp_path / "run"))
    grids = sorted(p.name for p in (tmp_path / "run" / "samples").iterdir())
    assert grids == ["epoch-001.png", "epoch-002.png"]
    with Image.open(tmp_path / "run" / "samples" / "epoch-002.png") as image:
        assert image.size == ((1 + 4 * 9) * 4, (1 + 4 * 9) * 4)  # 16 images of 8x8, 4 to a row


@pytest.mark.parametrize("loss", ["hinge", "wgan_gp"])
def test_the_other_losses_train_and_stay_finite(loss):
    _, result, rec = fit(tiny_gan({"loss": loss, "discriminator_steps": 2}, epochs=1))
    assert result.reason == "completed"
    assert all(np.isfinite(s.loss) for s in rec.of_type(StepEnd))


def test_resume_is_bit_exact(tmp_path):
    doc = tiny_gan({"loss": "wgan_gp"}, epochs=3, deterministic=True)
    assert_resume_is_bit_exact(doc, tmp_path, 30, ["model.safetensors"],
                               ["samples/epoch-002.png", "samples/epoch-003.png"])


# --- sampling ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def gan_run(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("gan") / "run"
    fit(tiny_gan(epochs=1), run_dir=RunDir(path))
    return path


def test_samples_are_images_in_the_datas_range_and_the_seed_decides_them(gan_run):
    assert_digit_samples_follow_the_seed(gan_run)


def test_the_sample_command_writes_a_grid_or_an_array(gan_run, tmp_path, capsys):
    assert_sample_command_writes_a_grid_or_an_array(gan_run, tmp_path, capsys)


def test_images_need_an_image_file(gan_run, capsys):
    assert main(["sample", str(gan_run)]) == 2
    assert "a generator draws images: give -o grid.png or -o samples.npz" in capsys.readouterr().err


def test_the_gan_task_is_registered():
    from dlstudio.train.tasks import TASKS

    assert TASKS["gan"] is GanTask


# --- the example --------------------------------------------------------------------------------------

@pytest.mark.slow
def test_gan_digits_draws_digits_a_classifier_recognises_across_the_classes(tmp_path, capsys):
    """``graphs/gan_digits.json`` from the command line: both losses stay finite; of 64 samples
    (``dlstudio sample -o samples.npz``), a CNN trained here on the digits gives at least half a
    class with confidence over 0.5, and those span at least 7 of the 10 digits; about two
    minutes at most on an idle 2-core machine."""
    import math
    import os
    import resource
    import time
    import warnings

    from tests.conftest import GRAPHS
    from tests.train.digits_judge import digits_classifier, recognised

    classifier = digits_classifier()
    load_before, started = os.getloadavg()[0], time.perf_counter()
    cpu_before = resource.getrusage(resource.RUSAGE_SELF).ru_utime
    assert main(["run", str(GRAPHS / "gan_digits.json"), "--out", str(tmp_path / "run"), "--json"]) == 0
    seconds = time.perf_counter() - started
    cpu = resource.getrusage(resource.RUSAGE_SELF).ru_utime - cpu_before
    metrics = RunDir(tmp_path / "run").read_metrics()
    assert all(math.isfinite(m[k]) for m in metrics for k in ("train_loss/generator", "train_loss/discriminator"))
    assert main(["sample", str(tmp_path / "run"), "--n", "64", "-o", str(tmp_path / "samples.npz")]) == 0
    sure = recognised(classifier, np.load(tmp_path / "samples.npz")["samples"])
    capsys.readouterr()
    print(f"gan_digits: {len(sure)} of 64 samples classified with confidence > 0.5, spanning "
          f"{len(set(sure))} digits; {seconds:.0f}s wall, {cpu:.0f}s CPU, load {load_before:.1f}")
    assert len(sure) >= 32 and len(set(sure)) >= 7
    if max(load_before, os.getloadavg()[0]) >= 1.0:
        warnings.warn(f"gan_digits: {seconds:.0f}s not checked against 120s: other work was running", stacklevel=1)
    else:
        assert seconds <= 120, f"gan_digits took {seconds:.0f}s (limit 120s on an idle 2-core machine)"
