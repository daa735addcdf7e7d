"""A run's data preprocessing, recorded so that new data goes in as the training data did.

At the start of a run the trainer writes ``preprocess.json`` into the run folder: what kind of
input the network reads and how a raw input becomes it (an image's size, channels and
normalisation; a CSV row's columns, category codes, fill values and standardisation; a text's
tokenizer vocabulary), and the class names of the output. ``dlstudio predict`` applies it with
:func:`preprocess`; an exported Python file carries the same functions (their source is copied
by :func:`preprocess_source`), so the two cannot drift apart.

The functions from :func:`preprocess` down to ``_tokens_input`` form that copied source: they
use only numpy, torch and (for images) Pillow, and raise ``ValueError`` for input they cannot read.
"""

from __future__ import annotations

import inspect
import json
import pprint
from typing import Any

from dlstudio.core.io import special_file_problem
from dlstudio.core.training import (
    BINARY_LOSSES,
    CLASS_LOSSES,
    IMAGE_FILE_DATASETS,
    TrainingConfig,
    dataset_args,
)
from dlstudio.train.data import DataSplit
from dlstudio.train.errors import RunDirError
from dlstudio.train.rundir import RunDir

PREPROCESS = "preprocess.json"
FORMAT = "dlstudio.preprocess"
#: Bundled datasets whose inputs are tables of named features.
TABLES = ("iris", "wine", "breast_cancer", "csv", "parquet")


# --- the record, written at run start ----------------------------------------------------------

def preprocessing_record(config: TrainingConfig, data: DataSplit) -> dict[str, Any]:
    """What ``preprocess.json`` holds for a run of ``config`` on ``data``."""
    node, field = next(iter(config.dataset.inputs.items()), (None, "x"))
    info = data.arrays.info
    record: dict[str, Any] = {"format": FORMAT, "version": 1, "input": node, "field": field,
                              **_input_record(config, data, field), "output": _output_kind(config)}
    classes = data.arrays.classes.get(config.loss.target)
    names = info.get("class_names") or ([str(i) for i in range(classes)] if classes else None)
    if names and record["output"] in ("classes", "binary"):
        record["classes"] = list(names)
    return record


def _output_kind(config: TrainingConfig) -> str:
    if config.task == "language_model":
        return "next_token"
    if config.loss.type in CLASS_LOSSES:
        return "classes"
    return "binary" if config.loss.type in BINARY_LOSSES else "values"


def _input_record(config: TrainingConfig, data: DataSplit, field: str) -> dict[str, Any]:
    name, info = config.dataset.name, data.arrays.info
    if config.task == "language_model":
        tokenizer = {k: info[k] for k in ("tokenizer", "vocabulary") if k in info}
        return {"kind": "tokens", "length": int(data.train[field].shape[1]), **tokenizer}
    if name in IMAGE_FILE_DATASETS:
        args, augment = dataset_args(config.dataset), config.augment
        return {"kind": "image", "size": list(args.size), "channels": args.channels,
                "mean": augment.mean if augment else None, "std": augment.std if augment else None}
    if name == "digits":
        flat = dataset_args(config.dataset).layout == "flat"
        return {"kind": "image", "size": [8, 8], "channels": 1, "mean": None, "std": None,
                "flatten": flat, "dark_background": True}
    if name == "hf_dataset" and "image" in info:  # decoded whole, not augmented: no normalisation
        return {"kind": "image", **info["image"], "mean": None, "std": None}
    if name in TABLES or (name == "hf_dataset" and "columns" in info):
        return _table_record(info, data.statistics.get(field))
    array = data.arrays.fields.get(field)
    if array is None:  # the task feeds the network itself (a GAN's noise)
        return {"kind": "none"}
    return {"kind": "array", "shape": list(array.shape[1:]), "dtype": str(array.dtype)}


def _table_record(info: dict[str, Any], statistics: dict[str, list[float]] | None) -> dict[str, Any]:
    columns = info.get("columns") or [{"name": n, "kind": "number", "fill": 0.0} for n in info["features"]]
    stats = statistics or {}
    return {"kind": "table", "columns": columns, "mean": stats.get("mean"), "std": stats.get("std")}


def record_json(record: dict[str, Any]) -> bytes:
    return (json.dumps(record, indent=2, allow_nan=False) + "\n").encode("utf-8")


