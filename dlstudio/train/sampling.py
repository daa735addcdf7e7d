"""``dlstudio sample RUN_DIR``: draw samples from a trained run, as its task draws them.

The network is the run's graph snapshot with its final weights (model.safetensors, else the
newest checkpoint); the record says how the run was set up (a language model's vocabulary, an
image generator's value range). A language model prints the prompt's continuations, or writes
them to a ``.txt`` file; an image generator (a GAN, a VAE; a diffusion model, by DDPM or, with
``--steps K``, by DDIM in K steps, with its weights' moving average where the run kept one)
writes a grid (``.png``) or an array ``samples`` N x C x H x W in the data's original value
range (``.npz``). A run whose task cannot sample says so in one line (exit 1). The app draws
through :func:`draw_to_view`.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dlstudio.core.io import graph_from_dict, write_atomic
from dlstudio.core.training import DEFAULT_TASK, TASKS, TrainingConfig
from dlstudio.exits import UsageError
from dlstudio.train.errors import TrainError
from dlstudio.train.exporting import trained_module
from dlstudio.train.images import grid_png, npz_bytes
from dlstudio.train.rundir import RunDir
from dlstudio.train.tasks import Task, task_class
from dlstudio.train.tasks.language_model import DEFAULT_LENGTH, sampling_options

#: What image samples are written as: a grid, or the array.
IMAGE_SUFFIXES = (".png", ".npz")
#: How many samples the app draws at a time: texts (of VIEW_LENGTH tokens), or images in a grid.
VIEW_TEXTS, VIEW_LENGTH, VIEW_IMAGES = 3, DEFAULT_LENGTH, 64


def add_sample_command(commands: Any) -> None:
    parser = commands.add_parser("sample", help="draw samples from a trained run (a language model's text, "
                                                "a GAN's, a VAE's or a diffusion model's images)")
    parser.add_argument("run", metavar="RUN_DIR", help="a run folder (runs/<name>-<timestamp>)")
    parser.add_argument("--n", type=int, default=1, help="how many samples (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="random seed: the same seed, the same samples")
    parser.add_argument("--prompt", default="", help="text to continue (default: a new line)")
    parser.add_argument("--length", type=int, default=DEFAULT_LENGTH,
                        help=f"tokens to add after the prompt (default {DEFAULT_LENGTH})")
    parser.add_argument("--temperature", type=float, default=1.0,
                        help="below 1: safer choices, above 1: wilder; 0 always takes the likeliest")
    parser.add_argument("--top-k", type=int, help="choose among the K likeliest tokens only")
    parser.add_argument("--top-p", type=float, default=1.0,
                        help="choose among the likeliest tokens whose probabilities add up to P")
    parser.add_argument("--steps", type=int, help="a diffusion model: draw by DDIM in K steps (default: DDPM, "
                                                  "all of its timesteps)")
    parser.add_argument("-o", "--output", metavar="FILE",
                        help="text: write a .txt file instead of printing; images: a grid (.png) or "
                             "an array 'samples' N x C x H x W (.npz)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.set_defaults(handler=sample_command)


def sample_command(args: argparse.Namespace) -> int:
    _check_options(args)
    try:
        steps = {} if args.steps is None else {"steps": args.steps}
        samples = sample_run(RunDir(args.run), args.n, args.seed, prompt=args.prompt, length=args.length,
                             temperature=args.temperature, top_k=args.top_k, top_p=args.top_p, **steps)
        if isinstance(samples, np.ndarray):
            _write_images(samples, args.output, RunDir(args.run))
        else:
            _write_texts(samples, args.output)
    except TrainError as error:
        advice = f" ({error.advice})" if error.advice else ""
        print(f"dlstudio: {error}{advice}", file=sys.stderr)
        return error.exit_code
    return 0


def _write_texts(texts: list[str], output: str | None) -> None:
    if output and Path(output).suffix.lower() != ".txt":
        raise UsageError(f"{output}: a language model writes text: give a .txt file")
    text = "".join(_shown(texts))
    if output:
        write_atomic(Path(output), text.encode("utf-8"))
        _wrote(output, len(texts))
    else:
        sys.stdout.write(text)


def _write_images(images: np.ndarray, output: str | None, run_dir: RunDir) -> None:
    suffix = Path(output).suffix.lower() if output else ""
    if suffix not in IMAGE_SUFFIXES:
        raise UsageError(f"{output or 'no output file'}: a generator draws images: give -o grid.png "
                         "or -o samples.npz")
    if suffix == ".png":
        low, high = run_dir.read_record().get("data", {}).get("sample_range", [0.0, 1.0])
        write_atomic(Path(output or ""), grid_png(images, float(low), float(high)))
    else:
        write_atomic(Path(output or ""), npz_bytes(images))
    _wrote(output or "", len(images))


def _wrote(output: str, count: int) -> None:
    print(f"wrote {output} ({count} sample{'s' if count > 1 else ''})", file=sys.stderr)


def sample_run(run_dir: RunDir, count: int, seed: int, **options: Any) -> list[str] | np.ndarray:
    """``count`` samples from the run in ``run_dir``, drawn by its task's sampler: texts, or
    images N x C x H x W."""
    record = run_dir.read_record()
    name = run_dir.parse_config(record).task or DEFAULT_TASK
    if "steps" in options and name != "diffusion":
        raise UsageError(f"--steps picks a diffusion model's sampler, and this is a {name} run")
    task = task_class(name)
    from dlstudio.core.analysis import analyze

    graph = graph_from_dict(record["graph"], str(run_dir.path))
    module = trained_module(analyze(graph), run_dir)
    averaged = task.sampling_weights(run_dir)
    if averaged is not None:
        module.load_state_dict(averaged)
    return task.sampler(module, record).sample(count, seed, **options)


def _check_options(args: argparse.Namespace) -> None:
    for name in ("n", "length", "top_k", "steps"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be at least 1")
    if not args.temperature >= 0:
        raise UsageError("--temperature must be 0 or more")
    if not 0 < args.top_p <= 1:
        raise UsageError("--top-p must be above 0 and at most 1")
    if args.output and Path(args.output).suffix.lower() not in (".txt", *IMAGE_SUFFIXES):
        raise UsageError(f"{args.output}: give a .txt file (text), a .png grid or a .npz array (images)")


def _shown(texts: list[str]) -> list[str]:
    """One sample as it is; several each under a header line."""
    ended = [t if t.endswith("\n") else t + "\n" for t in texts]
    if len(ended) == 1:
        return ended
    return [f"--- sample {i} ---\n{t}" for i, t in enumerate(ended, start=1)]


# --- for the app ----------------------------------------------------------------------------------

def sample_refusal(task: str) -> str | None:
    """Why a run of ``task`` cannot be sampled, in a line; None when its task draws samples."""
    if task not in TASKS:
        return f"task '{task}' is not known to this DL Studio"
    if _samples(task):
        return None
    generative = ", ".join(t for t in TASKS if _samples(t))
    return f"a {task.replace('_', ' ')} run has nothing to sample: sampling needs a generative task ({generative})"


def _samples(task: str) -> bool:
    """Whether ``task``'s class says how to sample a finished run."""
    return task_class(task).sampler.__func__ is not Task.sampler.__func__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Drawn:
    """Samples drawn to look at: a grid of images (``png``) or ``texts``, by ``seed``."""

    seed: int
    png: bytes = b""
    texts: tuple[str, ...] = ()


def draw_to_view(run_dir: RunDir, seed: int) -> Drawn:
    """A few texts, or a grid of images, drawn from a finished or stopped run as its task draws
    them (a language model with the run's own temperature and top-k)."""
    record = run_dir.read_record()
    config = TrainingConfig.model_validate(record["config"])
    text = config.task == "language_model"
    options = {**sampling_options(config), "length": VIEW_LENGTH} if text else {}
    samples = sample_run(run_dir, VIEW_TEXTS if text else VIEW_IMAGES, seed, **options)
    if not isinstance(samples, np.ndarray):
        return Drawn(seed, texts=tuple(samples))
    low, high = record.get("data", {}).get("sample_range", [0.0, 1.0])
    return Drawn(seed, png=grid_png(samples, float(low), float(high)))
