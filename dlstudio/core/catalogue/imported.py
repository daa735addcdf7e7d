"""Imported family: the placeholder an importer leaves where a model's operation has no layer.

``dlstudio import`` turns every call it cannot map into an ``Unsupported`` node wired to the
same inputs, so the gap is visible on the canvas and in the problems list, never dropped.
Its analysis always fails, naming the operation and the source line it came from.
"""

from __future__ import annotations

from typing import NoReturn

from dlstudio.core.spec import InferContext, Param, ShapeError, layer, register


def _unsupported(ctx: InferContext) -> NoReturn:
    operation, source = ctx.params["operation"], ctx.params["source"]
    where = f" ({source})" if source else ""
    raise ShapeError(f"Unsupported '{ctx.node_id}': {operation}{where} has no DL Studio layer",
                     "rebuild this step from catalogue layers, or change the model and import it again")


register(
    layer(
        type="Unsupported", family="Advanced",
        summary="An imported operation with no matching layer; always reported as an error.",
        infer=_unsupported, variadic=1, optional_inputs=frozenset({"in0"}),
        params=(
            Param("operation", "str", default="?", help="The operation the importer could not map."),
            Param("source", "str", default="", help="Where it came from: file and line, or ONNX node."),
        ),
    ),
)
