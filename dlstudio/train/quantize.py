"""``dlstudio export GRAPH --weights RUN_DIR --to onnx --quantize int8 [--calibration N]``.

Post-training int8 quantization with ONNX Runtime's quantizer. Without ``--calibration`` it is
dynamic: weights of Linear, attention and LSTM layers are stored as int8 and their inputs are
quantized on the fly (onnxruntime has no dynamic int8 GRU; it stays fp32). With
``--calibration N`` it is static, in QDQ format with per-channel weights: activation ranges
come from N training samples of the run, so convolutions are quantized too.

The run's fp32 export and the int8 model are then compared side by side: file size, latency
per sample in onnxruntime (batch 1, one thread, the two models timed in alternating rounds so
that a busy machine slows both alike), and the loss and metrics of each on the run's
validation split (:mod:`~dlstudio.train.quantize_report`). The int8 file is moved to its
destination only once all of that succeeded. ``--to torchscript`` quantizes with PyTorch's own
torch.ao instead (:mod:`~dlstudio.train.quantize_torch`).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import tempfile
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import numpy as np
import onnxruntime
from onnxruntime.quantization import (
    CalibrationDataReader,
    QuantFormat,
    quantize_dynamic,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process

from dlstudio.core.analysis import Analysis, analyze
from dlstudio.core.errors import GraphInvalidError
from dlstudio.core.io import load_graph
from dlstudio.core.training import TrainingConfig
from dlstudio.train.data import DataSplit
from dlstudio.train.errors import ConfigError, RunDirError
from dlstudio.train.evaluation import Feeds, labelled_run, validation_metrics
from dlstudio.train.exporting import SUFFIXES, export_onnx, staged, trained_module
from dlstudio.train.quantize_report import ModelFigures, QuantizationReport, interleaved_latency
from dlstudio.train.rundir import RunDir

#: ONNX operators dynamic quantization covers: Linear layers (MatMul, after the pre-processing
#: turns Gemm into MatMul), attention and LSTM. Convolutions are left to static quantization,
#: since onnxruntime's ConvInteger runs slower than the float kernel.
DYNAMIC_OPS = ["MatMul", "Attention", "LSTM"]
# --- the command --------------------------------------------------------------------------------

def quantize_command(args: argparse.Namespace) -> int:
    """Export the run's network to ONNX (or TorchScript), quantize it to int8 at ``args.output``,
    print the table."""
    if args.to == "python" or not args.weights:
        to = "onnx or torchscript" if args.to == "python" else args.to
        raise ConfigError(f"--quantize int8 needs --to {to} and --weights RUN_DIR",
                          "the run's data calibrates the model and measures its accuracy")
    graph = load_graph(args.graph)
    analysis = analyze(graph)
    if not analysis.ok:
        raise GraphInvalidError(graph.name, analysis.errors)
    output = Path(args.output) if args.output else Path(f"{Path(args.graph).stem}.int8{SUFFIXES[args.to]}")
    from dlstudio.train.quantize_torch import quantize_torch  # it builds on this module

    quantize = quantize_run if args.to == "onnx" else quantize_torch
    try:
        report = quantize(analysis, RunDir(args.weights), output, args.calibration, Path(args.graph).resolve().parent)
    except (ConfigError, RunDirError) as error:
        advice = f" ({error.advice})" if error.advice else ""
        print(f"dlstudio: {error}{advice}", file=sys.stderr)
        return error.exit_code
    print(report.as_table())
    print(f"wrote {output}", file=sys.stderr)
    return 0


def quantize_run(analysis: Analysis, run_dir: RunDir, output: Path, calibration: int | None,
                 base_dir: Path | None = None) -> QuantizationReport:
    """Quantize the run's trained network to ``output`` (static with ``calibration`` training
    samples, else dynamic) and measure it against the fp32 export."""
    module = trained_module(analysis, run_dir)
    config, data = labelled_run(analysis, run_dir, base_dir)
    feeds = Feeds(analysis, config)
    with tempfile.TemporaryDirectory(prefix="dlstudio-int8-") as folder:
        fp32 = Path(folder) / "fp32.onnx"
        export_onnx(analysis, module, fp32)
        with staged(output) as int8:
            method = quantize_onnx(fp32, int8, feeds, data, calibration, config.seed)
            figures = compare(fp32, int8, feeds, data, config)
    return QuantizationReport(method, *figures)


# --- quantizing ---------------------------------------------------------------------------------

def quantize_onnx(fp32: Path, int8: Path, feeds: Feeds, data: DataSplit, calibration: int | None,
                  seed: int) -> str:
    """Write ``fp32`` quantized to ``int8``; returns how, in words."""
    prepared = fp32.with_name("prepared.onnx")
    # The symbolic shape inference writes a scratch model into the working folder when it gives
    # up (a transformer's, a mixture of experts'): run it in the scratch folder of fp32.
    with _quiet_quantizer(), contextlib.chdir(fp32.parent):
        try:
            quant_pre_process(str(fp32), str(prepared))
        except Exception:  # noqa: BLE001  (its symbolic shape inference gives up on some graphs)
            quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
        if calibration is None:
            quantize_dynamic(str(prepared), str(int8), op_types_to_quantize=DYNAMIC_OPS)
            return "dynamic: int8 weights of Linear, attention and LSTM layers"
        count = min(calibration, data.train_size)
        index = np.random.default_rng(seed).permutation(data.train_size)[:count]
        reader = CalibrationReader(feeds.batches(data.train, index))
        quantize_static(str(prepared), str(int8), reader, quant_format=QuantFormat.QDQ, per_channel=True)
    return f"static QDQ, per-channel weights, calibrated on {count} training samples"


class CalibrationReader(CalibrationDataReader):
    """Hands the quantizer's calibration one batch of training inputs at a time."""

    def __init__(self, batches: Iterator[dict[str, np.ndarray]]) -> None:
        self.batches = batches

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self.batches, None)


