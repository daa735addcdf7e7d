"""How much of each node's weights is exactly zero (what pruning leaves), from a state dict.

A node's weights are the state dict entries under its id (``conv.weight``); a block node's are
those of all its copies (``layers.0.mixer.weight``, ``layers.1.mixer.weight``). Biases are left
out (pruning leaves them, and many start at zero), and so are a norm layer's running
statistics (buffers, not weights). Tensors may be torch tensors or numpy arrays: only ``shape``
and ``== 0`` are used.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from dlstudio.core.findings import Analysis
from dlstudio.core.graph import Graph

#: State dict entries that are statistics, not weights.
BUFFERS = frozenset({"running_mean", "running_var", "num_batches_tracked"})


def node_sparsity(analysis: Analysis, state_dict: Mapping[str, Any]) -> dict[str, float]:
    """The fraction of exactly-zero weights of each node of ``analysis.graph`` that has weights
    in ``state_dict``, keyed by node id."""
    return scope_sparsity(analysis.graph, (), state_dict)


def scope_sparsity(graph: Graph, path: Sequence[str], state_dict: Mapping[str, Any]) -> dict[str, float]:
    """:func:`node_sparsity` for the nodes of block ``path[-1]`` opened from ``graph`` through
    the blocks of ``path`` (``()``: the graph itself); an inner node counts every copy of it."""
    prefixes, nodes = [""], graph.nodes
    for block in path:
        prefixes = [f"{prefix}{re.escape(node.id)}\\.(?:\\d+\\.)?" for prefix in prefixes
                    for node in nodes if node.type == block]
        nodes = (graph.blocks or {})[block].nodes
    if not prefixes:
        return {}
    owner = re.compile(f"(?:{'|'.join(prefixes)})([^.]+)\\.(?:.+\\.)?([^.]+)$")
    counts: dict[str, list[int]] = {}
    for key, tensor in state_dict.items():
        found = owner.match(key)
        if found is None or found.group(2) in BUFFERS or found.group(2).endswith("bias"):
            continue
        tally = counts.setdefault(found.group(1), [0, 0])
        tally[0] += int((tensor == 0).sum())
        tally[1] += math.prod(tensor.shape)
    ids = {node.id for node in nodes}
    return {node: zeros / total for node, (zeros, total) in counts.items() if node in ids and total}
