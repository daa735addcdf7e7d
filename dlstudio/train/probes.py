"""Look inside a network while it trains: every node's output and gradient on a fixed probe batch.

No Qt. :class:`ProbeCapture` runs the compiled network once more on a few fixed samples with a
recording forward (the plan's own statements, each followed by a line that keeps the node's
outputs), in eval mode, then takes the loss's gradient with respect to those outputs with
``torch.autograd.grad``. Parameter ``.grad`` fields and the random-number stream are left
alone, so a probed run trains exactly as an unprobed one. Results are plain numbers and
small NumPy arrays (never tensors), ready for another thread.
"""

from __future__ import annotations

import math
import re
import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from dlstudio.core.analysis import Analysis
from dlstudio.core.blocks import copy_path
from dlstudio.core.codegen import ModulePlan, Statement
from dlstudio.train.events import NodeDetail, NodeStats, Prediction, ProbeReport
from dlstudio.train.metrics import Metrics

#: Largest feature map side, sequence length and feature count kept for a detail view.
MAP_SIDE, MAX_MAPS, HEAT_SIDE, MAX_VALUES, IMAGE_SIDE = 48, 64, 256, 1024, 128
BINS = 30
#: A node's output gradient this many times smaller (larger) than at the loss output vanishes (explodes).
VANISHING_RATIO, EXPLODING_RATIO = 1e-4, 1e4


class ConfusionMetrics(Metrics):
    """The engine's metrics, also counting a confusion matrix when no F1 asks for one."""

    def _count_classes(self, scores: torch.Tensor | None, predicted: torch.Tensor,
                       labels: torch.Tensor) -> None:
        super()._count_classes(scores, predicted, labels)
        if "f1" in self.names:
            return
        valid = labels != self.ignore_index
        classes = scores.shape[1] if scores is not None else 2
        cells = labels[valid].clamp(0, classes - 1) * classes + predicted[valid]
        self._add("confusion", torch.bincount(cells, minlength=classes * classes).reshape(classes, classes))

    def confusion(self) -> np.ndarray | None:
        value = self.sums.get("confusion")
        return None if value is None else value.cpu().long().numpy()


# --- the recording forward ------------------------------------------------------------------

RECORD = "_probe_record_"


def recording_source(plan: ModulePlan, analysis: Analysis) -> str:
    """``probe(self, *inputs)``: the forward's statements, returning {node: {port: value}}.

    A block node is run by a recording function of its own plan (``probe_1`` ...), whose
    nodes are recorded under their paths (``h.0.fc1``, as in the state_dict)."""
    functions: dict[int, str] = {}
    sources: list[str] = []
    _recording_function(plan, analysis, "probe", functions, sources, top=True)
    return "\n".join(sources)


def _recording_function(plan: ModulePlan, analysis: Analysis, name: str, functions: dict[int, str],
                        sources: list[str], top: bool = False) -> None:
    taken = {arg for arg, _ in plan.arguments} | {word for s in plan.statements for word in re.findall(r"\w+", s.target)}
    record = RECORD if RECORD not in taken else RECORD + "x"
    lines = [f"def {name}(self, {', '.join(arg for arg, _ in plan.arguments)}):", f"    {record} = {{}}"]
    if top:
        lines += [f"    {record}[{node!r}] = {{'output': {arg}}}" for arg, node in plan.arguments]
    types = {node.id: node.type for node in analysis.graph.nodes}
    blocks = {sub.node_id: sub.block for sub in plan.submodules if sub.block is not None}
    for statement in plan.statements:
        block = blocks.get(statement.node_id)
        if block is None:
            lines.append(f"    {statement.target} = {statement.expression}")
        else:
            lines += _block_lines(statement, block, record, functions, sources)
        names = _port_names(analysis, statement, types[statement.node_id])
        ports = ", ".join(f"{port!r}: {var}" for port, var in names.items())
        lines.append(f"    {record}[{statement.node_id!r}] = {{{ports}}}")
    result = plan.returns[0] if len(plan.returns) == 1 else f"({', '.join(plan.returns)},)"
    lines.append(f"    return {record}" if top else f"    return {record}, {result}")
    sources.append("\n".join(lines) + "\n")


