"""``dlstudio export --quantize int8``: dynamic and static int8 against fp32, and failed exports
that leave no file behind."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime
import pytest

from dlstudio.cli import main
from dlstudio.core.io import load_graph, save_graph
from dlstudio.train.errors import ConfigError
from dlstudio.train.exporting import staged
from tests.conftest import GRAPHS
from tests.train.helpers import adaptive_pool, graph_of, mlp


def digits_mlp(**training):
    doc = mlp(data="digits", features=64, classes=10, hidden=96, epochs=3, **training)
    doc["training"]["dataset"]["params"] = {"layout": "flat"}
    doc["training"]["metrics"] = ["accuracy"]
    return doc


def digits_cnn():
    """cnn_digits with fewer channels and epochs, so that it trains in a few seconds."""
    graph = load_graph(GRAPHS / "cnn_digits.json")
    for node in graph.nodes:
        if node.type == "Conv2d":
            node.params["out_channels"] = 8
    graph.training.epochs = 2
    return graph


def one_epoch(example: str, samples: int):
    """An example graph that trains one epoch on ``samples`` samples (quick to quantize)."""
    graph = load_graph(GRAPHS / f"{example}.json")
    graph.training.epochs = 1
    graph.training.dataset.params["samples"] = samples
    return graph


def trained(tmp_path, graph):
    path, out = tmp_path / "g.json", tmp_path / "run"
    save_graph(graph, path)
    assert main(["run", str(path), "--out", str(out), "--json", "--device", "cpu"]) == 0
    return str(path), str(out)


def table(text):
    """The report's rows by their first cell: [fp32, int8, change]."""
    rows = {}
    for line in text.splitlines()[2:]:
        cells = [c for c in line.split("  ") if c.strip()]
        rows[cells[0].strip()] = [c.strip() for c in cells[1:]]
    return rows


def kib(cell):
    return float(cell.split()[0].replace(",", ""))


def test_dynamic_int8_of_an_mlp_is_smaller_and_as_accurate(tmp_path, capsys):
    graph, run = trained(tmp_path, graph_of(digits_mlp()))
    capsys.readouterr()
    output = tmp_path / "int8.onnx"
    assert main(["export", graph, "--weights", run, "--to", "onnx", "--quantize", "int8", "-o", str(output)]) == 0
    text = capsys.readouterr().out
    assert text.startswith("int8 quantization (dynamic")
    rows = table(text)
    assert kib(rows["file size"][1]) / kib(rows["file size"][0]) < 0.35
    assert rows["file size"][1] == f"{output.stat().st_size / 1024:,.1f} KiB"
    assert rows["latency per sample"][0].endswith("µs") and rows["latency per sample"][1].endswith("µs")
    fp32, int8 = (float(c.rstrip("%")) for c in rows["val_accuracy"][:2])
    assert fp32 > 80 and abs(fp32 - int8) <= 2
    ops = {node.op_type for node in onnx.load(str(output)).graph.node}
    assert "MatMulInteger" in ops and "DynamicQuantizeLinear" in ops
    session = onnxruntime.InferenceSession(str(output))
    assert session.run(None, {"x": np.zeros((5, 64), np.float32)})[0].shape == (5, 10)


def test_static_int8_quantizes_convolutions_with_calibration(tmp_path, capsys):
    graph, run = trained(tmp_path, digits_cnn())
    capsys.readouterr()
    output = tmp_path / "cnn.int8.onnx"
    assert main(["export", graph, "--weights", run, "--to", "onnx", "--quantize", "int8",
                 "--calibration", "100", "-o", str(output)]) == 0
    text = capsys.readouterr().out
    assert "static QDQ, per-channel weights, calibrated on 100 training samples" in text
    rows = table(text)
    fp32, int8 = (float(c.rstrip("%")) for c in rows["val_accuracy"][:2])
    assert fp32 > 80 and abs(fp32 - int8) <= 2
    assert rows["val_accuracy"][2].endswith("points")
    nodes = onnx.load(str(output)).graph.node
    fed_by = {out: node.op_type for node in nodes for out in node.output}
    convs = [node for node in nodes if node.op_type == "Conv"]
    assert len(convs) == 2 and all(fed_by[conv.input[1]] == "DequantizeLinear" for conv in convs)


