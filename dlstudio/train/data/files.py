"""User data: CSV tables, NumPy .npz files, images (a folder per class, or a CSV of paths), text.

Paths are relative to the graph file's folder. Every failure is one :class:`DataError` line
that names the file and what is wrong with it.
"""

from __future__ import annotations

import csv
import math
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from dlstudio.core.io import special_file_problem
from dlstudio.train.data.arrays import Arrays
from dlstudio.train.data.lazy import ImageSource
from dlstudio.train.errors import DataError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
#: Largest text dataset, in bytes (its character ids take 12 bytes a character while loading).
MAX_TEXT_BYTES = 64 * 2**20
#: Most bytes a dataset's arrays may take once loaded or decompressed (an .npz's arrays, a CSV's
#: encoded columns), checked before they are built.
MAX_DATA_BYTES = 4 * 2**30
#: Most distinct values a CSV text column may have: each becomes one one-hot column.
MAX_CATEGORIES = 1000
#: An integer target with at most this many distinct values counts as class labels.
MAX_AUTO_CLASSES = 50


def resolve_path(path: str, base_dir: Path, want_dir: bool = False) -> Path:
    full = Path(path).expanduser()
    full = full if full.is_absolute() else base_dir / full
    if not full.exists():
        raise DataError(f"{path}: no such {'folder' if want_dir else 'file'} (looked in {full.parent})")
    if want_dir != full.is_dir():
        raise DataError(f"{path}: is {'not ' if want_dir else ''}a folder")
    problem = special_file_problem(full)
    if problem:
        raise DataError(f"{path}: {problem}", "give the path of a data file")
    return full


# --- CSV ---------------------------------------------------------------------------------------

def _read_csv(path: Path, delimiter: str) -> tuple[list[str], list[list[str]]]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            rows = [row for row in csv.reader(handle, delimiter=delimiter) if row]
    except UnicodeDecodeError:
        raise DataError(f"{path.name}: is not UTF-8 text") from None
    except csv.Error as error:
        raise DataError(f"{path.name}: not valid CSV: {error}") from None
    if len(rows) < 2:
        raise DataError(f"{path.name}: needs a header row and at least one data row")
    header = [name.strip() for name in rows[0]]
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise DataError(f"{path.name}: line {number} has {len(row)} values, the header has {len(header)}")
    return header, rows[1:]


def _as_numbers(values: list[str] | np.ndarray) -> np.ndarray | None:
    """The column as floats (empty cells NaN), or None when some cell is not a number. A column
    read from a typed file comes as an array: numbers (NaN for nulls), or objects for texts."""
    if isinstance(values, np.ndarray) and values.dtype.kind in "biuf":
        return values.astype(np.float64)
    try:
        return np.array([float(v) if v.strip() else math.nan for v in values], dtype=np.float64)
    except (ValueError, AttributeError):
        return None


def _texts(values: list[str] | np.ndarray) -> list[str]:
    """The column's cells as stripped texts (a missing cell of a typed file is '')."""
    return ["" if v is None else str(v).strip() for v in values]


def _encode_column(name: str, values: list[str] | np.ndarray,
                   categorical: bool) -> tuple[np.ndarray, dict[str, Any]]:
    """(columns, encoding): numbers with gaps filled by the mean, or a one-hot encoding; the
    encoding (the fill value, or the categories in column order) is what prediction repeats."""
    numbers = None if categorical else _as_numbers(values)
    if numbers is not None:
        if np.isnan(numbers).all():
            raise DataError(f"column '{name}' is empty")
        fill = float(np.nanmean(numbers))
        numbers[np.isnan(numbers)] = fill
        return numbers[:, None], {"name": name, "kind": "number", "fill": fill}
    texts = _texts(values)
    categories = sorted(set(texts))
    if len(categories) > MAX_CATEGORIES:
        raise DataError(f"column '{name}' holds {len(categories):,} distinct texts, over the limit of "
                        f"{MAX_CATEGORIES} (MAX_CATEGORIES) for one-hot encoding",
                        "leave the column out of 'features', or turn it into numbers")
    index = {c: i for i, c in enumerate(categories)}
    one_hot = np.zeros((len(values), len(categories)))
    one_hot[np.arange(len(values)), [index[v] for v in texts]] = 1.0
    return one_hot, {"name": name, "kind": "category", "categories": categories}


def _target(name: str, values: list[str] | np.ndarray, task: str) -> tuple[np.ndarray, int | None, list[str]]:
    numbers = _as_numbers(values)
    if numbers is not None and np.isnan(numbers).any():
        raise DataError(f"target column '{name}' has empty cells")
    is_labels = numbers is None or (
        np.all(numbers == np.round(numbers)) and len(np.unique(numbers)) <= MAX_AUTO_CLASSES)
    if task == "regression" or (task == "auto" and not is_labels):
        if numbers is None:
            raise DataError(f"target column '{name}' holds text, which cannot be a regression target")
        return numbers[:, None], None, []
    typed = isinstance(values, np.ndarray) and values.dtype.kind in "biuf"
    texts = [f"{v:g}" for v in numbers] if typed and numbers is not None else _texts(values)
    names = sorted(set(texts), key=lambda v: (numbers is not None and float(v), v))
    index = {c: i for i, c in enumerate(names)}
    return np.array([index[v] for v in texts], np.int64), len(names), names


