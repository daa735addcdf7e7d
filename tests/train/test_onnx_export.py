"""ONNX export of a sequence model: the graph's symbolic length ``T`` stays a dynamic axis of
the file, so onnxruntime runs it at lengths other than the traced one, as PyTorch does."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime
import pytest
import torch

from dlstudio.cli import main
from dlstudio.core.analysis import analyze
from dlstudio.core.io import load_graph
from dlstudio.train.exporting import export_onnx, trained_module
from tests.conftest import GRAPHS


def _axes(value: onnx.ValueInfoProto) -> list[str | int]:
    return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]


@pytest.fixture(scope="module")
def char_gpt(tmp_path_factory):
    """char_gpt (trained to length 64, its position table's size) exported with its module."""
    analysis = analyze(load_graph(GRAPHS / "char_gpt.json"))
    torch.manual_seed(0)
    module = trained_module(analysis, None)
    path = tmp_path_factory.mktemp("onnx") / "char_gpt.onnx"
    assert export_onnx(analysis, module, path) <= 1e-4
    return module, path


def test_the_sequence_length_is_a_named_dynamic_axis(char_gpt):
    _, path = char_gpt
    model = onnx.load(str(path))
    assert [_axes(v) for v in model.graph.input] == [["N", "T"]]
    assert [_axes(v) for v in model.graph.output] == [["N", "T", 70]]


@pytest.mark.parametrize("length", [17, 64])
def test_onnxruntime_agrees_with_pytorch_at_other_lengths_than_traced(char_gpt, length):
    module, path = char_gpt
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    tokens = torch.randint(0, 70, (3, length), generator=torch.Generator().manual_seed(length))
    with torch.no_grad():
        expected = module(tokens).numpy()
    [actual] = session.run(None, {"tokens": tokens.numpy()})
    assert actual.shape == (3, length, 70)
    np.testing.assert_allclose(actual, expected, atol=1e-4, rtol=0)


def test_the_export_command_writes_char_gpt_with_its_check(tmp_path, capsys):
    assert main(["export", str(GRAPHS / "char_gpt.json"), "--to", "onnx", "-o", str(tmp_path / "m.onnx")]) == 0
    assert "largest difference from PyTorch" in capsys.readouterr().err
