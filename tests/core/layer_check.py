"""Check one layer against torch: inferred shapes, parameter count and FLOPs.

``check_layer("Conv2d", {"out_channels": 8, "kernel_size": 3}, [(3, 16, 16)])`` builds
Input(s) -> layer -> Output(s), analyses it, compiles it, runs a batch of 2 and asserts that
every inferred output shape, the parameter count and (where torch's FlopCounterMode counts
the op) the FLOPs agree with torch. It returns the Analysis for further checks.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from dlstudio import analyze, compile_graph, load_graph
from dlstudio.core.catalogue import CATALOGUE
from dlstudio.core.params import ParamProblem, resolve_params

BATCH = 2


def layer_graph(type_name: str, params: dict[str, Any], input_shapes: list[tuple],
                dtypes: list[str] | None = None) -> dict:
    spec = CATALOGUE[type_name]
    dtypes = dtypes or ["float32"] * len(input_shapes)
    ports = spec.input_ports(len(input_shapes))[: len(input_shapes)]  # optional ports may stay open
    nodes = [{"id": f"x{i}", "type": "Input", "params": {"shape": list(s), "dtype": d}}
             for i, (s, d) in enumerate(zip(input_shapes, dtypes, strict=True))]
    nodes.append({"id": "layer", "type": type_name, "params": params})
    edges = [{"source": f"x{i}", "target": f"layer.{port}"} for i, port in enumerate(ports)]
    for port in _output_ports(spec, params):
        nodes.append({"id": f"out_{port}", "type": "Output"})
        edges.append({"source": f"layer.{port}", "target": f"out_{port}"})
    return {"format": "dlstudio.graph", "version": 1, "name": f"check {type_name}",
            "nodes": nodes, "edges": edges}


def _output_ports(spec, params: dict[str, Any]) -> tuple[str, ...]:
    try:
        return spec.output_ports(resolve_params(spec, params))
    except ParamProblem:
        return spec.outputs


def sample_inputs(analysis, sizes: dict[str, int] | None = None) -> list[torch.Tensor]:
    tensors = []
    for node in analysis.graph.nodes:
        if node.type != "Input":
            continue
        tensor_type = analysis.ports[(node.id, "output")]
        shape = tensor_type.concrete({"N": BATCH, **(sizes or {})})
        if tensor_type.dtype == "bool":
            tensors.append(torch.randint(0, 2, shape, dtype=torch.bool))
        elif tensor_type.dtype in ("int64", "int32"):
            tensors.append(torch.randint(0, _int_bound(analysis, node.id), shape, dtype=getattr(torch, tensor_type.dtype)))
        else:
            tensors.append(torch.randn(shape, dtype=getattr(torch, tensor_type.dtype)))
    return tensors


def _int_bound(analysis, input_id: str) -> int:
    """4, or less where the input feeds a smaller Embedding table (BERT's two token types)."""
    fed = {edge.target.partition(".")[0] for edge in analysis.graph.edges if edge.source.partition(".")[0] == input_id}
    tables = [analysis.params[node.id]["num_embeddings"] for node in analysis.graph.nodes
              if node.id in fed and node.type == "Embedding"]
    return min([4, *tables])


def check_layer(type_name: str, params: dict[str, Any], input_shapes: list[tuple],
                dtypes: list[str] | None = None, flops: bool = True,
                sizes: dict[str, int] | None = None):
    analysis = analyze(load_graph(layer_graph(type_name, params, input_shapes, dtypes)))
    assert analysis.ok, [d.one_line() for d in analysis.errors]
    module = compile_graph(analysis).eval()
    inputs = sample_inputs(analysis, sizes)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        result = module(*inputs)
    results = result if isinstance(result, tuple) else (result,)
    spec = CATALOGUE[type_name]
    for port, tensor in zip(spec.output_ports(analysis.params["layer"]), results, strict=True):
        inferred = analysis.ports[("layer", port)]
        expected = inferred.concrete({"N": BATCH, **(sizes or {})})
        assert tuple(tensor.shape) == expected, f"{type_name}.{port}: torch {tuple(tensor.shape)} vs inferred {expected}"
        assert str(tensor.dtype).removeprefix("torch.") == inferred.dtype
    assert analysis.param_counts["layer"] == sum(p.numel() for p in module.parameters())
    counted = counter.get_total_flops()
    if flops and counted and analysis.flops["layer"] is not None and not sizes:
        assert 2 * analysis.flops["layer"] * BATCH == counted, (
            f"{type_name}: 2 x inferred MACs {2 * analysis.flops['layer'] * BATCH} vs torch {counted}")
    return analysis
