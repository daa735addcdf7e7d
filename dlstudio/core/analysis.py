"""Validation and shape inference in one pass: diagnostics, port types, parameter and FLOP counts.

The wiring is checked first (:mod:`dlstudio.core.wiring`: ports, cycles, reachability), then
every node is inferred in topological order from its catalogue declaration. Every problem is
collected; a node whose inputs are unknown is skipped quietly, since its upstream problem is
already listed. Resolved parameters are cached per (type, parameters), so re-analysing after an
edit costs little. Never raises on a bad graph, and imports no torch.
"""

from __future__ import annotations

from typing import Any

from dlstudio.core.blocks import (
    INDEX,
    REPEAT,
    BlockSpec,
    ExpressionError,
    copy_environment,
    environment_key,
)
from dlstudio.core.blocks import instance_graph as block_graph
from dlstudio.core.catalogue import Catalogue, catalogue_for
from dlstudio.core.errors import printable
from dlstudio.core.findings import Analysis, BlockCopy, Diagnostic, Severity, Tie
from dlstudio.core.graph import Graph, Node
from dlstudio.core.io import paused_gc
from dlstudio.core.params import ParamProblem, resolve_params
from dlstudio.core.spec import InferContext, LayerSpec, ShapeError
from dlstudio.core.tensor import MAX_DIM_CHARS, MAX_ELEMENTS, TensorType, format_shape
from dlstudio.core.training_checks import check_training
from dlstudio.core.wiring import Link, evaluation_order, live_nodes, resolve_links

#: Most parameters one node, or the whole model, may hold (refused before allocating).
MAX_PARAMETERS = MAX_ELEMENTS
#: Most nodes a model may hold once its blocks' copies are expanded (what compile builds).
MAX_EXPANDED_NODES = 1_000_000

def analyze(graph: Graph, catalogue: Catalogue | None = None,
            port_types: dict[str, TensorType] | None = None) -> Analysis:
    """Validate ``graph`` and infer every port's type; never raises on a bad graph.

    Layer types are looked up in ``catalogue`` (default: :func:`catalogue_for` the graph).
    ``port_types`` gives Input nodes their types directly (a block's graph, analysed for the
    types arriving at its ports).
    """
    with paused_gc():
        return _analyze(graph, catalogue_for(graph) if catalogue is None else catalogue, port_types or {})


def _analyze(graph: Graph, catalogue: Catalogue, port_types: dict[str, TensorType]) -> Analysis:
    result = Analysis(graph, catalogue)
    nodes = {node.id: node for node in graph.nodes}
    lookup = catalogue.get
    specs = {node.id: lookup(node.type) for node in graph.nodes}
    report = _reporter(result)
    _check_unknown(graph, specs, result)
    result.links, result.dangling = resolve_links(graph, specs, _output_ports(nodes, specs), report)
    result.order = evaluation_order(list(nodes), result.links, report)
    _check_liveness(graph, result)
    for node_id, tensor in port_types.items():
        _store(result, node_id, {}, {"output": tensor}, 0, 0)
    _infer_all(nodes, specs, result, set(port_types))
    result.expanded_nodes = len(nodes) + sum(copy.analysis.expanded_nodes for copies in result.blocks.values()
                                             for copy in copies)
    _check_ties(graph, specs, result)
    _check_in_place(nodes, result, report)
    _check_frozen(graph, result)
    for problem in catalogue.problems:
        report("error", None, problem, "give the block another name")
    if graph.training is not None:
        result.diagnostics += check_training(graph.training, result)
    return result


def _check_in_place(nodes: dict[str, Node], result: Analysis, report: Any) -> None:
    """Warn where ``inplace=True`` would overwrite a tensor that something else still reads:
    a model input, or an output that feeds other nodes too."""
    readers: dict[tuple[str, str], int] = {}
    for link in result.links:
        readers[(link.source, link.source_port)] = readers.get((link.source, link.source_port), 0) + 1
    for link in result.links:
        if not result.params.get(link.target, {}).get("inplace"):
            continue
        shared = readers[(link.source, link.source_port)] > 1
        if shared or nodes[link.source].type == "Input":
            what = "is also read by other nodes" if shared else "is a model input"
            report("warning", link.target,
                   f"'{link.target}' overwrites its input in place, but the output of "
                   f"'{link.source}' {what}", "turn inplace off", link.target_port, "inplace")


