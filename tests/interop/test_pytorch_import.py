"""``dlstudio import FILE.py:NAME``: hand-written models come back as graphs that compute the
same outputs with the same parameters; what cannot be mapped is shown, never dropped."""

from __future__ import annotations

import inspect

import pytest
import torch

from dlstudio import analyze, load_graph
from dlstudio.cli import main
from dlstudio.core.graph import Graph
from tests.interop import models
from tests.interop.roundtrip import MODELS, assert_same_outputs, compiled, run_import


def _types(graph: Graph) -> list[str]:
    return [node.type for node in graph.nodes]


def test_resnet18_round_trips_exactly(tmp_path, capsys):
    torch.manual_seed(0)
    code, graph, weights = run_import(tmp_path, f"{MODELS}:trained_resnet18", "--input", "x=3,64,64",
                                      "--flat")
    assert code == 0
    assert "Conv2d 20, BatchNorm2d 20" in capsys.readouterr().out
    torch.manual_seed(0)
    original = models.trained_resnet18()
    imported = compiled(graph, weights)
    assert_same_outputs(original, imported, torch.randn(2, 3, 64, 64))
    node = load_graph(graph).node("layer2_0_downsample_0")
    assert node.type == "Conv2d" and node.label == "layer2.0.downsample.0"
    assert len(imported.state_dict()) == len(original.state_dict()) == 122


def test_unet_round_trips_exactly(tmp_path):
    torch.manual_seed(0)
    code, graph, weights = run_import(tmp_path, f"{MODELS}:trained_unet", "--input", "x=3,32,32")
    assert code == 0
    torch.manual_seed(0)
    assert_same_outputs(models.trained_unet(), compiled(graph, weights), torch.randn(2, 3, 32, 32))
    assert {"ConvTranspose2d", "Concat", "MaxPool2d"} <= set(_types(load_graph(graph)))


def test_lstm_classifier_round_trips_with_a_variable_length(tmp_path):
    torch.manual_seed(0)
    code, graph, weights = run_import(tmp_path, f"{MODELS}:LSTMClassifier", "--input", "tokens=T:int64",
                                      "--args", '{"classes": 4}')
    assert code == 0
    torch.manual_seed(0)
    original, imported = models.LSTMClassifier(classes=4), compiled(graph, weights)
    for length in (3, 9):
        assert_same_outputs(original, imported, torch.randint(0, 100, (2, length)))
    assert load_graph(graph).node("tokens").params == {"shape": ["T"], "dtype": "int64"}


@pytest.mark.parametrize("attention", ["sdpa", "mha"])
def test_gpt2_style_transformer_round_trips(tmp_path, attention):
    torch.manual_seed(0)
    code, graph, weights = run_import(tmp_path, f"{MODELS}:GPT", "--input", "idx=T:int64",
                                      "--args", f'{{"attention": "{attention}"}}', "--flat")
    assert code == 0
    torch.manual_seed(0)
    original, imported = models.GPT(attention=attention), compiled(graph, weights)
    for length in (4, 16):
        assert_same_outputs(original, imported, torch.randint(0, 50, (2, length)))
    types = _types(load_graph(graph))
    assert "LearnedPositionalEmbedding" in types
    assert ("ScaledDotProductAttention" if attention == "sdpa" else "MultiheadAttention") in types


def test_attention_written_out_maps_to_matmul_softmax_and_scale(tmp_path):
    torch.manual_seed(0)
    code, graph, weights = run_import(tmp_path, f"{MODELS}:ScaledAttention", "--input", "x=T,16")
    assert code == 0
    torch.manual_seed(0)
    assert_same_outputs(models.ScaledAttention(), compiled(graph, weights), torch.randn(2, 6, 16))
    scales = [n.params["factor"] for n in load_graph(graph).nodes if n.type == "Scale"]
    assert scales == [0.25, 0.5]


def test_a_model_fx_cannot_trace_goes_through_torch_export(tmp_path, capsys):
    torch.manual_seed(0)
    code, graph, weights = run_import(tmp_path, f"{MODELS}:SizeBranch", "--input", "x=3,8,8")
    assert code == 0
    assert "(Conv2d 1, BatchNorm2d 1, ReLU 1, Mean 1, Add 1, MaxPool2d 1" in capsys.readouterr().out
    torch.manual_seed(0)
    assert_same_outputs(models.SizeBranch(), compiled(graph, weights), torch.randn(3, 3, 8, 8))


