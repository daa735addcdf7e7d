"""Layered auto-layout of a graph, flowing left to right (no Qt).

A Sugiyama-style layout in four steps: break cycles, put every node in a column by its
longest path from the inputs, order each column by barycentre sweeps that reduce edge
crossings (long edges pass through placeholder points so they keep a lane), and finally place
each column vertically so that connected ports line up, solved exactly per column as an
isotonic regression (the pool-adjacent-violators algorithm) under the no-overlap constraint.
The canvas passes the real size and port offsets of each node as a :class:`Box`; without them
a box is estimated from the catalogue declaration with the canvas's metrics.

With ``wrap`` the columns then flow like text: rows no wider than ``wrap``, stacked top to
bottom, broken where a single node hands over to the next column (between residual blocks,
never inside one) whenever such a place exists, so a deep network reads as a column of blocks
with its branches side by side instead of as one long line.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from dlstudio.core.catalogue import Catalogue, catalogue_for
from dlstudio.core.graph import Graph, split_end

Point = tuple[float, float]

#: Canvas metrics the default boxes assume (the canvas uses the same numbers).
HEADER = 40.0
ROW = 20.0
WIDTH = 180.0
COLUMN_GAP = 120.0
ROW_GAP = 30.0
LANE = 10.0
LANE_WEIGHT = 0.01
SWEEPS = 8
#: Most columns an edge keeps a lane through; a longer one runs straight, so that the lane
#: points stay in proportion to the edges (one Input feeding every layer would be quadratic).
MAX_LANE_SPAN = 64
#: Row width the editor wraps a layout at, the space between wrapped rows (room for the edge
#: that returns from a row's end to the next row's start) and between wrapped columns (edges
#: there are too short for a shape label; the source port shows the shape).
WRAP = 1800.0
ROW_BREAK = 90.0
WRAP_COLUMN_GAP = 60.0


@dataclass(frozen=True)
class Box:
    """A node's size and the vertical offset of each port from its top edge."""

    width: float = WIDTH
    height: float = HEADER + ROW + 10.0
    inputs: Mapping[str, float] = field(default_factory=dict)
    outputs: Mapping[str, float] = field(default_factory=dict)

    def offset(self, port: str | None, is_source: bool) -> float:
        ports = self.outputs if is_source else self.inputs
        if port in ports:
            return ports[port]
        return next(iter(ports.values()), self.height / 2)


def estimate_box(type_name: str, catalogue: Catalogue) -> Box:
    """The box the canvas draws for a layer type: a header, then one row per port pair."""
    spec = catalogue.get(type_name)
    inputs = spec.input_ports() if spec else ("input",)
    outputs = spec.outputs if spec else ("output",)
    rows = max(len(inputs), len(outputs), 1)
    centre = [HEADER + ROW * (i + 0.5) for i in range(rows)]
    return Box(WIDTH, HEADER + ROW * rows + 10.0, dict(zip(inputs, centre, strict=False)),
               dict(zip(outputs, centre, strict=False)))


@dataclass(slots=True)
class _Link:
    source: str
    target: str
    out: float  # port offset at the source
    into: float  # port offset at the target


def layered_layout(graph: Graph, node_ids: Iterable[str] | None = None,
                   boxes: Mapping[str, Box] | None = None, origin: Point = (0.0, 0.0),
                   grid: float = 10.0, wrap: float | None = None,
                   catalogue: Catalogue | None = None) -> dict[str, Point]:
    """Top-left positions for ``node_ids`` (default: every node), from ``origin``; with
    ``wrap``, rows of columns at most that wide (when a column fits), one below the other.
    A node without a box in ``boxes`` gets one estimated from ``catalogue`` (default: the graph's)."""
    ids = list(dict.fromkeys(node_ids)) if node_ids is not None else graph.node_ids()
    if not ids:
        return {}
    chosen = set(ids)
    types = catalogue_for(graph) if catalogue is None else catalogue
    box = {n.id: (boxes or {}).get(n.id) or estimate_box(n.type, types) for n in graph.nodes if n.id in chosen}
    links = _links(graph, chosen, box)
    links = _drop_back_edges(ids, links)
    column = _columns(ids, links)
    links, lanes = _split_long(links, column)
    for lane in lanes:
        box[lane] = Box(0.0, LANE, {"": LANE / 2}, {"": LANE / 2})
    order = _order(ids + lanes, column, links)
    tops = _place_rows(order, links, box)
    lefts = _place_columns(order, box, COLUMN_GAP if wrap is None else WRAP_COLUMN_GAP)
    if wrap is not None:
        tops, lefts = _wrap_rows(order, links, box, tops, lefts, wrap)
    return _finish(ids, column, tops, lefts, origin, grid)


