"""Structured channel pruning: a smaller graph with the kept slices of the weights."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from dlstudio.cli import main
from dlstudio.core.analysis import analyze
from dlstudio.core.codegen import plan_module
from dlstudio.core.compiler import build_module
from dlstudio.core.io import load_graph, save_graph
from dlstudio.train.pruning import chains, prune
from tests.conftest import GRAPHS
from tests.train.helpers import graph_of, mlp
from tests.train.test_quantize import digits_cnn


def test_the_cnn_prunes_both_convolutions_and_the_hidden_linear_but_not_the_head():
    analysis = analyze(load_graph(GRAPHS / "cnn_digits.json"))
    found = {c.layer: (c.between, c.consumer, c.spread) for c in chains(analysis)}
    assert found == {"conv1": (("relu1",), "conv2", 1),
                     "conv2": (("relu2", "pool", "flatten", "drop"), "fc1", 16),
                     "fc1": (("relu3",), "fc2", 1)}


def test_removing_channels_that_carry_nothing_leaves_the_outputs_as_they_were():
    """Channels with zero weights and bias are the weakest; pruning half of every layer's,
    with exactly those zeroed, must give the same network in less space."""
    graph = load_graph(GRAPHS / "cnn_digits.json")
    analysis = analyze(graph)
    torch.manual_seed(0)
    module = build_module(plan_module(analysis)).eval()
    state = {k: v.clone() for k, v in module.state_dict().items()}
    for layer, width in (("conv1", 32), ("conv2", 64), ("fc1", 128)):
        dead = torch.randperm(width)[: width // 2]
        state[f"{layer}.weight"][dead] = 0
        state[f"{layer}.bias"][dead] = 0
    module.load_state_dict(state)
    pruned_graph, pruned_state = prune(graph, analysis, state, 0.5)
    pruned = analyze(pruned_graph)
    assert [pruned_graph.node(n).params.get("out_channels") for n in ("conv1", "conv2")] == [16, 32]
    assert pruned_graph.node("fc1").params["out_features"] == 64
    small = build_module(plan_module(pruned)).eval()
    small.load_state_dict(pruned_state, strict=True)
    assert pruned.total_params < analysis.total_params / 3
    assert pruned.total_flops < analysis.total_flops / 3
    x = torch.randn(5, 1, 8, 8)
    with torch.no_grad():
        assert torch.allclose(small(x), module(x), atol=1e-5)


def test_prune_writes_a_graph_that_fine_tunes_from_the_kept_weights(tmp_path, capsys):
    path, run = tmp_path / "g.json", tmp_path / "run"
    save_graph(digits_cnn(), path)
    assert main(["run", str(path), "--out", str(run), "--json", "--device", "cpu"]) == 0
    capsys.readouterr()
    output = tmp_path / "pruned.json"
    assert main(["prune", str(path), "--weights", str(run), "--channels", "0.5", "-o", str(output)]) == 0
    text = capsys.readouterr().out
    rows = {line.split("  ")[0]: line.split()[-2:] for line in text.splitlines()[2:5]}
    before, after = (int(v.replace(",", "")) for v in rows["parameters"])
    assert after < before * 0.6
    assert "val_accuracy" in text and f"dlstudio run {output}" in text
    pruned = load_graph(output)
    assert analyze(pruned).total_params == after
    assert pruned.training.init_weights == "pruned.safetensors"
    assert set(load_file(str(tmp_path / "pruned.safetensors"))) == set(build_module(plan_module(analyze(pruned))).state_dict())
    tuned = tmp_path / "tuned"
    assert main(["run", str(output), "--out", str(tuned), "--json", "--device", "cpu", "--epochs", "1"]) == 0
    record = json.loads((tuned / "graph.json").read_text())
    assert record["init_weights"]["missing"] == [] and record["init_weights"]["loaded"] > 0


def test_prune_refuses_a_fraction_outside_zero_to_one_and_a_graph_without_prunable_layers(tmp_path, capsys):
    graph = str(GRAPHS / "cnn_digits.json")
    assert main(["prune", graph, "--weights", str(tmp_path), "--channels", "1.5", "-o", str(tmp_path / "p.json")]) == 2
    assert "--channels wants a fraction between 0 and 1" in capsys.readouterr().err
    single = tmp_path / "single.json"
    save_graph(graph_of(mlp()), single)  # fc1 -> Tanh -> fc2 prunes; drop fc2 and nothing does
    doc = json.loads(single.read_text())
    doc["nodes"] = [n for n in doc["nodes"] if n["id"] not in ("act", "fc2")]
    doc["edges"] = [{"source": "x", "target": "fc1"}, {"source": "fc1", "target": "out"}]
    doc["training"]["loss"]["output"] = "out"
    single.write_text(json.dumps(doc))
    assert main(["prune", str(single), "--weights", str(tmp_path), "--channels", "0.5", "-o", str(tmp_path / "p.json")]) == 1
    assert "has no layer whose channels can be pruned" in capsys.readouterr().err
    assert not (tmp_path / "p.json").exists()


@pytest.mark.slow
def test_cnn_digits_at_half_its_parameters_keeps_its_accuracy_within_a_point(tmp_path, capsys):
    """The README's figure: --channels 0.3 halves cnn_digits; 15 epochs of fine-tuning recover it."""
    graph, run, tuned = GRAPHS / "cnn_digits.json", tmp_path / "run", tmp_path / "tuned"
    assert main(["run", str(graph), "--out", str(run), "--json", "--device", "cpu"]) == 0
    output = tmp_path / "pruned.json"
    assert main(["prune", str(graph), "--weights", str(run), "--channels", "0.3", "-o", str(output)]) == 0
    assert main(["run", str(output), "--out", str(tuned), "--json", "--device", "cpu"]) == 0
    capsys.readouterr()

    def accuracy(folder):
        return json.loads((folder / "metrics.jsonl").read_text().splitlines()[-1])["val_accuracy"]

    before, after = analyze(load_graph(graph)).total_params, analyze(load_graph(output)).total_params
    with capsys.disabled():
        print(f"\ncnn_digits {before:,} parameters {accuracy(run):.2%}; pruned {after:,} {accuracy(tuned):.2%}")
    assert after <= before / 2
    assert accuracy(tuned) >= accuracy(run) - 0.01


