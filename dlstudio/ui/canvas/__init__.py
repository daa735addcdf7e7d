"""The node-graph canvas: a scene mirroring the document and the view that edits it."""

from dlstudio.ui.canvas.scene import GraphScene
from dlstudio.ui.canvas.view import LAYER_MIME, NODES_MIME, GraphView

__all__ = ["LAYER_MIME", "NODES_MIME", "GraphScene", "GraphView"]