@contextlib.contextmanager
def _quiet_quantizer() -> Iterator[None]:
    """The quantizer logs advice on the root logger; the report says what matters."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


# --- measuring ----------------------------------------------------------------------------------

def compare(fp32: Path, int8: Path, feeds: Feeds, data: DataSplit,
            config: TrainingConfig) -> tuple[ModelFigures, ModelFigures]:
    """Size, latency and validation metrics of the two models, measured side by side."""
    sessions = [_session(fp32), _session(int8)]
    sample = next(feeds.batches(data.val, np.arange(1)))
    latencies = interleaved_latency([partial(session.run, None, sample) for session in sessions])
    return tuple(ModelFigures(path.stat().st_size, latency, validate(session, feeds, data, config))
                 for path, session, latency in zip((fp32, int8), sessions, latencies, strict=True))


def _session(path: Path) -> onnxruntime.InferenceSession:
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    try:
        return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as error:  # noqa: BLE001  (onnxruntime raises its own unrelated classes)
        raise ConfigError(f"onnxruntime cannot load the quantized model ({' '.join(str(error).split())[:200]})",
                          "quantize without --calibration (dynamic), or not at all") from None


def validate(session: onnxruntime.InferenceSession, feeds: Feeds, data: DataSplit,
             config: TrainingConfig) -> dict[str, float]:
    """The run's loss and metrics of an ONNX model over the validation split."""
    def run(feed: dict[str, np.ndarray]) -> np.ndarray:
        try:
            return session.run(None, feed)[feeds.output]
        except Exception as error:  # noqa: BLE001  (onnxruntime raises its own unrelated classes)
            raise ConfigError(f"onnxruntime fails on the validation data ({' '.join(str(error).split())[:200]})") \
                from None

    return validation_metrics(run, feeds, data, config)
