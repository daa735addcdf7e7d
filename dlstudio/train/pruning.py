"""``dlstudio prune GRAPH --weights RUN_DIR --channels FRACTION -o OUT.json``: structured pruning;
``--sparsity FRACTION [--scope global|layer]`` instead: unstructured magnitude pruning.

Removes whole output channels (Conv) and features (Linear) with the smallest L1 norms (Li et
al., 2017), so the network itself shrinks: the written graph has smaller ``out_channels`` /
``out_features``, its weights (``OUT.safetensors``) are the kept slices, and every export of it
is smaller. A layer can lose channels when its output reaches exactly one Conv or Linear
through layers that keep channels apart (activations, dropout, pooling, batch norm, a Flatten
before a Linear); a layer whose output feeds an Output, a merge or several layers keeps all.

With ``--sparsity`` the network keeps its shape and the smallest-magnitude weights become zero
(:mod:`dlstudio.train.magnitude`): the same share of each layer, or of all layers together by
one threshold (``--scope global``). The written graph then keeps those zeros while it fine-tunes
(its training section gains ``pruning``). FLOPs are reported dense and counting only the
multiplications by non-zero weights (what a sparse kernel would do).

The written graph's training section starts from the pruned weights (``init_weights``), so
``dlstudio run OUT.json`` fine-tunes it. The command prints parameters, FLOPs and the run's
validation metrics before and after pruning (before fine-tuning).
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from dlstudio.core.analysis import Analysis, analyze
from dlstudio.core.codegen import plan_module
from dlstudio.core.compiler import build_module
from dlstudio.core.errors import GraphInvalidError, printable
from dlstudio.core.graph import Graph
from dlstudio.core.io import load_graph, save_graph
from dlstudio.core.sparsity import node_sparsity, sparse_flops, zero_count
from dlstudio.core.training import PruningConfig
from dlstudio.exits import UsageError
from dlstudio.train.errors import ConfigError, RunDirError
from dlstudio.train.evaluation import Feeds, labelled_run, torch_runner, validation_metrics
from dlstudio.train.exporting import run_weights, staged, trained_module
from dlstudio.train.magnitude import apply_masks, magnitude_masks, prunable_parameters
from dlstudio.train.pretrained import read_weights
from dlstudio.train.rundir import RunDir

#: Layers whose output channels can go, and the parameter that counts them.
PRUNABLE = {"Conv1d": "out_channels", "Conv2d": "out_channels", "Conv3d": "out_channels",
            "Linear": "out_features"}
#: Layers that read channels (dim 1) one by one, the parameter that counts them, and which of
#: their tensors have one entry per channel.
PER_CHANNEL = {"BatchNorm1d": "num_features", "BatchNorm2d": "num_features", "BatchNorm3d": "num_features"}
NORM_TENSORS = ("weight", "bias", "running_mean", "running_var")
#: Layers that pass channels through untouched.
PASS_THROUGH = frozenset({"ReLU", "LeakyReLU", "GELU", "SiLU", "ELU", "Tanh", "Sigmoid", "Mish", "Hardswish",
                          "Dropout", "Dropout1d", "Dropout2d", "MaxPool1d", "MaxPool2d", "MaxPool3d",
                          "AvgPool1d", "AvgPool2d", "AvgPool3d", "Identity"})
#: Consumers whose input channels shrink with the pruned layer, and the parameter that counts them.
CONSUMERS = {"Conv1d": "in_channels", "Conv2d": "in_channels", "Conv3d": "in_channels", "Linear": "in_features"}


@dataclass(frozen=True)
class Chain:
    """A prunable layer, the channel-wise layers after it, and the layer reading its channels;
    ``spread``: inputs of the consumer per channel (H*W after a Flatten, else 1)."""

    layer: str
    between: tuple[str, ...]
    consumer: str
    spread: int


def chains(analysis: Analysis) -> list[Chain]:
    """Every layer whose output channels can be pruned (see the module doc)."""
    graph = analysis.graph
    types = {node.id: node.type for node in graph.nodes}
    after: dict[str, list[str]] = {node.id: [] for node in graph.nodes}
    for edge in graph.edges:
        after[edge.source_node].append(edge.target_node)
    found = []
    for node in graph.nodes:
        if node.type in PRUNABLE and _plain(node.params):
            chain = _follow(node.id, after, types, analysis)
            if chain is not None:
                found.append(chain)
    return found


def _plain(params: dict[str, Any]) -> bool:
    """A layer without grouped channels (a grouped convolution ties channels together)."""
    return params.get("groups", 1) == 1


def _follow(start: str, after: dict[str, list[str]], types: dict[str, str], analysis: Analysis) -> Chain | None:
    between: list[str] = []
    spread = 1
    current = start
    while len(after[current]) == 1:
        nxt = after[current][0]
        kind = types[nxt]
        if kind in CONSUMERS and _plain(analysis.graph.node(nxt).params):
            return Chain(start, tuple(between), nxt, spread)
        if kind == "Flatten" and spread == 1 and types[start] != "Linear":
            shape = analysis.ports[(current, "output")].shape
            params = analysis.graph.node(nxt).params
            if params.get("start_dim", 1) != 1 or params.get("end_dim", -1) not in (-1, len(shape) - 1):
                return None
            if not all(isinstance(d, int) for d in shape[2:]):
                return None
            spread = math.prod(shape[2:])
        elif kind not in PASS_THROUGH and kind not in PER_CHANNEL:
            return None
        between.append(nxt)
        current = nxt
    return None


def keep_channels(weight: torch.Tensor, fraction: float) -> torch.Tensor:
    """Indices (ascending) of the channels to keep: all but the ``fraction`` with the smallest L1 norm."""
    norms = weight.detach().abs().flatten(1).sum(1)
    count = max(1, round(len(norms) * (1 - fraction)))
    return norms.topk(count).indices.sort().values


def prune(graph: Graph, analysis: Analysis, state: dict[str, torch.Tensor],
          fraction: float) -> tuple[Graph, dict[str, torch.Tensor]]:
    """A copy of ``graph`` with ``fraction`` of each prunable layer's channels removed, and the
    weights sliced to fit it."""
    pruned = graph.copy_deep()
    state = dict(state)
    for chain in chains(analysis):
        keep = keep_channels(state[f"{chain.layer}.weight"], fraction)
        _slice_layer(pruned, state, chain, keep)
    return pruned, state


def _slice_layer(graph: Graph, state: dict[str, torch.Tensor], chain: Chain, keep: torch.Tensor) -> None:
    layer = graph.node(chain.layer)
    layer.params[PRUNABLE[layer.type]] = len(keep)
    for name in ("weight", "bias"):
        if f"{chain.layer}.{name}" in state:
            state[f"{chain.layer}.{name}"] = state[f"{chain.layer}.{name}"][keep].clone()
    for node_id in chain.between:
        node = graph.node(node_id)
        if node.type in PER_CHANNEL:
            _set_if_given(node.params, PER_CHANNEL[node.type], len(keep))
            for name in NORM_TENSORS:
                if f"{node_id}.{name}" in state:
                    state[f"{node_id}.{name}"] = state[f"{node_id}.{name}"][keep].clone()
    consumer = graph.node(chain.consumer)
    columns = (keep[:, None] * chain.spread + torch.arange(chain.spread)).flatten()
    _set_if_given(consumer.params, CONSUMERS[consumer.type], len(columns))
    key = f"{chain.consumer}.weight"
    state[key] = state[key][:, columns].clone()


def _set_if_given(params: dict[str, Any], name: str, value: int) -> None:
    """An inferred size the file states must follow the pruning; one it leaves out stays out."""
    if name in params:
        params[name] = value


# --- the command --------------------------------------------------------------------------------

def add_prune_command(commands: Any) -> None:
    parser = commands.add_parser("prune", help="remove a run's weakest channels: a smaller graph and its weights")
    parser.add_argument("graph", help="the graph the run trained")
    parser.add_argument("--weights", metavar="RUN_DIR", required=True, help="the run whose weights to prune")
    how = parser.add_mutually_exclusive_group(required=True)
    how.add_argument("--channels", type=float, metavar="FRACTION",
                     help="share of each prunable layer's channels to remove, e.g. 0.5 (a smaller network)")
    how.add_argument("--sparsity", type=float, metavar="FRACTION",
                     help="share of the weights to set to zero, smallest magnitudes first, e.g. 0.5")
    parser.add_argument("--scope", choices=("global", "layer"), default="global",
                        help="with --sparsity: one threshold over all layers (default), or the same share of each")
    parser.add_argument("-o", "--output", required=True, help="the pruned graph file (weights beside it)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.set_defaults(handler=prune_command)


def prune_command(args: argparse.Namespace) -> int:
    if args.channels is not None and not 0 < args.channels < 1:
        raise UsageError("--channels wants a fraction between 0 and 1, e.g. 0.5")
    if args.sparsity is not None and not 0 <= args.sparsity < 1:
        raise UsageError(f"{printable(args.graph, 300)}: --sparsity wants a share from 0 up to (not including) 1, e.g. 0.5")
    graph = load_graph(args.graph)
    analysis = analyze(graph)
    if not analysis.ok:
        raise GraphInvalidError(graph.name, analysis.errors)
    base_dir = Path(args.graph).resolve().parent
    try:
        if args.sparsity is not None:
            report = sparsify_run(analysis, RunDir(args.weights), Path(args.output), args.sparsity,
                                  args.scope, base_dir)
        else:
            report = prune_run(analysis, RunDir(args.weights), Path(args.output), args.channels, base_dir)
    except (ConfigError, RunDirError) as error:
        advice = f" ({error.advice})" if error.advice else ""
        print(f"dlstudio: {error}{advice}", file=sys.stderr)
        return error.exit_code
    print(report)
    return 0


def prune_run(analysis: Analysis, run_dir: RunDir, output: Path, fraction: float,
              base_dir: Path | None = None) -> str:
    """Prune the run's network into ``output`` and its weights; returns the before/after table."""
    if not chains(analysis):
        raise ConfigError(f"graph '{analysis.graph.name}' has no layer whose channels can be pruned",
                          "pruning needs a Conv or Linear whose output reaches one Conv or Linear")
    trained_module(analysis, run_dir)  # checks that the run is of this graph
    config, data = labelled_run(analysis, run_dir, base_dir)
    graph, state = prune(analysis.graph, analysis, run_weights(run_dir), fraction)
    weights = output.with_suffix(".safetensors")
    graph.training = config.model_copy(update={"init_weights": weights.name})
    graph.name = f"{analysis.graph.name} pruned"
    after = analyze(graph)
    if not after.ok:
        raise ConfigError(f"the pruned graph is not valid: {after.errors[0].one_line()}")
    module = trained_module(after, None)
    module.load_state_dict(state, strict=True)
    rows = [("parameters", f"{analysis.total_params:,}", f"{after.total_params:,}"),
            ("FLOPs per sample", _count(analysis.total_flops), _count(after.total_flops))]
    for name, (before_value, after_value) in _metrics(analysis, after, run_dir, module, config, data).items():
        rows.append((name, _metric(name, before_value), _metric(name, after_value)))
    _write(graph, state, output, weights)
    return _table(rows, f"pruned {fraction:.0%} of the channels of each prunable layer", output)


