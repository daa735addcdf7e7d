"""Two declarations of a layer type named ``Mix`` that differ in ports, parameters and code,
and a graph using each: what two files' blocks of the same name look like to a catalogue."""

from __future__ import annotations

from typing import Any

from dlstudio.core.graph import Edge, Graph, Node
from dlstudio.core.naming import literal
from dlstudio.core.spec import InferContext, LayerSpec, Param, layer, torch_module
from dlstudio.core.tensor import TensorType

FAMILY = "Blocks"


def _project(ctx: InferContext) -> TensorType:
    x = ctx.input
    ctx.infer_param("in_features", x.shape[-1], "last dimension")
    return x.with_shape((*x.shape[:-1], ctx.params["width"]))


def _blend(ctx: InferContext) -> TensorType:
    left, right = ctx.inputs["left"], ctx.inputs["right"]
    if left.shape != right.shape:
        ctx.fail(f"{ctx.where} blends {left} with {right}", "give both inputs one shape")
    return left


def _blend_call(params: dict[str, Any], args: list[str], attr: str) -> str:
    return f"{args[0]} * {literal(params['gain'])} + {args[1]}"


def projecting_mix() -> LayerSpec:
    """``Mix`` with one input and a learnt projection to ``width`` features."""
    return layer(
        type="Mix", family=FAMILY, summary="Project to width features.", infer=_project,
        module=torch_module("nn.Linear", positional=("in_features", "width")),
        count_params=lambda ctx: (ctx.params["in_features"] + 1) * ctx.params["width"],
        params=(Param("in_features", "int", min=1, inferred=True),
                Param("width", "int", default=8, min=1)),
    )


def blending_mix() -> LayerSpec:
    """``Mix`` with two inputs, ``left * gain + right``, and no weights."""
    return layer(
        type="Mix", family=FAMILY, summary="Blend two inputs.", infer=_blend, call=_blend_call,
        inputs=("left", "right"), params=(Param("gain", "float", default=2.0),),
    )


def projecting_graph() -> Graph:
    return Graph(name="projecting", nodes=[
        Node(id="x", type="Input", params={"shape": [4]}), Node(id="mix", type="Mix"),
        Node(id="y", type="Output"),
    ], edges=[Edge(source="x", target="mix"), Edge(source="mix", target="y")])


def blending_graph() -> Graph:
    return Graph(name="blending", nodes=[
        Node(id="x", type="Input", params={"shape": [4]}), Node(id="mix", type="Mix"),
        Node(id="y", type="Output"),
    ], edges=[Edge(source="x", target="mix.left"), Edge(source="x", target="mix.right"),
              Edge(source="mix", target="y")])
