"""Images read from files: lazy, split by folder or CSV, augmented by seed, decoded in workers."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from dlstudio.cli import main
from dlstudio.core.training import AugmentConfig, DatasetConfig
from dlstudio.train.data import load_arrays, load_data
from dlstudio.train.data.lazy import ImageSource, LazyImages, Transform, lazy_split
from dlstudio.train.errors import DataError


def image_folder(root, classes=("cats", "dogs"), per_class=6, size=(8, 8)):
    for label, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            shade = (label * 160 + i * 10, 40 + i * 20, 200 - label * 100)
            pixels = np.full((*size, 3), shade, np.uint8)
            pixels[i % size[0], :] = 255  # a line, so that flips and crops show
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return root


def test_image_folder_is_lazy_and_a_validation_folder_replaces_the_split(tmp_path):
    image_folder(tmp_path / "train")
    image_folder(tmp_path / "val", classes=("dogs",), per_class=2)
    config = DatasetConfig(name="image_folder", params={"path": "train", "val_path": "val", "size": [8, 8]})
    arrays = load_arrays(config, 0, tmp_path)
    assert isinstance(arrays.fields["x"], ImageSource) and arrays.fields["x"].shape == (14, 3, 8, 8)
    data = load_data(config, 0.5, 0, tmp_path)
    assert data.train_size == 12 and data.val_size == 2
    assert data.val["y"].tolist() == [1, 1]  # "dogs" is class 1 of the training folder
    assert arrays.info["class_names"] == ["cats", "dogs"]
    (tmp_path / "val" / "birds").mkdir()
    with pytest.raises(DataError, match="class folder 'birds' is not among the training folder's"):
        load_arrays(config, 0, tmp_path)


def test_a_csv_of_image_paths_and_labels(tmp_path):
    image_folder(tmp_path / "imgs")
    rows = ["file,kind"] + [f"imgs/{c}/{i}.png,{c}" for c in ("dogs", "cats") for i in range(6)]
    (tmp_path / "list.csv").write_text("\n".join(rows) + "\n")
    config = DatasetConfig(name="image_csv", params={"path": "list.csv", "image_column": "file",
                                                     "label_column": "kind", "channels": 1, "size": [4, 4]})
    arrays = load_arrays(config, 0, tmp_path)
    assert arrays.fields["x"].shape == (12, 1, 4, 4)
    assert arrays.info["class_names"] == ["cats", "dogs"] and arrays.fields["y"][:6].tolist() == [1] * 6
    (tmp_path / "bad.csv").write_text("file,kind\nnothing.png,cats\n")
    with pytest.raises(DataError, match="bad.csv: line 2: 'nothing.png' is not an image file"):
        load_arrays(DatasetConfig(name="image_csv", params={"path": "bad.csv", "image_column": "file",
                                                            "label_column": "kind"}), 0, tmp_path)


def test_augmentations_are_seeded_by_sample_and_epoch():
    image = np.random.default_rng(0).random((3, 8, 8), dtype=np.float32)
    augment = AugmentConfig(crop_padding=2, flip=True, brightness=0.3, contrast=0.3, saturation=0.3,
                            mean=[0.5, 0.5, 0.5], std=[0.25, 0.25, 0.25])
    train = Transform(augment, seed=0, train=True)
    assert np.array_equal(train(image, 1, 5), train(image, 1, 5))
    assert not np.array_equal(train(image, 1, 5), train(image, 2, 5))
    val = Transform(augment, seed=0, train=False)
    assert np.allclose(val(image, 1, 5), (image - 0.5) / 0.25)  # validation: normalised only


def test_workers_decode_the_announced_batches_as_the_main_process_would(tmp_path):
    image_folder(tmp_path / "imgs")
    config = DatasetConfig(name="image_folder", params={"path": "imgs", "size": [8, 8]})
    augment = AugmentConfig(crop_padding=1, flip=True, brightness=0.2)
    batches = [torch.tensor([3, 0, 7]), torch.tensor([1, 2])]
    decoded = []
    for workers in (0, 2):
        data = lazy_split(load_data(config, 0.0, 0, tmp_path), augment, seed=4, workers=workers)
        x = data.train["x"]
        assert isinstance(x, LazyImages)
        x.expect(batches, epoch=3)
        decoded.append([x[b] for b in batches] + [x[torch.tensor([5])], x[:2]])
    for ours, theirs in zip(*decoded, strict=True):
        assert torch.equal(ours, theirs)


def test_an_unreadable_image_in_a_worker_is_one_line_naming_it(tmp_path):
    image_folder(tmp_path / "imgs")
    (tmp_path / "imgs" / "cats" / "broken.png").write_bytes(b"not a png")
    config = DatasetConfig(name="image_folder", params={"path": "imgs", "size": [8, 8]})
    x = lazy_split(load_data(config, 0.0, 0, tmp_path), None, 0, workers=1).train["x"]
    everything = torch.arange(len(x))
    x.expect([everything])
    with pytest.raises(DataError) as caught:
        x[everything]
    assert "broken.png: cannot read image" in str(caught.value) and "\n" not in str(caught.value)


def cnn(**training) -> dict:
    section = {"dataset": {"name": "image_folder", "params": {"path": "imgs", "size": [8, 8]},
                           "inputs": {"image": "x"}},
               "epochs": 2, "batch_size": 4, "validation_split": 0.25, "seed": 3,
               "augment": {"crop_padding": 1, "flip": True, "brightness": 0.2,
                           "mean": [0.5], "std": [0.5]}, **training}
    chain = [("image", "Input", {"shape": [3, 8, 8]}),
             ("conv", "Conv2d", {"out_channels": 4, "kernel_size": 3, "padding": 1}),
             ("relu", "ReLU", {}), ("flatten", "Flatten", {}), ("fc", "Linear", {"out_features": 2}),
             ("logits", "Output", {})]
    return {"format": "dlstudio.graph", "version": 1, "name": "tiny cnn",
            "nodes": [{"id": i, "type": t, "params": p} for i, t, p in chain],
            "edges": [{"source": a[0], "target": b[0]} for a, b in zip(chain, chain[1:], strict=False)],
            "training": section}


def test_training_on_files_gives_the_same_weights_with_or_without_workers(tmp_path):
    image_folder(tmp_path / "imgs")
    weights = []
    for workers in (0, 2):
        graph = tmp_path / f"g{workers}.json"
        graph.write_text(json.dumps(cnn(num_workers=workers)))
        out = tmp_path / f"run{workers}"
        assert main(["run", str(graph), "--out", str(out), "--json"]) == 0
        weights.append(load_file(str(out / "model.safetensors")))
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_augment_on_data_not_read_from_image_files_is_a_warning():
    from dlstudio.core.analysis import analyze
    from tests.train.helpers import graph_of, mlp

    analysis = analyze(graph_of(mlp(augment={"flip": True})))
    warning = next(d for d in analysis.diagnostics if d.param == "training.augment")
    assert warning.severity == "warning" and "is not read from image files" in warning.message
    doc = cnn(augment={"mean": [0.5, 0.5]})
    problem = next(d for d in analyze(graph_of(doc)).diagnostics if d.param == "training.augment.mean")
    assert problem.severity == "error" and "2 values for 3-channel images" in problem.message


def test_resume_from_the_middle_of_an_epoch_sees_the_same_augmented_pixels(tmp_path):
    image_folder(tmp_path / "imgs")
    graph = tmp_path / "g.json"
    graph.write_text(json.dumps(cnn(num_workers=1, deterministic=True)))
    whole, split = str(tmp_path / "whole"), str(tmp_path / "split")
    assert main(["run", str(graph), "--out", whole, "--json"]) == 0
    assert main(["run", str(graph), "--out", split, "--max-steps", "2", "--json"]) == 0
    assert main(["run", str(graph), "--resume", split, "--json"]) == 0
    a, b = load_file(f"{whole}/model.safetensors"), load_file(f"{split}/model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_the_apps_training_worker_decodes_in_worker_processes(tmp_path):
    """The app trains in a worker process; it starts its own decoding workers (spawned, since it
    runs threads) and trains the very weights a headless run with none does."""
    from dlstudio.train.events import Failed, Job, RunEnded, RunStarted, StartRun
    from dlstudio.train.worker import start_worker

    image_folder(tmp_path / "imgs")
    document = cnn(num_workers=2)
    assert main(["run", str(_saved(tmp_path, cnn(num_workers=0))), "--out", str(tmp_path / "headless")]) == 0
    worker = start_worker()
    try:
        job = Job(json.dumps({k: v for k, v in document.items() if k != "training"}), document["training"],
                  run_dir=str(tmp_path / "app"), base_dir=str(tmp_path))
        worker.send(StartRun(job))
        events = _events_until(worker, RunEnded)
    finally:
        worker.close(timeout=30)
    assert not [e for e in events if isinstance(e, Failed)], [e for e in events if isinstance(e, Failed)]
    assert [e.data_workers for e in events if isinstance(e, RunStarted)] == [2]
    ours, theirs = load_file(str(tmp_path / "app" / "model.safetensors")), \
        load_file(str(tmp_path / "headless" / "model.safetensors"))
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)


def _saved(folder, document):
    path = folder / "graph.json"
    path.write_text(json.dumps(document))
    return path


def _events_until(worker, kind, limit_s=300.0):
    import time

    events, deadline = [], time.monotonic() + limit_s
    while not any(isinstance(e, kind) for e in events):
        assert time.monotonic() < deadline, f"no {kind.__name__} within {limit_s} s: {events[-3:]}"
        events += worker.poll()
        time.sleep(0.05)
    return events
