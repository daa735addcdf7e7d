"""Synthetic datasets, generated from the seed: 2-D classification, time series, token tasks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from dlstudio.train.data.arrays import Arrays

#: Targets the losses skip (torch's default ignore_index).
IGNORE = -100


def _moons(args: Any, seed: int, base_dir: Path) -> Arrays:
    rng = np.random.default_rng(seed)
    outer = args.samples // 2
    inner = args.samples - outer
    t_out, t_in = np.linspace(0, np.pi, outer), np.linspace(0, np.pi, inner)
    x = np.concatenate([np.stack([np.cos(t_out), np.sin(t_out)], 1),
                        np.stack([1 - np.cos(t_in), 0.5 - np.sin(t_in)], 1)])
    x += rng.normal(scale=args.noise, size=x.shape)
    y = np.concatenate([np.zeros(outer, np.int64), np.ones(inner, np.int64)])
    return Arrays({"x": x, "y": y}, classes={"y": 2}, standardize={"x": None})


def _spirals(args: Any, seed: int, base_dir: Path) -> Arrays:
    rng = np.random.default_rng(seed)
    per_class = np.full(args.classes, args.samples // args.classes)
    per_class[: args.samples % args.classes] += 1
    points, labels = [], []
    for label, count in enumerate(per_class):
        radius = np.linspace(0.05, 1.0, count)
        angle = args.turns * 2 * np.pi * radius + 2 * np.pi * label / args.classes
        angle += rng.normal(scale=args.noise, size=count)
        points.append(np.stack([radius * np.sin(angle), radius * np.cos(angle)], 1))
        labels.append(np.full(count, label, np.int64))
    return Arrays({"x": np.concatenate(points), "y": np.concatenate(labels)}, classes={"y": args.classes})


def _series(kind: str, t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One clean series of the given kind, with a random frequency and phase per sample."""
    count = len(t)
    freq = rng.uniform(1 / 24, 1 / 8, size=(count, 1))
    phase = rng.uniform(0, 2 * np.pi, size=(count, 1))
    angle = 2 * np.pi * freq * t + phase
    if kind == "sine":
        return np.sin(angle)
    if kind == "sines":
        second = rng.uniform(1 / 10, 1 / 4, size=(count, 1))
        return 0.7 * np.sin(angle) + 0.3 * np.sin(2 * np.pi * second * t + phase)
    if kind == "sawtooth":
        return 2 * ((angle / (2 * np.pi)) % 1.0) - 1
    if kind == "square":
        return np.sign(np.sin(angle))
    steps = rng.normal(scale=0.1, size=t.shape)
    return np.cumsum(steps, axis=1)


def _timeseries(args: Any, seed: int, base_dir: Path) -> Arrays:
    rng = np.random.default_rng(seed)
    t = np.broadcast_to(np.arange(args.length + args.horizon, dtype=np.float64), (args.samples, args.length + args.horizon))
    clean = _series(args.kind, t, rng)
    x = clean[:, : args.length] + rng.normal(scale=args.noise, size=(args.samples, args.length))
    return Arrays({"x": x[:, :, None], "y": clean[:, args.length:]}, info={"kind": args.kind})


def _tokens(args: Any, seed: int) -> np.ndarray:
    """Random token ids 1..vocab-1 (0 is left free as a blank)."""
    return np.random.default_rng(seed).integers(1, args.vocab, size=(args.samples, args.length))


def _copy(args: Any, seed: int, base_dir: Path) -> Arrays:
    x = _tokens(args, seed)
    y = np.full_like(x, IGNORE)
    y[:, args.delay:] = x[:, : args.length - args.delay]
    return Arrays({"x": x, "y": y}, classes={"y": args.vocab})


def _reverse(args: Any, seed: int, base_dir: Path) -> Arrays:
    x = _tokens(args, seed)
    return Arrays({"x": x, "y": x[:, ::-1].copy()}, classes={"y": args.vocab})


SYNTHETIC = {
    "moons": _moons,
    "spirals": _spirals,
    "timeseries": _timeseries,
    "copy": _copy,
    "reverse": _reverse,
}