def _block_lines(statement: Statement, block: Any, record: str, functions: dict[int, str],
                 sources: list[str]) -> list[str]:
    """Run a block node's copies through their recording functions, keeping what they record."""
    names = []
    for plan in block.plans:
        if id(plan) not in functions:
            functions[id(plan)] = f"probe_{len(functions) + 1}"
            _recording_function(plan, plan.analysis, functions[id(plan)], functions, sources)
        names.append(functions[id(plan)])
    node, callee, args = statement.node_id, statement.callee, list(statement.args)
    if not statement.loop:
        return [f"    _inner, {statement.target} = {names[0]}({callee}, {', '.join(args)})",
                f"    {record}.update({{{node!r} + '.' + key: value for key, value in _inner.items()}})"]
    target, others = statement.target, "".join(f", {arg}" for arg in args[1:])
    return [f"    {target} = {args[0]}",
            f"    for _index, (_copy, _function) in enumerate(zip({callee}, ({', '.join(names)},))):",
            f"        _inner, {target} = _function(_copy, {target}{others})",
            f"        {record}.update({{f'{node}.{{_index}}.{{key}}': value for key, value in _inner.items()}})"]


def module_parameters(module: torch.nn.Module, plan: ModulePlan, prefix: str = "") -> dict[str, list[Any]]:
    """Each node's parameters by path (a node inside a block: ``h.0.fc1``)."""
    found: dict[str, list[Any]] = {}
    for sub in plan.submodules:
        child = getattr(module, sub.attr)
        found[prefix + sub.node_id] = list(child.parameters())
        if sub.block is None:
            continue
        for index, copy in enumerate(sub.block.plans):
            inner = copy_path(prefix, sub.node_id, index, sub.block.repeated)
            found.update(module_parameters(child[index] if sub.block.repeated else child, copy, inner))
    return found


def _port_names(analysis: Analysis, statement: Statement, node_type: str) -> dict[str, str]:
    """Which variable holds which output port of a statement's node (``_`` ones left out)."""
    names = re.findall(r"[A-Za-z_]\w*", statement.target)
    spec = analysis.catalogue[node_type]
    if spec.unpack:
        ports = re.findall(r"\{(\w+)\}", spec.unpack)
    else:
        ports = list(spec.output_ports(analysis.params.get(statement.node_id)))
    return {port: name for port, name in zip(ports, names, strict=False) if name != "_"}


def build_recorder(plan: ModulePlan, analysis: Analysis) -> Any:
    """The compiled ``probe`` function (generated from the plan's checked identifiers only)."""
    from dlstudio.core.helpers import SUPPORT

    namespace: dict[str, Any] = {"torch": torch, "nn": torch.nn, "F": F, "math": math, **SUPPORT}
    code = compile(recording_source(plan, analysis), f"<dlstudio probe {plan.class_name}>", "exec")
    exec(code, namespace)  # noqa: S102  (the compiler's statements plus dict literals of node ids)
    return namespace["probe"]


# --- the probe --------------------------------------------------------------------------------