def sparsify_run(analysis: Analysis, run_dir: RunDir, output: Path, sparsity: float, scope: str,
                 base_dir: Path | None = None) -> str:
    """Zero the run's smallest weights into ``output`` and its weights; returns the before/after table."""
    module = trained_module(analysis, run_dir)  # checks that the run is of this graph
    config, data = labelled_run(analysis, run_dir, base_dir)
    weights = prunable_parameters(module)
    if not weights:
        raise ConfigError(f"graph '{analysis.graph.name}' has no weights to prune",
                          "magnitude pruning zeroes the weights of layers such as Linear and Conv")
    before = _sparse_counts(analysis, module)
    apply_masks(weights, magnitude_masks(weights, sparsity, scope))  # type: ignore[arg-type]
    after = _sparse_counts(analysis, module)
    rows = [(name, before[name], after[name]) for name in before]
    for name, (old_value, new_value) in _metrics(analysis, analysis, run_dir, module, config, data).items():
        rows.append((name, _metric(name, old_value), _metric(name, new_value)))
    graph = analysis.graph.copy_deep()
    settings = PruningConfig(sparsity=sparsity, scope=scope, start_epoch=1, end_epoch=1)  # type: ignore[arg-type]
    graph.training = config.model_copy(update={"init_weights": output.with_suffix(".safetensors").name,
                                               "pruning": settings})
    graph.name = f"{analysis.graph.name} pruned"
    _write(graph, module.state_dict(), output, output.with_suffix(".safetensors"))
    threshold = "one threshold over all layers" if scope == "global" else "the same share of each layer"
    return _table(rows, f"zeroed {sparsity:.0%} of the prunable weights ({threshold})", output)


