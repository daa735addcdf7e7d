"""``dlstudio export GRAPH --weights RUN_DIR --to torchscript --quantize int8 [--calibration N]``.

PyTorch's own int8 (torch.ao), saved as TorchScript. Without ``--calibration`` it is dynamic:
weights of Linear (per channel), LSTM and GRU layers are stored as int8 and their inputs are
quantized on the fly. With ``--calibration N`` it is static, in FX graph mode: N training
samples of the run pass through observers (``prepare_fx``), then ``convert_fx`` runs
convolutions and Linear layers (fused with a following ReLU or BatchNorm) as int8 kernels
between quantized activations; LSTM and GRU layers, which static mode leaves float, are then
quantized dynamically. A quantization-aware run (``training.quantization_aware``) is converted
with the ranges it learned in training, unless ``--calibration`` asks for new ones.

The table is the ONNX one's (file size, latency per sample, validation metrics of fp32 and
int8, measured side by side), with the int8 kernels used and the layers that stayed float.
"""

from __future__ import annotations

import contextlib
import copy
import tempfile
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch import nn

from dlstudio.core.analysis import Analysis
from dlstudio.core.training import TrainingConfig
from dlstudio.train.checkpoint import latest_checkpoint, load_state
from dlstudio.train.data import DataSplit
from dlstudio.train.errors import ConfigError, RunDirError
from dlstudio.train.evaluation import Feeds, labelled_run, torch_runner, validation_metrics
from dlstudio.train.exporting import (
    _exporter_failure,
    _quiet,
    example_inputs,
    export_torchscript,
    exporter_reason,
    staged,
    trained_module,
)
from dlstudio.train.qat import QUANTIZATION_FILE, fake_quantized, load_own_state, quantized_engine
from dlstudio.train.quantize_report import ModelFigures, QuantizationReport, interleaved_latency
from dlstudio.train.rundir import RunDir

#: torch.ao's kernels, best first: x86 (fbgemm and onednn together) on x86 CPUs, qnnpack on ARM.
ENGINES = ("x86", "fbgemm", "qnnpack")
#: Class modules of torch.ao's int8 layers: a module with float parameters outside them stayed float.
INT8_MODULES = ("torch.ao.nn.quantized", "torch.ao.nn.intrinsic.quantized")


def quantize_torch(analysis: Analysis, run_dir: RunDir, output: Path, calibration: int | None,
                   base_dir: Path | None = None) -> QuantizationReport:
    """Quantize the run's trained network to a TorchScript file at ``output`` and measure it
    against the fp32 TorchScript export."""
    module = trained_module(analysis, run_dir)
    config, data = labelled_run(analysis, run_dir, base_dir)
    feeds = Feeds(analysis, config)
    learned = None if calibration is not None else learned_ranges(run_dir, config)
    engine = config.quantization_aware.backend if learned is not None else preferred_engine()  # type: ignore[union-attr]
    with quantized_engine(engine):
        if learned is not None:
            int8, method = from_quantization_aware(module, engine, learned, example_inputs(analysis)[0])
        elif calibration is not None:
            int8, method = static(module, feeds, data, calibration, config.seed, example_inputs(analysis)[0])
        else:
            int8, method = dynamic(copy.deepcopy(module)), "dynamic: int8 weights of Linear (per channel), LSTM and GRU layers"
        with tempfile.TemporaryDirectory(prefix="dlstudio-int8-") as folder:
            fp32 = Path(folder) / "fp32.pt"
            export_torchscript(analysis, module, fp32)
            with staged(output) as path:
                save_traced(analysis, int8, path, output)
                figures = compare(fp32, path, feeds, data, config, len(analysis.graph.nodes_of_type("Output")))
    return QuantizationReport(method, *figures, runtime=f"PyTorch CPU with torch.ao's {engine} kernels",
                              notes=(float_layers(int8),))


def preferred_engine() -> str:
    """The best of torch.ao's int8 engines this PyTorch has."""
    supported = torch.backends.quantized.supported_engines
    return next((engine for engine in ENGINES if engine in supported), supported[0])


def learned_ranges(run_dir: RunDir, config: TrainingConfig) -> dict[str, torch.Tensor] | None:
    """Fake quantization's state at the end of a quantization-aware run (or at its latest
    checkpoint, beside the weights exported); None for another run, or one stopped before fake
    quantization started."""
    if config.quantization_aware is None:
        return None
    from safetensors.torch import load_file

    if run_dir.weights.exists() and (run_dir.path / QUANTIZATION_FILE).exists():
        state = load_file(str(run_dir.path / QUANTIZATION_FILE))
    else:
        checkpoint = latest_checkpoint(run_dir.checkpoints)
        if checkpoint is None:
            raise RunDirError(f"{run_dir.path}: has neither {QUANTIZATION_FILE} nor a complete checkpoint")
        state = load_state(checkpoint).get("quantization", {})
    started = any(bool(v.all()) for k, v in state.items() if k.endswith("fake_quant_enabled"))
    return state if started else None