def _links(graph: Graph, chosen: set[str], box: Mapping[str, Box]) -> list[_Link]:
    found: list[_Link] = []
    seen: set[tuple[str, str]] = set()
    for edge in graph.edges:
        (source, out_port), (target, in_port) = split_end(edge.source), split_end(edge.target)
        if source not in chosen or target not in chosen or source == target or (source, target) in seen:
            continue
        seen.add((source, target))
        found.append(_Link(source, target, box[source].offset(out_port, True), box[target].offset(in_port, False)))
    return found


def _drop_back_edges(ids: list[str], links: list[_Link]) -> list[_Link]:
    """Remove the edges that close a cycle (depth-first, in file order)."""
    succ: dict[str, list[str]] = {n: [] for n in ids}
    for link in links:
        succ[link.source].append(link.target)
    state: dict[str, int] = {}
    back: set[tuple[str, str]] = set()
    for root in ids:
        if root in state:
            continue
        state[root] = 1
        stack = [(root, iter(succ[root]))]
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                stack.pop()
            elif state.get(child) == 1:
                back.add((node, child))
            elif child not in state:
                state[child] = 1
                stack.append((child, iter(succ[child])))
    return [link for link in links if (link.source, link.target) not in back]


def _columns(ids: list[str], links: list[_Link]) -> dict[str, int]:
    """Longest path from the sources; a source then moves next to its nearest consumer."""
    preds: dict[str, list[str]] = {n: [] for n in ids}
    succs: dict[str, list[str]] = {n: [] for n in ids}
    for link in links:
        preds[link.target].append(link.source)
        succs[link.source].append(link.target)
    column: dict[str, int] = {}
    pending = {n: len(preds[n]) for n in ids}
    ready = deque(n for n in ids if not pending[n])
    while ready:
        node = ready.popleft()
        column[node] = max((column[p] + 1 for p in preds[node]), default=0)
        for child in succs[node]:
            pending[child] -= 1
            if not pending[child]:
                ready.append(child)
    for node in ids:
        if not preds[node] and succs[node]:
            column[node] = min(column[c] for c in succs[node]) - 1
    return column


def _split_long(links: list[_Link], column: dict[str, int]) -> tuple[list[_Link], list[str]]:
    """Replace an edge spanning several columns (at most ``MAX_LANE_SPAN``) by a chain through
    lane points."""
    short: list[_Link] = []
    lanes: list[str] = []
    for link in links:
        span = column[link.target] - column[link.source]
        if span > MAX_LANE_SPAN:
            short.append(link)
            continue
        previous, out = link.source, link.out
        for step in range(1, span):
            lane = f"\0{len(lanes)}"
            lanes.append(lane)
            column[lane] = column[link.source] + step
            short.append(_Link(previous, lane, out, LANE / 2))
            previous, out = lane, LANE / 2
        short.append(_Link(previous, link.target, out, link.into))
    return short, lanes


def _order(nodes: list[str], column: dict[str, int], links: list[_Link]) -> list[list[str]]:
    """Columns of node ids, each ordered by barycentre sweeps; the order with fewest crossings."""
    count = max(column.values()) + 1
    order: list[list[str]] = [[] for _ in range(count)]
    for node in nodes:
        order[column[node]].append(node)
    preds: dict[str, list[str]] = {n: [] for n in nodes}
    succs: dict[str, list[str]] = {n: [] for n in nodes}
    for link in links:
        preds[link.target].append(link.source)
        succs[link.source].append(link.target)
    best, best_cost = [list(c) for c in order], _crossings(order, succs)
    still = 0  # sweeps in a row that changed nothing: after one each way, none ever will
    for sweep in range(SWEEPS):
        forward = sweep % 2 == 0
        indices = range(1, count) if forward else range(count - 2, -1, -1)
        changed = False
        for i in indices:
            if len(order[i]) < 2:  # nothing to reorder
                continue
            ref = {n: k for k, n in enumerate(order[i - 1 if forward else i + 1])}
            near = preds if forward else succs
            column = _by_barycentre(order[i], near, ref)
            changed = changed or column != order[i]
            order[i] = column
        still = 0 if changed else still + 1
        if still >= 2:
            break
        cost = _crossings(order, succs) if changed else best_cost
        if cost < best_cost:
            best, best_cost = [list(c) for c in order], cost
    return best