def saved_sparsity(analysis: Analysis, source: Path) -> dict[str, float]:
    """Each node's share of zero weights (:func:`node_sparsity`) in a run folder or a
    .safetensors file, whose weights must be this graph's (``dlstudio summary --weights``)."""
    tensors = read_weights(source)
    wanted = build_module(plan_module(analysis)).state_dict()
    wrong = [k for k, v in wanted.items() if k not in tensors or tensors[k].shape != v.shape]
    if wrong:
        raise RunDirError(f"{source}: its weights are not those of graph '{analysis.graph.name}' "
                          f"(no '{wrong[0]}' of shape {list(wanted[wrong[0]].shape)})",
                          "give the run folder or .safetensors file trained from this graph")
    return node_sparsity(analysis, tensors)


def _sparse_counts(analysis: Analysis, module: torch.nn.Module) -> dict[str, str]:
    """Parameters and FLOPs, in all and counting non-zero weights only, and the weights' sparsity."""
    state = module.state_dict()
    zeros, prunable = zero_count(state)
    return {"parameters": f"{analysis.total_params:,}",
            "non-zero parameters": f"{sum(int(p.count_nonzero()) for p in module.parameters()):,}",
            "FLOPs per sample": _count(analysis.total_flops),
            "non-zero FLOPs per sample": _count(sparse_flops(analysis, node_sparsity(analysis, state))),
            "prunable weights at zero": f"{zeros / prunable:.2%}"}