def _csv(args: Any, seed: int, base_dir: Path) -> Arrays:
    path = resolve_path(args.path, base_dir)
    header, rows = _read_csv(path, args.delimiter)
    return table_arrays(path.name, {name: [row[i] for row in rows] for i, name in enumerate(header)}, args)


def table_arrays(name: str, columns: dict[str, list[str] | np.ndarray], args: Any) -> Arrays:
    """A table's feature columns encoded as ``x`` (numbers kept, texts one-hot) and its target as
    ``y``, as ``args`` (target, features, categorical, task) says; ``name`` names the file."""
    header = list(columns)
    rows = len(next(iter(columns.values()), []))
    if args.target not in columns:
        raise DataError(f"{name}: no column '{args.target}' (columns: {', '.join(header)})")
    features = args.features or [n for n in header if n != args.target]
    if not features:
        raise DataError(f"{name}: has no column besides the target '{args.target}'",
                        "add feature columns, or name them in 'features'")
    missing = [n for n in features + list(args.categorical or []) if n not in columns]
    if missing:
        raise DataError(f"{name}: no column '{missing[0]}' (columns: {', '.join(header)})")
    parts, numeric, encodings = [], [], []
    for column in features:
        try:
            block, encoding = _encode_column(column, columns[column], column in (args.categorical or []))
        except DataError as error:
            raise DataError(f"{name}: {error}", error.advice) from None
        parts.append(block)
        encodings.append(encoding)
        numeric += [encoding["kind"] == "number"] * block.shape[1]
    width = sum(block.shape[1] for block in parts)
    if rows * width * 8 > MAX_DATA_BYTES:
        raise DataError(f"{name}: {rows:,} rows of {width:,} encoded columns would take "
                        f"{rows * width * 8 / 2**30:.1f} GiB, over the limit of "
                        f"{MAX_DATA_BYTES // 2**30} GiB (MAX_DATA_BYTES)", "use fewer rows or columns")
    y, classes, names = _target(args.target, columns[args.target], args.task)
    return Arrays({"x": np.concatenate(parts, axis=1), "y": y},
                  classes={"y": classes} if classes else {},
                  standardize={"x": np.array(numeric, dtype=bool)},
                  info={"features": features, "class_names": names, "columns": encodings})


# --- NumPy, images, text -----------------------------------------------------------------------