def _by_barycentre(nodes: list[str], near: dict[str, list[str]], ref: dict[str, int]) -> list[str]:
    def key(item: tuple[int, str]) -> tuple[float, int]:
        index, node = item
        around = [ref[n] for n in near[node] if n in ref]
        return (sum(around) / len(around) if around else float(index), index)

    if len(nodes) == 2:  # the common column (a path and a skip edge): one comparison
        first, second = nodes
        return [second, first] if key((1, second)) < key((0, first)) else [first, second]
    return [node for _, node in sorted(enumerate(nodes), key=key)]


def _crossings(order: list[list[str]], succs: dict[str, list[str]]) -> int:
    """Edge crossings between neighbouring columns (inversions, counted with a Fenwick tree)."""
    total = 0
    for left, right in zip(order, order[1:], strict=False):
        rank = {n: k for k, n in enumerate(right)}
        targets: list[int] = []
        for node in left:
            targets += sorted(rank[c] for c in succs[node] if c in rank)
        tree = [0] * (len(right) + 1)
        for seen, value in enumerate(targets):
            position, smaller = value + 1, 0
            while position > 0:
                smaller += tree[position]
                position -= position & -position
            total += seen - smaller
            position = value + 1
            while position <= len(right):
                tree[position] += 1
                position += position & -position
    return total


def _place_rows(order: list[list[str]], links: list[_Link], box: Mapping[str, Box]) -> dict[str, float]:
    """Top of every node: stacked columns, then sweeps that pull connected ports level.

    What does not change between sweeps (each column's gaps and weights, each node's pulls)
    is worked out once; a column of one node (most of a long graph) needs no regression, and
    its step is written out for the one or two neighbours nodes mostly have."""
    tops: dict[str, float] = {}
    for nodes in order:
        y = 0.0
        for node in nodes:
            tops[node] = y
            y += box[node].height + ROW_GAP
    from_left = _pulls(links, box, forward=True)
    from_right = _pulls(links, box, forward=False)
    forward: list[_Step] = []  # what each column does in a sweep from the left
    backward: list[_Step] = []  # and from the right (in that order)
    for nodes in order:
        if len(nodes) == 1:
            node = nodes[0]
            weight = 1.0 if box[node].width else LANE_WEIGHT
            for steps, pulled in ((forward, from_left.get(node)), (backward, from_right.get(node))):
                if pulled:  # else nothing pulls it
                    steps.append(_single_step(node, weight, pulled))
            continue
        gaps = [box[a].height + (ROW_GAP if box[a].width and box[b].width else LANE)
                for a, b in zip(nodes, nodes[1:], strict=False)]
        weights = [1.0 if box[n].width else LANE_WEIGHT for n in nodes]
        shift = _shifts(gaps)
        for steps, pulls in ((forward, from_left), (backward, from_right)):
            steps.append(_many_step(nodes, shift, weights, [pulls.get(n) for n in nodes]))
    backward.reverse()
    still = 0  # sweeps in a row that moved nothing: after one each way, none ever will
    for sweep in range(SWEEPS):
        moved = False
        for step in forward if sweep % 2 == 0 else backward:
            if type(step) is _Many:
                nodes, shift, weights, pulls = step
                wanted = [(tops[pulled[0][0]] + pulled[0][1] if len(pulled) == 1 else _level(pulled, tops))
                          if pulled else tops[node] for node, pulled in zip(nodes, pulls, strict=True)]
                for node, top in zip(nodes, _isotonic(wanted, shift, weights), strict=True):
                    moved = moved or top != tops[node]
                    tops[node] = top
                continue
            size = len(step)
            if size == 10:  # two nodes, each pulled by one neighbour
                first_node, second_node, first_shift, second_shift, first_weight, second_weight, \
                    first_other, first_offset, second_other, second_offset = step
                first_top, second_top = _two_tops(tops[first_other] + first_offset, tops[second_other] + second_offset,
                                                  first_shift, second_shift, first_weight, second_weight)
                moved = moved or first_top != tops[first_node] or second_top != tops[second_node]
                tops[first_node], tops[second_node] = first_top, second_top
                continue
            if size == 4:  # one node pulled by one neighbour: its ports level with its neighbour's
                node, weight, other, offset = step
                top = (tops[other] + offset) * weight / weight  # what the regression gives
            elif size == 6:  # by two: what _level gives, without the call
                node, weight, first, first_offset, second, second_offset = step
                top = sum([tops[first] + first_offset, tops[second] + second_offset]) / 2 * weight / weight
            else:  # by more
                node, weight, pulled = step
                top = _level(pulled, tops) * weight / weight
            moved = moved or top != tops[node]
            tops[node] = top
        still = 0 if moved else still + 1
        if still >= 2:
            break
    return tops


