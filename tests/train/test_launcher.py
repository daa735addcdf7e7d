"""``dlstudio run --nproc``: killing the launcher stops its workers, and a worker that dies is named."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dlstudio.core.io import save_graph
from tests.conftest import ROOT
from tests.train.helpers import graph_of, mlp

pytestmark = pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the workers through /proc")


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and entry.name != str(os.getpid()):
            try:
                if text in (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _start(tmp_path: Path) -> tuple[subprocess.Popen, Path]:
    graph = tmp_path / "g.json"
    save_graph(graph_of(mlp(epochs=100_000, batch_size=8)), graph)
    out = tmp_path / "run"
    launcher = subprocess.Popen([sys.executable, "-m", "dlstudio", "run", str(graph), "--out", str(out),
                                 "--nproc", "2", "--json"], cwd=ROOT, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 120
    while not (out / "checkpoints").is_dir() and time.monotonic() < deadline:
        assert launcher.poll() is None, launcher.stderr.read()
        time.sleep(0.2)
    assert (out / "checkpoints").is_dir(), "the workers never finished an epoch"
    return launcher, out


def _wait_gone(marker: str, seconds: float) -> list[int]:
    deadline = time.monotonic() + seconds
    while (left := _processes_mentioning(marker)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


def test_killing_the_launcher_stops_every_worker_within_seconds(tmp_path):
    launcher, out = _start(tmp_path)
    workers = [pid for pid in _processes_mentioning(str(out)) if pid != launcher.pid]
    assert len(workers) == 2
    launcher.kill()
    launcher.wait()
    left = _wait_gone(str(out), 40)
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, "workers went on training after their launcher was killed"


def test_a_worker_that_dies_is_named_and_the_run_exits_1(tmp_path):
    launcher, out = _start(tmp_path)
    workers = sorted(pid for pid in _processes_mentioning(str(out)) if pid != launcher.pid)
    os.kill(workers[-1], signal.SIGKILL)
    try:
        code = launcher.wait(60)
    finally:
        if launcher.poll() is None:
            os.killpg(launcher.pid, signal.SIGKILL)
    message = launcher.stderr.read()
    assert code == 1, message
    assert "died (killed by SIGKILL)" in message and "worker rank" in message
    assert "Traceback" not in message
    assert not _wait_gone(str(out), 40)
