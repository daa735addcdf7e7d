"""``dlstudio export GRAPH --weights RUN_DIR --to python|onnx|torchscript``.

Every export is checked before it is reported done: ONNX with onnxruntime and TorchScript
with ``torch.jit.load``, each on a batch size other than the one traced, against the
PyTorch module (largest difference at most 1e-4). A symbolic size of an Input (a sequence's
``T``) stays a named dynamic axis of the ONNX file, checked at a longer and a shorter size
than traced (those of the two the PyTorch module itself takes: a learned position table
bounds a sequence's length). A file is written beside its destination and moved there only
once it passed, so a failed export leaves no file behind (exit 1, with the reason). The
Python export writes the model's source with its weights beside it and prints a two-line
loading snippet.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import re
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from dlstudio.core.analysis import Analysis, analyze
from dlstudio.core.codegen import plan_module
from dlstudio.core.compiler import build_module
from dlstudio.core.errors import DLStudioError, GraphInvalidError
from dlstudio.core.export import render_module
from dlstudio.core.graph import Graph
from dlstudio.core.io import load_graph, write_atomic
from dlstudio.core.tensor import BATCH
from dlstudio.core.training import dataset_fields
from dlstudio.train.checkpoint import latest_checkpoint, load_state
from dlstudio.train.errors import ConfigError, RunDirError
from dlstudio.train.preprocess import PREPROCESS, preprocess_source, read_preprocessing
from dlstudio.train.rundir import RunDir

#: The largest difference an export may show from PyTorch: TOLERANCE, or RELATIVE times the
#: largest output magnitude where that is more. float32 holds about 7 digits, so logits near
#: 800 (an untrained mamba_130m's) lie 6e-5 from their neighbours, and eager float32 is
#: itself 2e-4 from float64 there.
TOLERANCE = 1e-4
RELATIVE = 1e-5
SUFFIXES = {"python": ".py", "onnx": ".onnx", "torchscript": ".pt"}
#: Size given to a symbolic dimension (other than the batch) in example inputs.
DEFAULT_SIZE = 8


def export_command(args: argparse.Namespace) -> int:
    graph = load_graph(args.graph)
    analysis = analyze(graph)
    if not analysis.ok:
        raise GraphInvalidError(graph.name, analysis.errors)
    try:
        module = trained_module(analysis, RunDir(args.weights) if args.weights else None)
        output = Path(args.output) if args.output else Path(_file_stem(graph.name) + SUFFIXES[args.to])
        if args.to == "python":
            preprocessing = _run_preprocessing(RunDir(args.weights)) if args.weights else None
            export_python_with_weights(analysis, module, output, preprocessing)
        elif args.to == "onnx":
            report("ONNX", output, export_onnx(analysis, module, output))
        else:
            report("TorchScript", output, export_torchscript(analysis, module, output))
    except (ConfigError, RunDirError) as error:
        advice = f" ({error.advice})" if error.advice else ""
        print(f"dlstudio: {error}{advice}", file=sys.stderr)
        return error.exit_code
    return 0


def report(kind: str, output: Path, difference: float) -> None:
    print(f"wrote {output} ({kind}; largest difference from PyTorch {difference:.1e})", file=sys.stderr)


def _file_stem(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "model"


def trained_module(analysis: Analysis, run_dir: RunDir | None) -> torch.nn.Module:
    """The compiled graph in eval mode, with the run's final (or latest checkpoint) weights."""
    module = build_module(plan_module(analysis))
    if run_dir is not None:
        run_dir.check_graph(analysis.graph)
        module.load_state_dict(run_weights(run_dir), strict=True)
    return module.eval()


def run_weights(run_dir: RunDir) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    if run_dir.weights.exists():
        return load_file(str(run_dir.weights))
    path = latest_checkpoint(run_dir.checkpoints)
    if path is None:
        raise RunDirError(f"{run_dir.path}: has neither model.safetensors nor a complete checkpoint")
    return load_state(path)["model"]