def _check_frozen(graph: Graph, result: Analysis) -> None:
    """A frozen node without parameters has nothing to freeze: say so, it may be a slip."""
    for node in graph.nodes:
        if node.frozen and result.param_counts.get(node.id) == 0:
            _report(result, "warning", node.id,
                    f"'{node.id}' is frozen but has no parameters to keep fixed",
                    "unfreeze it, or freeze the layer whose weights should stay")


def _reporter(result: Analysis) -> Any:
    def report(severity: Severity, node: str | None, message: str, fix: str = "",
               port: str | None = None, param: str | None = None) -> None:
        result.diagnostics.append(Diagnostic(severity, node, message, fix, port, param))

    return report


def _report(result: Analysis, severity: Severity, node: str | None, message: str, fix: str = "",
            port: str | None = None, param: str | None = None) -> None:
    result.diagnostics.append(Diagnostic(severity, node, message, fix, port, param))


def _check_unknown(graph: Graph, specs: dict[str, LayerSpec | None], result: Analysis) -> None:
    for node in graph.nodes:
        if specs[node.id] is None:
            _report(result, "error", node.id, f"unknown layer type '{printable(node.type, 60)}'",
                    "replace it with a layer from the palette; its parameters are kept")
    for node_id, key in graph.unknown_keys():
        _report(result, "warning", node_id, f"unknown key '{printable(key, 60)}' is kept but not used",
                "check the spelling, or open the file with a newer DL Studio")
    if not any(n.type == "Input" for n in graph.nodes):
        _report(result, "error", None, "the graph has no Input node", "add an Input node")
    if not any(n.type == "Output" for n in graph.nodes):
        _report(result, "error", None, "the graph has no Output node", "add an Output node")


def _output_ports(nodes: dict[str, Node], specs: dict[str, LayerSpec | None]) -> Any:
    """A node's output ports; the declared ones while its parameters are invalid."""

    def ports(node_id: str) -> tuple[str, ...]:
        spec = specs[node_id]
        assert spec is not None
        if spec.output_rule is None:
            return spec.outputs
        try:
            return spec.output_ports(cached_params(spec, nodes[node_id].params))
        except Exception:  # noqa: BLE001  (bad parameters are reported when the node is inferred)
            return spec.outputs

    return ports


def _check_liveness(graph: Graph, result: Analysis) -> None:
    outputs = [node.id for node in graph.nodes if node.type == "Output"]
    result.live = live_nodes(outputs, result.links)
    if not outputs:
        return
    for node in graph.nodes:
        if node.id not in result.live and node.type != "Output":
            _report(result, "warning", node.id, f"'{node.id}' does not reach any Output",
                    "connect it, or delete it")


#: Resolved parameters per (type, given parameters), and whole node results per (those,
#: input types): re-analysing after an edit recomputes only what the edit changed.
_PARAMS_CACHE: dict[tuple, tuple[LayerSpec, dict[str, Any] | ParamProblem]] = {}
_NODE_CACHE: dict[tuple, tuple[LayerSpec, dict[str, Any], dict[str, TensorType], int, int | None]] = {}
_CACHE_LIMIT = 8192


def params_key(spec: LayerSpec, given: dict[str, Any]) -> tuple | None:
    """The cache key of a node's parameters; None when a value is unhashable.

    Each value is keyed with its type, since pydantic tells apart 1, 1.0 and True.
    """
    try:
        parts = [(name, type(value), value if type(value) in _SCALARS else _freeze(value))
                 for name, value in given.items()]
        parts.sort()  # names are unique, so only they are compared
        key = (spec.type, *parts)
        hash(key)
    except TypeError:
        return None
    return key


_SCALARS = frozenset({str, int, float, bool, type(None)})