def _npz(args: Any, seed: int, base_dir: Path) -> Arrays:
    path = resolve_path(args.path, base_dir)
    check_npz_sizes(path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            fields = {name: archive[name] for name in archive.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        raise DataError(f"{path.name}: not a readable .npz file ({' '.join(str(error).split())[:120]})") from None
    if not fields:
        raise DataError(f"{path.name}: holds no arrays")
    scalar = [n for n, a in fields.items() if a.ndim == 0]
    if scalar:
        raise DataError(f"{path.name}: array '{scalar[0]}' is a single value, not one per sample")
    classes = {n: int(a.max()) + 1 for n, a in fields.items() if a.dtype.kind in "iu" and a.size and a.min() >= 0}
    return Arrays(fields, classes=classes)


def check_npz_sizes(path: Path) -> None:
    """Refuse an .npz whose arrays, by their zip and .npy headers, would take more than
    :data:`MAX_DATA_BYTES` or more than the bytes the archive says it holds (a zip bomb)."""
    total = 0
    try:
        with zipfile.ZipFile(path) as archive:
            for member in archive.infolist():
                with archive.open(member) as handle:
                    claimed = _npy_bytes(handle)
                if claimed is not None and claimed > member.file_size:
                    raise DataError(f"{path.name}: array '{member.filename[:60]}' claims {claimed:,} bytes "
                                    f"but holds {member.file_size:,}", "save the arrays again with numpy")
                total += member.file_size
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as error:
        raise DataError(f"{path.name}: not a readable .npz file ({' '.join(str(error).split())[:120]})") from None
    if total > MAX_DATA_BYTES:
        raise DataError(f"{path.name}: its arrays take {total / 2**30:.1f} GiB unpacked, over the limit of "
                        f"{MAX_DATA_BYTES // 2**30} GiB (MAX_DATA_BYTES)", "use a smaller dataset")


def _npy_bytes(handle: Any) -> int | None:
    """The bytes an .npy stream's header says its array takes; None when it is not a plain array."""
    version = np.lib.format.read_magic(handle)
    read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, _, dtype = read_header(handle)  # the header only, no data
    if dtype.hasobject:
        return None  # refused by np.load (allow_pickle=False)
    return math.prod(shape) * dtype.itemsize


def _image_folder(args: Any, seed: int, base_dir: Path) -> Arrays:
    """The image files under one sub-folder per class, decoded lazily (see :mod:`.lazy`)."""
    root = resolve_path(args.path, base_dir, want_dir=True)
    class_names = _class_folders(root, args.path)
    paths, labels = _class_files(root, class_names, args.path)
    val_indices = None
    if args.val_path:
        val_root = resolve_path(args.val_path, base_dir, want_dir=True)
        unknown = sorted(set(_class_folders(val_root, args.val_path)) - set(class_names))
        if unknown:
            raise DataError(f"{args.val_path}: class folder '{unknown[0]}' is not among the training "
                            f"folder's ({', '.join(class_names[:10])})", "use the same class folders in both")
        val_paths, val_labels = _class_files(val_root, class_names, args.val_path)
        val_indices = np.arange(len(paths), len(paths) + len(val_paths))
        paths, labels = paths + val_paths, labels + val_labels
    source = ImageSource(np.array(paths), tuple(args.size), args.channels)
    return Arrays({"x": source, "y": np.array(labels)}, classes={"y": len(class_names)},
                  info={"class_names": class_names}, val_indices=val_indices)


def _class_folders(root: Path, given: str) -> list[str]:
    names = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not names:
        raise DataError(f"{given}: has no sub-folders (one per class)")
    return names


def _class_files(root: Path, class_names: list[str], given: str) -> tuple[list[str], list[int]]:
    """The image files of each class folder there is under ``root``, and their labels."""
    paths: list[str] = []
    labels: list[int] = []
    for label, name in enumerate(class_names):
        folder = root / name
        if not folder.is_dir():
            continue
        files = sorted(str(f) for f in folder.iterdir()
                       if f.suffix.lower() in IMAGE_SUFFIXES and not special_file_problem(f))
        paths += files
        labels += [label] * len(files)
    if not paths:
        raise DataError(f"{given}: no images found ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return paths, labels


def _image_csv(args: Any, seed: int, base_dir: Path) -> Arrays:
    """A CSV file (and optionally a validation one) of image paths and class labels."""
    paths, values = _image_rows(args, args.path, base_dir)
    val_indices = None
    if args.val_path:
        val_paths, val_values = _image_rows(args, args.val_path, base_dir)
        val_indices = np.arange(len(paths), len(paths) + len(val_paths))
        paths, values = paths + val_paths, values + val_values
    labels, classes, names = _target(args.label_column, values, "classification")
    source = ImageSource(np.array(paths), tuple(args.size), args.channels)
    return Arrays({"x": source, "y": labels}, classes={"y": classes or 1},
                  info={"class_names": names}, val_indices=val_indices)


def _image_rows(args: Any, given: str, base_dir: Path) -> tuple[list[str], list[str]]:
    path = resolve_path(given, base_dir)
    header, rows = _read_csv(path, ",")
    for column in (args.image_column, args.label_column):
        if column not in header:
            raise DataError(f"{path.name}: no column '{column}' (columns: {', '.join(header)})",
                            "name the columns with image_column and label_column")
    image, label = header.index(args.image_column), header.index(args.label_column)
    paths = []
    for number, row in enumerate(rows, start=2):
        file = Path(row[image].strip()).expanduser()
        file = file if file.is_absolute() else path.parent / file
        if file.suffix.lower() not in IMAGE_SUFFIXES or not file.is_file():
            raise DataError(f"{path.name}: line {number}: '{row[image][:80]}' is not an image file "
                            f"({', '.join(sorted(IMAGE_SUFFIXES))})", "paths are relative to the CSV file")
        paths.append(str(file))
    return paths, [row[label] for row in rows]


def read_text(path: str, base_dir: Path) -> str:
    """A UTF-8 text file of at most MAX_TEXT_BYTES, whole."""
    full = resolve_path(path, base_dir)
    if full.stat().st_size > MAX_TEXT_BYTES:
        raise DataError(f"{full.name}: larger than {MAX_TEXT_BYTES // 2**20} MB")
    try:
        return full.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise DataError(f"{full.name}: is not UTF-8 text") from None


def character_windows(text: str, length: int, name: str) -> Arrays:
    """Side-by-side windows of character ids; the target is each window shifted by one."""
    windows = (len(text) - 1) // length
    if windows < 2:
        raise DataError(f"{name}: has {len(text)} characters, too few for windows of {length}")
    codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    present = np.flatnonzero(np.bincount(codes))  # the sorted code points: sorted(set(text))
    lookup = np.zeros(int(present[-1]) + 1, dtype=np.int64)
    lookup[present] = np.arange(len(present))
    ids = lookup[codes[: windows * length + 1]]
    vocab = [chr(c) for c in present]
    x = ids[:-1].reshape(windows, length)
    y = ids[1:].reshape(windows, length)
    return Arrays({"x": x, "y": y}, classes={"y": len(vocab)}, info={"vocab": "".join(vocab)})


def _text(args: Any, seed: int, base_dir: Path) -> Arrays:
    return character_windows(read_text(args.path, base_dir), args.length, Path(args.path).name)


FILES = {"csv": _csv, "npz": _npz, "image_folder": _image_folder, "image_csv": _image_csv, "text": _text}
