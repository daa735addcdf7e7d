"""Views of a tensor that the exporter makes without computing anything, kept as
:class:`~dlstudio.interop.onnx_values.Laid` values instead of layers.

A batch-first sequence made time-major for an ONNX ``LSTM`` (``Transpose [1, 0, 2]``), the
LSTM's ``[T, directions, N, hidden]`` output and the ``Squeeze`` or ``Transpose`` and
``Reshape`` that make it ``[T, N, features]`` again all stand for one batch-first port; so does
a tensor whose batch the exporter joins with the heads around a product (``Reshape [-1, T, d]``,
``Transpose``, ``Reshape`` back), which becomes one Permute. A view that is never undone
reaches a layer as an Unsupported node saying how the tensor is laid out.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dlstudio.core.tensor import Dim
from dlstudio.interop.builder import Port
from dlstudio.interop.calls import Unmappable
from dlstudio.interop.onnx_calls import OnnxCall
from dlstudio.interop.onnx_values import Laid


def laid(call: OnnxCall, port: Port, layout: str, directions: int = 1) -> Laid:
    """``port`` (batch-first) as ONNX lays it out; as a plain tensor it is refused."""
    shape = _type_shape(call, port)

    def refuse() -> Port:
        raise Unmappable(f"its input is a sequence laid out {layout} (batch not first), which "
                         "only a recurrent layer takes")

    return Laid(refuse, _laid_shape(shape, layout, directions), base=port, layout=layout, directions=directions)


def _laid_shape(shape: tuple[Dim, ...] | None, layout: str, directions: int) -> tuple[Dim, ...] | None:
    if shape is None or len(shape) != 3:
        return None
    n, t, c = shape
    hidden = c // directions if isinstance(c, int) else c
    return {"TNC": (t, n, c), "TDNH": (t, directions, n, hidden), "TNDH": (t, n, directions, hidden)}[layout]


def transposed(call: OnnxCall, perm: list[int]) -> Any | None:
    """A Transpose that only changes how a sequence is laid out; None when it is no such."""
    value = call.inputs[0]
    if isinstance(value, Port) and perm == [1, 0, 2]:
        return laid(call, value, "TNC")
    if not isinstance(value, Laid):
        return None
    if value.layout == "TNC" and perm == [1, 0, 2]:
        return value.base
    if value.layout == "TDNH" and perm == [0, 2, 1, 3]:
        return laid(call, value.base, "TNDH", value.directions)
    raise Unmappable(f"reorders a sequence laid out {value.layout} in a way no layer takes")


def squeezed(call: OnnxCall, value: Laid, axes: list[int]) -> Laid:
    """An LSTM's Y ``[T, 1, N, hidden]`` without its direction axis."""
    if value.layout != "TDNH" or value.directions != 1 or axes != [1]:
        raise Unmappable(f"squeezes a sequence laid out {value.layout} in a way no layer takes")
    return laid(call, value.base, "TNC")


def reshaped(call: OnnxCall, value: Laid, target: list[Dim]) -> Laid:
    """``[T, N, directions, hidden]`` joined into ``[T, N, directions * hidden]``."""
    if value.layout != "TNDH" or len(target) != 3:
        raise Unmappable(f"reshapes a sequence laid out {value.layout} in a way no layer takes")
    return laid(call, value.base, "TNC")


def folded(call: OnnxCall, port: Any, lead: int) -> Laid:
    """``port`` reshaped with its first ``lead`` dims (the batch among them) joined into one,
    as the exporter does around a batched product; it must be unfolded before any layer."""

    def refuse() -> Port:
        raise Unmappable("joins the batch with other dimensions")

    return Laid(refuse, None, base=port, layout="folded", lead=lead)


def folded_transpose(call: OnnxCall, value: Laid, perm: list[int]) -> Laid:
    """A transpose of the trailing dims of a folded tensor: a Permute of the unfolded one."""
    if perm[0] != 0:
        raise Unmappable("reorders the joined batch dimension")
    dims = [*range(value.lead), *(p + value.lead - 1 for p in perm[1:])]
    return folded(call, call.unary("Permute", {"dims": dims}, value.base), value.lead)


def unfolded(call: OnnxCall, value: Laid, target: list[Dim]) -> Any:
    """A folded tensor reshaped back to its own shape."""
    shape = _type_shape(call, value.base)
    if shape is None or tuple(target) != tuple(shape):
        raise Unmappable(f"reshapes joined dimensions to {target}, not back to {shape}")
    return value.base


def _type_shape(call: OnnxCall, value: Any) -> tuple[Dim, ...] | None:
    tensor = call.type_of(value)
    return None if tensor is None else tensor.shape


def select(call: OnnxCall, value: Any, axis: int, index: np.ndarray) -> Port:
    """``Gather`` of one step: ``out[:, -1]`` (or ``out[-1]`` of a time-major sequence)."""
    if index.ndim != 0:
        raise Unmappable("a Gather of several indices along a computed tensor")
    if isinstance(value, Laid):
        if value.layout != "TNC" or axis != 0:
            raise Unmappable(f"picks from a sequence laid out {value.layout} in a way no layer takes")
        value, axis = value.base, 1
    if axis == 0:
        raise Unmappable("picks from the batch dimension")
    return call.add("SelectIndex", {"dim": axis, "index": int(index)}, [(value, "input")])
