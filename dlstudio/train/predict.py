"""``dlstudio predict RUN_DIR INPUT... [--top-k K] [--json]``: a trained run on new data.

Images (PNG, JPEG, ...) are resized and greyscaled as the run's images were, each row of a
CSV file is encoded with the run's category codes and statistics, and a text (a file, or the
argument itself) is tokenised with the run's vocabulary; :mod:`dlstudio.train.preprocess` does
all of it from the run's ``preprocess.json``. The run's final weights are used (the latest
checkpoint while it is still training). Prints the top classes with their probabilities, one
line per input, or JSON lines with ``--json``. Input that cannot be read is one line naming
the file and what to give instead (exit 2).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dlstudio.core.codegen import plan_module
from dlstudio.core.compiler import build_module
from dlstudio.core.io import graph_from_dict, special_file_problem
from dlstudio.exits import EXIT_OK
from dlstudio.train.data.files import IMAGE_SUFFIXES, MAX_TEXT_BYTES
from dlstudio.train.errors import DataError, TrainError
from dlstudio.train.exporting import run_weights
from dlstudio.train.parts import check_graph
from dlstudio.train.preprocess import preprocess, read_preprocessing
from dlstudio.train.rundir import RunDir

#: Classes shown per input unless --top-k says otherwise.
DEFAULT_TOP_K = 3
#: Most rows read from one CSV file.
MAX_ROWS = 100_000


@dataclass(frozen=True)
class Prediction:
    """What the network made of one input: the best classes (name, probability), best first,
    or the output's values when it does not choose among classes."""

    source: str
    top: tuple[tuple[str, float], ...] = ()
    values: tuple[float, ...] = ()

    def line(self) -> str:
        if self.top:
            return f"{self.source}: " + ", ".join(f"{name} {p:.1%}" for name, p in self.top)
        return f"{self.source}: " + " ".join(f"{v:.6g}" for v in self.values)

    def as_json(self) -> dict[str, Any]:
        if self.top:
            return {"input": self.source, "predictions": [{"class": n, "probability": p} for n, p in self.top]}
        return {"input": self.source, "values": list(self.values)}


class Predictor:
    """A finished (or running) run's network with its preprocessing, ready for new inputs."""

    def __init__(self, run_dir: RunDir) -> None:
        record = run_dir.read_record()
        config = run_dir.parse_config(record)
        analysis, config = check_graph(graph_from_dict(record["graph"], "the run record"), config)
        self.module = build_module(plan_module(analysis)).eval()
        self.module.load_state_dict(run_weights(run_dir), strict=True)
        outputs = [n.id for n in analysis.graph.nodes if n.type == "Output"]
        self.output_index = outputs.index(config.loss.output) if len(outputs) > 1 else None
        self.record = read_preprocessing(run_dir)

    @property
    def kind(self) -> str:
        """What the network reads: image, table, tokens or array."""
        return str(self.record["kind"])

    def predict(self, item: Any, source: str, top_k: int = DEFAULT_TOP_K) -> Prediction:
        """The prediction for one raw input (see :func:`~dlstudio.train.preprocess.preprocess`)."""
        try:
            x = preprocess(item, self.record) if self.kind != "array" else _array_input(item, self.record)
        except ValueError as error:
            raise DataError(f"{source}: {error}", _advice(self.record)) from None
        with torch.no_grad():
            output = self.module(x)
        if self.output_index is not None:
            output = output[self.output_index]
        return self._interpret(output.float(), source, top_k)

    def _interpret(self, output: torch.Tensor, source: str, top_k: int) -> Prediction:
        kind = self.record["output"]
        if kind == "next_token":
            probabilities = output[0, -1].softmax(-1)
            return Prediction(source, _top(probabilities, self._token_names(len(probabilities)), top_k))
        if kind == "classes":
            probabilities = output.reshape(-1).softmax(-1)
            return Prediction(source, _top(probabilities, self._class_names(len(probabilities)), top_k))
        if kind == "binary" and output.numel() == 1:
            p = float(torch.sigmoid(output).reshape(()))
            names = self._class_names(2)
            return Prediction(source, tuple(sorted(((names[1], p), (names[0], 1 - p)), key=lambda t: -t[1]))[:top_k])
        return Prediction(source, values=tuple(float(v) for v in output.reshape(-1)))

    def _class_names(self, count: int) -> list[str]:
        names = self.record.get("classes") or []
        return names if len(names) == count else [str(i) for i in range(count)]

    def _token_names(self, count: int) -> list[str]:
        vocabulary = self.record.get("vocabulary")
        if isinstance(vocabulary, str) and len(vocabulary) == count:
            return [repr(c)[1:-1] if c.isspace() or not c.isprintable() else c for c in vocabulary]
        return [f"byte {i}" for i in range(count)]

    def inputs(self, argument: str) -> Iterator[tuple[Any, str]]:
        """The raw inputs an argument stands for, each with the name it is reported by."""
        path = Path(argument)
        if self.kind == "tokens":
            yield (_read_text(path), argument) if _is_file(path) else (argument, repr(argument[:40]))
            return
        if self.kind not in ("image", "table", "array"):
            raise DataError(f"{argument}: this run's task makes its network's input (a generator's noise), "
                            "so there is nothing to predict from a file", "draw samples with dlstudio sample")
        _check_file(path, self.record)
        if self.kind == "image":
            yield _open_image(path), argument
        elif self.kind == "table":
            yield from _csv_rows(path, self.record)
        else:
            yield from _array_rows(path, self.record)


