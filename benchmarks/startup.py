"""Start-up time: from the ``dlstudio`` command to a painted main window (target <= 1.5 s).

Each run starts a fresh process with ``DLSTUDIO_STARTUP_PROBE=1``, which prints ``painted``
after the window's first paint and quits; the time is measured here, from just before the
process is spawned to the moment that line arrives. A bare PySide6 window is timed side by
side as the floor, and the probe also reports whether torch was imported before the paint
(it must not be). Settings and recovery files go to a temporary folder. The package is
byte-compiled first, as ``pip install`` does, so no run pays for compiling the sources.

    python benchmarks/startup.py [--runs 7] [--graph graphs/resnet18.json]
"""

from __future__ import annotations

import argparse
import compileall
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_S = 1.5

BARE_QT = """
import sys
from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication, QMainWindow, QLabel
app = QApplication(sys.argv[:1])
window = QMainWindow()
window.setCentralWidget(QLabel("hello"))
window.resize(1440, 880)
class Probe(QObject):
    def eventFilter(self, obj, event):
        if event.type() == QEvent.Type.Paint:
            obj.removeEventFilter(self)
            QTimer.singleShot(0, lambda: (print("painted torch_loaded=False", flush=True), app.quit()))
        return False
probe = Probe()
window.centralWidget().installEventFilter(probe)
window.show()
app.exec()
"""


def time_command(command: list[str], env: dict[str, str], timeout: float = 60.0) -> tuple[float, bool]:
    """Seconds until the process prints ``painted``, and whether torch was loaded by then."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               env=env, cwd=ROOT, text=True)
    assert process.stdout is not None
    try:
        for line in process.stdout:
            if line.startswith("painted"):
                elapsed = time.perf_counter() - start
                process.wait(timeout)  # it quits by itself; killing it could leave a settings lock
                return elapsed, "torch_loaded=True" in line
        raise RuntimeError(f"{command} exited without painting (code {process.wait()})")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout)


def probe_env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    env["DLSTUDIO_STARTUP_PROBE"] = "1"
    env["XDG_CONFIG_HOME"] = str(home / "config")
    env["XDG_DATA_HOME"] = str(home / "data")
    env["XDG_CACHE_HOME"] = str(home / "cache")
    return env


def measure(cases: list[tuple[str, list[str]]], env: dict[str, str], runs: int) -> list[dict[str, object]]:
    """Time every case ``runs`` times, interleaved so that machine load hits all cases alike."""
    for _name, command in cases:
        time_command(command, env)  # warm the file cache; not counted
    samples: dict[str, list[float]] = {name: [] for name, _ in cases}
    torch_seen = dict.fromkeys(samples, False)
    for _ in range(runs):
        for name, command in cases:
            elapsed, torch_loaded = time_command(command, env)
            samples[name].append(elapsed)
            torch_seen[name] |= torch_loaded
    return [{"name": name, "median": statistics.median(s), "min": min(s), "max": max(s),
             "torch": torch_seen[name]} for name, s in samples.items()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--graph", default=str(ROOT / "graphs" / "resnet18.json"))
    args = parser.parse_args()
    compileall.compile_dir(ROOT / "dlstudio", quiet=1)  # as pip install does; lets runs read .pyc
    with tempfile.TemporaryDirectory() as home:
        env = probe_env(Path(home))
        cases = [("bare PySide6 window", [sys.executable, "-c", BARE_QT]),
                 ("dlstudio (empty)", [sys.executable, "-m", "dlstudio"])]
        if Path(args.graph).is_file():
            cases.append((f"dlstudio {Path(args.graph).name}", [sys.executable, "-m", "dlstudio", "gui", args.graph]))
        results = measure(cases, env, args.runs)
    floor = results[0]["median"]
    print(f"start-up to first paint, {args.runs} runs each, {os.cpu_count()} CPUs, "
          f"QT_QPA_PLATFORM={env['QT_QPA_PLATFORM']}")
    print(f"{'case':32} {'median':>8} {'min':>8} {'max':>8} {'x bare':>7}  torch before paint")
    for r in results:
        print(f"{r['name']:32} {r['median']:8.3f} {r['min']:8.3f} {r['max']:8.3f} "
              f"{r['median'] / floor:7.2f}  {'YES' if r['torch'] else 'no'}")
    worst = max(r["median"] for r in results[1:])
    ok = worst <= TARGET_S and not any(r["torch"] for r in results)
    print(f"target <= {TARGET_S:.1f} s and no torch before paint: {'met' if ok else 'MISSED'} "
          f"(slowest dlstudio median {worst:.3f} s)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
