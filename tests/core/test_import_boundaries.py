"""dlstudio.core imports no Qt, no UI and no trainer; loading, validating and analysing a graph
(and the validate/summary/schema commands) import no torch either.

Checked twice: in a fresh interpreter by looking at ``sys.modules``, and by reading the
import statements of every core module (including imports inside functions).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import dlstudio
from tests.conftest import GRAPHS

CORE = Path(dlstudio.__file__).parent / "core"
FORBIDDEN = ("torch", "PySide6", "PyQt5", "PyQt6", "shiboken6", "pyqtgraph", "dlstudio.ui", "dlstudio.train")
NEVER_IN_CORE = ("PySide6", "PyQt5", "PyQt6", "shiboken6", "pyqtgraph", "dlstudio.ui", "dlstudio.train")
#: The only core modules that may import torch, and only inside functions unless listed here.
TORCH_MODULES = {"compiler.py", "export.py", "modules.py"}
TORCH_AT_TOP = {"modules.py"}

REPORT = """
import json, sys
{body}
print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {roots} or m.startswith({prefixes}))))
"""


def _loaded_after(body: str) -> list[str]:
    roots = {name for name in FORBIDDEN if "." not in name}
    prefixes = tuple(name for name in FORBIDDEN if "." in name)
    script = REPORT.format(body=body, roots=roots, prefixes=prefixes)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def _example() -> str:
    return str(sorted(GRAPHS.glob("*.json"))[0])


def test_loading_validating_and_analysing_import_no_torch_qt_ui_or_trainer():
    body = (
        "import dlstudio, dlstudio.core\n"
        "from dlstudio import analyze, load_graph\n"
        "from dlstudio.core.summary import summarize\n"
        "from dlstudio.core.io import graph_to_json\n"
        "from dlstudio.core.catalogue import families\n"
        f"graph = load_graph({_example()!r})\n"
        "analysis = analyze(graph)\n"
        "summarize(graph, 4).as_json()\n"
        "graph_to_json(graph)\n"
        "families()\n"
        "assert analysis.ok\n"
    )
    assert _loaded_after(body) == []


@pytest.mark.parametrize("argv", [["validate"], ["summary", "--json"], ["schema"]])
def test_validate_summary_and_schema_commands_import_no_torch(argv):
    files = [] if argv == ["schema"] else [_example()]
    body = f"from dlstudio.cli import main\nimport sys\nassert main({argv[:1] + files + argv[1:]!r}) == 0\n"
    assert _loaded_after(body) == []


def test_compiling_does_load_torch_so_the_check_above_can_fail():
    body = f"import dlstudio\ndlstudio.compile_graph({_example()!r})\n"
    assert "torch" in _loaded_after(body)


def _imports(tree: ast.AST) -> list[tuple[str, bool]]:
    """Every imported module name and whether the import is at module level."""
    top = {id(node) for node in getattr(tree, "body", [])}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, id(node) in top) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.module, id(node) in top))
        elif isinstance(node, ast.Call) and ast.unparse(node.func) in ("__import__", "importlib.import_module"):
            if node.args and isinstance(node.args[0], ast.Constant):
                found.append((str(node.args[0].value), False))
    return found


def _core_files() -> list[Path]:
    return sorted(CORE.rglob("*.py"))


@pytest.mark.parametrize("path", _core_files(), ids=lambda p: str(p.relative_to(CORE)))
def test_core_source_never_imports_qt_ui_or_trainer(path):
    for name, _ in _imports(ast.parse(path.read_text())):
        assert not name.startswith(NEVER_IN_CORE), f"{path.name} imports {name}"


@pytest.mark.parametrize("path", _core_files(), ids=lambda p: str(p.relative_to(CORE)))
def test_torch_is_imported_only_where_modules_are_built(path):
    for name, at_top in _imports(ast.parse(path.read_text())):
        if name.split(".")[0] != "torch":
            continue
        assert path.name in TORCH_MODULES, f"{path.name} imports {name}"
        assert not at_top or path.name in TORCH_AT_TOP, f"{path.name} imports {name} at module level"
