"""DL Studio: design neural networks as graphs, train them, and export clean PyTorch.

Public API: :func:`load_graph`, :func:`analyze`, :func:`compile_graph`, :func:`export_python`.
"""

from dlstudio.core import (
    Analysis,
    Diagnostic,
    DLStudioError,
    Graph,
    GraphFileError,
    GraphInvalidError,
    analyze,
    load_graph,
    save_graph,
)

__version__ = "0.2.0"

__all__ = [
    "Analysis",
    "DLStudioError",
    "Diagnostic",
    "Graph",
    "GraphFileError",
    "GraphInvalidError",
    "__version__",
    "analyze",
    "compile_graph",
    "export_python",
    "load_graph",
    "save_graph",
]


def __getattr__(name: str) -> object:
    if name in ("compile_graph", "export_python"):
        import dlstudio.core as core

        return getattr(core, name)
    raise AttributeError(name)