def _level(pulled: list[Pull], tops: dict[str, float]) -> float:
    """The top that levels a node's ports with its neighbours' on average (for one neighbour,
    the callers add its offset themselves: the same number, without a call)."""
    return sum([tops[other] + offset for other, offset in pulled]) / len(pulled)


Pull = tuple[str, float]  # a neighbour, and how far below its top this node's top would be level


class _Many(NamedTuple):
    """A column of several nodes in a sweep: their shifts, weights and pulls from one side."""

    nodes: list[str]
    shift: list[float]
    weights: list[float]
    pulls: list[list[Pull] | None]


#: What a column does in a sweep: a :class:`_Many`, or a node with its weight and its pulls
#: from one side, laid out flat for the one or two neighbours nodes mostly have.
_Step = tuple


def _many_step(nodes: list[str], shift: list[float], weights: list[float],
               pulls: list[list[Pull] | None]) -> _Step:
    """A column of two nodes each pulled by one neighbour laid out flat; else a :class:`_Many`."""
    if len(nodes) == 2 and all(pulled and len(pulled) == 1 for pulled in pulls):
        (first, first_offset), (second, second_offset) = pulls[0][0], pulls[1][0]  # type: ignore[index]
        return (*nodes, *shift, *weights, first, first_offset, second, second_offset)
    return _Many(nodes, shift, weights, pulls)


def _single_step(node: str, weight: float, pulled: list[Pull]) -> _Step:
    if len(pulled) == 1:
        return node, weight, *pulled[0]
    if len(pulled) == 2:
        return node, weight, *pulled[0], *pulled[1]
    return node, weight, pulled


def _pulls(links: list[_Link], box: Mapping[str, Box], forward: bool) -> dict[str, list[Pull]]:
    """For each node, its neighbours on one side (sources when ``forward``, else targets) and the
    offset that levels the ports of each link. Real neighbours win over lane points, so a long
    skip edge bends instead of pulling the main path off line: only they are kept where a node
    has any."""
    real: dict[str, list[Pull]] = {}
    lanes: dict[str, list[Pull]] = {}
    for link in links:
        node, other = (link.target, link.source) if forward else (link.source, link.target)
        offset = link.out - link.into if forward else link.into - link.out
        (real if box[other].width else lanes).setdefault(node, []).append((other, offset))
    return {**lanes, **real}


def _shifts(gaps: list[float]) -> list[float]:
    """The space the nodes above each node of a column need: 0, then the running sum of ``gaps``."""
    shift = [0.0]
    for gap in gaps:
        shift.append(shift[-1] + gap)
    return shift


def _isotonic(wanted: list[float], shift: list[float], weights: list[float]) -> list[float]:
    """Tops closest to ``wanted`` (weighted least squares) with ``top[i+1] >= top[i] + gaps[i]``,
    given the :func:`_shifts` of the gaps.

    Shifting each top by the space the ones above it need turns this into isotonic regression,
    solved exactly by pooling adjacent violators.
    """
    if len(wanted) == 2:  # the common column (a path and a skip edge)
        return list(_two_tops(*wanted, *shift, *weights))
    blocks: list[list[float]] = []  # [weighted sum, total weight, count]
    for value, offset, weight in zip(wanted, shift, weights, strict=True):
        blocks.append([(value - offset) * weight, weight, 1])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] > blocks[-1][0] / blocks[-1][1]:
            total, weight_sum, count = blocks.pop()
            blocks[-1][0] += total
            blocks[-1][1] += weight_sum
            blocks[-1][2] += count
    result: list[float] = []
    for total, weight_sum, count in blocks:
        result += [total / weight_sum] * int(count)
    return [value + offset for value, offset in zip(result, shift, strict=True)]


