"""The gan task: a generator and a discriminator, two Output-rooted parts of one graph.

``training.gan`` names the parts (:class:`~dlstudio.core.training.GanConfig`). Each part is
compiled as its own module from the nodes its Output depends on, sharing the whole module's
layers, so a step computes D(G(z)) and the run saves one state_dict. A step updates the
discriminator ``discriminator_steps`` times on the batch's real data and fresh noise, then the
generator once, each with its own optimizer (``training.optimizer``'s type with the part's
learning rate and Adam's ``betas``, DCGAN's (0.5, 0.999) by default). Losses: non-saturating
(default), hinge, or WGAN with a gradient penalty. The step reports ``discriminator``,
``generator`` and ``total``, their sum.

The real data is scaled from its range to [-1, 1] (what a Tanh gives); samples are mapped back
to the data's original range (digits: 0..16), recorded in the run as ``sample_range``. Noise
comes from the task's own generator, seeded and checkpointed, so runs resume bit-exactly.
After each epoch a grid drawn from fixed noise is saved as ``samples/epoch-NNN.png``.

With ``--nproc`` each process steps both optimizers on its share of the global batch, with
the gradients averaged over the processes (:attr:`Task.through_ddp`), so every process keeps
the same weights. Every process draws the global batch's noise and takes its share, so the
noise stream (and a checkpoint of it) is one for all of them; validation noise is drawn per
sample, so validation gives the same numbers on any number of processes.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dlstudio.core.analysis import Analysis
from dlstudio.core.codegen import part_plan, plan_module
from dlstudio.core.compiler import build_module
from dlstudio.core.io import graph_from_dict
from dlstudio.core.training import GanConfig, TrainingConfig
from dlstudio.train.data import DataSplit, load_data
from dlstudio.train.data.lazy import in_memory
from dlstudio.train.errors import ConfigError
from dlstudio.train.images import grid_png
from dlstudio.train.parts import Parts, check_graph
from dlstudio.train.tasks.base import TOTAL, OptimizerPlan, Task

#: The range the generator's output is trained to (a Tanh's).
LOW, HIGH = -1.0, 1.0


class GanTask(Task):
    """Alternating discriminator and generator steps over two parts of one network."""

    name = "gan"
    through_ddp = False

    def __init__(self, parts: Parts) -> None:
        super().__init__(parts)
        config = parts.config
        self.settings = gan_settings(config)
        self.generator = part_module(parts.module, parts.analysis, self.settings.generator)
        self.discriminator = part_module(parts.module, parts.analysis, self.settings.discriminator)
        self.noise_shape = noise_shape(parts.analysis, self.settings)
        self.noise = torch.Generator().manual_seed(config.seed)
        self.fixed = self._draw(self.settings.grid, torch.Generator().manual_seed(config.seed + 1))
        self.val_noise = self._draw(parts.data.val_size, torch.Generator().manual_seed(config.seed + 2))
        self.losses = LOSSES[self.settings.loss]

    # -- data --------------------------------------------------------------------------------------

    @classmethod
    def load_data(cls, config: TrainingConfig, base_dir: Path | None) -> DataSplit:
        """The dataset with the real field scaled to [-1, 1]; its original range recorded."""
        data = load_data(config.dataset, config.validation_split, config.seed, base_dir)
        return scaled_to_tanh_range(data, config.dataset.inputs[gan_settings(config).real or ""])

    @classmethod
    def sampler(cls, module: nn.Module, record: dict[str, Any]) -> ImageSampler:
        config = TrainingConfig.model_validate(record["config"])
        analysis, config = check_graph(graph_from_dict(record["graph"], "the run record"), config)
        settings = gan_settings(config)
        generator = part_module(module, analysis, settings.generator)
        low, high = record.get("data", {}).get("sample_range", [LOW, HIGH])
        return ImageSampler(generator, noise_shape(analysis, settings), float(low), float(high))

    # -- what the trainer asks ---------------------------------------------------------------------

    def optimizers(self) -> dict[str, OptimizerPlan]:
        return {"discriminator": self._plan(self.discriminator, self.settings.discriminator_lr),
                "generator": self._plan(self.generator, self.settings.generator_lr)}

    def _plan(self, part: nn.Module, lr: float) -> OptimizerPlan:
        optimizer = self.parts.config.optimizer
        params = {**optimizer.params, "lr": lr}
        if "betas" in params:
            params["betas"] = self.settings.betas
        trainable = [t for t in part.parameters() if t.requires_grad]
        return OptimizerPlan(optimizer.model_copy(update={"params": params}), trainable)

    def step(self, index: torch.Tensor) -> dict[str, torch.Tensor]:
        real = self.parts.train_inputs[0][index]
        for _ in range(self.settings.discriminator_steps):
            d_loss = self._discriminator_loss(real, self.draw_share(self.noise, len(real), self.noise_shape),
                                              penalty=True)
            self.optimize(d_loss, "discriminator")
        with frozen(self.discriminator), self.parts.autocast():
            fake = self.generator(self.draw_share(self.noise, len(real), self.noise_shape))
            g_loss = self.losses.generator(self.discriminator(fake))
        self.optimize(g_loss, "generator")
        d_loss, g_loss = d_loss.detach(), g_loss.detach()
        return {TOTAL: d_loss + g_loss, "discriminator": d_loss, "generator": g_loss}

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """The two losses on the validation data (the gradient penalty left out), each sample
        with its own noise drawn from the seed; summed over every process's share."""
        p = self.parts
        p.module.eval()
        sums = torch.zeros(3, dtype=torch.float64)
        for index in p.val_batches:
            real = p.val_inputs[0][index]
            with p.autocast():
                fake = self.generator(self.val_noise[index])
                d_loss = self.losses.discriminator(self.discriminator(real), self.discriminator(fake))
                g_loss = self.losses.generator(self.discriminator(fake))
            sums += torch.tensor([d_loss.item() * len(real), g_loss.item() * len(real), len(real)],
                                 dtype=torch.float64)
        p.module.train()
        d_mean, g_mean = self.global_means(sums)
        return {"val_loss": d_mean + g_mean, "val_loss/generator": g_mean, "val_loss/discriminator": d_mean}

    def sample(self, count: int, seed: int, **options: Any) -> np.ndarray:
        return self._sampler().sample(count, seed)

    def epoch_files(self, epoch: int) -> dict[str, bytes]:
        """The fixed-noise grid of this epoch."""
        images = self._sampler().draw(self.fixed)
        return {f"samples/epoch-{epoch:03d}.png": grid_png(images, *self._sampler().range)}

    def state_dict(self) -> dict[str, Any]:
        return {"noise": self.noise.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "noise" in state:
            self.noise.set_state(state["noise"])

    # -- the step's parts --------------------------------------------------------------------------

    def _draw(self, count: int, generator: torch.Generator) -> torch.Tensor:
        return torch.randn((count, *self.noise_shape), generator=generator).to(self.parts.device)

    def _discriminator_loss(self, real: torch.Tensor, noise: torch.Tensor, penalty: bool) -> torch.Tensor:
        with self.parts.autocast():
            with torch.no_grad():
                fake = self.generator(noise)
            loss = self.losses.discriminator(self.discriminator(real), self.discriminator(fake))
        if penalty and self.settings.loss == "wgan_gp" and self.settings.gradient_penalty:
            loss = loss + self.settings.gradient_penalty * self._gradient_penalty(real, fake)
        return loss

    def _gradient_penalty(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """Mean of (|grad D(x)| - 1)^2 at points x between real and fake samples."""
        mix = self.draw_share(self.noise, len(real), (1,) * (real.dim() - 1), uniform=True)
        between = (mix * real.float() + (1 - mix) * fake.float()).requires_grad_(True)
        score = self.discriminator(between)
        [grad] = torch.autograd.grad(score.sum(), between, create_graph=True)
        return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()

    def _sampler(self) -> ImageSampler:
        low, high = self.parts.data.arrays.info["sample_range"]
        return ImageSampler(self.generator, self.noise_shape, float(low), float(high))


def scaled_to_tanh_range(data: DataSplit, field: str) -> DataSplit:
    """``data`` with ``field`` scaled from its range to [-1, 1]; the range samples are mapped
    back to (the data's original one where the loader recorded it) kept as ``sample_range``.
    Images read lazily from files are decoded whole first (a generator's data is small)."""
    data = in_memory(data)
    values = data.arrays.fields[field]
    low, high = float(values.min()), float(values.max())
    span = high - low or 1.0
    scaled = [{**part, field: (part[field] - low) / span * (HIGH - LOW) + LOW} for part in (data.train, data.val)]
    original = data.arrays.info.get("original_range", {}).get(field, [low, high])
    arrays = dataclasses.replace(data.arrays, info={**data.arrays.info, "sample_range": list(original)})
    return DataSplit(scaled[0], scaled[1], arrays)


# --- losses -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class GanLosses:
    """The discriminator's loss from its scores of real and fake samples, and the generator's
    from its scores of fakes (scores are logits, one per sample)."""

    discriminator: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    generator: Callable[[torch.Tensor], torch.Tensor]


LOSSES = {
    "non_saturating": GanLosses(lambda real, fake: F.softplus(-real.float()).mean() + F.softplus(fake.float()).mean(),
                                lambda fake: F.softplus(-fake.float()).mean()),
    "hinge": GanLosses(lambda real, fake: F.relu(1 - real.float()).mean() + F.relu(1 + fake.float()).mean(),
                       lambda fake: -fake.float().mean()),
    "wgan_gp": GanLosses(lambda real, fake: fake.float().mean() - real.float().mean(),
                         lambda fake: -fake.float().mean()),
}


# --- parts and sampling ---------------------------------------------------------------------------

def gan_settings(config: TrainingConfig) -> GanConfig:
    if config.gan is None:
        raise ConfigError("a GAN needs training.gan to name its generator and discriminator")
    return config.gan


def part_module(module: nn.Module, analysis: Analysis, *outputs: str) -> nn.Module:
    """The module computing the Outputs ``outputs`` alone, sharing ``module``'s layers."""
    return build_module(part_plan(plan_module(analysis), analysis, *outputs), shared=module)


def noise_shape(analysis: Analysis, settings: GanConfig) -> tuple[int, ...]:
    shape = analysis.ports[(settings.noise or "", "output")].shape[1:]
    if not all(isinstance(d, int) for d in shape):
        raise ConfigError(f"the noise Input '{settings.noise}' has shape {list(shape)}",
                          "give it fixed sizes, such as [64]")
    return tuple(int(d) for d in shape)


@contextlib.contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """No gradients for ``module``'s parameters inside (the generator's step skips the
    discriminator's weight gradients); each parameter's own setting comes back after."""
    before = [(t, t.requires_grad) for t in module.parameters()]
    for tensor, _ in before:
        tensor.requires_grad_(False)
    try:
        yield
    finally:
        for tensor, flag in before:
            tensor.requires_grad_(flag)


@dataclass
class ImageSampler:
    """Draws images from a trained generator, in the data's original value range."""

    generator: nn.Module
    noise_shape: tuple[int, ...]
    low: float
    high: float

    @property
    def range(self) -> tuple[float, float]:
        return self.low, self.high

    def sample(self, count: int, seed: int, **options: Any) -> np.ndarray:
        """``count`` images N x C x H x W; the same seed gives the same images."""
        noise = torch.randn((count, *self.noise_shape), generator=torch.Generator().manual_seed(seed))
        return self.draw(noise)

    @torch.no_grad()
    def draw(self, noise: torch.Tensor) -> np.ndarray:
        was_training = self.generator.training
        self.generator.eval()
        device = next(self.generator.parameters()).device
        made = self.generator(noise.to(device)).float().clamp(LOW, HIGH)
        self.generator.train(was_training)
        unit = (made - LOW) / (HIGH - LOW)
        return (self.low + unit * (self.high - self.low)).cpu().numpy().astype(np.float32)
