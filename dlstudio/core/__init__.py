"""DL Studio's core: graph document, catalogue, validation, shape inference, compile, export.

Imports neither Qt nor the trainer; torch is imported only when compiling or exporting.
"""

from dlstudio.core.analysis import Analysis, Diagnostic, analyze
from dlstudio.core.errors import DLStudioError, GraphFileError, GraphInvalidError
from dlstudio.core.graph import Edge, Graph, Node
from dlstudio.core.io import graph_to_json, load_graph, save_graph

__all__ = [
    "Analysis",
    "DLStudioError",
    "Diagnostic",
    "Edge",
    "Graph",
    "GraphFileError",
    "GraphInvalidError",
    "Node",
    "analyze",
    "compile_graph",
    "export_python",
    "graph_to_json",
    "load_graph",
    "save_graph",
]


def __getattr__(name: str) -> object:
    if name == "compile_graph":
        from dlstudio.core.compiler import compile_graph

        return compile_graph
    if name == "export_python":
        from dlstudio.core.export import export_python

        return export_python
    raise AttributeError(name)
