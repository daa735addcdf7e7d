"""The graph document, format version 1: nodes with typed parameters, and edges between ports.

These pydantic models are the file contract (``dlstudio schema`` prints it). Keys this version
does not know are kept in ``model_extra`` and reported by validation, never dropped, so a newer
tool's additions survive a round trip. Later sections (training, blocks, weight tying) are new
optional fields on :class:`Graph`.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from dlstudio.core.training import TrainingConfig

FORMAT = "dlstudio.graph"
#: The newest format this version reads. Version 2 adds ``blocks`` and node ``tie``s; a file
#: that uses neither is written as version 1, byte for byte as before.
FORMAT_VERSION = 2

ID_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
ID_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)
MAX_ID_LENGTH = 64
ID_RULE = "letters, digits and _ only, not starting with a digit, at most 64 chars"

#: A canvas coordinate: finite and within +-1e9 (checked by pydantic-core, not Python).
Coordinate = Annotated[float, Field(ge=-1e9, le=1e9, allow_inf_nan=False)]


def is_valid_id(text: str) -> bool:
    """True when ``text`` can be a node id: a legal ASCII identifier of at most 64 chars."""
    return len(text) <= MAX_ID_LENGTH and ID_RE.fullmatch(text) is not None


def split_end(end: str) -> tuple[str, str | None]:
    """Split an edge end ``node.port`` into ``(node, port)``; a bare ``node`` has port None."""
    node, _, port = end.partition(".")
    return node, (port or None)


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", validate_assignment=False)


class Node(_Model):
    """One layer instance. ``params`` holds only what the user set; the rest is inferred."""

    id: str = Field(pattern=ID_PATTERN, max_length=MAX_ID_LENGTH,
                    description="unique identifier: [A-Za-z_][A-Za-z0-9_]*, at most 64 chars")
    type: str = Field(max_length=100, description="a layer type of the catalogue")
    params: dict[str, Any] = Field(default_factory=dict)
    label: str | None = Field(default=None, max_length=10_000)
    position: tuple[Coordinate, Coordinate] | None = None
    frozen: bool = Field(default=False, description="keep this node's parameters as they are while "
                         "training (transfer learning); saved only when true")
    tie: dict[str, str] | None = Field(
        default=None, max_length=16,
        description="share parameters with another node of the same graph or block: "
                    "{\"weight\": \"wte.weight\"} makes this node's weight that node's weight")


class Edge(_Model):
    """A connection from ``source`` (``node`` or ``node.port``) to ``target``."""

    source: str = Field(max_length=200)
    target: str = Field(max_length=200)

    @property
    def source_node(self) -> str:
        return split_end(self.source)[0]

    @property
    def target_node(self) -> str:
        return split_end(self.target)[0]


class Block(_Model):
    """A named subgraph defined once and used like a layer (format version 2).

    Its Input nodes are its input ports and its Output nodes its output ports, both named by
    node id. ``params`` declares the block's own parameters with their defaults; inner node
    parameters refer to them as ``"$name"`` or a small expression (``"$channels * 4"``).
    """

    description: str = Field(default="", max_length=100_000)
    params: dict[str, Any] = Field(default_factory=dict, max_length=64)
    nodes: list[Node] = Field(default_factory=list)
    edges: list[Edge] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_ids(self) -> Block:
        _check_unique(self.nodes)
        return self

    def node(self, node_id: str) -> Node:
        for node in self.nodes:
            if node.id == node_id:
                return node
        raise KeyError(node_id)


def _check_unique(nodes: list[Node]) -> None:
    seen: set[str] = set()
    for node in nodes:
        if node.id in seen:
            raise ValueError(f"duplicate node id '{node.id}'")
        seen.add(node.id)


BlockName = Annotated[str, Field(pattern=ID_PATTERN, max_length=MAX_ID_LENGTH)]


class Graph(_Model):
    """A whole network document."""

    format: Literal["dlstudio.graph"] = FORMAT
    version: int = FORMAT_VERSION
    name: str = Field(default="untitled", max_length=200)
    description: str = Field(default="", max_length=100_000)
    nodes: list[Node] = Field(default_factory=list)
    edges: list[Edge] = Field(default_factory=list)
    training: TrainingConfig | None = Field(default=None, description="how to train: data, loss, optimizer")
    blocks: dict[BlockName, Block] | None = Field(
        default=None, max_length=256,
        description="named subgraphs, each used as a layer type by nodes of this graph or of other blocks")

    @model_validator(mode="after")
    def _unique_ids(self) -> Graph:
        _check_unique(self.nodes)
        return self

    @property
    def needed_version(self) -> int:
        """The oldest format version that holds this graph: 2 with blocks or ties, else 1."""
        uses_ties = any(node.tie for node in self.nodes) or any(
            node.tie for block in (self.blocks or {}).values() for node in block.nodes)
        return 2 if self.blocks or uses_ties else 1

    def node(self, node_id: str) -> Node:
        for node in self.nodes:
            if node.id == node_id:
                return node
        raise KeyError(node_id)

    def node_ids(self) -> list[str]:
        return [node.id for node in self.nodes]

    def nodes_of_type(self, type_name: str) -> list[Node]:
        return [node for node in self.nodes if node.type == type_name]

    def unknown_keys(self) -> list[tuple[str | None, str]]:
        """``(node id or None, key path)`` for every key this format version does not know."""
        found: list[tuple[str | None, str]] = [(None, key) for key in (self.__pydantic_extra__ or {})]
        for node in self.nodes:
            if node.__pydantic_extra__:
                found += [(node.id, key) for key in node.__pydantic_extra__]
        for index, edge in enumerate(self.edges):
            if edge.__pydantic_extra__:
                found += [(edge.target_node, f"edges[{index}].{key}") for key in edge.__pydantic_extra__]
        for name, block in (self.blocks or {}).items():
            found += [(None, f"blocks.{name}.{key}") for key in block.__pydantic_extra__ or {}]
            for node in block.nodes:
                found += [(None, f"blocks.{name}.{node.id}.{key}") for key in node.__pydantic_extra__ or {}]
        return found

    def copy_deep(self) -> Graph:
        return self.model_copy(deep=True)


class NodeIndex:
    """Constant-time lookup of a graph's nodes by id that follows edits of its node list.

    Each hit is checked against the list (the node at the remembered place still has that id);
    a stale or missing entry re-indexes the list once, so a lookup in a loop stays O(1) where
    :meth:`Graph.node` scans every node.
    """

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self._places: dict[str, int] = {}

    def get(self, node_id: str) -> Node | None:
        """The node with ``node_id``, or None."""
        nodes = self.graph.nodes
        place = self._places.get(node_id)
        if place is None or place >= len(nodes) or nodes[place].id != node_id:
            self._places = {node.id: index for index, node in enumerate(nodes)}
            place = self._places.get(node_id)
            if place is None:
                return None
        return nodes[place]