def test_a_module_called_twice_is_imported_with_tied_weights(tmp_path, capsys):
    source = tmp_path / "shared.py"
    source.write_text("from torch import nn\n\n\nclass Twice(nn.Module):\n    def __init__(self):\n"
                      "        super().__init__()\n        self.fc = nn.Linear(4, 4)\n\n"
                      "    def forward(self, x):\n        return self.fc(self.fc(x))\n")
    code, graph, weights = run_import(tmp_path, f"{source}:Twice", "--input", "x=4")
    assert code == 0
    assert "; nothing unsupported; the weights of fc, shared by 2 calls, are tied: one tensor each\n" in (
        capsys.readouterr().out)
    nodes = load_graph(graph).nodes
    assert [n.id for n in nodes] == ["x", "fc", "fc_2", "output"]
    assert nodes[2].tie == {"weight": "fc.weight", "bias": "fc.bias"}
    module = compiled(graph, weights)
    assert module.fc_2.weight is module.fc.weight and sum(p.numel() for p in module.parameters()) == 20
    namespace: dict = {}
    exec(compile(source.read_text(), str(source), "exec"), namespace)  # noqa: S102  (the test's own model)
    original = namespace["Twice"]()
    original.fc.load_state_dict(module.fc.state_dict())
    x = torch.randn(3, 4)
    assert torch.allclose(module(x), original(x), atol=1e-6)


def test_an_unmapped_operation_becomes_a_diagnostic_node_naming_its_line(tmp_path, capsys):
    code, graph, weights = run_import(tmp_path, f"{MODELS}:Rolling", "--input", "x=8")
    assert code == 1 and not weights.exists()
    lines, start = inspect.getsourcelines(models.Rolling.forward)
    line = start + next(i for i, text in enumerate(lines) if "torch.roll" in text)
    out = capsys.readouterr()
    assert "1 unsupported, shown as Unsupported nodes: torch.roll (models.py:" in out.out
    assert "not written" in out.err
    analysis = analyze(load_graph(graph))
    assert _types(analysis.graph) == ["Input", "Linear", "Unsupported", "ReLU", "Output"]
    assert [d.one_line() for d in analysis.errors] == [
        f"roll: Unsupported 'roll': torch.roll (models.py:{line}) has no DL Studio layer (rebuild this "
        "step from catalogue layers, or change the model and import it again)"]


def test_a_file_that_raises_on_import_is_one_line(tmp_path, capsys):
    source = tmp_path / "broken.py"
    source.write_text("import torch\n\nraise RuntimeError('no GPU here')\n")
    code, graph, _ = run_import(tmp_path, f"{source}:Model", "--input", "x=4")
    err = capsys.readouterr().err
    assert code == 1 and not graph.exists()
    assert err == f"dlstudio: {source}: importing it raised RuntimeError: no GPU here at line 3\n"


@pytest.mark.parametrize(("options", "message"), [
    ((), "give the shape of x with --input NAME=SHAPE[:DTYPE], e.g. --input x=3,32,32"),
    (("--input", "x=8", "--args", "[1]"), "--args must be a JSON object of keyword arguments"),
    (("--input", "x=N"), "--input wants NAME=SHAPE[:DTYPE] such as x=3,32,32 or tokens=T:int64"),
])
def test_usage_mistakes_are_one_line_with_exit_2(tmp_path, capsys, options, message):
    code, _, _ = run_import(tmp_path, f"{MODELS}:Rolling", *options)
    assert code == 2 and message in capsys.readouterr().err


def test_the_help_says_the_file_is_run(capsys):
    assert main(["import", "--help"]) == 0
    assert "RUNS THAT PYTHON FILE" in " ".join(capsys.readouterr().out.split())


def test_init_weights_takes_every_imported_weight(tmp_path):
    """What ``dlstudio run --init-weights`` does with the file: every key loads, none left."""
    from dlstudio import compile_graph
    from dlstudio.train.pretrained import load_pretrained

    torch.manual_seed(0)
    code, graph, weights = run_import(tmp_path, f"{MODELS}:LSTMClassifier", "--input", "tokens=12:int64")
    assert code == 0
    module = compile_graph(load_graph(graph)).eval()
    loaded = load_pretrained(module, str(weights))
    assert loaded.missing == () and loaded.unused == () and len(loaded.loaded) == 11
    torch.manual_seed(0)
    original = models.LSTMClassifier()
    assert_same_outputs(original, module, torch.randint(0, 100, (3, 12)))


def test_ids_are_legal_unique_and_labels_keep_the_qualified_names(tmp_path):
    torch.manual_seed(0)
    run_import(tmp_path, f"{MODELS}:ResNet18", "--input", "x=3,64,64", "--args", '{"num_classes": 5}', "--flat")
    graph = load_graph(tmp_path / "graph.json")
    relus = [(n.id, n.label) for n in graph.nodes if n.label == "layer1.0.relu"]
    assert relus == [("layer1_0_relu", "layer1.0.relu"), ("layer1_0_relu_2", "layer1.0.relu")]
    assert all(n.position is not None for n in graph.nodes)


def test_a_refused_call_says_why(tmp_path, capsys):
    source = tmp_path / "padded.py"
    source.write_text("from torch import nn\n\n\nclass Padded(nn.Module):\n    def __init__(self):\n"
                      "        super().__init__()\n        self.embed = nn.Embedding(10, 4, max_norm=1.0)\n\n"
                      "    def forward(self, tokens):\n        return self.embed(tokens)\n")
    code, _, _ = run_import(tmp_path, f"{source}:Padded", "--input", "tokens=5:int64")
    assert code == 1
    assert ("1 unsupported, shown as Unsupported nodes: nn.Embedding: max_norm=1.0 is not supported "
            "(padded.py:10)") in capsys.readouterr().out