def test_quantize_asks_for_a_run_and_calibration_for_quantize(tmp_path, capsys):
    graph = str(GRAPHS / "mlp_digits.json")
    output = tmp_path / "m.onnx"
    assert main(["export", graph, "--to", "onnx", "--quantize", "int8", "-o", str(output)]) == 1
    assert "--quantize int8 needs --to onnx and --weights RUN_DIR" in capsys.readouterr().err
    assert main(["export", graph, "--to", "onnx", "--calibration", "10", "-o", str(output)]) == 2
    assert "--calibration N needs --quantize int8" in capsys.readouterr().err
    assert not output.exists()


def test_a_staged_file_reaches_its_destination_only_when_the_block_succeeds(tmp_path):
    output = tmp_path / "model.onnx"
    with pytest.raises(ConfigError), staged(output) as path:
        path.write_bytes(b"half a model")
        raise ConfigError("the check failed")
    assert list(tmp_path.iterdir()) == []
    output.write_bytes(b"an earlier export")
    with pytest.raises(ConfigError), staged(output) as path:
        path.write_bytes(b"half a model")
        raise ConfigError("the check failed")
    assert output.read_bytes() == b"an earlier export" and list(tmp_path.iterdir()) == [output]
    with staged(output) as path:
        path.write_bytes(b"a checked model")
    assert output.read_bytes() == b"a checked model" and list(tmp_path.iterdir()) == [output]


def test_a_failed_onnx_export_leaves_no_file_and_says_why_in_one_line(tmp_path, capsys):
    path, output = tmp_path / "pool.json", tmp_path / "pool.onnx"
    save_graph(graph_of(adaptive_pool("AdaptiveMaxPool1d")), path)
    capsys.readouterr()
    assert main(["export", str(path), "--to", "onnx", "-o", str(output)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert lines == [lines[0]] and lines[0].startswith("dlstudio: the ONNX exporter failed: No ONNX function found")
    assert list(tmp_path.iterdir()) == [path]


@pytest.mark.slow
@pytest.mark.parametrize(("name", "calibration"), [("cnn_digits", ["--calibration", "256"]), ("mlp_digits", [])])
def test_examples_at_int8_keep_their_accuracy_in_a_third_of_the_size(name, calibration, tmp_path, capsys):
    """The README's figures: size at most 0.35 of fp32 and accuracy within a point."""
    out = tmp_path / "run"
    assert main(["run", str(GRAPHS / f"{name}.json"), "--out", str(out), "--json", "--device", "cpu"]) == 0
    capsys.readouterr()
    assert main(["export", str(GRAPHS / f"{name}.json"), "--weights", str(out), "--to", "onnx",
                 "--quantize", "int8", *calibration, "-o", str(tmp_path / "int8.onnx")]) == 0
    text = capsys.readouterr().out
    with capsys.disabled():
        print(f"\n{name}: {text}")
    rows = table(text)
    assert kib(rows["file size"][1]) / kib(rows["file size"][0]) <= 0.35
    fp32, int8 = (float(c.rstrip("%")) for c in rows["val_accuracy"][:2])
    assert abs(fp32 - int8) <= 1


def test_int8_of_a_mixture_of_experts_works_and_leaves_the_working_folder_as_it_was(tmp_path, capsys,
                                                                                     monkeypatch):
    """onnxruntime's symbolic shape inference gives up on the experts' gather and writes a
    scratch model into the working folder; the quantizer retries without it, elsewhere."""
    path, run = trained(tmp_path, one_epoch("moe_sequence", 200))
    capsys.readouterr()
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    output = tmp_path / "moe.int8.onnx"
    assert main(["export", path, "--weights", run, "--to", "onnx", "--quantize", "int8", "-o", str(output)]) == 0
    assert output.is_file() and list(work.iterdir()) == []
    assert "val_accuracy" in table(capsys.readouterr().out)