def example_inputs(analysis: Analysis, batch: int = 2, grow: int = 0) -> tuple[list[torch.Tensor], dict[str, int]]:
    """Inputs shaped like the Input nodes: symbolic sizes from the dataset when known, plus
    ``grow`` (a check on other sizes than those traced)."""
    sizes = {BATCH: batch, **{k: v + grow for k, v in _dataset_sizes(analysis).items()}}
    generator = torch.Generator().manual_seed(0)
    tensors = []
    for node in analysis.graph.nodes_of_type("Input"):
        tensor_type = analysis.ports[(node.id, "output")]
        symbols = {d for d in tensor_type.shape if isinstance(d, str)}
        shape = tensor_type.concrete({**{s: DEFAULT_SIZE + grow for s in symbols}, **sizes})
        dtype = getattr(torch, tensor_type.dtype)
        if tensor_type.is_float:
            tensors.append(torch.randn(shape, generator=generator).to(dtype))
        else:
            tensors.append(torch.randint(0, 2, shape, generator=generator, dtype=dtype))
    return tensors, sizes


def _dataset_sizes(analysis: Analysis) -> dict[str, int]:
    """Symbolic Input dims bound to the dataset's field sizes (``T`` -> 12)."""
    training: Any = analysis.graph.training
    if training is None:
        return {}
    try:
        fields = dataset_fields(training.dataset) or {}
    except Exception:  # noqa: BLE001  (a bad training section only loses the hint)
        return {}
    sizes: dict[str, int] = {}
    for node_id, field in training.dataset.inputs.items():
        info = fields.get(field)
        tensor_type = analysis.ports.get((node_id, "output"))
        if info is None or info.shape is None or tensor_type is None:
            continue
        for dim, size in zip(tensor_type.shape[1:], info.shape, strict=False):
            if isinstance(dim, str) and isinstance(size, int):
                sizes[dim] = size
    return sizes


def _as_tuple(result: Any) -> tuple[torch.Tensor, ...]:
    return tuple(result) if isinstance(result, tuple | list) else (result,)


def _largest_difference(expected: Any, actual: Any) -> float:
    pairs = zip(_as_tuple(expected), _as_tuple(actual), strict=True)
    return max(float((torch.as_tensor(a).float() - e.float()).abs().max()) for e, a in pairs)


def _scale(expected: Any) -> float:
    """The largest magnitude among the outputs (0 for none): what RELATIVE is relative to."""
    return max([0.0, *(float(e.float().abs().max()) for e in _as_tuple(expected) if e.numel())])


def _check(difference: float, kind: str, scale: float = 0.0) -> float:
    limit = max(TOLERANCE, RELATIVE * scale)
    if not difference <= limit:
        raise ConfigError(f"the {kind} export differs from PyTorch by {difference:.2e} (limit {limit:.2g})")
    return difference


# --- Python ------------------------------------------------------------------------------------

def export_python_with_weights(analysis: Analysis, module: torch.nn.Module, output: Path,
                               preprocessing: dict[str, Any] | None = None) -> None:
    """The model's source (with ``preprocess()``, applying a run's ``preprocessing``, when
    given) and its weights beside it."""
    from safetensors.torch import save_file

    plan = plan_module(analysis)
    source = render_module(plan, analysis.graph, analysis.catalogue)
    if preprocessing is not None:
        source += preprocess_source(preprocessing)
    weights = output.with_suffix(".safetensors")
    with staged(weights) as path:
        save_file({k: v.detach().to("cpu", copy=True).contiguous() for k, v in module.state_dict().items()}, str(path))  # tied: copies
        write_atomic(output, source.encode("utf-8"))
    print(f"wrote {output} and {weights}; load them with:", file=sys.stderr)
    print(loading_snippet(output.stem, plan.class_name, weights.name))
    if preprocessing is not None:
        print(f"and preprocess new data as the run did with: from {output.stem} import preprocess; "
              "probabilities = model(preprocess(INPUT)).softmax(-1)", file=sys.stderr)


def _run_preprocessing(run_dir: RunDir) -> dict[str, Any] | None:
    """The run's recorded preprocessing; None for a run from before it was recorded."""
    return read_preprocessing(run_dir) if (run_dir.path / PREPROCESS).exists() else None


