"""What analysis finds out about a graph: the :class:`Diagnostic` of each problem and the
:class:`Analysis` record that :func:`dlstudio.core.analysis.analyze` fills in.

Kept apart from the pass itself so that checks run by the pass (the training section's, in
:mod:`dlstudio.core.training_checks`) can read and extend a result without importing it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from dlstudio.core.catalogue import Catalogue
from dlstudio.core.graph import Graph
from dlstudio.core.tensor import TensorType
from dlstudio.core.wiring import Link

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One problem: where it is (node, port, parameter), what is wrong, and how to fix it."""

    severity: Severity
    node: str | None
    message: str
    fix: str = ""
    port: str | None = None
    param: str | None = None

    def one_line(self) -> str:
        where = f"{self.node}: " if self.node else ""
        fix = f" ({self.fix})" if self.fix else ""
        return f"{where}{self.message}{fix}"


@dataclass(frozen=True)
class BlockCopy:
    """One copy of a block as a node uses it: the block's parameter values for this copy, the
    analysis of the block's graph with them, and the types it outputs (shared by every copy
    with the same parameters and input types)."""

    env: dict[str, Any]
    analysis: Analysis
    outputs: dict[str, TensorType]


@dataclass(frozen=True)
class Tie:
    """``target.param`` is the same tensor as ``source.source_param`` (counted once), or that
    tensor transposed (a reference written ``source.weight.T``)."""

    target: str
    param: str
    source: str
    source_param: str
    numel: int
    transpose: bool = False


@dataclass
class Analysis:
    """Everything known about a graph after validation and shape inference, and the
    catalogue its layer types were looked up in (what compile and export use too)."""

    graph: Graph
    catalogue: Catalogue = field(repr=False)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    order: list[str] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)
    ports: dict[tuple[str, str], TensorType] = field(default_factory=dict)
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    param_counts: dict[str, int] = field(default_factory=dict)
    flops: dict[str, int | None] = field(default_factory=dict)
    live: set[str] = field(default_factory=set)
    #: ``(node, port)`` inputs with an edge whose source is broken (reported on the edge).
    dangling: set[tuple[str, str]] = field(default_factory=set)
    #: The copies of each block node (one per ``repeat``), in chain order.
    blocks: dict[str, list[BlockCopy]] = field(default_factory=dict)
    #: Parameters shared between nodes; ``param_counts`` counts each once (on its source).
    ties: list[Tie] = field(default_factory=list)
    #: Nodes the model holds with every block copy expanded (what compile builds).
    expanded_nodes: int = 0

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def total_params(self) -> int:
        """Parameters of the nodes that reach an Output (what the compiled module holds)."""
        return sum(count for node, count in self.param_counts.items() if node in self.live)

    @property
    def trainable_params(self) -> int:
        """Parameters an optimizer updates: those of live nodes that are not frozen."""
        frozen = {node.id for node in self.graph.nodes if node.frozen}
        return sum(self._trainable(node, count) for node, count in self.param_counts.items()
                   if node in self.live and node not in frozen)

    def _trainable(self, node: str, count: int) -> int:
        """A block node trains what its copies' unfrozen nodes hold."""
        copies = self.blocks.get(node)
        return sum(copy.analysis.trainable_params for copy in copies) if copies else count

    @property
    def total_flops(self) -> int | None:
        values = [self.flops.get(n) for n in self.order if n in self.live]
        return None if any(v is None for v in values) else sum(v or 0 for v in values)

    def node_diagnostics(self, node_id: str) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.node == node_id]

    def inputs_of(self, node_id: str) -> list[Link]:
        return [link for link in self.links if link.target == node_id]

    def output_type(self, node_id: str, port: str | None = None) -> TensorType | None:
        spec = self.catalogue.get(self.graph.node(node_id).type)
        if spec is None or not spec.outputs:
            return None
        return self.ports.get((node_id, port or spec.outputs[0]))

    def outputs(self) -> dict[str, TensorType]:
        """Output node id -> the type it returns."""
        found = {}
        for node in self.graph.nodes:
            if node.type == "Output" and (node.id, "output") in self.ports:
                found[node.id] = self.ports[(node.id, "output")]
        return found
