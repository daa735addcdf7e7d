"""Columnar data: Parquet files and Hugging Face datasets saved to disk, read as tables or images."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from dlstudio.cli import main
from dlstudio.core.training import DatasetConfig
from dlstudio.train.data import load_arrays
from dlstudio.train.errors import DataError

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
datasets = pytest.importorskip("datasets")


def _load(tmp_path, name, **params):
    return load_arrays(DatasetConfig(name=name, params=params), 0, tmp_path)


def _flowers(rows=60):
    rng = np.random.default_rng(0)
    kind = np.array(["rose", "tulip", "iris"])[rng.integers(0, 3, rows)]
    size = rng.normal(5.0, 1.0, rows)
    size[3] = np.nan  # a null, filled with the mean
    return {"size": size, "colour": rng.choice(["red", "blue"], rows), "kind": kind}


def test_a_parquet_table_reads_as_the_same_csv_would(tmp_path):
    table = _flowers()
    pq.write_table(pa.table({"size": pa.array(table["size"], from_pandas=True),
                             "colour": pa.array(table["colour"]).dictionary_encode(),
                             "kind": table["kind"]}), tmp_path / "flowers.parquet")
    with (tmp_path / "flowers.csv").open("w") as handle:
        handle.write("size,colour,kind\n")
        for size, colour, kind in zip(table["size"], table["colour"], table["kind"], strict=True):
            handle.write(f"{'' if np.isnan(size) else repr(float(size))},{colour},{kind}\n")
    parquet = _load(tmp_path, "parquet", path="flowers.parquet", target="kind")
    csv = _load(tmp_path, "csv", path="flowers.csv", target="kind")
    assert np.array_equal(parquet.fields["x"], csv.fields["x"])
    assert np.array_equal(parquet.fields["y"], csv.fields["y"])
    assert parquet.info == csv.info and parquet.classes == csv.classes == {"y": 3}
    assert parquet.info["class_names"] == ["iris", "rose", "tulip"]


def test_parquet_integer_targets_keep_their_numbers_as_class_names(tmp_path):
    pq.write_table(pa.table({"a": [0.5, 1.5, 2.5, 3.5], "label": [3, 1, 3, 2]}), tmp_path / "t.parquet")
    arrays = _load(tmp_path, "parquet", path="t.parquet", target="label")
    assert arrays.info["class_names"] == ["1", "2", "3"]
    assert arrays.fields["y"].tolist() == [2, 0, 2, 1]


def test_parquet_refusals_are_one_line_naming_the_file(tmp_path, monkeypatch):
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(DataError, match=r"bad.parquet: not a readable Parquet file"):
        _load(tmp_path, "parquet", path="bad.parquet", target="y")
    pq.write_table(pa.table({"a": [[1, 2], [3, 4]], "y": [0, 1]}), tmp_path / "lists.parquet")
    with pytest.raises(DataError, match=r"lists.parquet: column 'a' holds list<.*>, not numbers or texts"):
        _load(tmp_path, "parquet", path="lists.parquet", target="y")
    pq.write_table(pa.table({"a": np.zeros(1000), "y": np.zeros(1000, np.int64)}), tmp_path / "big.parquet")
    monkeypatch.setattr("dlstudio.train.data.tables.MAX_DATA_BYTES", 10_000)
    with pytest.raises(DataError, match=r"big.parquet: 1,000 rows of 2 columns take .*\(MAX_DATA_BYTES\)"):
        _load(tmp_path, "parquet", path="big.parquet", target="y")


def _digit_images(count, seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, count)
    images = []
    for label in labels:  # class 0: a bright left half, class 1: a bright right half
        pixels = rng.integers(0, 60, (8, 8), dtype=np.uint8)
        pixels[:, :4] += 180 if label == 0 else 0
        pixels[:, 4:] += 180 if label == 1 else 0
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="PNG")
        images.append(Image.open(io.BytesIO(buffer.getvalue())))
    return images, labels.tolist()


def _image_dataset(path):
    features = datasets.Features({"image": datasets.Image(),
                                  "label": datasets.ClassLabel(names=["left", "right", "unused"])})
    splits = {}
    for split, count, seed in (("train", 48, 0), ("test", 16, 1)):
        images, labels = _digit_images(count, seed)
        splits[split] = datasets.Dataset.from_dict({"image": images, "label": labels}, features=features)
    datasets.DatasetDict(splits).save_to_disk(str(path))


def test_a_saved_image_dataset_decodes_its_splits_with_the_class_names(tmp_path):
    _image_dataset(tmp_path / "hf")
    arrays = _load(tmp_path, "hf_dataset", path="hf", val_split="test", size=[8, 8], channels=1)
    assert arrays.fields["x"].shape == (64, 1, 8, 8) and arrays.fields["x"].dtype == np.float32
    assert 0.0 <= arrays.fields["x"].min() and arrays.fields["x"].max() <= 1.0
    assert arrays.classes == {"y": 3} and arrays.info["class_names"] == ["left", "right", "unused"]
    assert arrays.val_indices.tolist() == list(range(48, 64))
    left = arrays.fields["x"][arrays.fields["y"] == 0]
    assert (left[..., :4].mean() > left[..., 4:].mean())


def test_a_graph_trains_on_a_saved_dataset_and_predicts_with_its_class_names(tmp_path, capsys):
    _image_dataset(tmp_path / "hf")
    chain = [("image", "Input", {"shape": [1, 8, 8]}), ("flatten", "Flatten", {}),
             ("fc", "Linear", {"out_features": 3}), ("logits", "Output", {})]
    graph = {"format": "dlstudio.graph", "version": 1, "name": "halves",
             "nodes": [{"id": i, "type": t, "params": p} for i, t, p in chain],
             "edges": [{"source": a[0], "target": b[0]} for a, b in zip(chain, chain[1:], strict=False)],
             "training": {"dataset": {"name": "hf_dataset", "params": {"path": "hf", "val_split": "test",
                                                                      "size": [8, 8], "channels": 1}},
                          "epochs": 15, "batch_size": 8, "seed": 0, "optimizer": {"type": "Adam", "lr": 0.05}}}
    (tmp_path / "g.json").write_text(json.dumps(graph))
    assert main(["run", str(tmp_path / "g.json"), "--out", str(tmp_path / "run"), "--json"]) == 0
    ends = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"epoch_end"' in line]
    assert ends[-1]["metrics"]["val_accuracy"] >= 0.9
    images, labels = _digit_images(1, 7)
    images[0].save(tmp_path / "probe.png")
    assert main(["predict", str(tmp_path / "run"), str(tmp_path / "probe.png"), "--json"]) == 0
    predicted = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert json.dumps(predicted).count(["left", "right"][labels[0]]) >= 1


def test_a_saved_table_dataset_uses_the_csv_encoding(tmp_path):
    table = _flowers(30)
    features = datasets.Features({"size": datasets.Value("float64"), "colour": datasets.Value("string"),
                                  "kind": datasets.ClassLabel(names=["iris", "rose", "tulip", "lily"])})
    kinds = [["iris", "rose", "tulip"].index(k) for k in table["kind"]]
    datasets.Dataset.from_dict({"size": table["size"].tolist(), "colour": table["colour"].tolist(),
                                "kind": kinds}, features=features).save_to_disk(str(tmp_path / "hf"))
    arrays = _load(tmp_path, "hf_dataset", path="hf", target="kind")
    assert arrays.fields["x"].shape == (30, 3)  # size, then colour one-hot (blue, red)
    assert arrays.fields["y"].tolist() == kinds  # the stored class numbers, not re-coded
    assert arrays.classes == {"y": 4} and arrays.info["class_names"] == ["iris", "rose", "tulip", "lily"]
    assert [c["name"] for c in arrays.info["columns"]] == ["size", "colour"]


def test_saved_dataset_refusals_are_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"^empty: not a dataset saved with save_to_disk"):
        _load(tmp_path, "hf_dataset", path="empty")
    _image_dataset(tmp_path / "hf")
    with pytest.raises(DataError, match=r"hf: has no split 'validation' \(splits: train, test\)"):
        _load(tmp_path, "hf_dataset", path="hf", val_split="validation")
    with pytest.raises(DataError, match=r"image column 'image' with other columns"):
        _load(tmp_path, "hf_dataset", path="hf", features=["image", "label"], target="label")


def test_a_missing_package_is_one_line_saying_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "pyarrow.parquet", None)  # as if not installed
    with pytest.raises(DataError, match="the parquet dataset needs the 'pyarrow' package") as error:
        _load(tmp_path, "parquet", path="x.parquet", target="y")
    assert error.value.advice == 'pip install "dlstudio[data]"'
