"""Several processes: the rank layout from torchrun's environment, collectives, and the launcher.

Workers find each other through the ``env://`` rendezvous (``MASTER_ADDR``, ``MASTER_PORT``,
``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``), which both ``torchrun`` and ``dlstudio run --nproc``
set up, so a multi-node run is plain ``torchrun ... -m dlstudio run GRAPH``.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import torch

from dlstudio.train.errors import RankLost


@dataclass(frozen=True)
class World:
    """This process's place among the workers (one process: rank 0 of 1)."""

    rank: int = 0
    local_rank: int = 0
    size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def world_from_env() -> World:
    """The layout torchrun (or ``--nproc``) gave this process, or a single process."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    return World(int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0")), size)


def init(world: World, device: torch.device) -> None:
    """Join the process group: nccl on CUDA, gloo otherwise."""
    import torch.distributed as dist

    if not world.distributed or dist.is_initialized():
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend, init_method="env://", rank=world.rank, world_size=world.size)
    _learn_peers(world, device)


#: Every rank's (host checksum, process id), learnt when the group forms: a rank whose
#: process is gone can then be named when a collective fails.
_peers: list[tuple[int, int]] = []


def _host() -> int:
    return zlib.crc32(socket.gethostname().encode())


def _learn_peers(world: World, device: torch.device) -> None:
    import torch.distributed as dist

    mine = torch.tensor([_host(), os.getpid()], dtype=torch.int64, device=device)
    every = [torch.zeros_like(mine) for _ in range(world.size)]
    dist.all_gather(every, mine)
    _peers[:] = [(int(host), int(pid)) for host, pid in (t.tolist() for t in every)]


def dead_ranks(peers: list[tuple[int, int]] | None = None, host: int | None = None) -> list[int]:
    """The ranks on this machine whose process has ended (ranks elsewhere cannot be seen)."""
    here = _host() if host is None else host
    return [rank for rank, (where, pid) in enumerate(_peers if peers is None else peers)
            if where == here and not process_alive(pid)]


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie, killed but not yet reaped, has ended)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def rank_lost(world: World, wait_s: float = 2.0) -> RankLost | None:
    """After a collective failed: the error naming the rank(s) whose process died, or None
    when every rank this machine can see still runs. Waits a moment, since a peer's
    connection can close just before its process has fully ended."""
    deadline = time.monotonic() + wait_s
    while not (dead := dead_ranks()) and time.monotonic() < deadline:
        time.sleep(0.05)
    if not dead:
        return None
    names = ", ".join(str(rank) for rank in dead)
    return RankLost(f"rank{'s' if len(dead) > 1 else ''} {names} of {world.size} died, "
                    f"so rank {world.rank} stopped too",
                    "its own output or the launcher's says why; continue with --resume RUN_FOLDER")


def shutdown(together: bool) -> None:
    """Leave the process group. With ``together`` every process first waits for the others,
    so rank 0, which hosts the rendezvous store, cannot exit while another still needs it."""
    import gc

    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return
    if together:
        dist.barrier()
    gc.collect()  # DDP wrappers release the group before it is destroyed
    dist.destroy_process_group()


def all_reduce_sum(tensor: torch.Tensor) -> None:
    import torch.distributed as dist

    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)


def average_gradients(parameters: Iterable[torch.Tensor], size: int, device: torch.device) -> None:
    """Replace each gradient by its mean over the ``size`` processes, as DDP's backward does
    (one collective per dtype; ``device`` is where the collective runs)."""
    by_dtype: dict[torch.dtype, list[torch.Tensor]] = {}
    for tensor in parameters:
        if tensor.grad is not None:
            by_dtype.setdefault(tensor.grad.dtype, []).append(tensor.grad)
    for grads in by_dtype.values():
        flat = torch.cat([g.reshape(-1) for g in grads]).to(device)
        all_reduce_sum(flat)
        flat /= size
        for grad, mean in zip(grads, flat.split([g.numel() for g in grads]), strict=True):
            grad.copy_(mean.view_as(grad))


def broadcast_state(module: torch.nn.Module, device: torch.device, buffers_only: bool = False) -> None:
    """Give every process rank 0's parameters and buffers (or only its buffers: the running
    statistics of a normalisation, which DDP too takes from rank 0)."""
    import torch.distributed as dist

    tensors = list(module.buffers()) if buffers_only else [*module.parameters(), *module.buffers()]
    for tensor in tensors:
        moved = tensor.detach().to(device)
        dist.broadcast(moved, src=0)
        tensor.detach().copy_(moved)  # nothing to do where ``moved`` is the tensor's own memory


#: Set by :func:`launch` for its workers: the launcher's process id, which they watch.
LAUNCHER_ENV = "DLSTUDIO_LAUNCHER_PID"
#: How long a worker whose launcher died may take to stop with a checkpoint before it exits.
ORPHAN_GRACE_S = 20.0


def watch_launcher(stop: Callable[[], None], interval: float = 0.2) -> threading.Thread | None:
    """In a worker of :func:`launch`: when the launcher dies (even by SIGKILL), call ``stop``
    (every worker sees it, so they agree to stop at the next step and checkpoint), and exit
    for good if that has not happened within :data:`ORPHAN_GRACE_S`. None outside a launch."""
    launcher = os.environ.get(LAUNCHER_ENV, "")
    if not launcher.isdigit():
        return None

    def watch() -> None:
        while os.getppid() == int(launcher):
            time.sleep(interval)
        stop()
        time.sleep(ORPHAN_GRACE_S)
        os._exit(130)

    thread = threading.Thread(target=watch, name="launcher-watch", daemon=True)
    thread.start()
    return thread


def launch(nproc: int, argv: list[str]) -> int:
    """Run ``python -m dlstudio <argv>`` in ``nproc`` local workers with the elastic launcher
    that torchrun uses (standalone rendezvous on a free port); returns the exit code."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    config = LaunchConfig(
        min_nodes=1, max_nodes=1, nproc_per_node=nproc, run_id=uuid.uuid4().hex[:12],
        rdzv_backend="c10d", rdzv_endpoint="localhost:0", max_restarts=0, monitor_interval=0.1,
    )
    os.environ[LAUNCHER_ENV] = str(os.getpid())
    try:
        elastic_launch(config, sys.executable)("-m", "dlstudio", *argv)
    except ChildFailedError as error:
        rank, first = error.get_first_failure()  # the cause; the agent then stops the others
        if first.exitcode >= 0:
            return first.exitcode or 1
        print(f"dlstudio: worker rank {rank} of {nproc} died ({_signal_name(-first.exitcode)}); "
              "the others were stopped", file=sys.stderr)
        return 1
    except SignalException:  # Ctrl-C or SIGTERM: the workers stopped with a checkpoint
        return 130
    finally:
        os.environ.pop(LAUNCHER_ENV, None)
    return 0


def _signal_name(signum: int) -> str:
    try:
        return f"killed by {signal.Signals(signum).name}"
    except ValueError:
        return f"killed by signal {signum}"
