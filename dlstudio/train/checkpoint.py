"""Checkpoints without pickle: tensors in safetensors, everything else in JSON.

A state (nested dicts, lists, tuples, numbers, tensors) is split in two: tensors go into the
``.safetensors`` file under generated keys, and the rest becomes JSON with ``{"__tensor__": key}``
placeholders. Both files are written atomically; the JSON, written last, records the weights
file's SHA-256, so a checkpoint counts only when the pair is complete. The newest ``keep``
checkpoints stay on disk, so the previous one survives a crash while the next is written.
"""

from __future__ import annotations

import hashlib
import json
import math
import stat
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from dlstudio.core.io import special_file_problem, write_atomic
from dlstudio.train.errors import RunDirError

CHECKPOINT_FORMAT = "dlstudio.checkpoint"
#: A checkpoint's JSON (the loop position and optimizer layout, not the tensors) is far smaller.
MAX_DOCUMENT_BYTES = 64 * 2**20


def flatten(value: Any, tensors: dict[str, torch.Tensor], path: str = "s") -> Any:
    """``value`` as JSON-able data; tensors moved into ``tensors`` (CPU, contiguous)."""
    if isinstance(value, torch.Tensor):
        tensors[path] = value.detach().to("cpu", copy=True).contiguous()
        return {"__tensor__": path}
    if isinstance(value, float) and not math.isfinite(value):
        return {"__float__": repr(value)}
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, tuple):
        return {"__tuple__": [flatten(v, tensors, f"{path}.{i}") for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [flatten(v, tensors, f"{path}.{i}") for i, v in enumerate(value)]
    if isinstance(value, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in value):
            return {k: flatten(v, tensors, f"{path}.{k}") for k, v in value.items()}
        return {"__items__": [[k, flatten(v, tensors, f"{path}.{k}")] for k, v in value.items()]}
    raise TypeError(f"cannot store a {type(value).__name__} in a checkpoint")


def unflatten(value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """The inverse of :func:`flatten`."""
    if isinstance(value, list):
        return [unflatten(v, tensors) for v in value]
    if not isinstance(value, dict):
        return value
    if "__tensor__" in value:
        return tensors[value["__tensor__"]]
    if "__float__" in value:
        return float(value["__float__"])
    if "__tuple__" in value:
        return tuple(unflatten(v, tensors) for v in value["__tuple__"])
    if "__items__" in value:
        return {k: unflatten(v, tensors) for k, v in value["__items__"]}
    return {k: unflatten(v, tensors) for k, v in value.items()}


def save_state(folder: Path, name: str, state: dict[str, Any], keep: int = 2) -> Path:
    """Write ``<name>.safetensors`` then ``<name>.json``; prune all but the newest ``keep``."""
    folder.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    data = flatten(state, tensors)
    weights = folder / f"{name}.safetensors"
    tmp = folder / f".{name}.safetensors.tmp"
    save_file(tensors, str(tmp))
    digest = _sha256(tmp)
    tmp.replace(weights)
    document = {"format": CHECKPOINT_FORMAT, "version": 1, "weights": weights.name, "sha256": digest, "state": data}
    write_atomic(folder / f"{name}.json", json.dumps(document, allow_nan=False).encode("utf-8"))
    for old in sorted(folder.glob("*.json"))[:-keep]:
        old.unlink(missing_ok=True)
        old.with_suffix(".safetensors").unlink(missing_ok=True)
    return folder / f"{name}.json"


def load_state(path: Path, device: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_state` (its weights hash is checked)."""
    document = _read_document(path)
    weights = _weights_of(path, document)
    if weights is None or _sha256(weights) != document["sha256"]:
        raise RunDirError(f"{path}: its weights file is missing or incomplete")
    tensors = load_file(str(weights), device=str(device))
    return unflatten(document["state"], tensors)


def latest_checkpoint(folder: Path) -> Path | None:
    """The newest complete checkpoint in ``folder`` (an interrupted write is skipped)."""
    for path in sorted(folder.glob("*.json"), reverse=True):
        try:
            document = _read_document(path)
            weights = _weights_of(path, document)
            if weights is not None and _sha256(weights) == document["sha256"]:
                return path
        except (OSError, ValueError, KeyError, TypeError, RunDirError):
            continue
    return None


def _read_document(path: Path) -> dict[str, Any]:
    """A checkpoint's JSON: a regular file of bounded size holding a DL Studio checkpoint."""
    problem = special_file_problem(path)
    if problem:
        raise RunDirError(f"{path}: {problem}")
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_DOCUMENT_BYTES + 1)
        if len(raw) > MAX_DOCUMENT_BYTES:
            raise RunDirError(f"{path}: over {MAX_DOCUMENT_BYTES // 2**20} MB, not a checkpoint of ours")
        document = json.loads(raw.decode("utf-8"))
    except (OSError, ValueError) as error:
        raise RunDirError(f"{path}: unreadable checkpoint ({error})") from None
    if not isinstance(document, dict) or document.get("format") != CHECKPOINT_FORMAT:
        raise RunDirError(f"{path}: not a DL Studio checkpoint")
    return document


def _weights_of(path: Path, document: dict[str, Any]) -> Path | None:
    """The weights file a checkpoint names: a plain file name beside it, a regular file (no
    link, device or pipe), or None. A name with a separator or ``..`` is refused."""
    name = document.get("weights")
    if not isinstance(name, str) or not isinstance(document.get("sha256"), str):
        raise RunDirError(f"{path}: not a DL Studio checkpoint")
    if name in ("", ".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise RunDirError(f"{path}: names its weights '{name[:60]}', which is not a file name in its folder",
                          "a checkpoint's weights lie beside it; this file was edited or is not ours")
    weights = path.parent / name
    try:
        mode = weights.lstat().st_mode
    except OSError:
        return None
    if not stat.S_ISREG(mode):
        raise RunDirError(f"{path}: its weights '{name}' are not a regular file (a link, a device or a pipe)")
    return weights


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
