"""A per-node report of a graph: type, output shapes, parameters and FLOPs, with totals.

Shapes show the batch as ``N`` and FLOPs are per sample, as in the editor, unless a batch size
is given; symbolic sizes an Input declares (a sequence length
``T``) can be given values too, which also makes their FLOPs countable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dlstudio.core.analysis import Analysis, analyze
from dlstudio.core.blocks import copy_path, is_repeated
from dlstudio.core.graph import Graph
from dlstudio.core.tensor import BATCH, Dim, format_shape, resolve_dim


@dataclass(frozen=True)
class Row:
    """One node; inside a block, ``node`` is its path (``h.0.attn``, as in the state_dict)
    and ``level`` how deep it sits."""

    node: str
    type: str
    shapes: dict[str, tuple[Dim, ...]]
    params: int
    flops: int | None
    live: bool
    level: int = 0


@dataclass
class Summary:
    """What ``dlstudio summary`` prints, for a given batch size (None: ``N``, FLOPs per sample);
    ``depth`` 2 or more also lists the nodes inside blocks, that many levels down."""

    analysis: Analysis
    batch: int | None
    depth: int = 1
    #: each node's share of zero weights (:func:`dlstudio.core.sparsity.node_sparsity`), when weights are given
    sparsity: dict[str, float] | None = None

    @property
    def ok(self) -> bool:
        return self.analysis.ok

    @property
    def errors(self) -> list[str]:
        return [d.one_line() for d in self.analysis.errors]

    def _shape(self, shape: tuple[Dim, ...]) -> tuple[Dim, ...]:
        """The shape with the batch filled in (expressions of the batch evaluated), if one is given."""
        return shape if self.batch is None else tuple(_fill(d, self.batch) for d in shape)

    @property
    def samples(self) -> int:
        """How many samples the FLOPs count: the batch, or one."""
        return 1 if self.batch is None else self.batch

    def rows(self) -> list[Row]:
        return self._rows(self.analysis, "", 0)

    def _rows(self, analysis: Analysis, prefix: str, level: int) -> list[Row]:
        ports: dict[str, dict[str, tuple[Dim, ...]]] = {}
        for (node_id, port), tensor in analysis.ports.items():
            ports.setdefault(node_id, {})[port] = self._shape(tensor.shape)
        types = {node.id: node.type for node in analysis.graph.nodes}
        repeated = {node.id for node in analysis.graph.nodes if is_repeated(node)}
        rows = []
        for node_id in analysis.order:
            if level and types[node_id] in ("Input", "Output"):
                continue  # a block's ports: the rows around it show what passes
            flops = analysis.flops.get(node_id)
            rows.append(Row(prefix + node_id, types[node_id], ports.get(node_id, {}),
                            analysis.param_counts.get(node_id, 0),
                            None if flops is None else flops * self.samples, node_id in analysis.live, level))
            copies = analysis.blocks.get(node_id, [])
            if level + 1 < self.depth:
                for index, copy in enumerate(copies):
                    rows += self._rows(copy.analysis, copy_path(prefix, node_id, index, node_id in repeated),
                                       level + 1)
        return rows

    @property
    def flops(self) -> int | None:
        total = self.analysis.total_flops
        return None if total is None else total * self.samples

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.analysis.graph.name,
            "batch": self.batch,
            "params": self.analysis.total_params,
            "trainable_params": self.analysis.trainable_params,
            "flops": self.flops,
            "outputs": {k: list(self._shape(t.shape)) for k, t in self.analysis.outputs().items()},
            "nodes": [
                {"id": r.node, "type": r.type, "outputs": {p: list(s) for p, s in r.shapes.items()},
                 "params": r.params, "flops": r.flops, "reaches_output": r.live,
                 **({"level": r.level} if r.level else {}),
                 **({"sparsity": self.sparsity[r.node]} if self.sparsity and r.node in self.sparsity else {})}
                for r in self.rows()
            ],
        }

    def as_table(self) -> str:
        header = ("node", "type", "output shape", "params", "FLOPs", *self._zeros_header())
        frozen = {node.id for node in self.analysis.graph.nodes if node.frozen}
        body = [("  " * r.level + r.node + ("" if r.live else " (unused)") + (" (frozen)" if r.node in frozen else ""),
                 r.type, _shapes_text(r.shapes), f"{r.params:,}",
                 "?" if r.flops is None else f"{r.flops:,}", *self._zeros(r.node)) for r in self.rows()]
        flops = "?" if self.flops is None else f"{self.flops:,}"
        blank = ("",) * len(self._zeros_header())
        footers = [("total", "", "", f"{self.analysis.total_params:,}", flops, *blank)]
        if self.analysis.trainable_params != self.analysis.total_params:
            footers.append(("trainable", "", "", f"{self.analysis.trainable_params:,}", "", *blank))
        columns = len(header)
        widths = [max(len(row[i]) for row in [header, *body, *footers]) for i in range(columns)]

        def line(row: tuple[str, ...]) -> str:
            cells = [row[i].ljust(widths[i]) if i < 3 else row[i].rjust(widths[i]) for i in range(columns)]
            return "  ".join(cells).rstrip()

        rule = "  ".join("-" * w for w in widths)
        return "\n".join([line(header), rule, *map(line, body), rule, *map(line, footers)])


    def _zeros_header(self) -> tuple[str, ...]:
        return ("zero weights",) if self.sparsity is not None else ()

    def _zeros(self, node: str) -> tuple[str, ...]:
        """The node's share of zero weights, a column only when weights are given."""
        if self.sparsity is None:
            return ()
        return (f"{self.sparsity[node]:.1%}" if node in self.sparsity else "",)


def frozen_note(total: int, trainable: int) -> str:
    """`` (4,160 frozen)`` after a parameter count when some do not train; else nothing."""
    return f" ({total - trainable:,} frozen)" if trainable != total else ""


def unreached_note(analysis: Analysis) -> str:
    """`` + 3,280 not reaching an Output`` after a parameter count when layers that are not (yet)
    wired to an Output hold parameters the model will not: their nodes show those counts."""
    unreached = sum(analysis.param_counts.values()) - analysis.total_params
    return f" + {unreached:,} not reaching an Output" if unreached else ""


def _fill(dim: Dim, batch: int) -> Dim:
    if isinstance(dim, int) or BATCH not in dim:
        return dim
    try:
        return resolve_dim(dim, {BATCH: batch})
    except ValueError:  # other symbols remain
        return dim


def _shapes_text(shapes: dict[str, tuple[Dim, ...]]) -> str:
    if len(shapes) == 1:
        return format_shape(next(iter(shapes.values())))
    return " ".join(f"{port}={format_shape(shape)}" for port, shape in shapes.items())


def with_sizes(graph: Graph, sizes: dict[str, int]) -> Graph:
    """A copy of ``graph`` whose Input shapes have the named symbolic sizes replaced (without
    its training section, whose dataset was declared for the symbolic shapes)."""
    copy = graph.copy_deep()
    copy.training = None
    for node in copy.nodes_of_type("Input"):
        shape = node.params.get("shape")
        if isinstance(shape, list):
            node.params["shape"] = [sizes.get(d, d) if isinstance(d, str) else d for d in shape]
    return copy


def summarize(graph: Graph, batch: int | None = None, sizes: dict[str, int] | None = None,
              depth: int = 1) -> Summary:
    """Analyse ``graph`` and report it for ``batch`` samples, or per sample with the batch shown
    as ``N`` (and the given symbolic sizes); ``depth`` levels of blocks are listed."""
    return Summary(analyze(with_sizes(graph, sizes) if sizes else graph), batch, depth)
