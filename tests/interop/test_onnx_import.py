"""``dlstudio import MODEL.onnx``: models exported with torch.onnx come back as graphs that
compute the same outputs with the same parameters; unknown operators become diagnostics."""

from __future__ import annotations

import sys
import warnings
from collections import Counter
from pathlib import Path

import pytest
import torch
from torch import nn

from dlstudio import analyze, load_graph
from dlstudio.core.graph import Graph
from tests.interop import models
from tests.interop.roundtrip import assert_same_outputs, compiled, parameter_count, run_import

pytest.importorskip("onnx")


def test_without_the_onnx_package_the_command_says_how_to_get_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # as if not installed
    (tmp_path / "model.onnx").write_bytes(b"")
    code, graph, _ = run_import(tmp_path, str(tmp_path / "model.onnx"))
    assert code == 2 and not graph.exists()
    assert capsys.readouterr().err == (
        "dlstudio: importing ONNX needs the onnx package: pip install 'dlstudio[onnx]'\n")


def export(model: nn.Module, example: torch.Tensor, path: Path) -> str:
    """Export as ONNX keeping batch norms as operators (not folded into the convolutions), so
    the imported graph has the original's layers and parameter count."""
    with warnings.catch_warnings():  # the TorchScript exporter is deprecated; it keeps the layers
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(model.eval(), (example,), str(path), dynamo=False, do_constant_folding=False,
                          training=torch.onnx.TrainingMode.PRESERVE, input_names=["image"])
    return str(path)


@pytest.mark.parametrize(("factory", "shape"), [(models.trained_resnet18, (3, 64, 64)),
                                                (models.trained_unet, (3, 32, 32))])
def test_exported_models_round_trip_exactly(tmp_path, capsys, factory, shape):
    torch.manual_seed(0)
    original = factory()
    source = export(original, torch.randn(2, *shape), tmp_path / "model.onnx")
    code, graph, weights = run_import(tmp_path, source)
    assert code == 0, capsys.readouterr()
    assert "nothing unsupported" in capsys.readouterr().out
    assert_same_outputs(original, compiled(graph, weights), torch.randn(2, *shape))
    assert load_graph(graph).node("image").params == {"shape": list(shape), "dtype": "float32"}


def test_module_paths_become_ids_and_labels(tmp_path):
    torch.manual_seed(0)
    source = export(models.trained_resnet18(), torch.randn(2, 3, 64, 64), tmp_path / "model.onnx")
    run_import(tmp_path, source)
    node = load_graph(tmp_path / "graph.json").node("layer2_0_downsample_0")
    assert (node.type, node.label) == ("Conv2d", "layer2.0.downsample.0")


