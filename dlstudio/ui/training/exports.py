"""Export a trained run from the app: weights, Python with weights, ONNX, TorchScript.

The work is :mod:`dlstudio.train.exporting`'s, the same as ``dlstudio export --weights``, on
the graph snapshot the run kept (so later edits of the graph never mismatch its weights). It
runs on a worker thread: an ONNX export with its onnxruntime check takes seconds.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, QThread, Signal

from dlstudio.bugs import report_bug

SUFFIXES = {"weights": ".safetensors", "python": ".py", "onnx": ".onnx", "torchscript": ".pt"}
FILTERS = {"weights": "safetensors (*.safetensors)", "python": "Python (*.py)", "onnx": "ONNX (*.onnx)",
           "torchscript": "TorchScript (*.pt)"}


@dataclass(frozen=True)
class ExportResult:
    ok: bool
    message: str
    snippet: str = ""


def export_run(run_path: Path, kind: str, output: Path) -> ExportResult:
    """Export run ``run_path``'s trained model as ``kind`` to ``output`` (errors become a result)."""
    from dlstudio.core.errors import DLStudioError
    from dlstudio.core.io import load_graph
    from dlstudio.train.exporting import export_graph, run_weights
    from dlstudio.train.rundir import RunDir

    run = RunDir(run_path)
    try:
        graph = load_graph(run.read_record()["graph"])
        if kind == "weights":
            from safetensors.torch import save_file

            tensors = {k: v.contiguous() for k, v in run_weights(run).items()}
            save_file(tensors, str(output))
            values = sum(t.numel() for t in tensors.values())
            return ExportResult(True, f"Wrote {output.name}: {len(tensors)} tensors, {values:,} values.")
        captured = io.StringIO()
        with contextlib.redirect_stdout(captured), contextlib.redirect_stderr(io.StringIO()):
            difference = export_graph(graph, kind, output, run)
        if kind == "python":
            return ExportResult(True, f"Wrote {output.name} and {output.with_suffix('.safetensors').name}.",
                                captured.getvalue().strip())
        checker = "onnxruntime" if kind == "onnx" else "torch.jit.load"
        return ExportResult(True, f"Wrote {output.name}; checked with {checker}: largest difference "
                                  f"from PyTorch {difference:.1e}.")
    except (DLStudioError, OSError, KeyError, ValueError) as error:
        return ExportResult(False, f"Export failed: {error}")


class ExportJob(QThread):
    """Runs :func:`export_run` off the UI thread; ``done(ExportResult)`` when finished."""

    done = Signal(object)

    def __init__(self, run_path: Path, kind: str, output: Path, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.args = (run_path, kind, output)
        self.result: ExportResult | None = None
        self.finished.connect(lambda: self.done.emit(self.result))

    def run(self) -> None:
        try:
            self.result = export_run(*self.args)
        except Exception as error:  # noqa: BLE001  (an exporter bug must not take the app down)
            self.result = ExportResult(False, f"Export failed: {report_bug(error, str(self.args[0]))}")