def report_rows(text):
    """The prune report's rows by name: [before, after]."""
    return {line[:27].strip(): line[27:].split()[-2:] for line in text.splitlines()[2:-1]}


def test_unstructured_pruning_reports_non_zero_counts_and_the_zeros_stay_through_fine_tuning(tmp_path, capsys):
    path, run, output = tmp_path / "g.json", tmp_path / "run", tmp_path / "sparse.json"
    save_graph(graph_of(mlp()), path)
    assert main(["run", str(path), "--out", str(run), "--json", "--device", "cpu"]) == 0
    capsys.readouterr()
    assert main(["prune", str(path), "--weights", str(run), "--sparsity", "0.5", "--scope", "layer",
                 "-o", str(output)]) == 0
    text = capsys.readouterr().out
    rows = report_rows(text)
    assert text.startswith("zeroed 50% of the prunable weights (the same share of each layer)")
    assert rows["parameters"] == ["131", "131"] and rows["non-zero parameters"] == ["131", "75"]  # 32 + 24 zeroed
    assert rows["prunable weights at zero"] == ["0.00%", "50.00%"] and "val_accuracy" in rows
    flops = analyze(load_graph(path)).flops
    assert rows["non-zero FLOPs per sample"][1] == f"{sum(flops.values()) - (flops['fc1'] + flops['fc2']) // 2:,}"
    weights = load_file(str(tmp_path / "sparse.safetensors"))
    assert [int((weights[f"{n}.weight"] == 0).sum()) for n in ("fc1", "fc2")] == [32, 24]
    assert main(["summary", str(output), "--weights", str(tmp_path / "sparse.safetensors")]) == 0
    summary = {line.split()[0]: line.split()[-1] for line in capsys.readouterr().out.splitlines()}
    assert summary["fc1"] == summary["fc2"] == "50.0%" and not summary["act"].endswith("%")
    assert main(["summary", str(output), "--weights", str(tmp_path / "sparse.safetensors"), "--json"]) == 0
    nodes = json.loads(capsys.readouterr().out)["nodes"]
    assert {n["id"]: n["sparsity"] for n in nodes if "sparsity" in n} == {"fc1": 0.5, "fc2": 0.5}
    tuned = tmp_path / "tuned"
    assert main(["run", str(output), "--out", str(tuned), "--json", "--device", "cpu", "--epochs", "1"]) == 0
    after = load_file(str(tuned / "model.safetensors"))
    assert all(bool((after[k][weights[k] == 0] == 0).all()) for k in ("fc1.weight", "fc2.weight"))
    assert not torch.equal(after["fc1.weight"], weights["fc1.weight"])  # it did train


def test_global_unstructured_pruning_zeroes_one_share_of_all_weights(tmp_path, capsys):
    path, run = tmp_path / "g.json", tmp_path / "run"
    save_graph(graph_of(mlp(epochs=1)), path)
    assert main(["run", str(path), "--out", str(run), "--json", "--device", "cpu"]) == 0
    assert main(["prune", str(path), "--weights", str(run), "--sparsity", "0.25", "-o", str(tmp_path / "s.json")]) == 0
    weights = load_file(str(tmp_path / "s.safetensors"))
    zeros = [weights[f"{n}.weight"] == 0 for n in ("fc1", "fc2")]
    assert sum(int(z.sum()) for z in zeros) == 28  # a quarter of 64 + 48
    trained = load_file(str(run / "model.safetensors"))
    magnitudes = [trained[f"{n}.weight"].abs() for n in ("fc1", "fc2")]
    largest_zeroed = max(float(m[z].max()) for m, z in zip(magnitudes, zeros, strict=True) if z.any())
    smallest_kept = min(float(m[~z].min()) for m, z in zip(magnitudes, zeros, strict=True))
    assert largest_zeroed <= smallest_kept
    assert json.loads((tmp_path / "s.json").read_text())["training"]["pruning"]["scope"] == "global"


def test_a_sparsity_outside_zero_to_one_is_refused_in_one_line_naming_the_file(tmp_path, capsys):
    graph = str(GRAPHS / "cnn_digits.json")
    for value in ("1", "-0.1", "nan"):
        assert main(["prune", graph, "--weights", str(tmp_path), "--sparsity", value, "-o", str(tmp_path / "p.json")]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and graph in err and "--sparsity wants a share from 0 up to (not including) 1" in err
    doc = mlp(pruning={"sparsity": 1.5})
    path = tmp_path / "g.json"
    path.write_text(json.dumps(doc))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(path) in err and "sparsity 1.5 is not a share from 0 up to 1: use e.g. 0.5" in err
    assert main(["prune", graph, "--weights", str(tmp_path), "--sparsity", "0.5", "--channels", "0.5",
                 "-o", str(tmp_path / "p.json")]) == 2
    assert "not allowed with argument" in capsys.readouterr().err
