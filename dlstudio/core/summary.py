"""A per-node report of a graph: type, output shape, parameters and FLOPs, with totals."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dlstudio.core.analysis import Analysis, analyze
from dlstudio.core.graph import Graph
from dlstudio.core.tensor import BATCH, Dim, format_shape


@dataclass(frozen=True)
class Row:
    node: str
    type: str
    shapes: tuple[tuple[Dim, ...], ...]
    params: int
    flops: int | None


@dataclass
class Summary:
    """What ``dlstudio summary`` prints, for a given batch size."""

    analysis: Analysis
    batch: int

    @property
    def ok(self) -> bool:
        return self.analysis.ok

    @property
    def errors(self) -> list[str]:
        return [d.one_line() for d in self.analysis.errors]

    def _shape(self, shape: tuple[Dim, ...]) -> tuple[Dim, ...]:
        return tuple(self.batch if d == BATCH else d for d in shape)

    def rows(self) -> list[Row]:
        rows = []
        for node_id in self.analysis.order:
            node = self.analysis.graph.node(node_id)
            shapes = tuple(self._shape(t.shape) for (n, _), t in self.analysis.ports.items() if n == node_id)
            flops = self.analysis.flops.get(node_id)
            rows.append(Row(node_id, node.type, shapes, self.analysis.param_counts.get(node_id, 0),
                            None if flops is None else flops * self.batch))
        return rows

    @property
    def flops(self) -> int | None:
        total = self.analysis.total_flops
        return None if total is None else total * self.batch

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.analysis.graph.name,
            "batch": self.batch,
            "params": self.analysis.total_params,
            "trainable_params": self.analysis.trainable_params,
            "flops": self.flops,
            "outputs": {k: list(self._shape(t.shape)) for k, t in self.analysis.outputs().items()},
            "nodes": [
                {"id": r.node, "type": r.type, "shapes": [list(s) for s in r.shapes],
                 "params": r.params, "flops": r.flops}
                for r in self.rows()
            ],
        }

    def as_table(self) -> str:
        header = ("node", "type", "output shape", "params", "FLOPs")
        body = [(r.node, r.type, " ".join(format_shape(s) for s in r.shapes), f"{r.params:,}",
                 "?" if r.flops is None else f"{r.flops:,}") for r in self.rows()]
        flops = "?" if self.flops is None else f"{self.flops:,}"
        footer = ("total", "", "", f"{self.analysis.total_params:,}", flops)
        widths = [max(len(row[i]) for row in [header, *body, footer]) for i in range(5)]

        def line(row: tuple[str, ...]) -> str:
            cells = [row[i].ljust(widths[i]) if i < 3 else row[i].rjust(widths[i]) for i in range(5)]
            return "  ".join(cells).rstrip()

        rule = "  ".join("-" * w for w in widths)
        return "\n".join([line(header), rule, *map(line, body), rule, line(footer)])


def summarize(graph: Graph, batch: int = 1) -> Summary:
    """Analyse ``graph`` and report it for ``batch`` samples."""
    return Summary(analyze(graph), batch)