# --- quantizing ---------------------------------------------------------------------------------

def dynamic(module: nn.Module) -> nn.Module:
    """``module`` with int8 weights for its (float) Linear, LSTM and GRU layers."""
    from torch.ao.quantization import (
        default_dynamic_qconfig,
        per_channel_dynamic_qconfig,
        quantize_dynamic,
    )

    spec = {nn.Linear: per_channel_dynamic_qconfig, nn.LSTM: default_dynamic_qconfig, nn.GRU: default_dynamic_qconfig}
    return quantize_dynamic(module, spec, inplace=True)


def static(module: nn.Module, feeds: Feeds, data: DataSplit, calibration: int, seed: int,
           inputs: list[torch.Tensor]) -> tuple[nn.Module, str]:
    """``module`` converted with activation ranges observed on ``calibration`` training samples."""
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    count = min(calibration, data.train_size)
    index = np.random.default_rng(seed).permutation(data.train_size)[:count]
    with _tracing():
        prepared = prepare_fx(copy.deepcopy(module).eval(), get_default_qconfig_mapping(torch.backends.quantized.engine),
                              tuple(inputs))
    with torch.no_grad():
        for feed in feeds.batches(data.train, index):
            prepared(*[torch.from_numpy(value) for value in feed.values()])
    return (dynamic(convert_fx(prepared)),
            f"static, FX graph mode, calibrated on {count} training samples; LSTM and GRU dynamic")


def from_quantization_aware(module: nn.Module, backend: str, state: dict[str, torch.Tensor],
                            inputs: list[torch.Tensor]) -> tuple[nn.Module, str]:
    """``module`` converted with the ranges its quantization-aware training learned."""
    from torch.ao.quantization.quantize_fx import convert_fx

    graph = fake_quantized(copy.deepcopy(module), backend, inputs)
    try:
        load_own_state(graph, state)
    except (KeyError, ValueError) as error:
        raise RunDirError(f"the run's quantization state does not fit the network ({error})") from None
    return dynamic(convert_fx(graph.eval())), "quantization-aware: ranges learned in training; LSTM and GRU dynamic"


@contextlib.contextmanager
def _tracing() -> Iterator[None]:
    """torch.fx failing to trace the network becomes a one-line ConfigError."""
    try:
        yield
    except Exception as error:  # noqa: BLE001  (tracing raises what the forward raises)
        raise ConfigError(f"torch.ao cannot trace the network for static int8 ({exporter_reason(error)})",
                          "quantize without --calibration (dynamic), or --to onnx") from None


def float_layers(module: nn.Module) -> str:
    """A line naming the layers of ``module`` that hold float weights still."""
    names = [f"{name} ({type(layer).__name__})" for name, layer in module.named_modules()
             if any(True for _ in layer.parameters(recurse=False))
             and not type(layer).__module__.startswith(INT8_MODULES)]
    return f"stayed float: {', '.join(names)}" if names else "stayed float: none (every layer with weights is int8)"


# --- saving and measuring -----------------------------------------------------------------------

def save_traced(analysis: Analysis, module: nn.Module, path: Path, output: Path) -> None:
    """Trace the int8 ``module`` to TorchScript at ``path``, and check that it loads and runs on
    another batch and sequence size than traced."""
    inputs, _ = example_inputs(analysis)
    with _quiet(), torch.no_grad():
        with _exporter_failure("TorchScript"):
            torch.jit.save(torch.jit.trace(module.eval(), tuple(inputs), check_trace=False), str(path))
            loaded = torch.jit.load(str(path))
        check_inputs, _ = example_inputs(analysis, batch=3, grow=3)
        try:
            loaded(*check_inputs)
        except Exception as error:  # noqa: BLE001  (TorchScript raises its own unrelated classes)
            raise ConfigError(f"{output}: the int8 TorchScript model fails on other sizes than it was traced "
                              f"with ({exporter_reason(error)})", "give the Input fixed sizes") from None


def compare(fp32: Path, int8: Path, feeds: Feeds, data: DataSplit, config: TrainingConfig,
            outputs: int) -> tuple[ModelFigures, ModelFigures]:
    """Size, latency (one thread) and validation metrics of the two TorchScript files."""
    models = [torch.jit.load(str(path)) for path in (fp32, int8)]
    sample = [torch.from_numpy(value) for value in next(feeds.batches(data.val, np.arange(1))).values()]
    with _one_thread(), torch.no_grad():
        latencies = interleaved_latency([partial(model, *sample) for model in models])
    return tuple(ModelFigures(path.stat().st_size, latency,  # type: ignore[return-value]
                              validation_metrics(torch_runner(model, feeds.output, outputs), feeds, data, config))
                 for path, model, latency in zip((fp32, int8), models, latencies, strict=True))


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