def cached_params(spec: LayerSpec, given: dict[str, Any], key: tuple | None = None) -> dict[str, Any]:
    """:func:`resolve_params` remembered per (type, parameters); returns a fresh dict."""
    key = key or params_key(spec, given)
    if key is None:
        return resolve_params(spec, given)
    hit = _PARAMS_CACHE.get(key)
    if hit is None or hit[0] is not spec:
        try:
            value: dict[str, Any] | ParamProblem = resolve_params(spec, given)
        except ParamProblem as problem:
            value = problem
        if len(_PARAMS_CACHE) >= _CACHE_LIMIT:
            _PARAMS_CACHE.clear()
        hit = _PARAMS_CACHE[key] = (spec, value)
    if isinstance(hit[1], ParamProblem):
        raise hit[1]
    return dict(hit[1])


def clear_caches() -> None:
    """Forget every cached result (benchmarks measure cold analysis with this)."""
    _PARAMS_CACHE.clear()
    _NODE_CACHE.clear()
    _COPY_CACHE.clear()


def _freeze(value: Any) -> Any:
    """A hashable key that tells apart values pydantic treats differently (1, 1.0, True)."""
    kind = type(value)
    if kind is dict:
        return ("{", *((key, _freeze(item)) for key, item in sorted(value.items())))
    if kind is list or kind is tuple:
        return ("[", *(_freeze(item) for item in value))
    return (kind, value)


def _infer_all(nodes: dict[str, Node], specs: dict[str, LayerSpec | None], result: Analysis,
               given: set[str]) -> None:
    incoming: dict[str, list[Link]] = {}
    for link in result.links:
        incoming.setdefault(link.target, []).append(link)
    for node_id in result.order:
        spec = specs[node_id]
        if spec is None or node_id in given:
            continue
        node, links = nodes[node_id], incoming.get(node_id, [])
        key = params_key(spec, node.params)
        if isinstance(spec, BlockSpec):
            _infer_block(node, spec, links, result, key)
        elif not _known_single_input(node_id, spec, links, key, result):
            _infer_node(node, spec, links, result, key)
    total = result.total_params
    if total > MAX_PARAMETERS:
        _report(result, "error", None, f"the model would hold {total:,} parameters, over the limit "
                f"of {MAX_PARAMETERS:,}; nothing is allocated", "use smaller layers")


def _known_single_input(node_id: str, spec: LayerSpec, links: list[Link], key: tuple | None,
                        result: Analysis) -> bool:
    """The fast path: a one-input node whose result for this input is cached (stored here)."""
    if key is None or len(links) != 1 or spec.inputs != (links[0].target_port,):
        return False
    tensor = result.ports.get((links[0].source, links[0].source_port))
    hit = None if tensor is None else _NODE_CACHE.get((key, ((links[0].target_port, tensor),)))
    if hit is None or hit[0] is not spec:
        return False
    _store(result, node_id, *hit[1:])
    return True


def _resolved(node: Node, spec: LayerSpec, result: Analysis, key: tuple | None) -> dict[str, Any] | None:
    """The node's parameters with defaults filled; None (reported on the node) when bad."""
    try:
        return cached_params(spec, node.params, key)
    except ParamProblem as problem:
        _report(result, "error", node.id, f"{spec.type} '{node.id}': {printable(problem.message, 300)}",
                "change or remove the value", param=problem.param)
    except Exception as error:  # noqa: BLE001  (a broken declaration must not stop the editor)
        _internal_error(result, node, spec, error)
    return None


def _resolved_inputs(node: Node, spec: LayerSpec, links: list[Link], result: Analysis,
                     key: tuple | None) -> tuple[dict[str, Any], dict[str, TensorType]] | None:
    """The node's resolved parameters (recorded) and its arriving types; None after a problem."""
    params = _resolved(node, spec, result, key)
    if params is None:
        return None
    result.params[node.id] = params
    inputs = _gather_inputs(node, spec, links, result)
    return None if inputs is None else (params, inputs)


def _infer_node(node: Node, spec: LayerSpec, links: list[Link], result: Analysis,
                key: tuple | None) -> None:
    resolved = _resolved_inputs(node, spec, links, result, key)
    if resolved is None:
        return
    params, inputs = resolved
    memo = None if key is None else (key, tuple(inputs.items()))
    hit = _NODE_CACHE.get(memo) if memo else None
    if hit is not None and hit[0] is spec:
        _store(result, node.id, *hit[1:])
    else:
        _infer_fresh(node, spec, params, inputs, links, result, memo)


