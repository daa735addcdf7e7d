"""Named arrays, the seeded train/validation split, and standardisation with training statistics."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dlstudio.train.errors import DataError


@dataclass
class Arrays:
    """Fields of equal length. ``standardize`` maps a field to the feature columns (a boolean
    mask over its last axis, or None for all) whose mean and spread are normalised."""

    fields: dict[str, np.ndarray]
    classes: dict[str, int] = field(default_factory=dict)
    standardize: dict[str, np.ndarray | None] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    #: the samples that validate, when the data says (a separate validation folder)
    val_indices: np.ndarray | None = None

    def __post_init__(self) -> None:
        lengths = {name: len(a) for name, a in self.fields.items()}
        if len(set(lengths.values())) > 1:
            raise DataError(f"dataset fields differ in length: {lengths}")
        for name, array in self.fields.items():
            self.fields[name] = _canonical(name, array)

    def __len__(self) -> int:
        return len(next(iter(self.fields.values()))) if self.fields else 0


def _canonical(name: str, array: np.ndarray) -> np.ndarray:
    if not isinstance(array, np.ndarray) and hasattr(array, "decode"):
        return array  # image files, decoded batch by batch (data.lazy.ImageSource)
    if array.dtype.kind == "f":
        return np.ascontiguousarray(array, dtype=np.float32)
    if array.dtype.kind in "iub":
        return np.ascontiguousarray(array, dtype=np.int64)
    raise DataError(f"dataset field '{name}' has unsupported element type {array.dtype}")


@dataclass
class DataSplit:
    """Training and validation tensors (CPU), with what the data says about itself."""

    train: dict[str, Any]
    val: dict[str, Any]
    arrays: Arrays
    #: the standardised fields' training statistics: {field: {"mean": [...], "std": [...]}}
    statistics: dict[str, dict[str, list[float]]] = field(default_factory=dict)

    @property
    def train_size(self) -> int:
        return len(next(iter(self.train.values())))

    @property
    def val_size(self) -> int:
        return len(next(iter(self.val.values())))


def split_indices(count: int, validation_split: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded permutation: the first ``round(count * split)`` samples validate, the rest train."""
    order = np.random.default_rng(seed).permutation(count)
    val_count = int(round(count * validation_split))
    if validation_split > 0 and val_count == 0:
        val_count = 1
    if count - val_count < 1:
        raise DataError(f"the dataset has {count} samples: too few to keep {validation_split:g} for validation")
    return np.sort(order[val_count:]), np.sort(order[:val_count])


def split_arrays(arrays: Arrays, validation_split: float, seed: int) -> DataSplit:
    if arrays.val_indices is None:
        train_idx, val_idx = split_indices(len(arrays), validation_split, seed)
    else:
        val_idx = arrays.val_indices
        train_idx = np.setdiff1d(np.arange(len(arrays)), val_idx)
    train = {name: a[train_idx] for name, a in arrays.fields.items()}
    val = {name: a[val_idx] for name, a in arrays.fields.items()}
    statistics = {}
    for name, mask in arrays.standardize.items():
        mean, std = _statistics(train[name], mask)
        train[name] = (train[name] - mean) / std
        val[name] = (val[name] - mean) / std
        statistics[name] = {"mean": mean.tolist(), "std": std.tolist()}
    return DataSplit(_tensors(train), _tensors(val), arrays, statistics)


def _tensors(part: dict[str, Any]) -> dict[str, Any]:
    """Arrays as CPU tensors; image files stay files."""
    import torch

    return {k: v if not isinstance(v, np.ndarray) else torch.from_numpy(np.ascontiguousarray(v))
            for k, v in part.items()}


def _statistics(values: np.ndarray, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Per-column mean and std over the samples (std 1 where constant; identity off the mask)."""
    axes = tuple(range(values.ndim - 1))
    mean = values.mean(axis=axes, dtype=np.float64)
    std = values.std(axis=axes, dtype=np.float64)
    std[std < 1e-12] = 1.0
    if mask is not None:
        mean[~mask], std[~mask] = 0.0, 1.0
    return mean.astype(np.float32), std.astype(np.float32)