class ErrorFunction(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        return torch.erf(self.fc(x)).relu()


def test_an_unknown_operator_becomes_a_diagnostic_node(tmp_path, capsys):
    source = export(ErrorFunction(), torch.randn(2, 8), tmp_path / "model.onnx")
    code, graph, weights = run_import(tmp_path, source)
    assert code == 1 and not weights.exists()
    assert "1 unsupported, shown as Unsupported nodes: ONNX Erf (/Erf)" in capsys.readouterr().out
    analysis = analyze(load_graph(graph))
    assert [node.type for node in analysis.graph.nodes] == ["Input", "Linear", "Unsupported", "ReLU", "Output"]
    assert [d.one_line() for d in analysis.errors] == [
        "Erf: Unsupported 'Erf': ONNX Erf (/Erf) has no DL Studio layer (rebuild this step from "
        "catalogue layers, or change the model and import it again)"]


def test_a_file_that_is_not_onnx_is_one_line(tmp_path, capsys):
    source = tmp_path / "model.onnx"
    source.write_bytes(b"not a protobuf")
    code, _, _ = run_import(tmp_path, str(source))
    err = capsys.readouterr().err
    assert code == 1 and err.startswith(f"dlstudio: {source}: not a readable ONNX model") and err.count("\n") == 1


def test_written_out_attention_maps_matmul_add_to_linear_and_constants_to_scale(tmp_path, capsys):
    torch.manual_seed(0)
    original = models.ScaledAttention()
    source = export(original, torch.randn(2, 6, 16), tmp_path / "model.onnx")
    code, graph, weights = run_import(tmp_path, source)
    assert code == 0, capsys.readouterr()
    types = Counter(node.type for node in load_graph(graph).nodes)
    assert types == {"Input": 1, "Linear": 3, "MatMul": 2, "Scale": 2, "Permute": 1, "Softmax": 1, "Output": 1}
    assert_same_outputs(original, compiled(graph, weights), torch.randn(2, 6, 16))


def test_the_default_exporter_s_folded_batch_norms_still_compute_the_same(tmp_path, capsys):
    """torch.onnx's default exporter folds batch norms into the convolutions: fewer layers and
    parameters, the same outputs."""
    torch.manual_seed(0)
    original = models.trained_unet()
    example = torch.randn(2, 3, 32, 32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(original, (example,), str(tmp_path / "model.onnx"), verbose=False)
    code, graph, weights = run_import(tmp_path, str(tmp_path / "model.onnx"))
    assert code == 0 and "nothing unsupported" in capsys.readouterr().out
    with torch.no_grad():
        assert (compiled(graph, weights)(example) - original(example)).abs().max() <= 1e-5
    assert "BatchNorm2d" not in {n.type for n in load_graph(graph).nodes}


class NormedHead(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm = nn.LayerNorm(8)
        self.fc = nn.Linear(8, 6)
        self.act = nn.GELU()

    def forward(self, x):
        return torch.log_softmax(self.act(self.fc(self.norm(x))).unsqueeze(1).flatten(1), dim=-1)


def test_layer_normalization_gelu_and_log_softmax_map_from_opset_20(tmp_path, capsys):
    torch.manual_seed(0)
    original = NormedHead()
    source = tmp_path / "model.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(original, (torch.randn(2, 8),), str(source), dynamo=False, opset_version=20)
    code, graph, weights = run_import(tmp_path, str(source))
    assert code == 0, capsys.readouterr()
    types = [node.type for node in load_graph(graph).nodes]
    assert types == ["Input", "LayerNorm", "Linear", "GELU", "Unsqueeze", "Flatten", "LogSoftmax", "Output"]
    assert_same_outputs(original, compiled(graph, weights), torch.randn(3, 8))


def export_sequence_model(model: nn.Module, example: torch.Tensor, path: Path, dynamo: bool) -> str:
    """Export with a variable batch and length, through either of torch.onnx's exporters."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            sizes = {0: torch.export.Dim("batch"), 1: torch.export.Dim("T", max=16)}
            torch.onnx.export(model.eval(), (example,), str(path), dynamo=True, verbose=False,
                              input_names=["tokens"], dynamic_shapes=(sizes,))
        else:
            torch.onnx.export(model.eval(), (example,), str(path), dynamo=False, input_names=["tokens"],
                              dynamic_axes={"tokens": {0: "batch", 1: "T"}})
    return str(path)


def round_trip_tokens(tmp_path, capsys, original: nn.Module, vocab: int, batch: int, lengths: tuple[int, ...],
                      dynamo: bool) -> tuple[Graph, nn.Module]:
    """Export ``original`` (token input, dynamic length), import it with nothing unsupported,
    check the outputs at each of ``lengths``; the imported graph and its compiled module."""
    source = export_sequence_model(original, torch.randint(0, vocab, (2, 7)), tmp_path / "model.onnx", dynamo)
    code, graph, weights = run_import(tmp_path, source)
    assert code == 0 and "nothing unsupported" in capsys.readouterr().out
    imported = compiled(graph, weights)
    for length in lengths:
        assert_same_outputs(original, imported, torch.randint(0, vocab, (batch, length)))
    return load_graph(graph), imported


@pytest.mark.parametrize("dynamo", [True, False], ids=["dynamo", "torchscript"])
def test_an_lstm_classifier_round_trips_with_a_variable_length(tmp_path, capsys, dynamo):
    torch.manual_seed(0)
    nodes = round_trip_tokens(tmp_path, capsys, models.LSTMClassifier(), 100, 4, (3, 9), dynamo)[0].nodes
    assert [n.type for n in nodes] == ["Input", "Embedding", "LSTM", "SelectIndex", "Linear", "Output"]
    assert nodes[0].params == {"shape": ["T"], "dtype": "int64"}
    assert nodes[2].params == {"hidden_size": 24, "num_layers": 2}


class GRUTagger(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(30, 8)
        self.gru = nn.GRU(8, 6, batch_first=True, bidirectional=True)
        self.fc = nn.Linear(12, 5)

    def forward(self, tokens):
        out, _ = self.gru(self.embedding(tokens))
        return self.fc(out)


@pytest.mark.parametrize("dynamo", [True, False], ids=["dynamo", "torchscript"])
def test_a_bidirectional_gru_round_trips(tmp_path, capsys, dynamo):
    torch.manual_seed(0)
    nodes = round_trip_tokens(tmp_path, capsys, GRUTagger(), 30, 3, (2, 11), dynamo)[0].nodes
    gru = next(n for n in nodes if n.type == "GRU")
    assert gru.params == {"hidden_size": 6, "bidirectional": True}


@pytest.mark.parametrize(("attention", "dynamo"), [("sdpa", True), ("sdpa", False), ("mha", True)],
                         ids=["sdpa-dynamo", "sdpa-torchscript", "mha-dynamo"])
def test_a_gpt2_style_transformer_round_trips_with_causal_attention(tmp_path, capsys, attention, dynamo):
    torch.manual_seed(0)
    nodes = round_trip_tokens(tmp_path, capsys, models.GPT(attention=attention), 50, 2, (4, 16), dynamo)[0].nodes
    types = Counter(node.type for node in nodes)
    assert types["LearnedPositionalEmbedding"] == 1 and types["LayerNorm"] == 5
    assert not {"MatMul", "Scale", "Transpose", "Softmax"} & set(types)
    if attention == "sdpa":  # the exporter's d ** -0.25 on q and k is the default scale
        assert [n.params for n in nodes if n.type == "ScaledDotProductAttention"] == [{"causal": True}] * 2
    else:
        assert [n.params for n in nodes if n.type == "MultiheadAttention"] == [
            {"num_heads": 4, "need_weights": False, "causal": True}] * 2


def test_a_tied_head_ties_again_on_import(tmp_path, capsys):
    """Both exporters write a tied head as a second copy of the token table; the copy ties
    to the Embedding, so the parameter count is the original's."""
    torch.manual_seed(0)
    original = models.GPT()
    original.lm_head.weight = original.wte.weight
    graph, imported = round_trip_tokens(tmp_path, capsys, original, 50, 3, (9,), dynamo=False)
    assert imported.lm_head.weight is imported.wte.weight
    assert graph.node("lm_head").tie == {"weight": "wte.weight"}


@pytest.mark.parametrize(("name", "dynamo"), [("lstm", False), ("mha", True)], ids=["lstm-torchscript", "mha-dynamo"])
def test_a_model_exported_with_fixed_sizes_imports_for_any_batch(tmp_path, capsys, name, dynamo):
    """Without dynamic axes the batch size is written into the reshapes and initial states;
    it stands for the batch, so the imported graph takes any batch. The exporter folds the
    position lookup at the fixed length: only the 7 rows it used of the 16 come back."""
    torch.manual_seed(0)
    original = models.LSTMClassifier() if name == "lstm" else models.GPT(attention="mha")
    example = torch.randint(0, 50, (2, 7))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(original.eval(), (example,), str(tmp_path / "model.onnx"), dynamo=dynamo, verbose=False)
    code, graph, weights = run_import(tmp_path, str(tmp_path / "model.onnx"))
    assert code == 0 and "nothing unsupported" in capsys.readouterr().out
    imported, tokens = compiled(graph, weights), torch.randint(0, 50, (5, 7))
    with torch.no_grad():
        assert (imported(tokens) - original(tokens)).abs().max() <= 1e-5
    missing_rows = 0 if name == "lstm" else (16 - 7) * 32
    assert parameter_count(imported) == parameter_count(original) - missing_rows


class SelfAttention(nn.Module):
    def __init__(self, mask: torch.Tensor | None = None):
        super().__init__()
        self.attn = nn.MultiheadAttention(16, 2, batch_first=True)
        self.mask = mask

    def forward(self, x):
        return self.attn(x, x, x, attn_mask=self.mask, need_weights=False)[0]


@pytest.mark.filterwarnings("ignore")  # the TorchScript exporter's tracer warnings on nn.MultiheadAttention
def test_multihead_attention_without_a_mask_and_with_one_no_layer_takes(tmp_path, capsys):
    torch.manual_seed(0)
    original = SelfAttention()
    nn.init.normal_(original.attn.in_proj_bias)
    code, graph, weights = run_import(tmp_path, export(original, torch.randn(2, 5, 16), tmp_path / "plain.onnx"))
    assert code == 0 and "nothing unsupported" in capsys.readouterr().out
    assert_same_outputs(original, compiled(graph, weights), torch.randn(3, 5, 16))
    attention = next(n for n in load_graph(graph).nodes if n.type == "MultiheadAttention")
    assert attention.params == {"num_heads": 2, "need_weights": False}
    banded = SelfAttention(torch.zeros(5, 5).masked_fill(torch.ones(5, 5).triu(2).bool(), float("-inf")))
    code, _, _ = run_import(tmp_path, export(banded, torch.randn(2, 5, 16), tmp_path / "banded.onnx"))
    assert code == 1
    assert ("ONNX nn.MultiheadAttention: an attention mask other than the causal one (attn)"
            in capsys.readouterr().out)
