"""Quantization-aware training (``training.quantization_aware``), with torch.ao's FX graph mode.

:func:`fake_quantized` traces the run's compiled module and inserts int8 fake quantization of
weights and activations (``prepare_qat_fx``; a Linear or convolution fused with the ReLU or
BatchNorm after it, as the int8 kernels will run them). The traced module shares every parameter
and buffer with the compiled one, so the optimizer, the checkpoints and the final
``model.safetensors`` see the plain float network under its usual keys. What fake quantization
adds (scales, zero points, observed ranges, whether it is on) is its own state: checkpointed
beside the model, and saved when the run ends as ``quantization.safetensors``, from which
``export --to torchscript --quantize int8`` converts the network with the ranges it learned.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator

import torch
from torch import nn

from dlstudio.core.training import QuantizationAwareConfig, TrainingConfig
from dlstudio.train.errors import ConfigError

#: The run folder's file of fake quantization's final state.
QUANTIZATION_FILE = "quantization.safetensors"


@contextlib.contextmanager
def quantized_engine(engine: str) -> Iterator[None]:
    """torch.ao's int8 kernels set to ``engine``, with its deprecation and observer warnings silenced."""
    if engine not in torch.backends.quantized.supported_engines:
        raise ConfigError(f"this PyTorch has no '{engine}' int8 kernels "
                          f"(it has {', '.join(torch.backends.quantized.supported_engines)})",
                          "choose another quantization_aware.backend")
    before = torch.backends.quantized.engine
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.backends.quantized.engine = engine
        try:
            yield
        finally:
            torch.backends.quantized.engine = before


def fake_quantized(module: nn.Module, backend: str, inputs: list[torch.Tensor]) -> nn.Module:
    """``module`` traced with fake quantization for ``backend``, sharing its parameters and buffers."""
    from torch.ao.quantization import get_default_qat_qconfig_mapping
    from torch.ao.quantization.quantize_fx import prepare_qat_fx

    from dlstudio.train.exporting import exporter_reason

    with quantized_engine(backend):
        try:
            graph = prepare_qat_fx(module.train(), get_default_qat_qconfig_mapping(backend), tuple(inputs))
        except Exception as error:  # noqa: BLE001  (tracing raises what the forward raises)
            raise ConfigError(f"quantization-aware training cannot trace the network ({exporter_reason(error)})",
                              "remove training.quantization_aware, or quantize after training") from None
    return graph.to(next(module.parameters()).device)


def own_state(graph: nn.Module, module: nn.Module) -> dict[str, torch.Tensor]:
    """The entries of ``graph``'s state that ``module`` does not share: fake quantization's."""
    shared = {id(t) for t in module.state_dict(keep_vars=True).values()}
    return {k: v.detach() for k, v in graph.state_dict(keep_vars=True).items() if id(v) not in shared}


def load_own_state(graph: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Put fake quantization's saved state back into ``graph`` (every entry, nothing more)."""
    result = graph.load_state_dict(state, strict=False)
    if result.unexpected_keys:
        raise ValueError(f"the quantization state holds '{result.unexpected_keys[0]}', which this network lacks")
    missing = [k for k in result.missing_keys if _is_fake_quantization(k)]
    if missing:
        raise KeyError(missing[0])


def _is_fake_quantization(key: str) -> bool:
    return "activation_post_process" in key or "weight_fake_quant" in key


class QuantizationAware:
    """A run's network with fake quantization: ``graph`` is what training steps run."""

    def __init__(self, module: nn.Module, settings: QuantizationAwareConfig, inputs: list[torch.Tensor]) -> None:
        self.module = module
        self.settings = settings
        self.graph = fake_quantized(module, settings.backend, inputs)

    def at_epoch(self, epoch: int) -> None:
        """Fake quantization (and the range observers) on from ``start_epoch``, off before."""
        from torch.ao.quantization import (
            disable_fake_quant,
            disable_observer,
            enable_fake_quant,
            enable_observer,
        )

        on = epoch >= self.settings.start_epoch
        self.graph.apply(enable_fake_quant if on else disable_fake_quant)
        self.graph.apply(enable_observer if on else disable_observer)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return own_state(self.graph, self.module)

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        load_own_state(self.graph, state)

    def saved(self) -> bytes:
        """The state as a safetensors file's bytes."""
        from safetensors.torch import save

        return save({k: v.to("cpu", copy=True).contiguous() for k, v in self.state_dict().items()})


def quantization_aware(config: TrainingConfig, module: nn.Module,
                       inputs: list[torch.Tensor]) -> QuantizationAware | None:
    """The run's fake quantization, traced with ``inputs``; None without the section."""
    if config.quantization_aware is None:
        return None
    return QuantizationAware(module, config.quantization_aware, inputs)
