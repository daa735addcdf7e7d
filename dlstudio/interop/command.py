"""``dlstudio import``: put a PyTorch model (``FILE.py:NAME``) or an ONNX file on the canvas.

Exit codes: 0 everything mapped, 1 some operations became Unsupported nodes (the graph is
still written; weights are not, since the graph does not compile) or the file could not be
loaded, 2 usage or file error.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from dlstudio.core.errors import printable
from dlstudio.core.io import save_graph
from dlstudio.core.tensor import BATCH, DTYPES
from dlstudio.exits import EXIT_INVALID, EXIT_OK, UsageError

DESCRIPTION = """Import a model as an editable graph. SOURCE is FILE.py:NAME, where NAME is an
nn.Module class or a function returning one, or MODEL.onnx (needs the onnx extra).
Importing FILE.py RUNS THAT PYTHON FILE and the code NAME calls, as `python FILE.py` would:
import only files you trust. Repeated submodules become blocks (--flat: none). Operations
without a matching layer become Unsupported nodes that name the source line; the summary line
says what was mapped."""


def add_import_command(commands: Any) -> None:
    parser = commands.add_parser("import", help="import a PyTorch model (runs its file) or an ONNX file",
                                 description=DESCRIPTION)
    parser.add_argument("source", metavar="SOURCE", help="FILE.py:NAME or MODEL.onnx")
    parser.add_argument("-o", "--output", required=True, metavar="GRAPH.json", help="graph file to write")
    parser.add_argument("--input", action="append", default=[], metavar="NAME=SHAPE[:DTYPE]",
                        help="an input's shape without the batch, e.g. x=3,224,224 or tokens=T:int64 "
                             "(a name such as T is a variable size); ONNX files give their own")
    parser.add_argument("--weights", metavar="OUT.safetensors",
                        help="also write the model's weights, keyed for the graph (for --init-weights)")
    parser.add_argument("--args", default="{}", metavar="JSON",
                        help="keyword arguments for NAME, as a JSON object")
    parser.add_argument("--flat", action="store_true",
                        help="keep the graph flat: no blocks for a model's repeated submodules")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.set_defaults(handler=import_command)


def import_command(args: argparse.Namespace) -> int:
    from dlstudio.interop.builder import ImportResult, write_weights

    inputs = [parse_input(text) for text in args.input]
    result: ImportResult
    if args.source.lower().endswith(".onnx"):
        from dlstudio.interop.onnx_import import import_onnx

        result = import_onnx(Path(args.source), inputs)
    else:
        result = _import_python(args.source, inputs, parse_kwargs(args.args), not args.flat)
    save_graph(result.graph, args.output)
    print(f"{printable(args.output, 300)}: {result.summary()}")
    if result.unsupported:
        if args.weights:
            print(f"dlstudio: {printable(args.weights, 300)} not written: the graph has Unsupported "
                  "nodes, so it does not compile", file=sys.stderr)
        return EXIT_INVALID
    if args.weights:
        count = write_weights(result, Path(args.weights))
        print(f"{printable(args.weights, 300)}: {count} tensors")
    return EXIT_OK


def _import_python(source: str, inputs: list[Any], kwargs: dict[str, Any], blocks: bool) -> Any:
    from dlstudio.interop.pytorch import factory_name, import_module, load_model

    return import_module(load_model(source, kwargs), inputs, factory_name(source), blocks)


def parse_input(text: str) -> Any:
    """``x=3,32,32`` or ``tokens=T:int64`` as an :class:`~dlstudio.interop.builder.InputSpec`."""
    from dlstudio.interop.builder import InputSpec

    name, _, rest = text.partition("=")
    shape_text, _, dtype = rest.partition(":")
    sizes = [item.strip() for item in shape_text.split(",") if item.strip()]
    shape = tuple(int(item) if item.isdigit() else item for item in sizes)
    if not name.isidentifier() or not shape or not all(_size_ok(size) for size in shape):
        raise UsageError(f"--input wants NAME=SHAPE[:DTYPE] such as x=3,32,32 or tokens=T:int64, "
                         f"not {printable(text, 60)!r}")
    if dtype and dtype not in DTYPES:
        raise UsageError(f"--input {printable(name, 40)}: dtype must be one of {', '.join(DTYPES)}")
    return InputSpec(name, shape, dtype or "float32")


def _size_ok(size: int | str) -> bool:
    if isinstance(size, int):
        return 1 <= size <= 2**31
    return size.isidentifier() and size != BATCH


def parse_kwargs(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise UsageError(f"--args is not JSON: {error.msg} at column {error.colno}") from None
    if not isinstance(value, dict):
        raise UsageError("--args must be a JSON object of keyword arguments, e.g. '{\"classes\": 10}'")
    return value