def _two_tops(first_wanted: float, second_wanted: float, first_shift: float, second_shift: float,
              first_weight: float, second_weight: float) -> tuple[float, float]:
    """:func:`_isotonic` for two nodes, in closed form (by the same arithmetic)."""
    first = (first_wanted - first_shift) * first_weight
    second = (second_wanted - second_shift) * second_weight
    if first / first_weight > second / second_weight:
        pooled = (first + second) / (first_weight + second_weight)
        return pooled + first_shift, pooled + second_shift
    return first / first_weight + first_shift, second / second_weight + second_shift


def _place_columns(order: list[list[str]], box: Mapping[str, Box], gap: float) -> list[float]:
    lefts, x = [], 0.0
    for nodes in order:
        lefts.append(x)
        x += max((box[n].width for n in nodes), default=0.0) + gap
    return lefts


def _wrap_rows(order: list[list[str]], links: list[_Link], box: Mapping[str, Box], tops: dict[str, float],
               lefts: list[float], wrap: float) -> tuple[dict[str, float], list[float]]:
    """Tops and column lefts once the columns flow into rows at most ``wrap`` wide."""
    rows = _row_breaks(order, links, box, lefts, wrap)
    wrapped_tops: dict[str, float] = {}
    wrapped_lefts = list(lefts)
    y = 0.0
    for first, last in rows:
        nodes = [n for nodes in order[first:last + 1] for n in nodes]
        top = min(tops[n] for n in nodes)
        for node in nodes:
            wrapped_tops[node] = y + tops[node] - top
        for index in range(first, last + 1):
            wrapped_lefts[index] = lefts[index] - lefts[first]
        y = max(wrapped_tops[n] + box[n].height for n in nodes) + ROW_BREAK
    return wrapped_tops, wrapped_lefts


def _row_breaks(order: list[list[str]], links: list[_Link], box: Mapping[str, Box], lefts: list[float],
                wrap: float) -> list[tuple[int, int]]:
    """The (first, last) column of each row: a row ends at its last clean break that fits,
    best one before a fork (so a block's input starts the row holding its branches), else at
    the last column that fits."""
    clean = _clean_breaks(order, links, box)
    fan_out = Counter(link.source for link in links)
    forks = {column for column, nodes in enumerate(order) if len(nodes) == 1 and fan_out[nodes[0]] > 1}
    right = [lefts[k] + max((box[n].width for n in nodes), default=0.0) for k, nodes in enumerate(order)]
    rows: list[tuple[int, int]] = []
    first = 0
    while first < len(order):
        last = first
        while last + 1 < len(order) and right[last + 1] - lefts[first] <= wrap:
            last += 1
        fitting = [k for k in range(first, last + 1) if k in clean]
        before_fork = [k for k in fitting if k + 1 in forks]
        if last + 1 < len(order) and fitting:
            last = (before_fork or fitting)[-1]
        rows.append((first, last))
        first = last + 1
    return rows


def _clean_breaks(order: list[list[str]], links: list[_Link], box: Mapping[str, Box]) -> set[int]:
    """Columns after which every edge leaving leaves from one real node (a block boundary)."""
    column = {n: k for k, nodes in enumerate(order) for n in nodes}
    sources: dict[int, set[str]] = {}
    for link in links:
        sources.setdefault(column[link.source], set()).add(link.source)
    return {k for k in range(len(order))
            if k not in sources or (len(sources[k]) == 1 and box[next(iter(sources[k]))].width)}


def _finish(ids: list[str], column: dict[str, int], tops: dict[str, float], lefts: list[float],
            origin: Point, grid: float) -> dict[str, Point]:
    top = min(tops[n] for n in ids)

    def snap(value: float) -> float:
        return round(value / grid) * grid if grid else value

    return {n: (snap(origin[0] + lefts[column[n]]), snap(origin[1] + tops[n] - top)) for n in ids}
