"""Start a run from pretrained weights: a safetensors file, or the run folder of an earlier run.

Weights are matched by state_dict key (``<node id>.<parameter>``), so a graph extended with a
new head or a LoRA adapter takes every weight it still has a place for. Nodes the file does not
cover keep their fresh initialisation; weights with no node to go to are reported, and a weight
whose shape differs from its node's is an error. Loading uses safetensors only: no pickle.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from dlstudio.core.training import init_weights_path
from dlstudio.train.errors import ConfigError, DataError
from dlstudio.train.exporting import run_weights
from dlstudio.train.rundir import RunDir


@dataclass(frozen=True)
class LoadedWeights:
    """What :func:`load_pretrained` did: the file, and which keys it loaded, missed or ignored."""

    path: Path
    loaded: tuple[str, ...]
    missing: tuple[str, ...]
    unused: tuple[str, ...]

    def record(self) -> dict[str, object]:
        """For the run's graph.json: where the weights came from and what they covered."""
        return {"path": str(self.path), "loaded": len(self.loaded), "missing": list(self.missing),
                "unused": list(self.unused)}

    def summary(self) -> str:
        """One line for the console: counts, and what kept its fresh start."""
        text = f"{len(self.loaded)} weights from {self.path}"
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


def load_pretrained(module: torch.nn.Module, source: str, base_dir: Path | None = None) -> LoadedWeights:
    """Copy the weights ``source`` holds into ``module`` by key; see the module docstring."""
    path = init_weights_path(source, base_dir)
    tensors = read_weights(path)
    state = module.state_dict()
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
                          "keys must read <node id>.<parameter>, as in a run's model.safetensors")
    with torch.no_grad():
        for key in loaded:
            state[key].copy_(tensors[key])
    return LoadedWeights(path, loaded, tuple(k for k in state if k not in tensors),
                         tuple(k for k in tensors if k not in state))


def _listing(keys: tuple[str, ...], shown: int = 3) -> str:
    nodes = list(dict.fromkeys(key.partition(".")[0] for key in keys))
    more = f" and {len(nodes) - shown} more" if len(nodes) > shown else ""
    return "nodes " + ", ".join(nodes[:shown]) + more
