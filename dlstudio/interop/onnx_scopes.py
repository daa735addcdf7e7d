"""A PyTorch module exported as many ONNX nodes, imported back as one layer.

``nn.MultiheadAttention`` exports as some sixty nodes (its functional form: the sequence made
time-major, one packed in-projection, heads folded into the batch, a softmax, the
out-projection). Its nodes carry the module's path (in their names, or the dynamo exporter's
``name_scopes``) and its parameters keep their names (``<path>.in_proj_bias``), so the path
finds the module; the nodes that compute layers are set aside, and at the module's last node
one MultiheadAttention takes its input, its mask (a causal one, or none), its weights and the
head count read from its reshapes. What does not fit becomes one Unsupported node saying why.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dlstudio.core.tensor import BATCH
from dlstudio.interop.builder import Port
from dlstudio.interop.calls import Unmappable
from dlstudio.interop.onnx_values import Pending, Symbolic, causal


@dataclass
class Scope:
    """The ONNX nodes of one module: the values it reads from outside and the one its last
    node gives (others read outside must be sizes, which are computed as usual)."""

    path: str
    nodes: list[Any]
    inputs: list[str]
    output: str
    set_aside: list[Any] = field(default_factory=list)


def attention_scopes(graph: Any, module_of: Callable[[Any], str]) -> dict[str, Scope]:
    """The nn.MultiheadAttention modules of ``graph`` by path: those the exporter's metadata
    names so, or whose in-projection is an initialiser under their path; and whose last node
    gives one value outward."""
    names = {init.name for init in graph.initializer}
    by_path: dict[str, list[Any]] = {}
    for node in graph.node:
        by_path.setdefault(module_of(node), []).append(node)
    scopes = {}
    for path, nodes in by_path.items():
        if {f"{path}.in_proj_bias", f"{path}.in_proj_weight"} & names or _declared(nodes[-1]):
            scope = _scope(graph, path, nodes, names)
            if scope is not None:
                scopes[path] = scope
    return scopes


def _declared(node: Any) -> bool:
    """Whether the dynamo exporter's metadata says the node's own module is a MultiheadAttention."""
    written = next((p.value for p in node.metadata_props if p.key == "pkg.torch.onnx.class_hierarchy"), "")
    classes = [part.strip(" '\"") for part in written.strip("[]").split(",")]
    return len(classes) > 1 and classes[-2] == "torch.nn.modules.activation.MultiheadAttention"


def _scope(graph: Any, path: str, nodes: list[Any], initializers: set[str]) -> Scope | None:
    made = {name for node in nodes for name in node.output}
    inside = {id(node) for node in nodes}
    read_outside = {name for node in graph.node if id(node) not in inside for name in node.input}
    read_outside |= {output.name for output in graph.output}
    given = [name for name in nodes[-1].output if name in read_outside]
    if len(given) != 1:
        return None
    inputs = list(dict.fromkeys(name for node in nodes for name in node.input
                                if name and name not in made and name not in initializers))
    return Scope(path, nodes, inputs, given[0])


def set_aside() -> Pending:
    """What a set-aside node's outputs hold: refused if anything outside the scope reads it."""

    def refuse() -> Port:
        raise Unmappable("reads a value inside a module imported as one layer")

    return Pending(refuse)


def multihead_attention(walker: Any, scope: Scope) -> Port:
    """The scope as one batch-first MultiheadAttention node (Unmappable says why not)."""
    values = [walker.values.get(name) for name in scope.inputs]
    ports = list(dict.fromkeys(value for value in values if isinstance(value, Port)))
    if len(ports) != 1:
        raise Unmappable("attention over other than one input (self-attention)")
    query = ports[0]
    _check_batch_first(scope, [name for name, value in zip(scope.inputs, values, strict=True)
                               if isinstance(value, Port) and value == query])
    masks = _masks(walker, scope)
    if masks and not all(causal(_squeezed(mask)) for mask in masks):
        raise Unmappable("an attention mask other than the causal one")
    tensor = walker.types.get(query)
    if tensor is None or not isinstance(tensor.shape[-1], int):
        raise Unmappable("the query's feature size is not known")
    embed = tensor.shape[-1]
    weights = _weights(walker, scope, embed)
    params: dict[str, Any] = {"num_heads": _heads(walker, scope, embed), "need_weights": False}
    if "in_proj_bias" not in weights:
        params["bias"] = False
    if masks:
        params["causal"] = True
    node = walker.builder.add("MultiheadAttention", scope.path, params, [(query, "query")], scope.path, weights)
    walker.typed("MultiheadAttention", node, params, [(query, "query")])
    return Port(node)


def _masks(walker: Any, scope: Scope) -> list[Any]:
    """Every float tensor of two or more dims, fixed or computed from the sizes, that a layer
    of the scope reads, other than the projections' weights: a mask, which must be causal."""
    masks = []
    for node in scope.nodes:
        if not any(isinstance(walker.values.get(name), Pending) for name in node.input):
            continue  # computed from fixed values and sizes only
        for index, name in enumerate(node.input):
            value = walker.values.get(name)
            weight = node.op_type in ("MatMul", "Gemm") and index == 1
            sample = value.samples[0] if isinstance(value, Symbolic) else value
            if isinstance(sample, np.ndarray) and sample.ndim >= 2 and sample.dtype.kind == "f" and not weight:
                masks.append(value)
    return masks