def _infer_fresh(node: Node, spec: LayerSpec, params: dict[str, Any], inputs: dict[str, TensorType],
                 links: list[Link], result: Analysis, memo: tuple | None) -> None:
    """Run the node's rules (no cached result applies) and remember a clean result."""
    context = InferContext(node.id, spec, params, inputs, {link.target_port: link.source for link in links})
    try:
        count, flops = _run_rules(context)
    except ShapeError as error:
        _report(result, "error", node.id, error.message, error.fix, error.port)
        return
    except Exception as error:  # noqa: BLE001  (a bug in one rule is shown on its node)
        _internal_error(result, node, spec, error)
        return
    for message, fix in context.warnings:
        _report(result, "warning", node.id, message, fix)
    _store(result, node.id, context.params, context.outputs, count, flops)
    if memo and not context.warnings:
        if len(_NODE_CACHE) >= _CACHE_LIMIT:
            _NODE_CACHE.clear()
        _NODE_CACHE[memo] = (spec, dict(context.params), dict(context.outputs), count, flops)


def _store(result: Analysis, node_id: str, params: dict[str, Any], outputs: dict[str, TensorType],
           count: int, flops: int | None) -> None:
    result.params[node_id] = dict(params)
    result.param_counts[node_id] = count
    result.flops[node_id] = flops
    for port, tensor in outputs.items():
        result.ports[(node_id, port)] = tensor


#: Analyses of a block's graph per (block, parameter values, input types): a block used many
#: times, or repeated, is analysed once per distinct parameter set.
_COPY_CACHE: dict[tuple, tuple[BlockSpec, BlockCopy]] = {}


def _infer_block(node: Node, spec: BlockSpec, links: list[Link], result: Analysis, key: tuple | None) -> None:
    """Analyse each copy of the block node ``node`` and store what the chain outputs."""
    if spec.problem:
        _report(result, "error", node.id, spec.problem, "change the blocks it uses")
        return
    resolved = _resolved_inputs(node, spec, links, result, key)
    if resolved is None:
        return
    params, inputs = resolved
    try:
        copies = _block_copies(node.id, spec, params, inputs, result.catalogue)
    except ShapeError as error:
        _report(result, "error", node.id, error.message, error.fix, error.port)
        return
    expanded = sum(copy.analysis.expanded_nodes for copy in copies)
    if expanded > MAX_EXPANDED_NODES:
        _report(result, "error", node.id, f"{spec.type} '{node.id}' expands to {expanded:,} nodes, over the "
                f"limit of {MAX_EXPANDED_NODES:,} (MAX_EXPANDED_NODES)", "repeat fewer copies")
        return
    result.blocks[node.id] = copies
    flops = [copy.analysis.total_flops for copy in copies]
    _store(result, node.id, params, copies[-1].outputs, sum(c.analysis.total_params for c in copies),
           None if None in flops else sum(f or 0 for f in flops))
    seen: set[str] = set()
    for index, copy in enumerate(copies):
        for warning in copy.analysis.diagnostics:
            text = _inner_message(node.id, index if len(copies) > 1 else None, warning)
            if text not in seen:
                seen.add(text)
                _report(result, "warning", node.id, text, warning.fix)


def _block_copies(node_id: str, spec: BlockSpec, params: dict[str, Any], inputs: dict[str, TensorType],
                  catalogue: Catalogue) -> list[BlockCopy]:
    """The analysed copies of a block node; ShapeError names the first problem inside."""
    repeat = params[REPEAT]
    if repeat > 1 and len(spec.outputs) != 1:
        raise ShapeError(f"{spec.type} '{node_id}' repeats a block with {len(spec.outputs)} outputs",
                         "repeat only blocks with one Output: it feeds the first Input of the next copy")
    copies, types = [], dict(inputs)
    for index in range(repeat):
        try:
            env = copy_environment(spec, params, index)
        except ExpressionError as error:
            raise ShapeError(f"{spec.type} '{node_id}': {error}", f"parameters may use '{INDEX}' (the copy, "
                             "from 0) and numbers only") from None
        copy = _analysed_copy(node_id, spec, env, types, catalogue)
        errors = copy.analysis.errors
        if errors:
            raise ShapeError(_inner_message(node_id, index if repeat > 1 else None, errors[0]), errors[0].fix)
        copies.append(copy)
        types = {**types, spec.inputs[0]: copy.outputs[spec.outputs[0]]}  # the other inputs go to every copy
    return copies