class ProbeCapture:
    """Probes one trained module on fixed samples (the first ``samples`` of ``inputs``)."""

    def __init__(self, module: torch.nn.Module, plan: ModulePlan, analysis: Analysis,
                 inputs: list[torch.Tensor], target: torch.Tensor | None, loss: Any,
                 output_index: int | None, class_loss: bool, samples: int = 16) -> None:
        self.module = module
        self.recorder = build_recorder(plan, analysis)
        self.inputs = [x[:samples] for x in inputs]
        self.target = target[:samples] if target is not None else None
        self.loss = loss
        self.output_index = output_index
        self.output_var = plan.returns[output_index or 0] if plan.returns else None
        self.loss_node = _producer(plan, self.output_var)
        self.params = module_parameters(module, plan)
        first = self.inputs[0] if self.inputs else None
        self.image_classifier = (class_loss and len(self.inputs) == 1 and first is not None
                                 and first.is_floating_point() and first.dim() == 4 and first.shape[1] in (1, 3))

    def run(self, epoch: int, step: int, details: tuple[str, ...] = ()) -> ProbeReport:
        started = time.perf_counter()
        was_training = self.module.training
        self.module.eval()
        try:
            inputs = [x.detach().clone().requires_grad_(self.image_classifier) for x in self.inputs]
            with torch.enable_grad():
                outputs = self.recorder(self.module, *inputs)
                grads = self._gradients(outputs)
                predictions = self._predictions(inputs, outputs) if self.image_classifier else ()
        finally:
            self.module.train(was_training)
        stats = {node: self._stats(node, ports["output"] if "output" in ports else next(iter(ports.values())),
                                   grads.get(node))
                 for node, ports in outputs.items() if ports and _tensor(next(iter(ports.values())))}
        views = {node: view for node in details if node in outputs and (view := detail(node, outputs[node]))}
        return ProbeReport(epoch, step, stats, views, predictions, gradient_warnings(stats, self.loss_node),
                           time.perf_counter() - started, tuple(details))

    def _loss_value(self, outputs: dict[str, dict[str, Any]]) -> torch.Tensor | None:
        if self.target is None or self.loss_node is None:
            return None
        output = outputs[self.loss_node]
        value = output.get("output", next(iter(output.values())))
        return self.loss(value, self.target)

    def _gradients(self, outputs: dict[str, dict[str, Any]]) -> dict[str, float | None]:
        loss = self._loss_value(outputs)
        if loss is None or not loss.requires_grad:
            return {}
        nodes, tensors = [], []
        for node, ports in outputs.items():
            value = next(iter(ports.values()))
            if _tensor(value) and value.requires_grad:
                nodes.append(node)
                tensors.append(value)
        found = torch.autograd.grad(loss, tensors, retain_graph=self.image_classifier, allow_unused=True)
        return {n: (float(g.detach().float().norm()) if g is not None else None) for n, g in zip(nodes, found, strict=True)}

    def _stats(self, node: str, value: torch.Tensor, grad_norm: float | None) -> NodeStats:
        x = value.detach().float()
        flat = x.reshape(-1)
        finite = flat[torch.isfinite(flat)]
        low, high = (float(finite.min()), float(finite.max())) if finite.numel() else (0.0, 0.0)
        histogram = torch.histc(finite, bins=BINS, min=low, max=high if high > low else low + 1.0) \
            if finite.numel() else torch.zeros(BINS)
        zeros = x == 0
        dead = float(zeros.all(0).float().mean()) if x.dim() > 1 and x.shape[0] > 1 else float(zeros.float().mean())
        params = self.params.get(node) or []
        grads = [p.grad for p in params if p.grad is not None]
        return NodeStats(
            node=node, shape=tuple(x.shape), mean=float(flat.mean()), std=float(flat.std()) if flat.numel() > 1 else 0.0,
            min=low, max=high, zero_fraction=float(zeros.float().mean()), dead_fraction=dead,
            histogram=tuple(int(c) for c in histogram.tolist()), grad_norm=grad_norm,
            param_grad_norm=_norm(grads) if grads else None, param_norm=_norm([p.detach() for p in params]) if params else None)

    def _predictions(self, inputs: list[torch.Tensor], outputs: dict[str, dict[str, Any]]) -> tuple[Prediction, ...]:
        if self.loss_node is None or self.target is None:
            return ()
        scores = outputs[self.loss_node].get("output")
        if not _tensor(scores) or scores.dim() != 2:
            return ()
        count = min(8, scores.shape[0])
        predicted = scores[:count].argmax(1)
        chosen = scores[:count].gather(1, predicted[:, None]).sum()
        (gradient,) = torch.autograd.grad(chosen, inputs[0])
        probabilities = torch.softmax(scores[:count].detach().float(), 1).cpu().numpy()
        saliency = gradient[:count].detach().abs().amax(1)
        images = inputs[0][:count].detach().float()
        return tuple(Prediction(i, _image(images[i]), _unit(_shrink2d(saliency[i])), probabilities[i],
                                int(predicted[i]), int(self.target[i])) for i in range(count))


