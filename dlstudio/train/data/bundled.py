"""Datasets that ship with the app: scikit-learn's, and a text of Shakespeare's; no download."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from dlstudio.train.data.arrays import Arrays
from dlstudio.train.data.files import character_windows

#: Hamlet, Macbeth and Julius Caesar (Project Gutenberg's texts, public domain), one file.
SHAKESPEARE = Path(__file__).resolve().parent.parent.parent / "resources" / "shakespeare.txt"


def _digits(args: Any, seed: int, base_dir: Path) -> Arrays:
    from sklearn.datasets import load_digits

    data = load_digits()
    pixels = data.images.astype(np.float32) / 16.0
    x = pixels[:, None, :, :] if args.layout == "image" else pixels.reshape(len(pixels), 64)
    # x holds pixel / 16; a generative task maps its samples back to the pixels' 0..16
    return Arrays({"x": x, "y": data.target}, classes={"y": 10}, info={"original_range": {"x": [0.0, 16.0]}})


def _table(loader_name: str) -> Callable[[Any, int, Path], Arrays]:
    def build(args: Any, seed: int, base_dir: Path) -> Arrays:
        import sklearn.datasets

        data = getattr(sklearn.datasets, loader_name)()
        classes = int(data.target.max()) + 1
        return Arrays({"x": data.data, "y": data.target}, classes={"y": classes},
                      standardize={"x": None}, info={"class_names": [str(n) for n in data.target_names],
                                                      "features": [str(n) for n in data.feature_names]})

    return build


def shakespeare_text() -> str:
    return SHAKESPEARE.read_text(encoding="utf-8")


def _shakespeare(args: Any, seed: int, base_dir: Path) -> Arrays:
    return character_windows(shakespeare_text(), args.length, SHAKESPEARE.name)


BUNDLED = {
    "digits": _digits,
    "iris": _table("load_iris"),
    "wine": _table("load_wine"),
    "breast_cancer": _table("load_breast_cancer"),
    "shakespeare": _shakespeare,
}
