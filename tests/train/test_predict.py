"""Predicting with a trained run: images, CSV rows and text, preprocessed as in training."""

from __future__ import annotations

import importlib.util
import json
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from dlstudio import compile_graph, load_graph
from dlstudio.cli import main
from dlstudio.core.training import DatasetConfig
from dlstudio.train.data import load_data
from dlstudio.train.exporting import run_weights
from dlstudio.train.predict import Predictor
from dlstudio.train.rundir import RunDir


def chain_doc(chain: list[tuple[str, str, dict]], training: dict, name: str = "predict test") -> dict:
    return {"format": "dlstudio.graph", "version": 1, "name": name,
            "nodes": [{"id": i, "type": t, "params": p} for i, t, p in chain],
            "edges": [{"source": a[0], "target": b[0]} for a, b in zip(chain, chain[1:], strict=False)],
            "training": training}


def trained(tmp_path, doc: dict, name: str) -> str:
    graph = tmp_path / f"{name}.json"
    graph.write_text(json.dumps(doc))
    out = tmp_path / name
    assert main(["run", str(graph), "--out", str(out), "--json"]) == 0
    return str(out)


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory) -> str:
    chain = [("image", "Input", {"shape": [1, 8, 8]}), ("flatten", "Flatten", {}),
             ("fc", "Linear", {"out_features": 32}), ("relu", "ReLU", {}),
             ("head", "Linear", {"out_features": 10}), ("logits", "Output", {})]
    training = {"dataset": {"name": "digits", "inputs": {"image": "x"}}, "epochs": 3, "batch_size": 64,
                "optimizer": {"type": "Adam", "params": {"lr": 0.01}}}
    return trained(tmp_path_factory.mktemp("digits"), chain_doc(chain, training), "digits_run")


def digit_png(path, index: int, ink_dark: bool = False) -> tuple[str, torch.Tensor]:
    """The dataset's ``index``-th digit as an 8x8 PNG, and the tensor training fed for it."""
    from sklearn.datasets import load_digits

    pixels = load_digits().images[index]  # 0..16, ink bright
    grey = np.round(pixels * 255 / 16).astype(np.uint8)
    Image.fromarray(255 - grey if ink_dark else grey, mode="L").save(path)
    return str(path), torch.from_numpy(pixels.astype(np.float32) / 16)[None, None]


def test_a_run_records_its_preprocessing(digits_run):
    record = json.loads((RunDir(digits_run).path / "preprocess.json").read_text())
    assert record["kind"] == "image" and record["size"] == [8, 8] and record["channels"] == 1
    assert record["classes"] == [str(i) for i in range(10)] and record["output"] == "classes"


