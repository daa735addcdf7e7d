"""``dlstudio run GRAPH``: train from the command line, alone, resumed, or in several processes.

Exit codes: 0 done, 1 invalid graph or configuration, 2 usage or file error, 3 diverged,
130 interrupted (Ctrl-C stops after the current batch and saves a checkpoint first; a
second Ctrl-C aborts at once).
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from dlstudio.core.graph import Graph
from dlstudio.core.io import describe_validation_error, load_graph
from dlstudio.core.training import KEY_MAPS, TrainingConfig
from dlstudio.exits import EXIT_INTERRUPTED, EXIT_INVALID, EXIT_OK, UsageError
from dlstudio.train.callbacks import CallbackFn
from dlstudio.train.distributed import World, launch, watch_launcher, world_from_env
from dlstudio.train.errors import ConfigError, RankLost, TrainError
from dlstudio.train.events import Finished
from dlstudio.train.rundir import RECORD, RunDir, default_run_path
from dlstudio.train.trainer import Trainer

#: Options that change the configuration; ``--resume`` accepts only the first two.
OVERRIDES = ("epochs", "device", "batch_size", "lr", "seed", "init_weights", "key_map")


def add_run_command(commands: Any) -> None:
    parser = commands.add_parser("run", help="train a graph as its training section says")
    parser.add_argument("graph", help="graph file with a training section")
    parser.add_argument("--epochs", type=int, help="epochs in total (with --resume: continue up to this)")
    parser.add_argument("--batch-size", type=int, help="global batch size (split over --nproc processes)")
    parser.add_argument("--lr", type=float, help="learning rate of the optimizer")
    parser.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps")
    parser.add_argument("--seed", type=int, help="random seed (data split, shuffling, initial weights)")
    parser.add_argument("--deterministic", action="store_true", help="use deterministic algorithms only")
    parser.add_argument("--out", metavar="DIR", help="run folder (default: runs/<name>-<timestamp> in the working directory, or under $DLSTUDIO_RUNS)")
    parser.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its last checkpoint")
    parser.add_argument("--init-weights", metavar="FILE|RUN_DIR",
                        help="start from pretrained weights (a .safetensors file or a run folder), by key")
    parser.add_argument("--key-map", metavar="NAME|FILE",
                        help=f"rename the --init-weights file's keys: {', '.join(KEY_MAPS)}, or a JSON "
                             "rename file (default: detected)")
    parser.add_argument("--nproc", type=int, default=1, help="worker processes (torch.distributed, DDP)")
    parser.add_argument("--max-steps", type=int, help="stop after this many optimizer steps")
    parser.add_argument("--json", action="store_true", help="print events as JSON lines instead")
    parser.add_argument("--tensorboard", action="store_true", help="also write TensorBoard event files")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.set_defaults(handler=run_command)


def run_command(args: argparse.Namespace) -> int:
    _check_numbers(args)
    world = world_from_env()
    if args.nproc > 1 and not world.distributed:
        return _launch(args)
    graph = load_graph(args.graph)
    try:
        run_dir, config = _plan_run(args, graph, world)
    except TrainError as error:
        advice = f" ({error.advice})" if error.advice else ""
        print(f"dlstudio: {error}{advice}", file=sys.stderr)
        return error.exit_code
    trainer = Trainer(graph, config, _callbacks(args, world, run_dir), run_dir=run_dir,
                      resume=bool(args.resume), base_dir=Path(args.graph).resolve().parent,
                      max_steps=args.max_steps, world=world)
    watch_launcher(lambda: trainer.request_stop("interrupted"))
    with _stop_on_signals(trainer, quiet=args.json or not world.is_main):
        result = trainer.fit()
    if isinstance(result, Finished):
        return EXIT_INTERRUPTED if result.reason == "interrupted" else EXIT_OK
    lost = isinstance(trainer.error, RankLost)  # every surviving rank says which one died
    if (world.is_main or lost) and not (args.json and world.is_main):
        advice = f" ({trainer.error.advice})" if trainer.error and trainer.error.advice else ""
        print(f"dlstudio: {result.message}{advice}", file=sys.stderr)
    return trainer.error.exit_code if trainer.error else EXIT_INVALID


def _check_numbers(args: argparse.Namespace) -> None:
    for name in ("epochs", "batch_size", "nproc", "max_steps"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be at least 1")
    if args.lr is not None and not args.lr > 0:
        raise UsageError("--lr must be above 0")


def _plan_run(args: argparse.Namespace, graph: Graph, world: World) -> tuple[RunDir, TrainingConfig]:
    """The run folder and the configuration: the graph's with overrides, or the run's own."""
    if args.resume:
        given = [f"--{n.replace('_', '-')}" for n in OVERRIDES[2:] if getattr(args, n) is not None]
        if given or args.out:
            raise UsageError(f"--resume continues with the run's settings; {(given or ['--out'])[0]} "
                                "cannot change (only --epochs and --device can)")
        run_dir = RunDir(args.resume)
        return run_dir, _override(run_dir.recorded_config(graph), args)
    if graph.training is None:
        raise ConfigError(f"{args.graph}: has no training section", "add one in the app's Training panel")
    out = Path(args.out) if args.out else default_run_path(graph.name)
    if world.is_main and (out / RECORD).exists():
        raise UsageError(f"{out}: already holds a run; continue it with --resume {out} or pick another --out")
    return RunDir(out), _override(graph.training, args)


def _override(config: TrainingConfig, args: argparse.Namespace) -> TrainingConfig:
    data = config.model_dump(mode="json")
    for name in ("epochs", "device", "batch_size", "seed"):
        if getattr(args, name, None) is not None:
            data[name] = getattr(args, name)
    if args.lr is not None:
        data["optimizer"]["params"]["lr"] = args.lr
    if args.deterministic:
        data["deterministic"] = True
    if getattr(args, "init_weights", None):
        data["init_weights"] = str(Path(args.init_weights).resolve())
    if getattr(args, "key_map", None):
        data["init_weights_map"] = _map_argument(args.key_map)
    try:
        return TrainingConfig.model_validate(data)
    except ValidationError as error:
        raise UsageError(f"training.{describe_validation_error(error)}") from None


def _map_argument(name: str) -> str:
    """A built-in key map's name as it is; a rename file's path made absolute."""
    from dlstudio.train.keymaps import BUILTIN_MAPS

    return name if name in BUILTIN_MAPS else str(Path(name).resolve())


def _callbacks(args: argparse.Namespace, world: World, run_dir: RunDir) -> list[CallbackFn]:
    if not world.is_main:
        return []
    if args.json:
        from dlstudio.train.console import JsonLines

        callbacks: list[CallbackFn] = [JsonLines()]
    else:
        from dlstudio.train.console import RichProgress

        callbacks = [RichProgress()]
    if args.tensorboard:
        from dlstudio.train.tensorboard import MISSING, tensorboard_log

        log = tensorboard_log(run_dir.path / "tensorboard")
        if log is None:
            print(f"dlstudio: {MISSING}", file=sys.stderr)
        else:
            callbacks.append(log)
    return callbacks


@contextlib.contextmanager
def _stop_on_signals(trainer: Trainer, quiet: bool) -> Iterator[None]:
    """First Ctrl-C (or SIGTERM): stop after this batch with a checkpoint; second: abort."""

    def handler(signum: int, frame: Any) -> None:
        if trainer._stop.is_set():
            raise KeyboardInterrupt
        if not quiet:
            print("\nstopping after this batch and saving a checkpoint (Ctrl-C again to abort)",
                  file=sys.stderr)
        trainer.request_stop("interrupted")

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _launch(args: argparse.Namespace) -> int:
    """Start ``--nproc`` workers running this same command (the run folder fixed up front)."""
    graph = load_graph(args.graph)
    out = args.resume or args.out or str(default_run_path(graph.name))
    argv = ["run", str(Path(args.graph).resolve())]
    for name in (*OVERRIDES, "max_steps"):
        if getattr(args, name) is not None:
            argv += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
    argv += ["--resume", out] if args.resume else ["--out", out]
    argv += [f"--{flag}" for flag in ("deterministic", "json", "tensorboard", "debug") if getattr(args, flag)]
    return launch(args.nproc, argv)