def _analysed_copy(node_id: str, spec: BlockSpec, env: dict[str, Any], types: dict[str, TensorType],
                   catalogue: Catalogue) -> BlockCopy:
    key = (id(spec), environment_key(env), tuple(sorted(types.items())))
    hit = _COPY_CACHE.get(key)
    if hit is not None and hit[0] is spec:
        return hit[1]
    try:
        graph = block_graph(spec, env, spec.type)
    except ExpressionError as error:
        raise ShapeError(f"{node_id}.{error}", "check the expression and the block's parameters") from None
    analysis = _analyze(graph, catalogue, types)
    outputs = {port: analysis.ports[(port, "output")] for port in spec.outputs if (port, "output") in analysis.ports}
    copy = BlockCopy(env, analysis, outputs)
    if analysis.ok:
        if len(_COPY_CACHE) >= _CACHE_LIMIT:
            _COPY_CACHE.clear()
        _COPY_CACHE[key] = (spec, copy)
    return copy


def _inner_message(node_id: str, index: int | None, diagnostic: Diagnostic) -> str:
    """A diagnostic from inside a block, named by its path: ``stage2[1].conv1: ...``."""
    prefix = node_id if index is None else f"{node_id}[{index}]"
    inner, message = diagnostic.node, diagnostic.message
    if inner is None:
        return f"{prefix}: {message}"
    if message.startswith((f"{inner}.", f"{inner}[")):
        return f"{prefix}.{message}"
    return f"{prefix}.{inner}: {message}"


def _check_ties(graph: Graph, specs: dict[str, LayerSpec | None], result: Analysis) -> None:
    """Each ``tie`` names a parameter of another node with the same shape; the shared tensor
    is counted once (on the source)."""
    for node in graph.nodes:
        for param, reference in (node.tie or {}).items():
            tie = _resolve_tie(node, param, reference, specs, result)
            if tie is not None:
                result.ties.append(tie)
                result.param_counts[node.id] = result.param_counts.get(node.id, 0) - tie.numel


def _resolve_tie(node: Node, param: str, reference: str, specs: dict[str, LayerSpec | None],
                 result: Analysis) -> Tie | None:
    transpose = reference.endswith(".T")
    source, _, source_param = reference.removesuffix(".T").rpartition(".")
    fix = "name a parameter as node.parameter, e.g. \"wte.weight\" (\"enc.weight.T\" for its transpose)"
    if source == node.id:
        _report(result, "error", node.id, f"'{node.id}' ties its {param} to itself", fix)
        return None
    if not source or source not in specs:
        _report(result, "error", node.id, f"'{node.id}' ties its {param} to '{printable(reference, 60)}', "
                "which is not a node of this graph", fix)
        return None
    shapes = [_weight_shapes(node_id, specs, result) for node_id in (node.id, source)]
    if shapes[0] is None or shapes[1] is None:
        return None  # an error on the node already says why its parameters are unknown
    if param not in shapes[0] or source_param not in shapes[1]:
        missing, owner = (param, node.id) if param not in shapes[0] else (source_param, source)
        known = ", ".join(shapes[0 if owner == node.id else 1]) or "none"
        _report(result, "error", node.id, f"'{node.id}' ties '{missing}', which '{owner}' does not have "
                f"(its shareable parameters: {known})", fix)
        return None
    mine, theirs = shapes[0][param], shapes[1][source_param]
    wanted = tuple(reversed(theirs)) if transpose else theirs
    if mine != wanted or (transpose and len(mine) != 2):
        turned = tuple(reversed(mine)) == theirs and len(mine) == 2
        hint = f"; they are transposed: write \"{source}.{source_param}.T\"" if turned and not transpose else ""
        _report(result, "error", node.id, f"'{node.id}'.{param} has shape {list(mine)} but "
                f"'{source}'.{source_param}{'.T' if transpose else ''} has {list(wanted)}{hint}",
                "make the layers' sizes agree (a Linear tied to an Embedding maps embedding_dim to "
                "num_embeddings)")
        return None
    numel = 1
    for size in mine:
        numel *= size
    return Tie(node.id, param, source, source_param, numel, transpose)


