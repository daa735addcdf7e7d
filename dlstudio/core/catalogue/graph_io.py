"""Graph family: Input, Output and Identity."""

from __future__ import annotations

from dlstudio.core.spec import InferContext, Param, layer, register
from dlstudio.core.tensor import BATCH, DTYPES, TensorType


def _input(ctx: InferContext) -> TensorType:
    shape = ctx.params["shape"]
    if any(isinstance(d, int) and d < 1 for d in shape):
        ctx.fail(f"Input '{ctx.node_id}' has shape {list(shape)}: sizes must be at least 1",
                 "use positive sizes, or a name such as \"T\" for a variable length")
    if BATCH in shape:
        ctx.fail(f"Input '{ctx.node_id}' uses the name N, which stands for the batch",
                 "leave the batch out of the shape; pick another name for variable sizes")
    return TensorType((BATCH, *shape), ctx.params["dtype"])


def _pass_through(ctx: InferContext) -> TensorType:
    return ctx.input


register(
    layer(
        type="Input", family="Graph", summary="A model input; shape excludes the batch dimension.",
        inputs=(), infer=_input,
        params=(
            Param("shape", "shape", default=(1,), help="Sizes without the batch, e.g. [3, 32, 32]; "
                  "a name such as \"T\" declares a variable size."),
            Param("dtype", "choice", default="float32", choices=DTYPES,
                  help="Element type: float32 for features and images, int64 for token ids."),
        ),
    ),
    layer(
        type="Output", family="Graph", summary="A model output, returned by forward in file order.",
        outputs=("output",), infer=_pass_through, sink=True,
    ),
    layer(
        type="Identity", family="Graph", summary="Passes its input through unchanged.",
        infer=_pass_through, call=lambda p, args, attr: args[0],
    ),
)
