"""Datasets: load a configured dataset into named arrays, split it by seed, and make tensors.

Each dataset name of :data:`dlstudio.core.training.DATASETS` has a builder here that returns
:class:`Arrays`; :func:`load_data` splits them deterministically (the seed alone decides which
samples go to validation), standardises the marked fields with training statistics only, and
checks the result against the declaration so the graph checks stay truthful.
"""

from __future__ import annotations

from pathlib import Path

from dlstudio.core.training import DATASETS, DatasetConfig, FieldInfo, dataset_args
from dlstudio.train.data.arrays import Arrays, DataSplit, split_arrays
from dlstudio.train.data.bundled import BUNDLED, shakespeare_text
from dlstudio.train.data.files import FILES, read_text
from dlstudio.train.data.synthetic import SYNTHETIC
from dlstudio.train.data.tables import TABLES
from dlstudio.train.errors import ConfigError

BUILDERS = {**BUNDLED, **SYNTHETIC, **FILES, **TABLES}


def load_arrays(config: DatasetConfig, seed: int, base_dir: Path | None = None) -> Arrays:
    """Build the whole dataset (before the split) as named NumPy arrays."""
    if config.name not in BUILDERS:
        raise ConfigError(f"unknown dataset '{config.name[:40]}' (datasets: {', '.join(DATASETS)})")
    args = dataset_args(config)
    return BUILDERS[config.name](args, seed, base_dir or Path.cwd())


def load_data(config: DatasetConfig, validation_split: float, seed: int,
              base_dir: Path | None = None) -> DataSplit:
    """Load, split and standardise a dataset; tensors are on the CPU."""
    arrays = load_arrays(config, seed, base_dir)
    return split_arrays(arrays, validation_split, seed)


def read_corpus(config: DatasetConfig, base_dir: Path | None = None) -> str:
    """The whole text of a text dataset (see TEXT_DATASETS), as the language_model task reads it."""
    if config.name == "shakespeare":
        return shakespeare_text()
    if config.name != "text":
        raise ConfigError(f"dataset '{config.name[:40]}' is not a text", "use the dataset text or shakespeare")
    return read_text(dataset_args(config).path, base_dir or Path.cwd())


def field_infos(arrays: Arrays) -> dict[str, FieldInfo]:
    """What the loaded data holds, in the form the static checks use."""
    return {name: FieldInfo(tuple(a.shape[1:]), str(a.dtype), arrays.classes.get(name))
            for name, a in arrays.fields.items()}


__all__ = ["Arrays", "BUILDERS", "DataSplit", "field_infos", "load_arrays", "load_data", "read_corpus"]
