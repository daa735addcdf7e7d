"""What a graph needs on a device, before training: ``dlstudio summary --deploy``.

Per node and in total: parameters, the memory its outputs take at batch 1 (elements times the
dtype's bytes; ``?`` while a symbolic size such as a sequence length has no value, which
``--size T=128`` gives), FLOPs for one sample, and the weights' size in fp32 and in int8 (one
byte a parameter; the per-channel scales and the biases int8 formats keep wider add a little).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from dlstudio.core.summary import Summary

#: Bytes per element of each dtype a port can carry.
DTYPE_BYTES = {"float64": 8, "float32": 4, "float16": 2, "bfloat16": 2, "int64": 8, "int32": 4,
               "int16": 2, "int8": 1, "uint8": 1, "bool": 1}
FP32_BYTES = 4
INT8_BYTES = 1


@dataclass(frozen=True)
class DeployRow:
    node: str
    type: str
    params: int
    activation_bytes: int | None
    flops: int | None

    @property
    def int8_bytes(self) -> int:
        return self.params * INT8_BYTES


def deploy_rows(summary: Summary) -> list[DeployRow]:
    """One row per node of a summary made at batch 1 (see :func:`~dlstudio.core.summary.summarize`)."""
    if summary.batch != 1:
        raise ValueError("a deployment report is made at batch 1")
    ports = summary.analysis.ports
    rows = []
    for row in summary.rows():
        sizes = [_bytes(shape, ports[(row.node, port)].dtype) for port, shape in row.shapes.items()]
        activation = None if None in sizes else sum(s for s in sizes if s is not None)
        rows.append(DeployRow(row.node, row.type, row.params, activation, row.flops))
    return rows


def _bytes(shape: tuple[Any, ...], dtype: str) -> int | None:
    if not all(isinstance(d, int) for d in shape):
        return None
    return math.prod(shape) * DTYPE_BYTES.get(dtype, 4)


def _total(values: list[int | None]) -> int | None:
    return None if None in values else sum(v for v in values if v is not None)


def deploy_json(summary: Summary) -> dict[str, Any]:
    rows = deploy_rows(summary)
    params = summary.analysis.total_params
    return {
        "name": summary.analysis.graph.name, "batch": 1, "params": params,
        "activation_bytes": _total([r.activation_bytes for r in rows]), "flops": summary.flops,
        "fp32_bytes": params * FP32_BYTES, "int8_bytes": params * INT8_BYTES,
        "nodes": [{"id": r.node, "type": r.type, "params": r.params, "activation_bytes": r.activation_bytes,
                   "flops": r.flops, "int8_bytes": r.int8_bytes} for r in rows],
    }


def deploy_table(summary: Summary) -> str:
    rows = deploy_rows(summary)
    header = ("node", "type", "params", "activations", "FLOPs", "int8 size")
    body = [(r.node, r.type, f"{r.params:,}", size_text(r.activation_bytes), _count(r.flops),
             size_text(r.int8_bytes)) for r in rows]
    params = summary.analysis.total_params
    total = ("total", "", f"{params:,}", size_text(_total([r.activation_bytes for r in rows])),
             _count(summary.flops), size_text(params * INT8_BYTES))
    widths = [max(len(row[i]) for row in [header, *body, total]) for i in range(6)]

    def line(row: tuple[str, ...]) -> str:
        cells = enumerate(zip(row, widths, strict=True))
        return "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in cells).rstrip()

    rule = "  ".join("-" * w for w in widths)
    note = (f"at batch 1; weights {size_text(params * FP32_BYTES)} in fp32, {size_text(params * INT8_BYTES)} "
            "in int8; activations: every node's outputs")
    return "\n".join([line(header), rule, *map(line, body), rule, line(total), note])


def size_text(size: int | None) -> str:
    """``812 B``, ``4.0 KiB``, ``1.5 MiB``, ``2.0 GiB``; ``?`` when unknown."""
    if size is None:
        return "?"
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if size >= scale:
            return f"{size / scale:,.1f} {unit}"
    return f"{size} B"


def _count(value: int | None) -> str:
    return "?" if value is None else f"{value:,}"
