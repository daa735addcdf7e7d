"""Start a run from pretrained weights: a safetensors file, or the run folder of an earlier run.

Weights are matched by state_dict key (``<node id>.<parameter>``), so a graph extended with a
new head or a LoRA adapter takes every weight it still has a place for. Nodes the file does not
cover keep their fresh initialisation; weights with no node to go to are reported, and a weight
whose shape differs from its node's is an error. A published checkpoint's keys (torchvision's,
Hugging Face's) go through a key map (:mod:`dlstudio.train.keymaps`), named or detected, and
then must cover the graph exactly. Loading uses safetensors only: no pickle.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from dlstudio.core.training import init_weights_path
from dlstudio.train.errors import ConfigError, DataError
from dlstudio.train.exporting import run_weights
from dlstudio.train.keymaps import check_coverage, detect_map, key_map
from dlstudio.train.rundir import RunDir


@dataclass(frozen=True)
class LoadedWeights:
    """What :func:`load_pretrained` did: the file, and which keys it loaded, missed or ignored."""

    path: Path
    loaded: tuple[str, ...]
    missing: tuple[str, ...]
    unused: tuple[str, ...]
    key_map: str | None = None

    def record(self) -> dict[str, object]:
        """For the run's graph.json: where the weights came from and what they covered."""
        mapped = {"key_map": self.key_map} if self.key_map else {}
        return {"path": str(self.path), "loaded": len(self.loaded), "missing": list(self.missing),
                "unused": list(self.unused), **mapped}

    def summary(self) -> str:
        """One line for the console: counts, and what kept its fresh start."""
        text = f"{len(self.loaded)} weights from {self.path}"
        if self.key_map:
            text += f" (keys mapped by {self.key_map})"
        if self.missing:
            text += f"; {len(self.missing)} keep their fresh start ({_listing(self.missing)})"
        if self.unused:
            text += f"; {len(self.unused)} in the file match no node ({_listing(self.unused)})"
        return text


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """Tensors from a ``.safetensors`` file, or a run folder's final or latest weights."""
    if path.is_dir():
        return run_weights(RunDir(path))
    if not path.is_file():
        raise DataError(f"{path}: no such weights file",
                        "give a .safetensors file or the folder of an earlier run")
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as error:
        first = str(error).splitlines()[0] if str(error) else "unreadable"
        raise DataError(f"{path}: not a readable safetensors file ({first})",
                        "export weights with safetensors.torch.save_file(model.state_dict(), path)") from None


def load_pretrained(module: torch.nn.Module, source: str, base_dir: Path | None = None,
                    mapping: str | None = None) -> LoadedWeights:
    """Copy the weights ``source`` holds into ``module`` by key, renamed by the key map
    ``mapping`` (a built-in name or a rename file) when given; see the module docstring."""
    path = init_weights_path(source, base_dir)
    state = module.state_dict()
    tensors, used_map = _mapped(read_weights(path), list(state), path, mapping, base_dir)
    for key, tensor in ((k, tensors[k]) for k in state if k in tensors):
        if tuple(tensor.shape) != tuple(state[key].shape):
            node = key.partition(".")[0]
            raise ConfigError(
                f"{path}: weight '{key}' has shape {list(tensor.shape)} but node '{node}' needs "
                f"{list(state[key].shape)}",
                f"change '{node}' to match the pretrained layer, or rename it so it starts fresh")
    loaded = tuple(key for key in state if key in tensors)
    if not loaded:
        raise ConfigError(f"{path}: none of its {len(tensors)} weights matches a node of the graph "
                          f"(first key: '{next(iter(tensors), '')}')",
                          "keys must read <node id>.<parameter>, as in a run's model.safetensors, "
                          "or give a key map (--key-map)")
    with torch.no_grad():
        for key in loaded:
            state[key].copy_(tensors[key])
    return LoadedWeights(path, loaded, tuple(k for k in state if k not in tensors),
                         tuple(k for k in tensors if k not in state), used_map)


def _mapped(tensors: dict[str, torch.Tensor], graph_keys: list[str], path: Path, mapping: str | None,
            base_dir: Path | None) -> tuple[dict[str, torch.Tensor], str | None]:
    """The file's tensors under graph keys, and the name of the map that renamed them: the one
    given (then the keys must match exactly), or a built-in one under which the keys fit exactly
    when they do not as they are."""
    if mapping:
        chosen = key_map(mapping, base_dir)
        renamed = chosen.apply(tensors)
        check_coverage(renamed, graph_keys, f"{path} with key map {chosen.name}")
        return renamed, chosen.name
    if set(tensors) == set(graph_keys):
        return tensors, None
    detected = detect_map(tensors, set(graph_keys))
    return (detected.apply(tensors), detected.name) if detected else (tensors, None)


def _listing(keys: tuple[str, ...], shown: int = 3) -> str:
    nodes = list(dict.fromkeys(key.partition(".")[0] for key in keys))
    more = f" and {len(nodes) - shown} more" if len(nodes) > shown else ""
    return "nodes " + ", ".join(nodes[:shown]) + more