def read_preprocessing(run_dir: RunDir) -> dict[str, Any]:
    """The run's ``preprocess.json``."""
    path = run_dir.path / PREPROCESS
    if not path.is_file() or special_file_problem(path):
        raise RunDirError(f"{run_dir.path}: has no {PREPROCESS} (runs record it since DL Studio learned to predict)",
                          "train the graph again to get a run that records its preprocessing")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise RunDirError(f"{path}: unreadable ({error})") from None
    if not isinstance(record, dict) or record.get("format") != FORMAT or "kind" not in record:
        raise RunDirError(f"{path}: not a DL Studio preprocessing record")
    return record


# --- applying it: the source an export copies --------------------------------------------------

def preprocess(item: Any, record: dict[str, Any]) -> Any:
    """One raw input as the network's input, a batch of one: an image (a path or a PIL image),
    a table row (a dict of column name to value) or a text, as the run's ``record`` says."""
    kind = record["kind"]
    if kind == "image":
        return _image_input(item, record)
    if kind == "table":
        return _table_input(item, record)
    if kind == "tokens":
        return _tokens_input(item, record)
    raise ValueError(f"the network reads {record['kind']} input (shape {record.get('shape')}), "
                     "not an image, a table row or a text")


def _image_input(item: Any, record: dict[str, Any]) -> Any:
    import numpy as np
    import torch
    from PIL import Image

    height, width = record["size"]
    channels = record["channels"]
    image = item if isinstance(item, Image.Image) else Image.open(item)
    image = image.convert("L" if channels == 1 else "RGB").resize((width, height))
    x = np.asarray(image, dtype=np.float32).reshape(height, width, channels).transpose(2, 0, 1) / 255.0
    if record.get("dark_background"):
        border = np.concatenate([x[:, 0], x[:, -1], x[:, :, 0], x[:, :, -1]], axis=None)
        if border.mean() > 0.5:  # dark ink on light paper: the training images are the other way
            x = 1.0 - x
    if record.get("mean") is not None or record.get("std") is not None:
        mean = np.resize(np.asarray(record.get("mean") or [0.0], np.float32), channels)
        std = np.resize(np.asarray(record.get("std") or [1.0], np.float32), channels)
        x = (x - mean[:, None, None]) / std[:, None, None]
    tensor = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    return tensor.reshape(1, -1) if record.get("flatten") else tensor[None]


def _table_input(row: dict[str, Any], record: dict[str, Any]) -> Any:
    import torch

    values: list[float] = []
    for column in record["columns"]:
        name = column["name"]
        if name not in row:
            raise ValueError(f"no column '{name}' (the network reads {', '.join(c['name'] for c in record['columns'])})")
        text = str(row[name]).strip()
        if column["kind"] == "number":
            try:
                values.append(float(text) if text else column["fill"])
            except ValueError:
                raise ValueError(f"column '{name}': '{text[:40]}' is not a number") from None
        elif text in column["categories"]:
            values += [1.0 if text == c else 0.0 for c in column["categories"]]
        else:
            known = ", ".join(column["categories"][:8])
            raise ValueError(f"column '{name}': '{text[:40]}' is not a category seen in training ({known})")
    x = torch.tensor(values, dtype=torch.float32)
    if record.get("mean") is not None:
        x = (x - torch.tensor(record["mean"])) / torch.tensor(record["std"])
    return x[None]


def _tokens_input(text: str, record: dict[str, Any]) -> Any:
    import torch

    if record.get("tokenizer") == "byte":
        ids = list(text.encode("utf-8"))
    else:
        vocabulary = record["vocabulary"]
        unknown = sorted({c for c in text if c not in vocabulary})
        if unknown:
            raise ValueError(f"characters outside the training text's vocabulary: {''.join(unknown)[:20]!r}")
        ids = [vocabulary.index(c) for c in text]
    if not ids:
        raise ValueError("the text is empty")
    return torch.tensor(ids[-record["length"]:], dtype=torch.long)[None]


#: The functions an exported file carries, in order.
EXPORTED = (preprocess, _image_input, _table_input, _tokens_input)


def preprocess_source(record: dict[str, Any]) -> str:
    """Python source that defines ``PREPROCESS`` (the record) and ``preprocess(item)`` applying
    it, for the end of an exported model file."""
    functions = "\n\n".join(inspect.getsource(f).rstrip("\n") for f in EXPORTED)
    functions = functions.replace("def preprocess(item: Any, record: dict[str, Any]) -> Any:",
                                  "def preprocess(item: Any, record: dict[str, Any] = PREPROCESS) -> Any:")
    literal = pprint.pformat(record, indent=1, width=100, sort_dicts=False)
    return ("\n\n# --- the training run's preprocessing (dlstudio export --weights RUN_DIR) ---\n\n"
            "from typing import Any  # noqa: E402\n\n"
            f"PREPROCESS = {literal}\n\n\n{functions}\n")