def _top(probabilities: torch.Tensor, names: list[str], k: int) -> tuple[tuple[str, float], ...]:
    values, indices = probabilities.topk(min(k, len(probabilities)))
    return tuple((names[i], float(v)) for v, i in zip(values.tolist(), indices.tolist(), strict=True))


# --- reading inputs ----------------------------------------------------------------------------

def _advice(record: dict[str, Any]) -> str:
    kind = record["kind"]
    if kind == "image":
        return "give PNG or JPEG images"
    if kind == "table":
        return "give a CSV file whose header names the columns " + ", ".join(c["name"] for c in record["columns"][:12])
    if kind == "tokens":
        return "give a UTF-8 text file, or the text itself"
    return f"give a .npy file of samples shaped {record.get('shape')}"


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:  # a text too long to be a file name
        return False


def _check_file(path: Path, record: dict[str, Any]) -> None:
    wanted = {"image": tuple(sorted(IMAGE_SUFFIXES)), "table": (".csv",), "array": (".npy",)}[record["kind"]]
    if not path.exists():
        raise DataError(f"{path}: no such file", _advice(record))
    problem = special_file_problem(path) if path.is_file() else "is not a file"
    if problem:
        raise DataError(f"{path}: {problem}", _advice(record))
    if path.suffix.lower() not in wanted:
        raise DataError(f"{path}: not a {'/'.join(wanted)} file; the run was trained on {record['kind']} input",
                        _advice(record))


def _open_image(path: Path) -> Any:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.load()
            return image.copy()
    except (UnidentifiedImageError, OSError) as error:
        raise DataError(f"{path}: cannot read image ({' '.join(str(error).split())[:120]})",
                        "give PNG or JPEG images") from None


def _csv_rows(path: Path, record: dict[str, Any]) -> Iterator[tuple[dict[str, str], str]]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.DictReader(handle))
    except (UnicodeDecodeError, csv.Error) as error:
        raise DataError(f"{path}: not readable as UTF-8 CSV ({error})", _advice(record)) from None
    if not rows:
        raise DataError(f"{path}: has no data rows under its header", _advice(record))
    if len(rows) > MAX_ROWS:
        raise DataError(f"{path}: has {len(rows):,} rows, over the limit of {MAX_ROWS:,}", "split the file")
    for number, row in enumerate(rows, start=2):
        yield {k.strip(): v for k, v in row.items() if k is not None}, f"{path}:{number}"


def _read_text(path: Path) -> str:
    if path.stat().st_size > MAX_TEXT_BYTES:
        raise DataError(f"{path}: larger than {MAX_TEXT_BYTES // 2**20} MB")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise DataError(f"{path}: is not UTF-8 text", "give a UTF-8 text file, or the text itself") from None


def _array_rows(path: Path, record: dict[str, Any]) -> Iterator[tuple[np.ndarray, str]]:
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise DataError(f"{path}: not a readable .npy file ({error})", _advice(record)) from None
    shape = tuple(record["shape"])
    if array.shape == shape:
        yield array, str(path)
    elif array.shape[1:] == shape:
        yield from ((row, f"{path}[{i}]") for i, row in enumerate(array))
    else:
        raise DataError(f"{path}: holds an array of shape {list(array.shape)}, not samples of {list(shape)}",
                        _advice(record))


def _array_input(item: np.ndarray, record: dict[str, Any]) -> torch.Tensor:
    dtype = torch.long if record["dtype"].startswith("int") else torch.float32
    return torch.as_tensor(np.asarray(item)).to(dtype)[None]


# --- the command ---------------------------------------------------------------------------------

def add_predict_command(commands: Any) -> None:
    parser = commands.add_parser("predict", help="classify new images, CSV rows or text with a trained run")
    parser.add_argument("run", metavar="RUN_DIR", help="the folder of a training run")
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="image files, CSV files (one prediction per row), or text files or texts")
    parser.add_argument("--top-k", type=int, default=DEFAULT_TOP_K, help="classes shown per input")
    parser.add_argument("--json", action="store_true", help="print one JSON object per input")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.set_defaults(handler=predict_command)


def predict_command(args: argparse.Namespace) -> int:
    if args.top_k < 1:
        print("dlstudio: --top-k must be at least 1", file=sys.stderr)
        return DataError.exit_code
    try:
        predictor = Predictor(RunDir(args.run))
        for argument in args.inputs:
            for item, source in predictor.inputs(argument):
                prediction = predictor.predict(item, source, args.top_k)
                print(json.dumps(prediction.as_json()) if args.json else prediction.line(), flush=True)
    except TrainError as error:
        advice = f" ({error.advice})" if error.advice else ""
        print(f"dlstudio: {error}{advice}", file=sys.stderr)
        return error.exit_code
    return EXIT_OK
