"""Which nodes export to each target, and why not: ``dlstudio validate --target onnx``.

DL Studio exports with dynamic sizes: the batch, and every symbolic size an Input declares (a
sequence length ``T``), are left free, and the export is checked on sizes other than those
traced. :data:`NOT_READY` records, per layer type, the targets where that fails and the reason,
as measured by exporting the example graphs and single layers (a failing export is tested
in ``tests/train/test_quantize.py``). A MixtureOfExperts and a MambaBlock switch, under
torch.export, to forms without data-dependent sizes (every expert on every token; torch's
scan operator, an ONNX Scan), so both export to ONNX at any length. int8 quantization
starts from the ONNX export, so what does not export to ONNX does not quantize either.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from dlstudio.core.findings import Analysis, Diagnostic

TARGETS = ("onnx", "torchscript", "int8")


@dataclass(frozen=True)
class Limit:
    """Why a layer type does not export to a target; ``length_only``: only while a symbolic
    size other than the batch (a sequence length) reaches it, so a fixed length exports;
    ``applies``: only for the node's parameters it accepts."""

    reason: str
    fix: str
    length_only: bool = False
    applies: Callable[[dict[str, Any]], bool] | None = None


def _pools_to_more_than_one(params: dict[str, Any]) -> bool:
    """Whether an adaptive pool's output_size has an entry other than 1 (None keeps a size)."""
    size = params["output_size"]
    return any(s not in (1, None) for s in (size if isinstance(size, list | tuple) else [size]))


_FIXED_SIZES = "give the Input fixed sizes, or set output_size to 1"
_ADAPTIVE_AVG = Limit("pooling a variable size to an output size other than 1, the exporter fixes its "
                      "windows to the traced size, so the ONNX model fails on other sizes", _FIXED_SIZES,
                      length_only=True, applies=_pools_to_more_than_one)
_ADAPTIVE_MAX = Limit("torch.onnx has no ONNX function for adaptive max pooling of a variable size to an "
                      "output size other than 1", _FIXED_SIZES, length_only=True,
                      applies=_pools_to_more_than_one)


NOT_READY: dict[str, dict[str, Limit]] = {
    "AdaptiveAvgPool1d": {"onnx": _ADAPTIVE_AVG},
    "AdaptiveAvgPool2d": {"onnx": _ADAPTIVE_AVG},
    "AdaptiveMaxPool1d": {"onnx": _ADAPTIVE_MAX},
    "AdaptiveMaxPool2d": {"onnx": _ADAPTIVE_MAX},
    "MambaBlock": {
        "torchscript": Limit("its selective scan steps through the sequence in a Python loop, so the "
                             "export is fixed to the traced length", "give the Input a fixed length",
                             length_only=True),
    },
}


def export_problems(analysis: Analysis, target: str) -> list[Diagnostic]:
    """One error per node that reaches an Output and does not export to ``target``."""
    if target not in TARGETS:
        raise ValueError(f"unknown export target {target!r}")
    source = "onnx" if target == "int8" else target
    problems = []
    for node in analysis.graph.nodes:
        if node.id in analysis.live:
            problems += _inside_block(analysis, node.id, target, problems)
        limit = NOT_READY.get(node.type, {}).get(source)
        if limit is None or node.id not in analysis.live:
            continue
        if limit.length_only and not _has_length(analysis, node.id):
            continue
        if limit.applies is not None and not limit.applies(analysis.params[node.id]):
            continue
        via = " (int8 starts from the ONNX export)" if target == "int8" else ""
        problems.append(Diagnostic("error", node.id, f"{node.type} does not export to {target}{via}: "
                                   f"{limit.reason}", limit.fix))
    return problems


def _inside_block(analysis: Analysis, node_id: str, target: str, found: list[Diagnostic]) -> list[Diagnostic]:
    """The problems of a block node's copies, on the node under their paths (each once)."""
    seen = {d.message for d in found}
    problems = []
    for copy in {id(c.analysis): c for c in analysis.blocks.get(node_id, [])}.values():
        for inner in export_problems(copy.analysis, target):
            message = f"{node_id}.{inner.node}: {inner.message}"
            if message not in seen:
                seen.add(message)
                problems.append(Diagnostic("error", node_id, message, inner.fix))
    return problems


def _has_length(analysis: Analysis, node_id: str) -> bool:
    """Whether a symbolic size other than the batch reaches the node's inputs or outputs."""
    types = [analysis.ports.get((link.source, link.source_port)) for link in analysis.inputs_of(node_id)]
    types += [t for (owner, _), t in analysis.ports.items() if owner == node_id]
    return any(isinstance(d, str) for t in types if t is not None for d in t.shape[1:])


class Readiness(Enum):
    """A node's standing for one export target."""

    READY = "ready"
    NOT_READY = "not ready"
    NOT_APPLICABLE = "not applicable"


#: Nodes that are the model's boundary rather than a layer, and what export does with them.
BOUNDARY = {"Input": "an Input is an argument of the exported model, not a layer",
            "Output": "an Output is a result of the exported model, not a layer"}
UNREACHED = "it reaches no Output, so the exported model leaves it out"


@dataclass(frozen=True)
class NodeReadiness:
    """Whether a node exports to a target; ``problems`` say why not (with the fix), ``note``
    why the question does not apply to it."""

    state: Readiness
    problems: tuple[Diagnostic, ...] = ()
    note: str = ""


def node_readiness(analysis: Analysis, target: str) -> dict[str, NodeReadiness]:
    """Every node of ``analysis.graph`` for ``target``: not ready when it does not export or has
    an error (a block node when any node inside it does not export), not applicable for the
    model's boundary (Input, Output) and for nodes that reach no Output."""
    problems: dict[str, list[Diagnostic]] = {}
    for diagnostic in [*analysis.errors, *export_problems(analysis, target)]:
        problems.setdefault(diagnostic.node or "", []).append(diagnostic)
    result = {}
    for node in analysis.graph.nodes:
        if node.id in problems:
            result[node.id] = NodeReadiness(Readiness.NOT_READY, tuple(problems[node.id]))
        elif node.type in BOUNDARY:
            result[node.id] = NodeReadiness(Readiness.NOT_APPLICABLE, note=BOUNDARY[node.type])
        elif node.id not in analysis.live:
            result[node.id] = NodeReadiness(Readiness.NOT_APPLICABLE, note=UNREACHED)
        else:
            result[node.id] = NodeReadiness(Readiness.READY)
    return result