def _metrics(before: Analysis, after: Analysis, run_dir: RunDir, module: torch.nn.Module, config: Any,
             data: Any) -> dict[str, tuple[float, float]]:
    outputs = len(before.graph.nodes_of_type("Output"))
    feeds = Feeds(before, config)
    old = validation_metrics(torch_runner(trained_module(before, run_dir), feeds.output, outputs), feeds, data, config)
    new = validation_metrics(torch_runner(module, feeds.output, outputs), Feeds(after, config), data, config)
    return {key: (old[key], new[key]) for key in old}


def _write(graph: Graph, state: dict[str, torch.Tensor], output: Path, weights: Path) -> None:
    from safetensors.torch import save_file

    with staged(weights) as path:
        save_file({k: v.detach().to("cpu", copy=True).contiguous() for k, v in state.items()}, str(path))  # tied: copies
        save_graph(graph, output)


def _count(value: int | None) -> str:
    return "?" if value is None else f"{value:,}"


def _metric(key: str, value: float) -> str:
    return f"{value:.4f}" if key.endswith(("loss", "mse", "mae")) else f"{value:.2%}"


def _table(rows: list[tuple[str, str, str]], title: str, output: Path) -> str:
    header = ("", "before", "after pruning")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(3)]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
             for row in [header, *rows]]
    return "\n".join([title, *lines,
                      f"wrote {output} and {output.with_suffix('.safetensors').name}; fine-tune with: "
                      f"dlstudio run {output}"])
