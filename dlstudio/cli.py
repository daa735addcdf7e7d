"""The ``dlstudio`` command line: gui, run, sample, predict, prune, import, validate, summary, export,
schema.

Exit codes: 0 done, 1 invalid graph or configuration, 2 usage or file error, 3 diverged,
130 interrupted. Errors print one line on stderr; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from dlstudio.bugs import InternalError, report_bug
from dlstudio.core.errors import DLStudioError, GraphFileError, os_error_line, printable
from dlstudio.exits import EXIT_INTERRUPTED, EXIT_INVALID, EXIT_OK, EXIT_USAGE, UsageError

Handler = Callable[[argparse.Namespace], int]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``dlstudio`` console script."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if not args_list or args_list[0].endswith(".json"):
        args_list = ["gui", *args_list]
    try:
        parser = build_parser(args_list[0])
    except ImportError as error:  # a module of the package itself is missing or broken
        print(f"dlstudio: broken install, {printable(str(error), 300)} (reinstall DL Studio)", file=sys.stderr)
        return EXIT_INVALID
    try:
        args = parser.parse_args(args_list)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader went away (``dlstudio summary g.json | head``)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_INVALID
    except Exception as error:  # noqa: BLE001  (the one place errors become exit codes)
        if getattr(args, "debug", False):
            raise
        print(f"dlstudio: {_one_line(error, _doing(args))}", file=sys.stderr)
        return EXIT_USAGE if isinstance(error, GraphFileError | UsageError | OSError) else EXIT_INVALID


def _doing(args: argparse.Namespace) -> str:
    """What the command was doing, for an error without a message of its own: ``FILE: COMMAND``."""
    files = [args.graph] if getattr(args, "graph", None) else getattr(args, "graphs", None) or []
    return f"{printable(str(files[0]), 300)}: {args.command}" if len(files) == 1 else str(args.command)


def _one_line(error: BaseException, doing: str = "dlstudio") -> str:
    """The error as one printable line (control characters escaped); an exception that is not
    a refusal of ours is a bug: its details go to the log (:mod:`dlstudio.bugs`)."""
    if isinstance(error, InternalError):  # a bug already logged where it happened
        return f"{doing}: {printable(str(error), 500)}"
    if isinstance(error, DLStudioError) and str(error):
        return printable(str(error), 500)
    if isinstance(error, OSError) and error.strerror:  # a file problem: which file, and why
        return os_error_line(error)
    return report_bug(error, doing)


#: Commands that need neither torch nor Qt to start (validate, summary and schema never load
#: torch; export loads it only when it builds the module).
CORE_COMMANDS = ("validate", "summary", "export", "schema")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; for a known ``command`` it leaves out the commands whose modules
    import torch or Qt (the editor must paint before torch loads, validate must stay fast)."""
    parser = argparse.ArgumentParser(prog="dlstudio", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=_version())
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in _command_registrars(command):
        register(commands)
    return parser


def _version() -> str:
    from dlstudio import __version__

    return f"dlstudio {__version__}"


def _command_registrars(command: str | None = None) -> list[Callable[[Any], None]]:
    core = [_add_validate, _add_summary, _add_export, _add_schema]
    if command == "gui":
        return [_add_gui]
    if command in CORE_COMMANDS:
        return [_add_gui, *core]
    from dlstudio.interop.command import add_import_command
    from dlstudio.train.command import add_run_command
    from dlstudio.train.predict import add_predict_command
    from dlstudio.train.pruning import add_prune_command
    from dlstudio.train.sampling import add_sample_command

    return [_add_gui, add_run_command, add_sample_command, add_predict_command, add_prune_command,
            add_import_command, *core]


