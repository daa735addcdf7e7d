"""scikit-learn's bundled datasets: no download, always available."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from dlstudio.train.data.arrays import Arrays


def _digits(args: Any, seed: int, base_dir: Path) -> Arrays:
    from sklearn.datasets import load_digits

    data = load_digits()
    pixels = data.images.astype(np.float32) / 16.0
    x = pixels[:, None, :, :] if args.layout == "image" else pixels.reshape(len(pixels), 64)
    return Arrays({"x": x, "y": data.target}, classes={"y": 10})


def _table(loader_name: str) -> Callable[[Any, int, Path], Arrays]:
    def build(args: Any, seed: int, base_dir: Path) -> Arrays:
        import sklearn.datasets

        data = getattr(sklearn.datasets, loader_name)()
        classes = int(data.target.max()) + 1
        return Arrays({"x": data.data, "y": data.target}, classes={"y": classes},
                      standardize={"x": None}, info={"class_names": [str(n) for n in data.target_names]})

    return build


BUNDLED = {
    "digits": _digits,
    "iris": _table("load_iris"),
    "wine": _table("load_wine"),
    "breast_cancer": _table("load_breast_cancer"),
}
