"""Datasets: each loads as declared, splits deterministically, and user files fail clearly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dlstudio.core.training import DATASETS, DatasetConfig, dataset_fields
from dlstudio.train.data import field_infos, load_arrays, load_data
from dlstudio.train.data.arrays import split_indices
from dlstudio.train.errors import DataError

BUILTIN = [n for n in DATASETS if n not in ("csv", "parquet", "hf_dataset", "npz", "image_folder", "image_csv", "text")]
SMALL = {"moons": {"samples": 100}, "spirals": {"samples": 90}, "timeseries": {"samples": 50},
         "copy": {"samples": 40}, "reverse": {"samples": 40}}


def fits(declared, loaded):
    if declared.shape is not None:
        assert len(declared.shape) == len(loaded.shape)
        assert all(d is None or d == a for d, a in zip(declared.shape, loaded.shape, strict=True))
    assert declared.dtype in ("any", loaded.dtype)
    assert declared.classes in (None, loaded.classes)


@pytest.mark.parametrize("name", BUILTIN + ["digits_flat"])
def test_builtin_dataset_matches_its_declaration(name):
    params = {"layout": "flat"} if name == "digits_flat" else SMALL.get(name, {})
    config = DatasetConfig(name=name.removesuffix("_flat"), params=params)
    declared = dataset_fields(config)
    loaded = field_infos(load_arrays(config, seed=0))
    assert set(declared) == set(loaded)
    for field, info in declared.items():
        fits(info, loaded[field])


def test_split_is_deterministic_disjoint_and_seed_dependent():
    train, val = split_indices(100, 0.2, seed=3)
    again = split_indices(100, 0.2, seed=3)
    other = split_indices(100, 0.2, seed=4)
    assert np.array_equal(train, again[0]) and np.array_equal(val, again[1])
    assert len(val) == 20 and not set(train) & set(val) and len(set(train) | set(val)) == 100
    assert not np.array_equal(val, other[1])


def test_standardisation_uses_training_statistics_only():
    split = load_data(DatasetConfig(name="iris"), 0.2, seed=0)
    mean = split.train["x"].mean(0)
    std = split.train["x"].std(0, unbiased=False)
    assert torch.allclose(mean, torch.zeros(4), atol=1e-5)
    assert torch.allclose(std, torch.ones(4), atol=1e-4)
    assert not torch.allclose(split.val["x"].mean(0), torch.zeros(4), atol=1e-3)


def test_copy_task_target_repeats_the_input_after_the_delay():
    arrays = load_arrays(DatasetConfig(name="copy", params={"samples": 10, "length": 6, "delay": 2}), 0)
    x, y = arrays.fields["x"], arrays.fields["y"]
    assert (y[:, :2] == -100).all() and np.array_equal(y[:, 2:], x[:, :4])
    assert x.min() >= 1 and x.max() < 12


def write_csv(path, text):
    path.write_text(text)
    return DatasetConfig(name="csv", params={"path": path.name, "target": "species"})


def test_csv_standardises_numbers_encodes_categories_and_labels(tmp_path):
    rows = ["size,colour,species"] + [f"{i},{'red' if i % 2 else 'blue'},{'cat' if i < 5 else 'dog'}"
                                      for i in range(10)]
    config = write_csv(tmp_path / "pets.csv", "\n".join(rows))
    arrays = load_arrays(config, 0, tmp_path)
    assert arrays.fields["x"].shape == (10, 3)  # size + one-hot(blue, red)
    assert arrays.classes == {"y": 2} and arrays.info["class_names"] == ["cat", "dog"]
    split = load_data(config, 0.2, 0, tmp_path)
    assert abs(float(split.train["x"][:, 0].mean())) < 1e-5
    assert set(split.train["x"][:, 1].tolist()) <= {0.0, 1.0}


def test_csv_missing_column_and_missing_file_are_one_line(tmp_path):
    config = write_csv(tmp_path / "t.csv", "a,b\n1,2\n3,4\n")
    with pytest.raises(DataError, match=r"^t.csv: no column 'species' \(columns: a, b\)$"):
        load_arrays(config, 0, tmp_path)
    missing = DatasetConfig(name="csv", params={"path": "nope.csv", "target": "y"})
    with pytest.raises(DataError, match="nope.csv: no such file"):
        load_arrays(missing, 0, tmp_path)


def test_csv_row_of_the_wrong_length(tmp_path):
    config = write_csv(tmp_path / "t.csv", "a,species\n1,x\n2\n")
    with pytest.raises(DataError, match="line 3 has 1 values, the header has 2"):
        load_arrays(config, 0, tmp_path)


def test_npz_fields_and_refused_pickles(tmp_path):
    np.savez(tmp_path / "d.npz", inputs=np.zeros((6, 3), np.float64), labels=np.arange(6) % 2)
    arrays = load_arrays(DatasetConfig(name="npz", params={"path": "d.npz"}), 0, tmp_path)
    assert arrays.fields["inputs"].dtype == np.float32 and arrays.classes == {"labels": 2}
    np.savez(tmp_path / "p.npz", objects=np.array([{"a": 1}] * 3, dtype=object))
    with pytest.raises(DataError, match="p.npz: not a readable .npz file"):
        load_arrays(DatasetConfig(name="npz", params={"path": "p.npz"}), 0, tmp_path)


def test_image_folder_reads_one_class_per_folder(tmp_path):
    from PIL import Image

    for index, name in enumerate(["cats", "dogs"]):
        (tmp_path / "imgs" / name).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (10, 7), (index * 200, i * 50, 0)).save(tmp_path / "imgs" / name / f"{i}.png")
    config = DatasetConfig(name="image_folder", params={"path": "imgs", "size": [4, 5], "channels": 3})
    arrays = load_arrays(config, 0, tmp_path)
    assert arrays.fields["x"].shape == (6, 3, 4, 5)
    assert arrays.fields["y"].tolist() == [0, 0, 0, 1, 1, 1]
    assert abs(float(arrays.fields["x"][3, 0].mean()) - 200 / 255) < 1e-3
    with pytest.raises(DataError, match="has no sub-folders"):
        load_arrays(DatasetConfig(name="image_folder", params={"path": "imgs/cats"}), 0, tmp_path)


def test_text_is_tokenised_by_character_with_next_character_targets(tmp_path):
    (tmp_path / "t.txt").write_text("abcabcabcab")
    arrays = load_arrays(DatasetConfig(name="text", params={"path": "t.txt", "length": 3}), 0, tmp_path)
    assert arrays.info["vocab"] == "abc"
    assert arrays.fields["x"].tolist() == [[0, 1, 2], [0, 1, 2], [0, 1, 2]]
    assert arrays.fields["y"].tolist() == [[1, 2, 0], [1, 2, 0], [1, 2, 0]]
