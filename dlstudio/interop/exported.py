"""The fallback where ``torch.fx`` cannot trace a model: ``torch.export``, regrouped by module.

``torch.export`` records ATen operations, each tagged with the stack of modules that ran it.
Every run of operations that one call of a known ``nn`` module made (one tensor in, one out)
is put back as a ``call_module`` of that module, so the module converters map it with its own
parameters and weights; the operations of the model's own code map through the ATen
converters registered here (``aten.add.Tensor`` as ``torch.add``, ...). What is left (a module
called with several tensors, an ATen operation without a converter) becomes Unsupported.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import fx, nn

from dlstudio.interop import torch_functions  # noqa: F401  (registers the converters aliased here)
from dlstudio.interop.calls import CONVERTERS, Call, Unmappable, register

aten = torch.ops.aten


def export_module(model: nn.Module, examples: Sequence[torch.Tensor]) -> fx.GraphModule:
    """``model`` through ``torch.export``, with the calls of known modules regrouped."""
    program = torch.export.export(model, tuple(examples), strict=False)
    return regroup(program.module().graph, model)


def _owner(node: fx.Node, model: nn.Module) -> str | None:
    """The outermost module with a converter among those that ran ``node``."""
    for path, _ in (node.meta.get("nn_module_stack") or {}).values():
        try:
            module = model.get_submodule(path) if path else None
        except AttributeError:
            continue
        if module is not None and type(module) in CONVERTERS:
            return path
    return None


def _runs(graph: fx.Graph, model: nn.Module) -> list[tuple[str | None, list[fx.Node]]]:
    """Consecutive operations grouped by the module call that made them (None: the model's own)."""
    runs: list[tuple[str | None, list[fx.Node]]] = []
    for node in graph.nodes:
        if node.op != "call_function":
            continue
        owner = _owner(node, model)
        if runs and owner is not None and runs[-1][0] == owner:
            runs[-1][1].append(node)
        else:
            runs.append((owner, [node]))
    return runs


def _boundary(nodes: list[fx.Node]) -> tuple[list[fx.Node], list[fx.Node]]:
    """The tensors a run reads from outside (parameters aside) and its nodes read outside."""
    members = set(nodes)
    inputs = [arg for node in nodes for arg in node.all_input_nodes
              if arg not in members and arg.op != "get_attr"]
    outputs = [node for node in nodes if any(user not in members for user in node.users)]
    return list(dict.fromkeys(inputs)), outputs


def regroup(graph: fx.Graph, model: nn.Module) -> fx.GraphModule:
    """A graph over ``model`` with each single-tensor module call as one ``call_module``."""
    collapsed: dict[fx.Node, tuple[str, list[fx.Node], fx.Node]] = {}
    for owner, nodes in _runs(graph, model):
        inputs, outputs = _boundary(nodes)
        if owner is not None and len(inputs) == 1 and len(outputs) == 1:
            for node in nodes:
                collapsed[node] = (owner, inputs, outputs[0])
    new, env = fx.Graph(), {}
    for node in graph.nodes:
        if node.op == "call_module":  # export's own guard check
            continue
        if node not in collapsed:
            env[node] = new.node_copy(node, lambda n: env[n])
            continue
        owner, inputs, output = collapsed[node]
        if node is output:
            made = new.call_module(owner, tuple(env[n] for n in inputs))
            made.meta["stack_trace"] = node.meta.get("stack_trace")
            made.meta["nn_module_stack"] = node.meta.get("nn_module_stack")
            env[node] = made
    module = fx.GraphModule(model, new, type(model).__name__)
    module.graph.eliminate_dead_code()
    module.recompile()
    return module


# --- ATen operations of the model's own code, through the function converters ---


def _alias(*pairs: tuple[Any, Any]) -> None:
    for op, same_as in pairs:
        if same_as in CONVERTERS:
            CONVERTERS[op] = CONVERTERS[same_as]


_alias(
    (aten.add.Tensor, torch.add), (aten.mul.Tensor, torch.mul), (aten.matmul.default, torch.matmul),
    (aten.bmm.default, torch.bmm), (aten.cat.default, torch.cat), (aten.stack.default, torch.stack),
    (aten.flatten.using_ints, torch.flatten), (aten.view.default, torch.reshape),
    (aten.reshape.default, torch.reshape), (aten.permute.default, torch.permute),
    (aten.transpose.int, torch.transpose), (aten.unsqueeze.default, torch.unsqueeze),
    (aten.squeeze.dim, torch.squeeze), (aten.contiguous.default, torch.clone),
    (aten.clone.default, torch.clone), (aten.relu.default, torch.relu), (aten.relu_.default, torch.relu),
    (aten.sigmoid.default, torch.sigmoid), (aten.tanh.default, torch.tanh),
    (aten.gelu.default, torch.nn.functional.gelu), (aten.silu.default, torch.nn.functional.silu),
    (aten.softmax.int, torch.softmax), (aten.log_softmax.int, torch.log_softmax),
    (aten.mean.dim, torch.mean), (aten.sum.dim_IntList, torch.sum),
    (aten.split.Tensor, torch.split), (aten.chunk.default, torch.chunk),
    (aten.scaled_dot_product_attention.default, torch.nn.functional.scaled_dot_product_attention),
    (aten.adaptive_avg_pool2d.default, torch.nn.functional.adaptive_avg_pool2d),
    (aten.dropout.default, torch.nn.functional.dropout),
)


@register(aten.select.int)
def _select(call: Call) -> Any:
    dim, index = call.arg(1, "dim"), call.arg(2, "index")
    if dim % len(call.shape_of()) == 0:
        raise Unmappable("picks from the batch dimension")
    return call.single("SelectIndex", {"dim": dim, "index": index})


@register(aten.slice.Tensor)
def _slice(call: Call) -> Any:
    """A slice that keeps everything (``x[:, :]``) passes through; others have no layer."""
    if call.shape != call.shape_of():
        raise Unmappable("a slice that cuts a dimension")
    call.builder.folded += 1
    return call.tensor()
