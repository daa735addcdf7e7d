"""A distributed run whose rank dies: every surviving rank names the dead one and exits 1
(torch's own collective error never reaches the user). Two CPU processes over gloo, started
the way torchrun starts them, so the survivor is seen without the launcher in between."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dlstudio.core.io import save_graph
from dlstudio.train.distributed import dead_ranks, process_alive
from tests.conftest import ROOT
from tests.hostile import assert_plain
from tests.train.helpers import graph_of, mlp


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start_ranks(tmp_path: Path) -> tuple[list[subprocess.Popen], Path]:
    graph = tmp_path / "g.json"
    save_graph(graph_of(mlp(epochs=100_000, batch_size=8)), graph)
    out = tmp_path / "run"
    env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port()), "WORLD_SIZE": "2"}
    ranks = [subprocess.Popen([sys.executable, "-m", "dlstudio", "run", str(graph), "--out", str(out)],
                              cwd=ROOT, env={**env, "RANK": str(rank), "LOCAL_RANK": str(rank)},
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for rank in range(2)]
    deadline = time.monotonic() + 120
    while not (out / "checkpoints").is_dir() and time.monotonic() < deadline:
        assert all(rank.poll() is None for rank in ranks), ranks[0].stderr.read() + ranks[1].stderr.read()
        time.sleep(0.2)
    assert (out / "checkpoints").is_dir(), "the ranks never finished an epoch"
    return ranks, out


@pytest.mark.parametrize("killed", [1, 0])  # rank 0 also hosts the rendezvous store
def test_the_surviving_rank_names_the_dead_one_and_exits_1(tmp_path, killed):
    ranks, _ = _start_ranks(tmp_path)
    survivor = ranks[1 - killed]
    os.kill(ranks[killed].pid, signal.SIGKILL)
    try:
        code = survivor.wait(60)
    finally:
        for rank in ranks:
            if rank.poll() is None:
                rank.kill()
    message = survivor.stderr.read()
    assert code == 1, message
    assert f"rank {killed} of 2 died, so rank {1 - killed} stopped too" in message
    assert "--resume" in message
    assert_plain(message)


def test_dead_ranks_are_found_among_this_machines_processes():
    zombie = subprocess.Popen(["sleep", "60"])
    zombie.kill()  # killed, not yet reaped: its pid still answers, the process has ended
    time.sleep(0.2)
    assert not process_alive(zombie.pid)
    zombie.wait()
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    here, elsewhere = 7, 8
    peers = [(here, os.getpid()), (here, child.pid), (elsewhere, child.pid)]
    assert process_alive(os.getpid())
    assert dead_ranks(peers, host=here) == [1]  # rank 2's process is on another machine