def _squeezed(mask: Any) -> Any:
    """The mask without leading dims of one ([1, 1, T, T] -> [T, T])."""
    def squeeze(sample: np.ndarray) -> np.ndarray:
        return sample.reshape(sample.shape[-2:]) if sample.size == np.prod(sample.shape[-2:]) else sample

    return Symbolic(tuple(map(squeeze, mask.samples)), mask.symbols) if isinstance(mask, Symbolic) else squeeze(mask)


def _check_batch_first(scope: Scope, names: Sequence[str]) -> None:
    """The module made the batch-first input time-major itself (``batch_first=True``)."""
    readers = [node for node in scope.nodes if set(node.input) & set(names)]
    perms = [[int(p) for a in node.attribute if a.name == "perm" for p in a.ints] for node in readers]
    if not readers or any(node.op_type != "Transpose" for node in readers) or any(p != [1, 0, 2] for p in perms):
        raise Unmappable("a MultiheadAttention with batch_first=False")


def _weights(walker: Any, scope: Scope, embed: int) -> dict[str, Any]:
    """in_proj_weight, in_proj_bias, out_proj.weight, out_proj.bias from the scope's products."""
    import torch

    found: dict[str, list[np.ndarray]] = {}
    for node in scope.nodes:
        fixed = [walker.values.get(name) for name in node.input]
        for matrix in _matrices(node, fixed):
            key = {3 * embed: "in_proj_weight", embed: "out_proj.weight"}.get(matrix.shape[0])
            if matrix.shape[1] == embed and key:
                found.setdefault(key, []).append(matrix)
        for vector in _vectors(node, fixed):
            key = {3 * embed: "in_proj_bias", embed: "out_proj.bias"}.get(vector.shape[0])
            if key:
                found.setdefault(key, []).append(vector)
    if not {"in_proj_weight", "out_proj.weight"} <= found.keys() or any(len(a) != 1 for a in found.values()):
        raise Unmappable("projections other than one packed in-projection and one out-projection")
    if found.keys() & {"in_proj_bias", "out_proj.bias"}:  # the exporter drops an add of zeros
        found.setdefault("in_proj_bias", [np.zeros(3 * embed, np.float32)])
        found.setdefault("out_proj.bias", [np.zeros(embed, np.float32)])
    return {key: torch.from_numpy(np.array(arrays[0])) for key, arrays in found.items()}


def _matrices(node: Any, fixed: list[Any]) -> list[np.ndarray]:
    """The weight (as [out, in]) of a MatMul or Gemm by a fixed matrix."""
    if node.op_type == "MatMul" and isinstance(fixed[1], np.ndarray) and fixed[1].ndim == 2:
        return [fixed[1].T]
    if node.op_type == "Gemm" and isinstance(fixed[1], np.ndarray):
        transposed = any(a.name == "transB" and a.i for a in node.attribute)
        return [fixed[1] if transposed else fixed[1].T]
    return []


def _vectors(node: Any, fixed: list[Any]) -> list[np.ndarray]:
    if node.op_type == "Add" and not all(isinstance(v, np.ndarray) for v in fixed):
        return [v for v in fixed if isinstance(v, np.ndarray) and v.ndim == 1]
    if node.op_type == "Gemm" and len(fixed) > 2 and isinstance(fixed[2], np.ndarray):
        return [fixed[2]]
    return []


def _heads(walker: Any, scope: Scope, embed: int) -> int:
    """The head count: the factor by which a reshape folds the heads into the batch
    (``[T, N * heads, head_dim]``), read at each sampling of the sizes, or from the batch
    size fixed at export."""
    counts: set[int] = set()
    for node in scope.nodes:
        target = walker.values.get(node.input[1]) if node.op_type == "Reshape" else None
        if isinstance(target, Symbolic) and BATCH in target.symbols:
            counts |= _batch_factors(target, embed)
        elif isinstance(target, np.ndarray) and walker.batch_size and target.shape == (3,):
            heads, rest = divmod(int(target[1]), walker.batch_size)
            if not rest and heads and int(target[2]) * heads == embed:  # [T, batch * heads, head_dim]
                counts.add(heads)
    if not counts:
        raise Unmappable("its head count could not be read from its reshapes")
    return max(counts)


def _batch_factors(target: Symbolic, embed: int) -> set[int]:
    batches = [target.sizes(i)[BATCH] for i in range(len(target.samples))]
    columns = zip(*(np.atleast_1d(sample).tolist() for sample in target.samples), strict=True)
    factors = set()
    for entries in columns:
        ratios = {entry // batch for entry, batch in zip(entries, batches, strict=True) if entry % batch == 0}
        if len(ratios) == 1 and all(entry % batch == 0 for entry, batch in zip(entries, batches, strict=True)):
            ratio = ratios.pop()
            if 0 < ratio and embed % ratio == 0:
                factors.add(ratio)
    return factors