def _common(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    return parser


def _add_gui(commands: Any) -> None:
    parser = _common(commands.add_parser("gui", help="open the editor (the default)"))
    parser.add_argument("graph", nargs="?", help="graph file to open")
    parser.set_defaults(handler=_gui)


def _gui(args: argparse.Namespace) -> int:
    from dlstudio.ui.platform_check import platform_problem

    problem = platform_problem()  # before Qt, which would abort on a missing system library
    if problem is not None:
        print(f"dlstudio: {problem}", file=sys.stderr)
        return EXIT_USAGE
    from dlstudio.ui.app import run_app

    return run_app(args.graph)


def _add_validate(commands: Any) -> None:
    parser = _common(commands.add_parser("validate", help="check graph files"))
    parser.add_argument("graphs", nargs="+", metavar="GRAPH")
    parser.add_argument("--warnings", action="store_true", help="also print warnings")
    parser.add_argument("--target", choices=("onnx", "torchscript", "int8"),
                        help="also check that every node exports to this target, and say why not")
    parser.set_defaults(handler=_validate)


def _validate(args: argparse.Namespace) -> int:
    from dlstudio.core.analysis import analyze
    from dlstudio.core.io import load_graph

    status = EXIT_OK
    for path in args.graphs:
        try:
            analysis = analyze(load_graph(path))
        except GraphFileError as error:
            print(_one_line(error), file=sys.stderr)
            status = max(status, EXIT_USAGE)
            continue
        if args.target and analysis.ok:
            from dlstudio.core.readiness import export_problems

            analysis.diagnostics.extend(export_problems(analysis, args.target))
        shown = analysis.diagnostics if args.warnings else analysis.errors
        for diagnostic in shown:
            kind = "warning: " if diagnostic.severity == "warning" else ""
            print(f"{printable(path, 500)}: {kind}{printable(diagnostic.one_line(), 1000)}")
        if not analysis.ok:
            status = max(status, EXIT_INVALID)
        elif not shown:
            print(f"{printable(path, 500)}: ok")
    return status


def _add_summary(commands: Any) -> None:
    parser = _common(commands.add_parser("summary", help="table of shapes, parameters and FLOPs"))
    parser.add_argument("graph")
    parser.add_argument("--batch", type=int, help="batch size for shapes and FLOPs (default: N, FLOPs per sample)")
    parser.add_argument("--size", action="append", default=[], metavar="NAME=VALUE",
                        help="a value for a symbolic size an Input declares, e.g. T=128")
    parser.add_argument("--depth", type=int, default=1, metavar="N",
                        help="list the nodes inside blocks down to N levels (default 1: the graph's own nodes)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--deploy", action="store_true",
                        help="per node at batch 1: parameters, activation memory, FLOPs and int8 size")
    parser.add_argument("--weights", metavar="RUN_DIR",
                        help="also each node's share of zero weights in this run (or .safetensors file)")
    parser.set_defaults(handler=_summary)


def _summary(args: argparse.Namespace) -> int:
    from dlstudio.core.io import load_graph
    from dlstudio.core.summary import summarize

    if args.batch is not None and not 1 <= args.batch <= 2**31:
        raise UsageError("--batch must be between 1 and 2^31")
    if not 1 <= args.depth <= 64:
        raise UsageError("--depth must be between 1 and 64")
    if args.deploy and args.batch not in (None, 1):
        raise UsageError("--deploy reports batch 1; leave out --batch")
    if args.deploy and args.weights:
        raise UsageError("--deploy does not show sparsity; leave out --weights")
    report = summarize(load_graph(args.graph), 1 if args.deploy else args.batch, _sizes(args.size), args.depth)
    if not report.ok:
        for line in report.errors:
            print(f"{printable(args.graph, 500)}: {printable(line, 1000)}", file=sys.stderr)
        return EXIT_INVALID
    if args.weights:
        report.sparsity = _saved_sparsity(report.analysis, args.weights)
    if args.deploy:
        from dlstudio.core.deploy import deploy_json, deploy_table

        print(json.dumps(deploy_json(report), indent=2) if args.json else deploy_table(report))
        return EXIT_OK
    print(json.dumps(report.as_json(), indent=2) if args.json else report.as_table())
    return EXIT_OK


def _saved_sparsity(analysis: Any, weights: str) -> dict[str, float]:
    """Each node's share of zero weights in a run folder or weights file (loads torch)."""
    try:
        from dlstudio.train.errors import TrainError
        from dlstudio.train.pruning import saved_sparsity
    except ImportError:
        raise UsageError("--weights needs the training engine (torch)") from None
    try:
        return saved_sparsity(analysis, Path(weights))
    except TrainError as error:  # a file that is not this graph's weights: a usage error
        raise UsageError(f"{error} ({error.advice})" if error.advice else str(error)) from None


def _sizes(items: list[str]) -> dict[str, int]:
    sizes = {}
    for item in items:
        name, _, value = item.partition("=")
        if not name.isidentifier() or not value.isdigit() or not 1 <= int(value) <= 2**31:
            raise UsageError(f"--size wants NAME=VALUE with a whole number from 1, not {printable(item, 40)!r}")
        sizes[name] = int(value)
    return sizes


def _add_export(commands: Any) -> None:
    parser = _common(commands.add_parser("export", help="export Python, ONNX or TorchScript"))
    parser.add_argument("graph")
    parser.add_argument("--to", choices=("python", "onnx", "torchscript"), default="python")
    parser.add_argument("-o", "--output", help="file to write (Python: default stdout)")
    parser.add_argument("--weights", metavar="RUN_DIR", help="a run folder whose weights to export")
    parser.add_argument("--quantize", choices=("int8",),
                        help="post-training quantization of the run's ONNX (onnxruntime) or TorchScript "
                             "(torch.ao) export (with --weights); prints size, latency and validation "
                             "accuracy against fp32")
    parser.add_argument("--calibration", type=int, metavar="N",
                        help="static int8 (convolutions too) calibrated on N training samples "
                             "(default: dynamic, weights of Linear/LSTM/GRU only)")
    parser.set_defaults(handler=_export)


def _export(args: argparse.Namespace) -> int:
    if args.calibration is not None and not (args.quantize and 1 <= args.calibration <= 100_000):
        raise UsageError("--calibration N needs --quantize int8 and N from 1 to 100000")
    if args.quantize:
        try:
            from dlstudio.train.quantize import quantize_command
        except ImportError:
            raise UsageError("--quantize needs the training engine and onnxruntime "
                             "(pip install 'dlstudio[export]')") from None
        return quantize_command(args)
    if args.to != "python" or args.weights:
        try:
            from dlstudio.train.exporting import export_command
        except ImportError:
            raise UsageError(f"--to {args.to} and --weights need the training engine") from None
        return export_command(args)
    from dlstudio.core.export import export_python
    from dlstudio.core.io import load_graph, write_atomic

    source = export_python(load_graph(args.graph))
    if args.output:
        write_atomic(Path(args.output), source.encode("utf-8"))
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(source)
    return EXIT_OK


def _add_schema(commands: Any) -> None:
    parser = _common(commands.add_parser("schema", help="print the graph file's JSON Schema"))
    parser.set_defaults(handler=_schema)


def _schema(args: argparse.Namespace) -> int:
    from dlstudio.core.graph import Graph

    print(json.dumps(Graph.model_json_schema(), indent=2))
    return EXIT_OK