def test_predict_classifies_a_digit_image_as_the_network_does(digits_run, tmp_path, capsys):
    module = compile_graph(RunDir(digits_run).read_record()["graph"]).eval()
    module.load_state_dict(run_weights(RunDir(digits_run)))
    light, x = digit_png(tmp_path / "seven.png", 7)
    dark, _ = digit_png(tmp_path / "seven_on_paper.png", 7, ink_dark=True)
    with torch.no_grad():
        expected = module(x).softmax(-1)[0]
    assert main(["predict", digits_run, light, dark, "--top-k", "2", "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["input"] for line in lines] == [light, dark]
    for line in lines:
        best = line["predictions"][0]
        assert len(line["predictions"]) == 2
        assert best["class"] == str(int(expected.argmax()))
        assert abs(best["probability"] - float(expected.max())) < 1e-2  # the PNG rounds 0..16 to 0..255
    assert main(["predict", digits_run, light]) == 0
    assert capsys.readouterr().out.startswith(f"{light}: {best['class']} ")


def test_bad_input_is_one_line_naming_the_file_and_the_fix(digits_run, tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "broken.png").write_bytes(b"not a png")
    cases = {str(tmp_path / "notes.txt"): "not a .bmp/.gif/.jpeg/.jpg/.png/.tif/.tiff/.webp file",
             str(tmp_path / "broken.png"): "cannot read image", str(tmp_path / "gone.png"): "no such file"}
    for path, problem in cases.items():
        assert main(["predict", digits_run, path]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and path in err and problem in err and "give PNG or JPEG images" in err


def test_the_exported_file_preprocesses_as_predict_does(digits_run, tmp_path, capsys):
    graph = tmp_path / "g.json"
    graph.write_text(json.dumps(RunDir(digits_run).read_record()["graph"]))
    output = tmp_path / "digits_model.py"
    assert main(["export", str(graph), "--weights", digits_run, "-o", str(output)]) == 0
    assert "import preprocess" in capsys.readouterr().err
    spec = importlib.util.spec_from_file_location("digits_model", output)
    exported = importlib.util.module_from_spec(spec)
    sys.modules["digits_model"] = exported
    spec.loader.exec_module(exported)
    from safetensors.torch import load_file

    model = next(v for k, v in vars(exported).items() if isinstance(v, type) and issubclass(v, torch.nn.Module)
                 and v.__module__ == "digits_model" and k != "LearnedPositionalEmbedding")()
    model.load_state_dict(load_file(str(output.with_suffix(".safetensors"))))
    png, _ = digit_png(tmp_path / "three.png", 3, ink_dark=True)
    predictor = Predictor(RunDir(digits_run))
    expected = predictor.predict(predictor.inputs(png).__next__()[0], png, top_k=10)
    with torch.no_grad():
        probabilities = model.eval()(exported.preprocess(png)).softmax(-1)[0]
    for name, p in expected.top:
        assert abs(float(probabilities[int(name)]) - p) < 1e-6


# --- CSV rows ---------------------------------------------------------------------------------

CSV = "colour,size,weight,kind\n" + "".join(
    f"{c},{s},{w},{k}\n" for c, s, w, k in [("red", 1.0, 10, "a"), ("blue", 2.0, 12, "b"), ("red", 1.5, "", "a"),
                                           ("green", 3.0, 15, "b"), ("blue", 2.5, 11, "a"), ("green", 0.5, 9, "b")] * 4)


@pytest.fixture(scope="module")
def csv_run(tmp_path_factory) -> tuple[str, object]:
    folder = tmp_path_factory.mktemp("csv")
    (folder / "table.csv").write_text(CSV)
    chain = [("x", "Input", {"shape": [5]}), ("fc", "Linear", {"out_features": 2}), ("out", "Output", {})]
    dataset = {"name": "csv", "params": {"path": "table.csv", "target": "kind"}, "inputs": {"x": "x"}}
    training = {"dataset": dataset, "epochs": 2, "batch_size": 8, "validation_split": 0.0}
    return trained(folder, chain_doc(chain, training), "csv_run"), folder


def test_csv_rows_are_encoded_with_the_recorded_codes_and_statistics(csv_run, capsys):
    run, folder = csv_run
    record = json.loads((folder / "csv_run" / "preprocess.json").read_text())
    assert [c["name"] for c in record["columns"]] == ["colour", "size", "weight"]
    assert record["columns"][0]["categories"] == ["blue", "green", "red"] and record["classes"] == ["a", "b"]
    data = load_data(DatasetConfig(name="csv", params={"path": "table.csv", "target": "kind"}), 0.0, 0, folder)
    module = compile_graph(load_graph(RunDir(run).read_record()["graph"])).eval()
    module.load_state_dict(run_weights(RunDir(run)))
    with torch.no_grad():
        expected = module(data.train["x"]).softmax(-1)
    assert main(["predict", run, str(folder / "table.csv"), "--json", "--top-k", "2"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 24 and lines[2]["input"] == f"{folder / 'table.csv'}:4"
    for row, line in enumerate(lines):
        got = {p["class"]: p["probability"] for p in line["predictions"]}
        assert abs(got["a"] - float(expected[row, 0])) < 1e-5 and abs(got["b"] - float(expected[row, 1])) < 1e-5


def test_an_unknown_category_names_the_row_and_the_column(csv_run, tmp_path, capsys):
    run, _ = csv_run
    (tmp_path / "new.csv").write_text("colour,size,weight\nred,1,10\npurple,2,3\n")
    assert main(["predict", run, str(tmp_path / "new.csv")]) == 2
    captured = capsys.readouterr()
    assert captured.out.startswith(f"{tmp_path / 'new.csv'}:2: ")
    assert f"{tmp_path / 'new.csv'}:3: column 'colour': 'purple' is not a category seen in training" in captured.err


# --- text --------------------------------------------------------------------------------------

def test_a_language_model_predicts_the_next_character(tmp_path, capsys):
    (tmp_path / "t.txt").write_text("abcd" * 300)
    chain = [("tokens", "Input", {"shape": ["T"], "dtype": "int64"}),
             ("embed", "Embedding", {"num_embeddings": 4, "embedding_dim": 8}),
             ("head", "Linear", {"out_features": 4}), ("logits", "Output", {})]
    training = {"task": "language_model", "dataset": {"name": "text", "params": {"path": "t.txt", "length": 8},
                                                      "inputs": {"tokens": "x"}},
                "epochs": 3, "batch_size": 16, "validation_split": 0.1,
                "optimizer": {"type": "Adam", "params": {"lr": 0.05}}}
    run = trained(tmp_path, chain_doc(chain, training), "lm_run")
    capsys.readouterr()
    assert main(["predict", run, "abcdab", "--top-k", "1", "--json"]) == 0
    line = json.loads(capsys.readouterr().out)
    assert line["input"] == "'abcdab'" and line["predictions"][0]["class"] == "c"
    assert line["predictions"][0]["probability"] > 0.5
    assert main(["predict", run, "xyz"]) == 2
    assert "characters outside the training text's vocabulary: 'xyz'" in capsys.readouterr().err


# --- arrays -----------------------------------------------------------------------------------

def test_array_inputs_come_from_npy_files_and_a_missing_field_records_no_input(tmp_path, capsys):
    from dlstudio.core.training import TrainingConfig
    from dlstudio.train.preprocess import preprocessing_record

    chain = [("x", "Input", {"shape": [2]}), ("fc", "Linear", {"out_features": 2}), ("out", "Output", {})]
    training = {"dataset": {"name": "moons", "params": {"samples": 100}, "inputs": {"x": "x"}}, "epochs": 1}
    run = trained(tmp_path, chain_doc(chain, training), "moons_run")
    points = np.array([[0.0, 0.5], [1.0, -0.5], [2.0, 0.0]], np.float32)
    np.save(tmp_path / "points.npy", points)
    capsys.readouterr()
    assert main(["predict", run, str(tmp_path / "points.npy"), "--json", "--top-k", "1"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["input"] for line in lines] == [f"{tmp_path / 'points.npy'}[{i}]" for i in range(3)]
    np.save(tmp_path / "wrong.npy", np.zeros((3, 5), np.float32))
    assert main(["predict", run, str(tmp_path / "wrong.npy")]) == 2
    assert "holds an array of shape [3, 5], not samples of [2]" in capsys.readouterr().err
    config = TrainingConfig.model_validate({**training, "dataset": {**training["dataset"], "inputs": {"z": "noise"}}})
    data = load_data(config.dataset, 0.2, 0)
    assert preprocessing_record(config, data)["kind"] == "none"