def loading_snippet(module_name: str, class_name: str, weights: str) -> str:
    return (f"from {module_name} import {class_name}; from safetensors.torch import load_file\n"
            f"model = {class_name}(); model.load_state_dict(load_file({weights!r})); model.eval()")


# --- ONNX ---------------------------------------------------------------------------------------

def export_onnx(analysis: Analysis, module: torch.nn.Module, output: Path) -> float:
    """Write an ONNX file whose batch and other symbolic sizes are dynamic axes named as in
    the graph (``N``, ``T``), and return its largest difference from torch."""
    import onnxruntime

    inputs, _ = example_inputs(analysis)
    names = [name for name, _ in plan_module(analysis).arguments]
    outputs = [node.id for node in analysis.graph.nodes_of_type("Output")]
    with staged(output) as path:
        with _quiet(), _exporter_failure("ONNX"):
            torch.onnx.export(module, tuple(inputs), str(path), dynamo=True, external_data=False,
                              input_names=names, output_names=outputs,
                              dynamic_shapes=_dynamic_shapes(analysis), optimize=True, verbose=False)
        name_dynamic_axes(analysis, path)
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 4  # fatal only: a failing check is reported below, once
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        difference, scale = 0.0, 0.0
        for check_inputs, expected in _checks(analysis, module):
            try:
                actual = session.run(None, {n: x.numpy() for n, x in zip(names, check_inputs, strict=True)})
            except Exception as error:  # noqa: BLE001  (onnxruntime raises its own unrelated classes)
                detail = ". ".join(" ".join(str(error).split()).split(". ")[-2:])[-200:]  # the last two sentences
                raise ConfigError(f"{output}: the ONNX model fails on other sizes than it was traced with "
                                  f"({detail})", "export --to torchscript, or give the Input fixed sizes") from None
            difference = max(difference, _largest_difference(expected, [torch.from_numpy(a) for a in actual]))
            scale = max(scale, _scale(expected))
        return _check(difference, "ONNX", scale)


def _checks(analysis: Analysis, module: torch.nn.Module) -> list[tuple[list[torch.Tensor], Any]]:
    """Inputs of batch 3 with every symbolic size 3 longer, and 3 shorter, than traced, with
    the PyTorch module's outputs; a size the module itself refuses is left out (the longer
    one, where a position table holds only the traced length), unless it refuses both."""
    found, refused = [], None
    for grow in (3, -3):
        inputs, _ = example_inputs(analysis, batch=3, grow=grow)
        try:
            with torch.no_grad():
                found.append((inputs, module(*inputs)))
        except Exception as error:  # noqa: BLE001  (a compiled graph raises what its layers raise)
            refused = error
        if not any(isinstance(d, str) and d != BATCH for n in analysis.graph.nodes_of_type("Input")
                   for d in analysis.ports[(n.id, "output")].shape):
            break  # only the batch varies: one check
    if not found and refused is not None:
        raise refused
    return found


def name_dynamic_axes(analysis: Analysis, path: Path) -> None:
    """Rename the exporter's dynamic axes (``s27``) in the ONNX file at ``path`` after the
    graph's symbolic sizes they stand for (``T``), wherever one stands for one size."""
    import onnx

    model = onnx.load(str(path))
    symbols: dict[str, set[str]] = {}
    for node, value in zip(analysis.graph.nodes_of_type("Input"), model.graph.input, strict=False):
        declared = analysis.ports[(node.id, "output")].shape
        for size, dim in zip(declared, value.type.tensor_type.shape.dim, strict=False):
            if isinstance(size, str) and dim.dim_param:
                symbols.setdefault(dim.dim_param, set()).add(size)
    names = {symbol: sizes.pop() for symbol, sizes in symbols.items() if len(sizes) == 1}
    if not names:
        return
    for value in [*model.graph.input, *model.graph.output, *model.graph.value_info]:
        for dim in value.type.tensor_type.shape.dim:
            if dim.dim_param in names:
                dim.dim_param = names[dim.dim_param]
    write_atomic(path, model.SerializeToString())


