"""Dragging a connection: from a port (a new edge) or from an edge's end (detach and rewire).

While the drag lasts every port that would make a valid edge is highlighted (opposite
direction, not on a node that would close a cycle). Dropping on a valid port connects through
the document; dropping on an invalid one is refused with the reason; dropping a detached edge
on empty canvas deletes it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QPointF

from dlstudio.core.wiring import end_name
from dlstudio.ui.canvas.edge_item import DragEdge, EdgeKey
from dlstudio.ui.canvas.node_item import NodeItem
from dlstudio.ui.canvas.port_item import PortKey, PortState
from dlstudio.ui.document import edge_key

if TYPE_CHECKING:
    from dlstudio.ui.canvas.scene import GraphScene


class Wiring:
    """One connection drag; ``fixed`` is the end that stays, ``moving`` the edge being rewired."""

    def __init__(self, scene: GraphScene, item: NodeItem, port: PortKey, moving: EdgeKey | None = None) -> None:
        self.scene = scene
        self.node_id = item.node_id
        self.port, self.fixed_is_input = port
        self.moving = moving
        self.fixed_end = self._fixed_end(item)
        self.valid: set[tuple[str, PortKey]] = set()
        self.hover: tuple[str, PortKey] | None = None
        self._mark_targets()
        if moving is not None and moving in scene.edges:
            scene.edges[moving].setVisible(False)
        self.preview = DragEdge(scene.style, item.port_scene_pos(self.port, self.fixed_is_input),
                                not self.fixed_is_input)
        scene.addItem(self.preview)

    def _fixed_end(self, item: NodeItem) -> str:
        if self.moving is not None:
            return self.moving[1] if self.fixed_is_input else self.moving[0]
        return end_name(item.view.type_name, self.node_id, self.port, not self.fixed_is_input,
                        self.scene.document.catalogue)

    def _mark_targets(self) -> None:
        doc = self.scene.document
        edges = [e for e in doc.scope.edges if edge_key(e) != self.moving]
        blocked = doc.reachable(self.node_id, edges, forward=self.fixed_is_input)
        for node_id, item in self.scene.nodes.items():
            if node_id in blocked:
                continue
            for key in item.ports():
                if key[1] != self.fixed_is_input:
                    self.valid.add((node_id, key))
                    item.port_states[key] = PortState.VALID
            item.update()

    def _target(self, pos: QPointF, radius: float) -> tuple[NodeItem, PortKey] | None:
        return self.scene.port_at(pos, radius)

    def move(self, pos: QPointF, radius: float) -> None:
        """Follow the cursor, snapping to the port under it."""
        hit = self._target(pos, radius)
        spot = (hit[0].node_id, hit[1]) if hit else None
        if spot != self.hover:
            self._set_state(self.hover, PortState.VALID)
            self.hover = spot
            self._set_state(spot, PortState.HOVER)
        if hit is None:
            self.preview.follow(pos)
            self.preview.set_valid(None, self.scene.style)
        else:
            self.preview.follow(hit[0].port_scene_pos(*hit[1]))
            self.preview.set_valid(spot in self.valid, self.scene.style)

    def _set_state(self, spot: tuple[str, PortKey] | None, state: PortState) -> None:
        if spot is not None and spot in self.valid and spot[0] in self.scene.nodes:
            item = self.scene.nodes[spot[0]]
            item.port_states[spot[1]] = state
            item.update()

    def finish(self, pos: QPointF, radius: float) -> str | None:
        """Make the edge; returns a message for the status bar (the reason when refused)."""
        hit = self._target(pos, radius)
        self.cancel()
        doc = self.scene.document
        if hit is None:
            if self.moving is not None:
                doc.disconnect(self.moving)
                return f"Disconnected {self.moving[0]} from {self.moving[1]}"
            return None
        item, (port, is_input) = hit
        if is_input == self.fixed_is_input:
            kind = "inputs" if is_input else "outputs"
            return f"Cannot connect: both ends are {kind}; drag from an output to an input"
        other = end_name(item.view.type_name, item.node_id, port, not is_input, doc.catalogue)
        source, target = (other, self.fixed_end) if self.fixed_is_input else (self.fixed_end, other)
        try:
            if self.moving is not None:
                doc.reconnect(self.moving, source, target)
            else:
                doc.connect(source, target)
        except ValueError as error:
            return f"Cannot connect: {error}"
        return f"Connected {source} to {target}"

    def cancel(self) -> None:
        """Remove the preview and the highlights; a detached edge shows again."""
        for item in self.scene.nodes.values():
            if item.port_states:
                item.port_states.clear()
                item.update()
        if self.preview.scene() is not None:
            self.scene.removeItem(self.preview)
        if self.moving is not None and self.moving in self.scene.edges:
            self.scene.edges[self.moving].setVisible(True)
