"""Round trips through ``dlstudio import``: the written graph, compiled with the written
weights loaded strictly, must compute what the original module computes."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

from dlstudio import analyze, compile_graph, load_graph
from dlstudio.cli import main

MODELS = Path(__file__).with_name("models.py")


def run_import(tmp_path: Path, source: str, *options: str) -> tuple[int, Path, Path]:
    """``dlstudio import SOURCE -o graph.json --weights weights.safetensors OPTIONS``."""
    graph, weights = tmp_path / "graph.json", tmp_path / "weights.safetensors"
    code = main(["import", source, "-o", str(graph), "--weights", str(weights), *options])
    return code, graph, weights


def compiled(graph: Path, weights: Path) -> nn.Module:
    analysis = analyze(load_graph(graph))
    assert analysis.ok, [d.one_line() for d in analysis.errors]
    module = compile_graph(analysis)
    module.load_state_dict(load_file(str(weights)), strict=True)
    return module.eval()


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def assert_same_outputs(original: nn.Module, imported: nn.Module, *inputs: torch.Tensor) -> None:
    with torch.no_grad():
        expected, got = original.eval()(*inputs), imported(*inputs)
    assert got.shape == expected.shape
    assert (got - expected).abs().max().item() <= 1e-5
    assert parameter_count(imported) == parameter_count(original)