def _weight_shapes(node_id: str, specs: dict[str, LayerSpec | None],
                   result: Analysis) -> dict[str, tuple[int, ...]] | None:
    spec, params = specs[node_id], result.params.get(node_id)
    if spec is None or params is None or node_id not in result.param_counts:
        return None
    if spec.weights is None:
        _report(result, "error", node_id, f"{spec.type} '{node_id}' cannot share its parameters (ties "
                "are declared for Linear, Embedding and convolution layers)", "remove the tie")
        return None
    return spec.weights(params)


def _run_rules(context: InferContext) -> tuple[int, int | None]:
    """Shape rule and size limits of one node; returns its parameter count and FLOPs."""
    spec = context.spec
    produced = spec.infer(context)
    context.outputs = produced if isinstance(produced, dict) else {spec.outputs[0]: produced}
    _check_size(context)
    count = spec.count_params(context) if spec.count_params else 0
    if count > MAX_PARAMETERS:
        context.fail(f"{context.where} would hold {count:,} parameters, over the limit of "
                     f"{MAX_PARAMETERS:,}; nothing is allocated", "use smaller sizes")
    return count, (spec.flops(context) if spec.flops else 0)


def _internal_error(result: Analysis, node: Node, spec: LayerSpec, error: Exception) -> None:
    detail = printable(f"{type(error).__name__}: {error}", 160)
    _report(result, "error", node.id, f"{spec.type} '{node.id}': internal error in its declaration ({detail})",
            "please report this; meanwhile change the node's parameters or inputs")


def _gather_inputs(node: Node, spec: LayerSpec, links: list[Link],
                   result: Analysis) -> dict[str, TensorType] | None:
    if len(links) == 1 and spec.inputs == (links[0].target_port,):  # one input, connected
        tensor = result.ports.get((links[0].source, links[0].source_port))
        return None if tensor is None else {links[0].target_port: tensor}
    by_port = {link.target_port: link for link in links}
    count = len(by_port)
    if spec.variadic:
        count = max([int(p[2:]) + 1 for p in by_port] + [spec.variadic])
    inputs: dict[str, TensorType] = {}
    complete = True
    for port in spec.input_ports(count):
        link = by_port.get(port)
        if link is None:
            if (node.id, port) in result.dangling:
                complete = False
            elif port not in spec.optional_inputs:
                _report(result, "error", node.id, f"{spec.type} '{node.id}' has nothing connected to '{port}'",
                        f"connect a node to {node.id}.{port}", port)
                complete = False
            continue
        tensor = result.ports.get((link.source, link.source_port))
        if tensor is None:
            complete = False
        else:
            inputs[port] = tensor
    return inputs if complete else None


def _check_size(context: InferContext) -> None:
    for tensor in context.outputs.values():
        _check_expressions(context, tensor)
        dims = tensor.shape[1:]
        if any(isinstance(d, int) and d < 0 for d in dims) or any(d == 0 for d in dims):
            context.fail(f"{context.where} would output an empty or negative shape {format_shape(tensor.shape)}",
                         "use a smaller kernel or stride, more padding, or a larger input")
        total = 1
        for d in dims:
            if isinstance(d, int):
                total *= d
        if total > MAX_ELEMENTS:
            context.fail(f"{context.where} would output {format_shape(tensor.shape)}: over 2^31 elements per sample",
                         "use smaller sizes")


def _check_expressions(context: InferContext, tensor: TensorType) -> None:
    """Refuse a symbolic size written longer than :data:`MAX_DIM_CHARS` (its shape stays unknown)."""
    for d in tensor.shape:
        if isinstance(d, str) and len(d) > MAX_DIM_CHARS:
            context.fail(f"{context.where} would output a size expression of {len(d):,} characters, "
                         f"over the limit of {MAX_DIM_CHARS} (MAX_DIM_CHARS)",
                         "give the variable length a fixed size in the Input, or join fewer padded copies")
