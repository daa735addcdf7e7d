"""Columnar data: Parquet files (pyarrow) and Hugging Face datasets saved to disk (``datasets``).

Both are optional extras (``pip install "dlstudio[data]"``); a graph that names one without
them installed gets one line saying what to install. Sizes are checked from the files' own
metadata before a column is read: a Parquet file's row count and uncompressed column sizes,
a saved dataset's row count and features. A Parquet table goes through the CSV path (numbers
kept, texts one-hot); a Hugging Face dataset gives either one image column, decoded and resized
like an image folder, or table columns. Nothing is downloaded and no code from the files runs.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import numpy as np

from dlstudio.core.io import special_file_problem
from dlstudio.train.data.arrays import Arrays
from dlstudio.train.data.files import MAX_DATA_BYTES, resolve_path, table_arrays
from dlstudio.train.errors import DataError

#: Bytes a decoded number takes before encoding (float64), for the size check ahead of reading.
_CELL_BYTES = 8


def _need(module: str, dataset: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise DataError(f"the {dataset} dataset needs the '{module.split('.')[0]}' package, which is not "
                        "installed", 'pip install "dlstudio[data]"') from None


# --- Parquet -----------------------------------------------------------------------------------

def _parquet(args: Any, seed: int, base_dir: Path) -> Arrays:
    parquet = _need("pyarrow.parquet", "parquet")
    path = resolve_path(args.path, base_dir)
    try:
        file = parquet.ParquetFile(path)
    except Exception as error:  # noqa: BLE001  (pyarrow raises ArrowInvalid, OSError and others)
        raise DataError(f"{path.name}: not a readable Parquet file ({_first_line(error)})") from None
    names = file.schema_arrow.names
    wanted = [n for n in dict.fromkeys([*(args.features or names), args.target]) if n in names]
    _check_parquet_size(path.name, file, wanted)
    try:
        table = file.read(columns=wanted)
    except Exception as error:  # noqa: BLE001
        raise DataError(f"{path.name}: cannot read its columns ({_first_line(error)})") from None
    return table_arrays(path.name, {n: _column(table.column(n), path.name, n) for n in wanted}, args)


def _check_parquet_size(name: str, file: Any, columns: list[str]) -> None:
    """Refuse a file whose columns would take more than MAX_DATA_BYTES once read, by its metadata."""
    meta = file.metadata
    wanted = set(columns)
    unpacked = sum(chunk.total_uncompressed_size
                   for g in range(meta.num_row_groups)
                   for chunk in (meta.row_group(g).column(i) for i in range(meta.num_columns))
                   if chunk.path_in_schema.split(".")[0] in wanted)
    decoded = meta.num_rows * len(columns) * _CELL_BYTES
    if max(unpacked, decoded) > MAX_DATA_BYTES:
        raise DataError(f"{name}: {meta.num_rows:,} rows of {len(columns)} columns take "
                        f"{max(unpacked, decoded) / 2**30:.1f} GiB unpacked, over the limit of "
                        f"{MAX_DATA_BYTES // 2**30} GiB (MAX_DATA_BYTES)", "use fewer rows or columns")


def _column(column: Any, name: str, column_name: str) -> np.ndarray:
    """An Arrow column as numbers (nulls NaN) or, for texts and categories, as objects."""
    import pyarrow as pa

    kind = column.type
    if pa.types.is_dictionary(kind):
        column, kind = column.cast(kind.value_type), kind.value_type
    if pa.types.is_boolean(kind) or pa.types.is_integer(kind) or pa.types.is_floating(kind):
        return column.cast(pa.float64()).fill_null(float("nan")).to_numpy()
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return np.array(column.to_pylist(), dtype=object)
    raise DataError(f"{name}: column '{column_name}' holds {kind}, not numbers or texts",
                    "leave it out of 'features'")


def _first_line(error: Exception) -> str:
    return " ".join(str(error).split())[:120] or type(error).__name__


# --- Hugging Face datasets saved to disk --------------------------------------------------------

def _hf_dataset(args: Any, seed: int, base_dir: Path) -> Arrays:
    folder = resolve_path(args.path, base_dir, want_dir=True)
    train = _split(folder, args.path, args.split)
    val = _split(folder, args.path, args.val_split) if args.val_split else None
    features = args.features or [n for n in train.column_names if n != args.target]
    images = [n for n in features if _is_image(train.features.get(n))]
    if images and len(features) > 1:
        raise DataError(f"{args.path}: image column '{images[0]}' with other columns; a network reads one "
                        "image or table columns", f"set features to ['{images[0]}'] or leave it out")
    parts = [train] if val is None else [train, val]
    if images:
        arrays = _image_arrays(args, parts, images[0])
    else:
        columns = {n: np.concatenate([_hf_column(p, n, args.path) for p in parts])
                   for n in dict.fromkeys([*features, args.target])}
        arrays = table_arrays(args.path, columns, args)
    names = _label_names(train, args.target)
    if names:  # the stored class numbers are the labels, whichever classes the rows happen to hold
        labels = np.concatenate([_hf_column(p, args.target, args.path) for p in parts])
        if np.isnan(labels).any() or labels.min() < 0:
            raise DataError(f"{args.path}: target column '{args.target}' has rows without a label (-1)",
                            "train on a split whose rows are all labelled")
        arrays.fields["y"] = labels.astype(np.int64)
        arrays.classes["y"] = len(names)
        arrays.info["class_names"] = names
    if val is not None:
        arrays.val_indices = np.arange(train.num_rows, train.num_rows + val.num_rows)
    return arrays


def _split(folder: Path, given: str, split: str) -> Any:
    """One split of the saved dataset (a lone Dataset is its own 'train' split)."""
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")  # never reach for the network
    datasets = _need("datasets", "hf_dataset")
    try:
        saved = datasets.load_from_disk(str(folder), keep_in_memory=False)
    except Exception as error:  # noqa: BLE001  (datasets raises FileNotFoundError and its own classes)
        raise DataError(f"{given}: not a dataset saved with save_to_disk ({_first_line(error)})") from None
    if isinstance(saved, datasets.DatasetDict):
        if split not in saved:
            raise DataError(f"{given}: has no split '{split}' (splits: {', '.join(saved)})",
                            "name one in split or val_split")
        return saved[split]
    if split != "train":
        raise DataError(f"{given}: holds one split, not a '{split}' split", "leave split and val_split out")
    return saved


def _is_image(feature: Any) -> bool:
    return type(feature).__name__ == "Image"


def _label_names(dataset: Any, target: str) -> list[str] | None:
    feature = dataset.features.get(target)
    return list(feature.names) if type(feature).__name__ == "ClassLabel" else None


def _hf_column(dataset: Any, name: str, given: str) -> np.ndarray:
    if name not in dataset.column_names:
        raise DataError(f"{given}: no column '{name}' (columns: {', '.join(dataset.column_names)})")
    if dataset.num_rows * _CELL_BYTES > MAX_DATA_BYTES:
        raise DataError(f"{given}: {dataset.num_rows:,} rows are over the limit of "
                        f"{MAX_DATA_BYTES // 2**30} GiB (MAX_DATA_BYTES)", "use fewer rows")
    return _column(dataset.data.column(name), given, name)


def _image_arrays(args: Any, parts: list[Any], column: str) -> Arrays:
    """The image column decoded to N x C x H x W in 0..1, and the target as class labels."""
    height, width = args.size
    rows = sum(p.num_rows for p in parts)
    need = rows * args.channels * height * width * 4
    if need > MAX_DATA_BYTES:
        raise DataError(f"{args.path}: {rows:,} images at {args.channels}x{height}x{width} take "
                        f"{need / 2**30:.1f} GiB, over the limit of {MAX_DATA_BYTES // 2**30} GiB "
                        "(MAX_DATA_BYTES)", "use a smaller size, or an image folder (read lazily)")
    pixels = np.empty((rows, args.channels, height, width), np.float32)
    row = 0
    for part in parts:
        for cell in part.data.column(column).to_pylist():
            pixels[row] = _decode(cell, args, row)
            row += 1
    labels = np.concatenate([_hf_column(p, args.target, args.path) for p in parts])
    if np.isnan(labels).any() or not np.all(labels == np.round(labels)) or labels.min() < 0:
        raise DataError(f"{args.path}: target column '{args.target}' is not class numbers 0, 1, ...")
    y = labels.astype(np.int64)
    return Arrays({"x": pixels, "y": y}, classes={"y": int(y.max()) + 1 if len(y) else 1},
                  info={"class_names": [], "image": {"size": [height, width], "channels": args.channels}})


def _decode(cell: dict[str, Any] | None, args: Any, row: int) -> np.ndarray:
    """One stored image (its bytes, or a path to a regular file) as C x H x W float32 in 0..1."""
    from PIL import Image, UnidentifiedImageError

    height, width = args.size
    source: Any = None
    if cell and cell.get("bytes"):
        source = io.BytesIO(cell["bytes"])
    elif cell and cell.get("path") and not special_file_problem(Path(cell["path"])):
        source = cell["path"]
    if source is None:
        raise DataError(f"{args.path}: row {row} has no image")
    try:
        with Image.open(source) as image:
            converted = image.convert("L" if args.channels == 1 else "RGB").resize((width, height))
            array = np.asarray(converted, dtype=np.float32)
    except (UnidentifiedImageError, OSError) as error:
        raise DataError(f"{args.path}: row {row}: cannot read its image ({_first_line(error)})") from None
    return array.reshape(height, width, args.channels).transpose(2, 0, 1) / 255.0


TABLES = {"parquet": _parquet, "hf_dataset": _hf_dataset}
