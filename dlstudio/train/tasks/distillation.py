"""Knowledge distillation: the graph (the student) learns from the labels and from a teacher.

``training.distillation`` names the teacher: a graph file and its trained weights (a run folder
or a ``.safetensors`` file). The teacher is compiled apart from the student, frozen and kept in
eval mode; it is no submodule of the run's module, so checkpoints and the final weights hold the
student alone. A step's objective (Hinton et al., 2015) is

    (1 - alpha) * label loss + alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T))

where T is the temperature (T^2 keeps the soft term's gradients at the scale of the hard one's).
Validation is the supervised one: the student's label loss and metrics.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from dlstudio.core.analysis import analyze
from dlstudio.core.codegen import plan_module
from dlstudio.core.compiler import build_module
from dlstudio.core.graph import Graph
from dlstudio.core.io import load_graph
from dlstudio.core.training import DistillationConfig, init_weights_path
from dlstudio.train.errors import ConfigError
from dlstudio.train.metrics import class_view
from dlstudio.train.parts import Parts
from dlstudio.train.pretrained import read_weights
from dlstudio.train.rundir import RunDir
from dlstudio.train.tasks.base import TOTAL
from dlstudio.train.tasks.supervised import SupervisedTask

EXAMPLE = '"distillation": {"teacher": "teacher.json", "teacher_weights": "runs/teacher"}'


class DistillationTask(SupervisedTask):
    """The supervised task with a frozen teacher's softened outputs as a second target."""

    name = "distillation"

    def __init__(self, parts: Parts) -> None:
        super().__init__(parts)
        self.settings = parts.config.distillation or DistillationConfig()
        self.teacher, self.teacher_output = load_teacher(self.settings, parts)

    def step(self, index: torch.Tensor) -> dict[str, torch.Tensor]:
        p = self.parts
        inputs = [x[index] for x in p.train_inputs]
        with torch.no_grad(), p.autocast():
            teacher = _pick(self.teacher(*inputs), self.teacher_output)
        with p.autocast():
            output, label = self.objective(p.model(*inputs), p.train_target[index])
            soft = soft_loss(output, teacher, p.train_target[index], self.settings.temperature)
            alpha = self.settings.alpha
            loss = (1 - alpha) * label + alpha * self.settings.temperature ** 2 * soft
        self.optimize(loss, "model")
        return {TOTAL: loss.detach(), "label": label.detach(), "teacher": soft.detach()}


def soft_loss(student: torch.Tensor, teacher: torch.Tensor, target: torch.Tensor,
              temperature: float) -> torch.Tensor:
    """KL(softmax(teacher / T) || softmax(student / T)), averaged over the scored positions
    (samples, or tokens of a class-last sequence output)."""
    student, _ = class_view(student.float(), target)
    teacher, _ = class_view(teacher.float(), target)
    student = student.movedim(1, -1).reshape(-1, student.shape[1])
    teacher = teacher.movedim(1, -1).reshape(-1, teacher.shape[1])
    return F.kl_div(F.log_softmax(student / temperature, dim=1), F.log_softmax(teacher / temperature, dim=1),
                    reduction="batchmean", log_target=True)


def load_teacher(settings: DistillationConfig, parts: Parts) -> tuple[nn.Module, int | None]:
    """The teacher compiled from its graph with its trained weights, frozen, in eval mode, on the
    run's device; and where the output the student learns is among its outputs."""
    if settings.teacher is None or settings.teacher_weights is None:
        raise ConfigError("distillation needs training.distillation to name the teacher's graph and weights",
                          f"add {EXAMPLE}")
    graph = load_graph(init_weights_path(settings.teacher, parts.base_dir))
    analysis = analyze(graph)
    if not analysis.ok:
        raise ConfigError(f"the teacher '{graph.name}' is not a valid graph: {analysis.errors[0].one_line()}")
    plan = plan_module(analysis)
    if len(plan.arguments) != len(parts.plan.arguments):
        raise ConfigError(f"the teacher '{graph.name}' takes {len(plan.arguments)} inputs and the student "
                          f"{len(parts.plan.arguments)}", "distil from a teacher with the student's Inputs")
    teacher = build_module(plan)
    try:
        teacher.load_state_dict(_teacher_weights(settings.teacher_weights, parts.base_dir, graph), strict=True)
    except RuntimeError as error:
        raise ConfigError(f"the teacher's weights do not fit its graph '{graph.name}' "
                          f"({' '.join(str(error).split())[:200]})") from None
    teacher.requires_grad_(False).eval()
    outputs = [n.id for n in graph.nodes_of_type("Output")]
    wanted = parts.config.loss.output
    position = (outputs.index(wanted) if wanted in outputs else 0) if len(outputs) > 1 else None
    return teacher.to(parts.device), position


def _teacher_weights(source: str, base_dir: Path | None, graph: Graph) -> dict[str, torch.Tensor]:
    """The weights file, or the run folder's weights once the run is known to be of ``graph``."""
    path = init_weights_path(source, base_dir)
    if path.is_dir():
        RunDir(path).check_graph(graph)
    return read_weights(path)


def _pick(outputs: Any, position: int | None) -> torch.Tensor:
    return outputs if position is None else outputs[position]