def _producer(plan: ModulePlan, variable: str | None) -> str | None:
    """The node whose statement (or input) assigns ``variable``."""
    if variable is None:
        return None
    for statement in plan.statements:
        if variable in re.findall(r"[A-Za-z_]\w*", statement.target):
            return statement.node_id
    return next((node for name, node in plan.arguments if name == variable), None)


def _tensor(value: Any) -> bool:
    return isinstance(value, torch.Tensor) and value.dim() >= 1


def _norm(tensors: list[torch.Tensor]) -> float:
    return float(torch.sqrt(sum(t.detach().float().pow(2).sum() for t in tensors)))


# --- shaping values for views --------------------------------------------------------------

def detail(node: str, ports: dict[str, Any]) -> NodeDetail | None:
    """The first probe sample's output of ``node``, reduced to what a view can show."""
    port, value = _attention(ports) or next(iter(ports.items()))
    if not _tensor(value) or value.dim() < 2:
        return None
    sample = value[0].detach().float().cpu()
    if port != "output" and "weight" in port:
        grid = sample.mean(0) if sample.dim() == 3 else sample
        return NodeDetail(node, port, "heatmap", _shrink2d(grid).numpy(), tuple(value.shape))
    if sample.dim() == 3 or sample.dim() == 4:
        maps = sample if sample.dim() == 3 else sample[:, sample.shape[1] // 2]
        shrunk = _shrink2d(maps[:MAX_MAPS], MAP_SIDE)
        return NodeDetail(node, port, "maps", shrunk.numpy(), tuple(value.shape))
    if sample.dim() == 2:
        return NodeDetail(node, port, "heatmap", _shrink2d(sample).numpy(), tuple(value.shape))
    return NodeDetail(node, port, "vector", sample[:MAX_VALUES].numpy(), tuple(value.shape))


def _attention(ports: dict[str, Any]) -> tuple[str, Any] | None:
    return next(((p, v) for p, v in ports.items() if "weight" in p and _tensor(v)), None)


def _shrink2d(x: torch.Tensor, side: int = HEAT_SIDE) -> torch.Tensor:
    """Average-pool the last two dims down to at most ``side`` each."""
    h, w = x.shape[-2], x.shape[-1]
    if h <= side and w <= side:
        return x.float().cpu()
    shaped = x.float().reshape(-1, 1, h, w)
    pooled = F.adaptive_avg_pool2d(shaped, (min(h, side), min(w, side)))
    return pooled.reshape(*x.shape[:-2], *pooled.shape[-2:]).cpu()


def _unit(x: torch.Tensor) -> np.ndarray:
    low, high = float(x.min()), float(x.max())
    return ((x - low) / (high - low) if high > low else torch.zeros_like(x)).numpy()


def _image(x: torch.Tensor) -> np.ndarray:
    """A [C, H, W] input as an image in 0..1: [H, W] grey or [H, W, 3] colour."""
    shrunk = _shrink2d(x, IMAGE_SIDE)
    image = _unit(shrunk)
    return image[0] if image.shape[0] == 1 else np.ascontiguousarray(image.transpose(1, 2, 0))


# --- gradient health ---------------------------------------------------------------------------

def gradient_warnings(stats: dict[str, NodeStats], reference: str | None) -> dict[str, str]:
    """Nodes whose gradient is not finite, or vanishes or explodes relative to the loss output's."""
    warnings: dict[str, str] = {}
    ref = stats[reference].grad_norm if reference in stats else None
    for node, s in stats.items():
        norms = [v for v in (s.grad_norm, s.param_grad_norm) if v is not None]
        if any(not math.isfinite(v) for v in norms):
            warnings[node] = "exploding gradient: it is NaN or infinite"
        elif ref and s.grad_norm is not None and ref > 0 and math.isfinite(ref):
            ratio = s.grad_norm / ref
            if ratio < VANISHING_RATIO:
                warnings[node] = f"vanishing gradient: {ratio:.1e} x the gradient at the output"
            elif ratio > EXPLODING_RATIO:
                warnings[node] = f"exploding gradient: {ratio:.1e} x the gradient at the output"
    return warnings

