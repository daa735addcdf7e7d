"""The diffusion task: denoising diffusion (DDPM) with the noise-prediction objective.

The network reads an image x_t and its timestep t (two Inputs: :func:`~dlstudio.core.
diffusion_checks.diffusion_roles` says which is which) and predicts the noise eps in
x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps. A step draws t uniformly from 0..T-1 and fresh
noise for each image, from the task's own generator (seeded and checkpointed, so runs resume
bit for bit), and minimises the mean squared error of the prediction. ``training.diffusion``
picks the schedule (linear betas, or cosine), T, and an optional moving average (EMA) of the
weights that samples are drawn with; the average is checkpointed and saved as ``ema.safetensors``
after each epoch, which ``dlstudio sample`` then uses.

Sampling runs the reverse process from pure noise: DDPM's T steps, or DDIM's deterministic
K-step jump (``steps=K``); both clip the predicted x_0 to [-1, 1]. Images are trained in [-1, 1]
and samples mapped back to the data's original range (digits: 0..16). After each epoch a grid
drawn by DDIM from fixed noise is saved as ``samples/epoch-NNN.png``.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dlstudio.core.analysis import Analysis
from dlstudio.core.diffusion_checks import diffusion_roles
from dlstudio.core.io import graph_from_dict, special_file_problem
from dlstudio.core.training import DiffusionConfig, TrainingConfig, diffusion_settings
from dlstudio.train.data import DataSplit, load_data
from dlstudio.train.errors import ConfigError, RunDirError
from dlstudio.train.images import grid_png
from dlstudio.train.parts import Parts, check_graph
from dlstudio.train.rundir import RunDir
from dlstudio.train.tasks.base import TOTAL, Task
from dlstudio.train.tasks.gan import HIGH, LOW, scaled_to_tanh_range

#: The moving average of the weights, written after each epoch when training.diffusion.ema_decay > 0.
EMA_FILE = "ema.safetensors"
#: The cosine schedule's offset s and its largest beta (Nichol and Dhariwal 2021).
COSINE_OFFSET, MAX_BETA = 0.008, 0.999


class DiffusionTask(Task):
    """Noise prediction at a random timestep: one optimizer over the whole network."""

    name = "diffusion"
    #: Under --nproc the module is not wrapped in DDP: optimize averages the gradients, and each
    #: process keeps its share of the global batch's timesteps and noise (see draw_share).
    through_ddp = False

    def __init__(self, parts: Parts) -> None:
        super().__init__(parts)
        config = parts.config
        self.settings = diffusion_settings(config)
        self.schedule = NoiseSchedule.of(self.settings, parts.device)
        self.denoiser = Denoiser.of(parts.module, parts.analysis, config)
        self.noise = torch.Generator().manual_seed(config.seed)
        self.average = WeightAverage(parts.module, self.settings.ema_decay) if self.settings.ema_decay else None
        shape = image_shape(parts.analysis, config)
        fixed = torch.Generator().manual_seed(config.seed + 1)
        self.fixed = torch.randn((self.settings.grid, *shape), generator=fixed)
        draws = torch.Generator().manual_seed(config.seed + 2)  # one per validation sample, any process count
        self.val_t = torch.randint(0, self.settings.timesteps, (parts.data.val_size,), generator=draws)
        self.val_noise = torch.randn((parts.data.val_size, *shape), generator=draws)

    # -- data --------------------------------------------------------------------------------------

    @classmethod
    def load_data(cls, config: TrainingConfig, base_dir: Path | None) -> DataSplit:
        """The dataset with the image field scaled to [-1, 1]; its original range recorded."""
        data = load_data(config.dataset, config.validation_split, config.seed, base_dir)
        return scaled_to_tanh_range(data, next(iter(config.dataset.inputs.values())))

    @classmethod
    def sampler(cls, module: nn.Module, record: dict[str, Any]) -> DiffusionSampler:
        config = TrainingConfig.model_validate(record["config"])
        analysis, config = check_graph(graph_from_dict(record["graph"], "the run record"), config)
        low, high = record.get("data", {}).get("sample_range", [LOW, HIGH])
        schedule = NoiseSchedule.of(diffusion_settings(config), next(module.parameters()).device)
        return DiffusionSampler(Denoiser.of(module, analysis, config), schedule, image_shape(analysis, config),
                                float(low), float(high))

    @classmethod
    def sampling_weights(cls, run_dir: RunDir) -> dict[str, torch.Tensor] | None:
        """The moving average of the weights, where the run kept one."""
        from safetensors.torch import load_file

        path = run_dir.path / EMA_FILE
        problem = special_file_problem(path)
        if problem:
            raise RunDirError(f"{path}: {problem}")
        return load_file(str(path)) if path.is_file() else None

    # -- what the trainer asks ---------------------------------------------------------------------

    def step(self, index: torch.Tensor) -> dict[str, torch.Tensor]:
        p = self.parts
        images = p.train_inputs[0][index]
        world, count = p.world, len(index)
        t = torch.randint(0, self.settings.timesteps, (count * world.size,), generator=self.noise)[world.rank::world.size]
        noise = self.draw_share(self.noise, count, tuple(images.shape[1:]))
        with p.autocast():
            loss = self._loss(images, t.to(images.device), noise)
        self.optimize(loss, "model")
        if self.average is not None:
            self.average.update()
        return {TOTAL: loss.detach()}

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """The loss on the validation images, each at its own timestep and noise drawn from the
        seed, summed over every process's share."""
        p = self.parts
        p.module.eval()
        sums = torch.zeros(2, dtype=torch.float64)
        for index in p.val_batches:
            images = p.val_inputs[0][index]
            t, noise = self.val_t[index].to(images.device), self.val_noise[index].to(images.device)
            with p.autocast():
                loss = self._loss(images, t, noise)
            sums += torch.tensor([float(loss) * len(images), len(images)], dtype=torch.float64)
        p.module.train()
        (mean,) = self.global_means(sums)
        return {"val_loss": mean}

    def sample(self, count: int, seed: int, **options: Any) -> np.ndarray:
        return self._sampler().sample(count, seed, **options)

    def epoch_files(self, epoch: int) -> dict[str, bytes]:
        """The grid of this epoch drawn by DDIM from fixed noise, and the weights' average."""
        sampler = self._sampler()
        images = sampler.draw(self.fixed, min(self.settings.grid_steps, self.settings.timesteps))
        files = {f"samples/epoch-{epoch:03d}.png": grid_png(images, sampler.low, sampler.high)}
        if self.average is not None:
            from safetensors.torch import save

            files[EMA_FILE] = save({k: v.detach().cpu().contiguous() for k, v in self.average.state().items()})
        return files

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"noise": self.noise.get_state()}
        if self.average is not None:
            state["ema"] = self.average.state()
            state["ema_updates"] = self.average.updates
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "noise" in state:
            self.noise.set_state(state["noise"])
        if self.average is not None and "ema" in state:
            self.average.load(state["ema"], int(state["ema_updates"]))

    # -- the step's parts --------------------------------------------------------------------------

    def _loss(self, images: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Mean squared error of the noise the network predicts in ``images`` noised with
        ``noise`` at timesteps ``t``."""
        return F.mse_loss(self.denoiser(self.schedule.add_noise(images, noise, t), t).float(), noise)

    def _sampler(self) -> DiffusionSampler:
        low, high = self.parts.data.arrays.info["sample_range"]
        denoiser = self.denoiser if self.average is None else self.denoiser.on(self.average.module)
        return DiffusionSampler(denoiser, self.schedule, tuple(self.fixed.shape[1:]), float(low), float(high))


# --- the schedule --------------------------------------------------------------------------------

@dataclass(frozen=True)
class NoiseSchedule:
    """The betas of T noise levels and what follows from them (float32, on the device)."""

    betas: torch.Tensor
    alphas_cumprod: torch.Tensor

    @classmethod
    def of(cls, settings: DiffusionConfig, device: torch.device | None = None) -> NoiseSchedule:
        """Linear betas (DDPM) or the cosine schedule, computed in float64."""
        steps = settings.timesteps
        if settings.schedule == "linear":
            betas = torch.linspace(settings.beta_start, settings.beta_end, steps, dtype=torch.float64)
        else:
            t = torch.arange(steps + 1, dtype=torch.float64) / steps
            signal = torch.cos((t + COSINE_OFFSET) / (1 + COSINE_OFFSET) * math.pi / 2) ** 2
            betas = (1 - signal[1:] / signal[:-1]).clamp(max=MAX_BETA)
        alphas_cumprod = torch.cumprod(1 - betas, dim=0)
        return cls(betas.float().to(device), alphas_cumprod.float().to(device))

    @property
    def timesteps(self) -> int:
        return len(self.betas)

    def add_noise(self, images: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, per image."""
        abar = self.alphas_cumprod[t].view(-1, *(1,) * (images.dim() - 1))
        return abar.sqrt() * images + (1 - abar).sqrt() * noise


# --- the network and its average -------------------------------------------------------------------

@dataclass
class Denoiser:
    """The network as eps(x_t, t): its two Inputs in the order ``forward`` takes them, the
    timestep in the Input's dtype, and the predicting Output among several."""

    module: nn.Module
    image_first: bool
    timestep_dtype: torch.dtype
    output_index: int | None

    @classmethod
    def of(cls, module: nn.Module, analysis: Analysis, config: TrainingConfig) -> Denoiser:
        roles = diffusion_roles(config, analysis)
        inputs = [n.id for n in analysis.graph.nodes_of_type("Input")]
        if sorted(inputs) != sorted([roles.image, roles.timestep]):
            raise ConfigError(f"a diffusion network reads the image and the timestep, but this one reads "
                              f"{', '.join(inputs)}", "keep one image Input and one timestep Input")
        outputs = [n.id for n in analysis.graph.nodes_of_type("Output")]
        dtype = getattr(torch, analysis.ports[(roles.timestep or "", "output")].dtype)
        return cls(module, inputs.index(roles.image or "") == 0, dtype,
                   outputs.index(roles.output or "") if len(outputs) > 1 else None)

    def on(self, module: nn.Module) -> Denoiser:
        """The same network with other weights (a copy of the module)."""
        return Denoiser(module, self.image_first, self.timestep_dtype, self.output_index)

    def __call__(self, images: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        t = t.to(self.timestep_dtype)
        made = self.module(images, t) if self.image_first else self.module(t, images)
        return made if self.output_index is None else made[self.output_index]


class WeightAverage:
    """An exponential moving average of a module's floating-point parameters and buffers, in a
    copy of it. Its decay warms up as min(decay, (1 + n) / (10 + n)) after n updates, so the
    average soon forgets the initial weights."""

    def __init__(self, module: nn.Module, decay: float) -> None:
        self.decay, self.updates = decay, 0
        self.module = copy.deepcopy(module).eval().requires_grad_(False)
        pairs = [(mine, theirs) for mine, theirs in zip(self.module.state_dict().values(),
                                                           module.state_dict().values(), strict=True)]
        self.averaged = [m for m, t in pairs if t.is_floating_point()]
        self.live = [t for m, t in pairs if t.is_floating_point()]
        self.copied = [(m, t) for m, t in pairs if not t.is_floating_point()]

    @torch.no_grad()
    def update(self) -> None:
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        torch._foreach_lerp_(self.averaged, self.live, 1 - decay)
        for mine, theirs in self.copied:
            mine.copy_(theirs)

    def state(self) -> dict[str, torch.Tensor]:
        """The averaged weights by state_dict key."""
        return self.module.state_dict()

    def load(self, state: dict[str, torch.Tensor], updates: int) -> None:
        self.module.load_state_dict(state)
        self.updates = updates


# --- sampling ----------------------------------------------------------------------------------------

def image_shape(analysis: Analysis, config: TrainingConfig) -> tuple[int, ...]:
    """The image Input's per-sample shape, which must be fixed sizes."""
    image = diffusion_roles(config, analysis).image or ""
    shape = analysis.ports[(image, "output")].shape[1:]
    if not all(isinstance(d, int) for d in shape):
        raise ConfigError(f"the image Input '{image}' has shape {list(shape)}", "give it fixed sizes, such as [1, 8, 8]")
    return tuple(int(d) for d in shape)


@dataclass
class DiffusionSampler:
    """Draws images by running the reverse process from pure noise, in the data's original
    value range."""

    denoiser: Denoiser
    schedule: NoiseSchedule
    shape: tuple[int, ...]
    low: float
    high: float

    def sample(self, count: int, seed: int, steps: int | None = None, **options: Any) -> np.ndarray:
        """``count`` images N x C x H x W: by DDPM (all T steps), or by DDIM in ``steps``; the
        same seed gives the same images."""
        if steps is not None and not 1 <= steps <= self.schedule.timesteps:
            raise ConfigError(f"{steps} sampling steps asked of a model of {self.schedule.timesteps} timesteps",
                              f"use from 1 to {self.schedule.timesteps} steps")
        generator = torch.Generator().manual_seed(seed)
        noise = torch.randn((count, *self.shape), generator=generator)
        return self.draw(noise, steps, generator)

    @torch.no_grad()
    def draw(self, noise: torch.Tensor, steps: int | None = None,
             generator: torch.Generator | None = None) -> np.ndarray:
        """Images from ``noise``: DDIM with ``steps`` steps, or DDPM (drawing from ``generator``)."""
        module = self.denoiser.module
        was_training = module.training
        module.eval()
        device = next(module.parameters()).device
        x = noise.to(device)
        if steps is None:
            made = self._ddpm(x, generator or torch.Generator().manual_seed(0))
        else:
            made = self._ddim(x, steps)
        module.train(was_training)
        unit = (made.float().clamp(LOW, HIGH) - LOW) / (HIGH - LOW)
        return (self.low + unit * (self.high - self.low)).cpu().numpy().astype(np.float32)

    def _clean(self, x: torch.Tensor, t: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The network's x_0 for x_t (clipped to [-1, 1]) and the noise that goes with it."""
        abar = self.schedule.alphas_cumprod[t]
        eps = self.denoiser(x, torch.full((len(x),), t, device=x.device)).float()
        x0 = ((x - (1 - abar).sqrt() * eps) / abar.sqrt()).clamp(LOW, HIGH)
        return x0, (x - abar.sqrt() * x0) / (1 - abar).sqrt()

    def _ddpm(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Ancestral sampling: the posterior q(x_{t-1} | x_t, x_0) with its variance, T steps."""
        betas, abar = self.schedule.betas, self.schedule.alphas_cumprod
        for t in range(self.schedule.timesteps - 1, -1, -1):
            x0, _ = self._clean(x, t)
            before = abar[t - 1] if t > 0 else torch.ones((), device=x.device)
            mean = (before.sqrt() * betas[t] * x0 + (1 - betas[t]).sqrt() * (1 - before) * x) / (1 - abar[t])
            if t == 0:
                return mean
            spread = (betas[t] * (1 - before) / (1 - abar[t])).sqrt()
            x = mean + spread * torch.randn(x.shape, generator=generator).to(x.device)
        return x

    def _ddim(self, x: torch.Tensor, steps: int) -> torch.Tensor:
        """DDIM without added noise (eta 0) over ``steps`` timesteps spread from T-1 to 0."""
        abar = self.schedule.alphas_cumprod
        times = torch.linspace(self.schedule.timesteps - 1, 0, steps).round().long().tolist()
        for i, t in enumerate(times):
            x0, eps = self._clean(x, t)
            if i + 1 == len(times):
                return x0
            after = abar[times[i + 1]]
            x = after.sqrt() * x0 + (1 - after).sqrt() * eps
        return x
