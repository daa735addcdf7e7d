"""The vae task: a variational autoencoder, an encoder and a decoder in one graph.

``training.vae`` (:class:`~dlstudio.core.training.VaeConfig`) names the nodes: the encoder
reads Input ``data`` and ends in two Outputs, ``mu`` and ``logvar`` (one shape: the latent's);
the decoder reads an Input of its own, ``latent``, which the task feeds, and ends in Output
``decoder``, the reconstruction. The encoder is compiled from the nodes its two Outputs need
and the decoder from those its Output needs, sharing the run's one module and weights
(:func:`~dlstudio.core.codegen.part_plan`). A step encodes the batch, draws
z = mu + exp(logvar / 2) * eps with eps from the task's seeded generator (checkpointed, so a
run resumes bit-exactly), decodes z and minimises reconstruction + beta * KL with one
optimizer, where beta rises linearly from 0 to ``kl_weight`` over ``kl_warmup_epochs``.
Both terms are sums over a sample's values, averaged over the batch: the reconstruction
error is binary cross-entropy of the decoder's logits (``loss: bce``) or the squared error of
its values (``mse``), and KL is that of N(mu, exp(logvar)) from N(0, I). The step reports
``reconstruction``, ``kl`` and ``total``; validation ``val_loss`` (reconstruction +
kl_weight * KL) with ``val_loss/reconstruction`` and ``val_loss/kl``.

The data is scaled from its range to [0, 1]; images are mapped back to the data's original
range (digits: 0..16), recorded in the run as ``sample_range``. After each epoch
``reconstructions/epoch-NNN.png`` shows validation images beside their reconstructions (from
z = mu) and ``samples/epoch-NNN.png`` decodes fixed draws of z ~ N(0, I); ``dlstudio sample``
decodes fresh ones. With ``--nproc`` the gradients are averaged over the processes, as the
gan task does.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dlstudio.core.analysis import Analysis
from dlstudio.core.io import graph_from_dict
from dlstudio.core.training import TrainingConfig, VaeConfig
from dlstudio.train.data import DataSplit, load_data
from dlstudio.train.errors import ConfigError
from dlstudio.train.images import grid_png
from dlstudio.train.parts import Parts, check_graph
from dlstudio.train.tasks.base import TOTAL, Task
from dlstudio.train.tasks.gan import part_module


class VaeTask(Task):
    """Reconstruction and KL over an encoder and a decoder, one optimizer over both."""

    name = "vae"
    through_ddp = False

    def __init__(self, parts: Parts) -> None:
        super().__init__(parts)
        config = parts.config
        self.settings = vae_settings(config)
        settings = self.settings
        self.encoder = part_module(parts.module, parts.analysis, settings.mu or "", settings.logvar or "")
        self.images = DecoderSampler.of(parts.module, parts.analysis, self.settings,
                                        parts.data.arrays.info["sample_range"])
        self.noise = torch.Generator().manual_seed(config.seed)
        self.steps = 0
        shape = self.images.latent_shape
        fixed = torch.Generator().manual_seed(config.seed + 1)
        self.fixed = torch.randn((self.settings.grid, *shape), generator=fixed)
        draws = torch.Generator().manual_seed(config.seed + 2)
        self.val_noise = torch.randn((parts.data.val_size, *shape), generator=draws).to(parts.device)
        shown = parts.val_inputs[0] if parts.data.val_size else parts.train_inputs[0]
        self.shown = shown[: self.settings.grid // 2]

    # -- data --------------------------------------------------------------------------------------

    @classmethod
    def load_data(cls, config: TrainingConfig, base_dir: Path | None) -> DataSplit:
        """The dataset with the data field scaled to [0, 1]; its original range recorded."""
        data = load_data(config.dataset, config.validation_split, config.seed, base_dir)
        field = config.dataset.inputs[vae_settings(config).data or ""]
        values = data.arrays.fields[field]
        low, high = float(values.min()), float(values.max())
        span = high - low or 1.0
        scaled = [{**part, field: (part[field] - low) / span} for part in (data.train, data.val)]
        original = data.arrays.info.get("original_range", {}).get(field, [low, high])
        arrays = dataclasses.replace(data.arrays, info={**data.arrays.info, "sample_range": list(original)})
        return DataSplit(scaled[0], scaled[1], arrays)

    @classmethod
    def sampler(cls, module: nn.Module, record: dict[str, Any]) -> DecoderSampler:
        config = TrainingConfig.model_validate(record["config"])
        analysis, config = check_graph(graph_from_dict(record["graph"], "the run record"), config)
        sample_range = record.get("data", {}).get("sample_range", [0.0, 1.0])
        return DecoderSampler.of(module, analysis, vae_settings(config), sample_range)

    # -- what the trainer asks ---------------------------------------------------------------------

    def step(self, index: torch.Tensor) -> dict[str, torch.Tensor]:
        data = self.parts.train_inputs[0][index]
        eps = self.draw_share(self.noise, len(data), self.images.latent_shape)
        with self.parts.autocast():
            reconstruction, kl = self._terms(data, eps)
        total = reconstruction + self.kl_weight() * kl
        self.optimize(total, "model")
        self.steps += 1
        return {TOTAL: total.detach(), "reconstruction": reconstruction.detach(), "kl": kl.detach()}

    def kl_weight(self) -> float:
        """beta of this step: ``kl_weight``, reached linearly over ``kl_warmup_epochs``."""
        warmup = self.settings.kl_warmup_epochs * len(self.parts.batches)
        return self.settings.kl_weight * min(1.0, self.steps / warmup) if warmup else self.settings.kl_weight

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Both terms over the validation data, each sample with its own eps drawn from the
        seed, summed over every process's share; ``val_loss`` weighs KL fully."""
        p = self.parts
        p.module.eval()
        sums = torch.zeros(3, dtype=torch.float64)
        for index in p.val_batches:
            data = p.val_inputs[0][index]
            with p.autocast():
                reconstruction, kl = self._terms(data, self.val_noise[index])
            sums += torch.tensor([reconstruction.item() * len(data), kl.item() * len(data), len(data)],
                                 dtype=torch.float64)
        p.module.train()
        reconstruction, kl = self.global_means(sums)
        return {"val_loss": reconstruction + self.settings.kl_weight * kl,
                "val_loss/reconstruction": reconstruction, "val_loss/kl": kl}

    def sample(self, count: int, seed: int, **options: Any) -> np.ndarray:
        return self.images.sample(count, seed)

    def epoch_files(self, epoch: int) -> dict[str, bytes]:
        """Validation images beside their reconstructions, and images decoded from fixed z."""
        low, high = self.images.range
        return {f"reconstructions/epoch-{epoch:03d}.png": grid_png(self._pairs(), low, high),
                f"samples/epoch-{epoch:03d}.png": grid_png(self.images.draw(self.fixed), low, high)}

    def state_dict(self) -> dict[str, Any]:
        return {"noise": self.noise.get_state(), "steps": self.steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "noise" in state:
            self.noise.set_state(state["noise"])
            self.steps = int(state["steps"])

    # -- the step's parts --------------------------------------------------------------------------

    def _terms(self, data: torch.Tensor, eps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch's mean reconstruction error and KL, each summed over a sample's values."""
        mu, logvar = self.encoder(data)
        mu, logvar = mu.float(), logvar.float()
        made = self.images.decoder(mu + torch.exp(0.5 * logvar) * eps)
        return reconstruction_error(made.float(), data.float(), self.settings.loss), kl_divergence(mu, logvar)

    @torch.no_grad()
    def _pairs(self) -> np.ndarray:
        """The shown images, each followed by its reconstruction from z = mu."""
        was_training = self.parts.module.training
        self.parts.module.eval()
        mu, _ = self.encoder(self.shown)
        self.parts.module.train(was_training)
        made = self.images.draw(mu)
        low, high = self.images.range
        shown = (low + self.shown.float() * (high - low)).cpu().numpy()
        return np.stack([shown, made], axis=1).reshape(-1, *made.shape[1:])


def reconstruction_error(made: torch.Tensor, data: torch.Tensor, loss: str) -> torch.Tensor:
    """Binary cross-entropy of logits ``made`` (``bce``) or squared error, summed over each
    sample's values and averaged over the batch."""
    if loss == "bce":
        error = F.binary_cross_entropy_with_logits(made, data, reduction="none")
    else:
        error = (made - data) ** 2
    return error.flatten(1).sum(dim=1).mean()


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)), summed over each sample's latent, averaged over the batch."""
    return (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp())).flatten(1).sum(dim=1).mean()


