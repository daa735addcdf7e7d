"""ONNX export of sequence models: the graph's symbolic length ``T`` stays a dynamic axis of
the file, so onnxruntime runs it at lengths other than the traced one, as PyTorch does; this
holds for a MixtureOfExperts (exported without its data-dependent split) and a MambaBlock
(its scan exported as an ONNX Scan) too."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
import torch

from dlstudio.cli import main
from dlstudio.core.analysis import analyze
from dlstudio.core.graph import Graph
from dlstudio.core.io import load_graph
from dlstudio.train.errors import ConfigError
from dlstudio.train.exporting import _check, _scale, export_onnx, export_torchscript, trained_module
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


def _layer_graph(layer: dict, outputs: tuple[str, ...] = ("output",)) -> Graph:
    """Input [N, T, 8] into one layer whose ``outputs`` each reach an Output node."""
    return load_graph({
        "format": "dlstudio.graph", "version": 1, "name": layer["type"],
        "nodes": [{"id": "x", "type": "Input", "params": {"shape": ["T", 8]}}, {"id": "layer", **layer},
                  *({"id": port, "type": "Output"} for port in outputs)],
        "edges": [{"source": "x", "target": "layer"},
                  *({"source": f"layer.{port}", "target": port} for port in outputs)],
    })


def _exported(graph: Graph, path: Path) -> tuple[torch.nn.Module, onnxruntime.InferenceSession]:
    """The graph's module, with weights drawn as after training, and its checked ONNX file."""
    analysis = analyze(graph)
    torch.manual_seed(0)
    module = trained_module(analysis, None).eval()
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.add_(0.3 * torch.randn(parameter.shape))
    assert export_onnx(analysis, module, path) <= 1e-5
    return module, onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _largest_differences(module: torch.nn.Module, session: onnxruntime.InferenceSession,
                         x: torch.Tensor) -> list[float]:
    with torch.no_grad():
        expected = module(x)
    expected = expected if isinstance(expected, tuple) else (expected,)
    actual = session.run(None, {"x": x.numpy()})
    assert [a.shape for a in actual] == [tuple(e.shape) for e in expected]
    return [float(np.abs(a - e.numpy()).max()) for a, e in zip(actual, expected, strict=True)]


def test_a_mixture_of_experts_exports_with_its_aux_loss_and_matches_the_sparse_dispatch(tmp_path):
    """Under export every expert runs on every token; onnxruntime must still give the sparse
    dispatch's outputs and load-balancing loss, at token counts other than the traced one."""
    layer = {"type": "MixtureOfExperts", "params": {"num_experts": 4, "top_k": 2, "hidden_dim": 16}}
    module, session = _exported(_layer_graph(layer, ("output", "aux_loss")), tmp_path / "moe.onnx")
    assert [_axes(v) for v in onnx.load(str(tmp_path / "moe.onnx")).graph.output] == [["N", "T", 8], []]
    for batch, length in [(1, 1), (3, 7), (2, 40)]:
        x = torch.randn(batch, length, 8, generator=torch.Generator().manual_seed(length))
        assert max(_largest_differences(module, session, x)) <= 1e-5


def test_a_mixture_of_experts_traces_to_torchscript_for_any_token_count(tmp_path):
    """Tracing takes the dense form too, so the trace holds no traced batch's expert counts."""
    layer = {"type": "MixtureOfExperts", "params": {"num_experts": 3, "top_k": 2, "hidden_dim": 8}}
    analysis = analyze(_layer_graph(layer, ("output", "aux_loss")))
    torch.manual_seed(0)
    module = trained_module(analysis, None).eval()
    assert export_torchscript(analysis, module, tmp_path / "moe.pt") <= 1e-5
    loaded = torch.jit.load(str(tmp_path / "moe.pt"))
    for length in (1, 9, 30):
        x = torch.randn(2, length, 8, generator=torch.Generator().manual_seed(length))
        with torch.no_grad():
            for expected, actual in zip(module(x), loaded(x), strict=True):
                torch.testing.assert_close(actual, expected, rtol=0, atol=1e-5)


@pytest.fixture(scope="module")
def mamba(tmp_path_factory):
    """A MambaBlock exported once, its length T a dynamic axis."""
    path = tmp_path_factory.mktemp("onnx") / "mamba.onnx"
    layer = {"type": "MambaBlock", "params": {"d_state": 4, "dt_rank": 2}}
    module, session = _exported(_layer_graph(layer), path)
    return module, session, onnx.load(str(path))


def test_the_mamba_scan_is_an_onnx_scan_over_a_dynamic_length(mamba):
    _, _, model = mamba
    assert [_axes(v) for v in model.graph.input] == [["N", "T", 8]]
    assert "Scan" in {node.op_type for node in model.graph.node}


@pytest.mark.parametrize("length", [1, 7, 33, 128])
def test_one_mamba_file_matches_the_eager_scan_at_every_length(mamba, length):
    module, session, _ = mamba
    x = torch.randn(2, length, 8, generator=torch.Generator().manual_seed(length))
    assert _largest_differences(module, session, x)[0] <= 1e-5


def test_the_check_allows_1e_4_or_1e_5_of_the_largest_output():
    """Logits near 800 (an untrained mamba_130m's) lie 6e-5 apart in float32: a fixed 1e-4
    would fail an export for rounding that eager float32 shows too."""
    with pytest.raises(ConfigError, match=r"differs from PyTorch by 2\.00e-04 \(limit 0\.0001\)"):
        _check(2e-4, "ONNX", _scale((torch.tensor([5.0, -9.0]), torch.tensor(0.1))))
    assert _check(3.7e-4, "ONNX", _scale((torch.tensor([3.0, -790.0]), torch.zeros(0)))) == 3.7e-4
    with pytest.raises(ConfigError, match=r"\(limit 0\.0079\)"):
        _check(0.01, "ONNX", _scale(torch.tensor([3.0, -790.0])))