def _dynamic_shapes(analysis: Analysis) -> tuple[dict[int, Any], ...]:
    dims: dict[str, Any] = {}
    shapes = []
    for node in analysis.graph.nodes_of_type("Input"):
        tensor_type = analysis.ports[(node.id, "output")]
        shapes.append({i: dims.setdefault(d, torch.export.Dim.AUTO)
                       for i, d in enumerate(tensor_type.shape) if isinstance(d, str)})
    return tuple(shapes)


@contextlib.contextmanager
def staged(output: Path) -> Iterator[Path]:
    """A temporary path beside ``output`` to write to; moved onto ``output`` when the block
    succeeds and deleted when it fails, so a failed export leaves no file (an earlier file
    at ``output`` stays as it was)."""
    output.parent.mkdir(parents=True, exist_ok=True)
    path = output.with_name(f".{output.name}.{os.getpid()}.partial")
    try:
        yield path
        os.replace(path, output)
    finally:
        path.unlink(missing_ok=True)


@contextlib.contextmanager
def _exporter_failure(kind: str) -> Iterator[None]:
    """An exception inside torch's exporter becomes a ConfigError naming its cause in one line
    (the node, where a compiled graph's line map finds one)."""
    try:
        yield
    except (ConfigError, KeyboardInterrupt):
        raise
    except Exception as error:  # noqa: BLE001  (exporters raise many unrelated classes)
        raise ConfigError(f"the {kind} exporter failed: {exporter_reason(error)}",
                          "export --to python, or change the graph") from None


def exporter_reason(error: BaseException) -> str:
    """The most telling line of an exporter's error: the first one naming a node, else the
    innermost cause's first sentence."""
    chain = [error]
    while chain[-1].__cause__ is not None and len(chain) < 20:
        chain.append(chain[-1].__cause__)
    telling = next((e for e in chain if isinstance(e, DLStudioError)), chain[-1])
    text = " ".join(str(telling).split()) or type(telling).__name__
    return text.split(". ")[0].rstrip(".")[:300]


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the exporters' progress logging, deprecation chatter and the program listing
    torch.export prints when it fails (the failure itself is reported in one line)."""
    logger = logging.getLogger("torch")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        with (warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()),
              contextlib.redirect_stderr(io.StringIO())):
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


# --- TorchScript --------------------------------------------------------------------------------

def export_torchscript(analysis: Analysis, module: torch.nn.Module, output: Path) -> float:
    """Trace to TorchScript, save, load back and compare on another batch size."""
    inputs, _ = example_inputs(analysis)
    with staged(output) as path, _quiet(), torch.no_grad():
        with _exporter_failure("TorchScript"):
            traced = torch.jit.trace(module, tuple(inputs), check_trace=False)
            torch.jit.save(traced, str(path))
            loaded = torch.jit.load(str(path))
        check_inputs, _ = example_inputs(analysis, batch=3, grow=3)
        try:
            actual = loaded(*check_inputs)
        except Exception as error:  # noqa: BLE001  (TorchScript raises its own unrelated classes)
            raise ConfigError(f"{output}: the TorchScript model fails on other sizes than it was traced with "
                              f"({exporter_reason(error)})", "give the Input fixed sizes") from None
        expected = module(*check_inputs)
        return _check(_largest_difference(expected, actual), "TorchScript", _scale(expected))


def export_graph(graph: Graph, to: str, output: Path, run_dir: RunDir | None = None) -> float:
    """Library entry point: export ``graph`` (with a run's weights) and return the check's difference."""
    analysis = analyze(graph)
    if not analysis.ok:
        raise GraphInvalidError(graph.name, analysis.errors)
    module = trained_module(analysis, run_dir)
    if to == "onnx":
        return export_onnx(analysis, module, output)
    if to == "torchscript":
        return export_torchscript(analysis, module, output)
    export_python_with_weights(analysis, module, output, _run_preprocessing(run_dir) if run_dir else None)
    return 0.0