def vae_settings(config: TrainingConfig) -> VaeConfig:
    if config.vae is None:
        raise ConfigError("a VAE needs training.vae to name its encoder's and decoder's nodes")
    return config.vae


@dataclass
class DecoderSampler:
    """Decodes draws of z ~ N(0, I) into images in the data's original value range."""

    decoder: nn.Module
    latent_shape: tuple[int, ...]
    logits: bool
    low: float
    high: float

    @classmethod
    def of(cls, module: nn.Module, analysis: Analysis, settings: VaeConfig,
           sample_range: list[float]) -> DecoderSampler:
        shape = analysis.ports[(settings.latent or "", "output")].shape[1:]
        decoder = part_module(module, analysis, settings.decoder or "")
        low, high = sample_range
        return cls(decoder, tuple(int(d) for d in shape), settings.loss == "bce", float(low), float(high))

    @property
    def range(self) -> tuple[float, float]:
        return self.low, self.high

    def sample(self, count: int, seed: int, **options: Any) -> np.ndarray:
        """``count`` images N x C x H x W; the same seed gives the same images."""
        z = torch.randn((count, *self.latent_shape), generator=torch.Generator().manual_seed(seed))
        return self.draw(z)

    @torch.no_grad()
    def draw(self, z: torch.Tensor) -> np.ndarray:
        was_training = self.decoder.training
        self.decoder.eval()
        device = next(self.decoder.parameters()).device
        made = self.decoder(z.to(device)).float()
        self.decoder.train(was_training)
        unit = made.sigmoid() if self.logits else made.clamp(0, 1)
        return (self.low + unit * (self.high - self.low)).cpu().numpy().astype(np.float32)
