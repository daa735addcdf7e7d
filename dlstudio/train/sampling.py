"""``dlstudio sample RUN_DIR``: draw samples from a trained run, as its task draws them.

The network is the run's graph snapshot with its final weights (model.safetensors, else the
newest checkpoint); the record says how the run was set up (a language model's vocabulary).
A language model prints the prompt's continuations, or writes them to a ``.txt`` file. A run
whose task cannot sample says so in one line (exit 1).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from dlstudio.core.io import graph_from_dict, write_atomic
from dlstudio.core.training import DEFAULT_TASK
from dlstudio.exits import UsageError
from dlstudio.train.errors import TrainError
from dlstudio.train.exporting import trained_module
from dlstudio.train.rundir import RunDir
from dlstudio.train.tasks import task_class
from dlstudio.train.tasks.language_model import DEFAULT_LENGTH


def add_sample_command(commands: Any) -> None:
    parser = commands.add_parser("sample", help="draw samples from a trained run (a language model's text)")
    parser.add_argument("run", metavar="RUN_DIR", help="a run folder (runs/<name>-<timestamp>)")
    parser.add_argument("--n", type=int, default=1, help="how many samples (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="random seed: the same seed, the same samples")
    parser.add_argument("--prompt", default="", help="text to continue (default: a new line)")
    parser.add_argument("--length", type=int, default=DEFAULT_LENGTH,
                        help=f"tokens to add after the prompt (default {DEFAULT_LENGTH})")
    parser.add_argument("--temperature", type=float, default=1.0,
                        help="below 1: safer choices, above 1: wilder; 0 always takes the likeliest")
    parser.add_argument("--top-k", type=int, help="choose among the K likeliest tokens only")
    parser.add_argument("--top-p", type=float, default=1.0,
                        help="choose among the likeliest tokens whose probabilities add up to P")
    parser.add_argument("-o", "--output", metavar="FILE", help="write a .txt file instead of printing")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.set_defaults(handler=sample_command)


def sample_command(args: argparse.Namespace) -> int:
    _check_options(args)
    try:
        texts = sample_run(RunDir(args.run), args.n, args.seed, prompt=args.prompt, length=args.length,
                           temperature=args.temperature, top_k=args.top_k, top_p=args.top_p)
    except TrainError as error:
        advice = f" ({error.advice})" if error.advice else ""
        print(f"dlstudio: {error}{advice}", file=sys.stderr)
        return error.exit_code
    text = "".join(_shown(texts))
    if args.output:
        write_atomic(Path(args.output), text.encode("utf-8"))
        print(f"wrote {args.output} ({len(texts)} sample{'s' if len(texts) > 1 else ''})", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def sample_run(run_dir: RunDir, count: int, seed: int, **options: Any) -> list[str]:
    """``count`` samples from the run in ``run_dir``, drawn by its task's sampler."""
    record = run_dir.read_record()
    task = task_class(run_dir.parse_config(record).task or DEFAULT_TASK)
    from dlstudio.core.analysis import analyze

    graph = graph_from_dict(record["graph"], str(run_dir.path))
    module = trained_module(analyze(graph), run_dir)
    return task.sampler(module, record).sample(count, seed, **options)


def _check_options(args: argparse.Namespace) -> None:
    for name in ("n", "length", "top_k"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be at least 1")
    if not args.temperature >= 0:
        raise UsageError("--temperature must be 0 or more")
    if not 0 < args.top_p <= 1:
        raise UsageError("--top-p must be above 0 and at most 1")
    if args.output and Path(args.output).suffix.lower() != ".txt":
        raise UsageError(f"{args.output}: a language model writes text: give a .txt file")


def _shown(texts: list[str]) -> list[str]:
    """One sample as it is; several each under a header line."""
    ended = [t if t.endswith("\n") else t + "\n" for t in texts]
    if len(ended) == 1:
        return ended
    return [f"--- sample {i} ---\n{t}" for i, t in enumerate(ended, start=1)]
