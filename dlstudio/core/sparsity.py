"""How sparse a network's weights are, per node: what the canvas colours and ``dlstudio summary
--weights`` prints. No torch import: a mapping of torch tensors (a state_dict, a loaded
safetensors file) or of numpy arrays (what the app reads before torch is loaded) will do.

A prunable weight is a floating tensor of two or more dimensions whose name says ``weight``
(``conv.weight``, ``attn.in_proj_weight``, ``lstm.weight_ih_l0``): the matrices and kernels
that magnitude pruning zeroes; biases and normalisation scales (one dimension) never count.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from dlstudio.core.analysis import Analysis
from dlstudio.core.blocks import copy_path
from dlstudio.core.codegen import ModulePlan, plan_module


def prunable(name: str, tensor: Any) -> bool:
    """Whether magnitude pruning may zero ``tensor``, the state_dict entry ``name``."""
    if isinstance(tensor, np.ndarray):
        return "weight" in name.rsplit(".", 1)[-1] and tensor.ndim >= 2 and tensor.dtype.kind == "f"
    return "weight" in name.rsplit(".", 1)[-1] and tensor.dim() >= 2 and tensor.is_floating_point()


def node_sparsity(analysis: Analysis, state_dict: Mapping[str, Any]) -> dict[str, float]:
    """Node id -> fraction of its prunable weights that are zero, in [0, 1], for every node that
    has prunable weights; a node inside a block is keyed by its path (``h.0.attn``, as in
    ``dlstudio summary --depth``), and a block node counts every weight inside it."""
    found = {}
    for node, prefix in node_prefixes(plan_module(analysis)):
        zeros, total = zero_count(state_dict, prefix)
        if total:
            found[node] = zeros / total
    return found


def node_prefixes(plan: ModulePlan, path: str = "", keys: str = "") -> Iterator[tuple[str, str]]:
    """(node id or block path, the prefix of its state_dict keys) for every node holding a module."""
    for sub in plan.submodules:
        yield path + sub.node_id, f"{keys}{sub.attr}."
        for index, inner in enumerate(sub.block.plans if sub.block else ()):
            repeated = sub.block.repeated  # type: ignore[union-attr]
            yield from node_prefixes(inner, copy_path(path, sub.node_id, index, repeated),
                                     copy_path(keys, sub.attr, index, repeated))


def zero_count(state_dict: Mapping[str, Any], prefix: str = "") -> tuple[int, int]:
    """(zeros, entries) over the prunable weights whose names start with ``prefix``; a tensor
    stored under two names (tied weights) counts once."""
    seen: set[int] = set()
    zeros = total = 0
    for name, tensor in state_dict.items():
        if not name.startswith(prefix) or not prunable(name, tensor):
            continue
        identity = tensor.data_ptr() if hasattr(tensor, "data_ptr") else id(tensor)
        if identity in seen:
            continue
        seen.add(identity)
        size = tensor.size if isinstance(tensor, np.ndarray) else tensor.numel()
        total += size
        zeros += size - int(np.count_nonzero(tensor) if isinstance(tensor, np.ndarray) else tensor.count_nonzero())
    return zeros, total


def scope_sparsity(analysis: Analysis, path: Sequence[str], state_dict: Mapping[str, Any]) -> dict[str, float]:
    """:func:`node_sparsity` for the nodes of the block opened through the block names ``path``
    (``()``: the graph's own nodes), keyed by inner node id; an inner node counts every copy of it."""
    scopes = [(plan_module(analysis), "")]
    for block in path:
        scopes = [(inner, copy_path(keys, sub.attr, index, sub.block.repeated))
                  for plan, keys in scopes for sub in plan.submodules if sub.block and sub.block.block == block
                  for index, inner in enumerate(sub.block.plans)]
    tallies: dict[str, list[int]] = {}
    for plan, keys in scopes:
        for sub in plan.submodules:
            zeros, total = zero_count(state_dict, f"{keys}{sub.attr}.")
            tally = tallies.setdefault(sub.node_id, [0, 0])
            tally[0] += zeros
            tally[1] += total
    return {node: zeros / total for node, (zeros, total) in tallies.items() if total}


def sparse_flops(analysis: Analysis, sparsity: Mapping[str, float]) -> int | None:
    """FLOPs per sample counting only multiplications by non-zero weights: each node's FLOPs
    times the share of its weights that are not zero (what a sparse kernel would do; dense
    hardware does the same work as before). None when some node's FLOPs are not known."""
    if analysis.total_flops is None:
        return None
    kept = sum((analysis.flops.get(node_id) or 0) * (1 - sparsity.get(node_id, 0.0))
               for node_id in analysis.order if node_id in analysis.live)
    return round(kept)
