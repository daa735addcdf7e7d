"""Checks of the ``diffusion`` task against the graph: two Inputs, the image and its timestep
(one number per sample, which the task feeds), and an Output that predicts the noise, so it has
the image's shape. :func:`diffusion_roles` says which Input is which, for the checks and the task.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from dlstudio.core.findings import Analysis
from dlstudio.core.training import TrainingConfig, diffusion_settings, loss_output
from dlstudio.core.wiring import live_nodes

SECTION = "training.diffusion"
TIMESTEP_FIX = ("add an Input of shape [] and dtype int64 and feed it through a TimestepEmbedding (then a "
                "Linear) into the network; or name your timestep Input in training.diffusion.timestep")


@dataclass(frozen=True)
class DiffusionRoles:
    """The Input ids of the image, of the timestep, and the Output that predicts the noise
    (None where the graph has no such node)."""

    image: str | None
    timestep: str | None
    output: str | None


def diffusion_roles(config: TrainingConfig, analysis: Analysis) -> DiffusionRoles:
    """Which Input is the timestep (``training.diffusion.timestep``, else the one Input of shape
    []), which the image (``training.diffusion.image``, else the one other Input), and the Output."""
    settings = diffusion_settings(config)
    inputs = [n.id for n in analysis.graph.nodes if n.type == "Input"]
    outputs = [n.id for n in analysis.graph.nodes if n.type == "Output"]
    timestep = settings.timestep
    if timestep is None:
        scalar = [i for i in inputs if _per_sample(analysis, i) == ()]
        timestep = scalar[0] if len(scalar) == 1 else None
    image = settings.image
    if image is None:
        others = [i for i in inputs if i != timestep]
        image = others[0] if len(others) == 1 else None
    return DiffusionRoles(image, timestep, loss_output(config, outputs))


def diffusion_fed_inputs(config: TrainingConfig, analysis: Analysis) -> set[str]:
    """The timestep Input of a diffusion network, which the task feeds, not the data."""
    if config.task != "diffusion":
        return set()
    timestep = diffusion_roles(config, analysis).timestep
    return {timestep} if timestep is not None else set()


def check_diffusion(config: TrainingConfig, analysis: Analysis, report: Callable[..., None]) -> None:
    """Every problem of a diffusion network, each told to ``report(node, message, fix, param,
    severity)``."""
    if config.metrics:
        report(None, "a diffusion model reports its noise-prediction loss, not metrics",
               "remove training.metrics", "training.metrics", "warning")
    roles = diffusion_roles(config, analysis)
    checker = _Checker(config, analysis, report)
    if checker.named_nodes_exist() and checker.timestep(roles) and checker.image(roles):
        checker.output(roles)


@dataclass
class _Checker:
    config: TrainingConfig
    analysis: Analysis
    report: Callable[..., None]

    def ids(self, kind: str) -> list[str]:
        return [n.id for n in self.analysis.graph.nodes if n.type == kind]

    def named_nodes_exist(self) -> bool:
        settings, good = diffusion_settings(self.config), True
        for role in ("image", "timestep"):
            node_id = getattr(settings, role)
            if node_id is not None and node_id not in self.ids("Input"):
                self.report(None, f"the diffusion {role} '{node_id[:40]}' is not an Input node",
                            f"set training.diffusion.{role} to one of: " + ", ".join(self.ids("Input")),
                            f"{SECTION}.{role}")
                good = False
        return good

    def timestep(self, roles: DiffusionRoles) -> bool:
        if roles.timestep is None:
            scalar = [i for i in self.ids("Input") if _per_sample(self.analysis, i) == ()]
            said = (f"has {len(scalar)} Inputs of shape [] ({', '.join(scalar)}), so which is the timestep "
                    "is not clear" if scalar else "has none")
            self.report(None, "a diffusion network needs a timestep Input, an Input of shape [] (one number "
                        f"per sample) that the task feeds each sample's noise level, but the graph {said}",
                        TIMESTEP_FIX, SECTION)
            return False
        tensor = self.analysis.ports.get((roles.timestep, "output"))
        if tensor is not None and (tensor.shape[1:] != () or tensor.dtype == "bool"):
            self.report(roles.timestep, f"the timestep Input '{roles.timestep}' is {tensor.dtype} {tensor}; "
                        "it gets one number per sample", "set its shape to [] and its dtype to int64", "shape")
        if roles.timestep in self.config.dataset.inputs:
            self.report(roles.timestep, f"the timestep Input '{roles.timestep}' is bound to dataset field "
                        f"'{self.config.dataset.inputs[roles.timestep]}', but the task feeds it timesteps",
                        f"remove \"{roles.timestep}\" from training.dataset.inputs", "training.dataset.inputs")
        return True

    def image(self, roles: DiffusionRoles) -> bool:
        if roles.image is None:
            others = [i for i in self.ids("Input") if i != roles.timestep]
            self.report(None, f"a diffusion network reads two Inputs, the image and its timestep, but besides "
                        f"the timestep '{roles.timestep}' the graph has {len(others)}"
                        + (f" ({', '.join(others)})" if others else ""),
                        "keep one image Input, or name it in training.diffusion.image", SECTION)
            return False
        tensor = self.analysis.ports.get((roles.image, "output"))
        if tensor is not None and not tensor.is_float:
            self.report(roles.image, f"the image Input '{roles.image}' has dtype {tensor.dtype}; noise is "
                        "added to numbers", "set its dtype to float32", "dtype")
        return True

    def output(self, roles: DiffusionRoles) -> None:
        output = roles.output
        if output is None or output not in self.ids("Output"):
            self.report(None, "a diffusion network needs an Output that predicts the noise",
                        "connect the network's last layer to an Output node", SECTION)
            return
        reads = live_nodes([output], self.analysis.links)
        for role, node in (("timestep", roles.timestep), ("image", roles.image)):
            if node not in reads:
                self.report(output, f"'{output}' does not depend on the {role} Input '{node}'",
                            f"connect '{node}' through the layers that lead to '{output}'"
                            + ("" if role == "image" else " (a TimestepEmbedding, a Linear, then Add)"), SECTION)
        made, image = self.analysis.ports.get((output, "output")), self.analysis.ports.get((roles.image, "output"))
        if made is not None and image is not None and (made.shape[1:] != image.shape[1:] or not made.is_float):
            self.report(output, f"a diffusion network predicts the noise added to the image, so '{output}' "
                        f"must have the image's shape {image}, but it gives {made.dtype} {made}",
                        f"make the last layers produce {list(image.shape[1:])}", SECTION)


def _per_sample(analysis: Analysis, node_id: str) -> tuple[object, ...] | None:
    tensor = analysis.ports.get((node_id, "output"))
    return None if tensor is None else tuple(tensor.shape[1:])
