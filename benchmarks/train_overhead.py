"""What does ``dlstudio run`` cost over a hand-written PyTorch script training the same thing?

Runs ``dlstudio run graphs/cnn_digits.json`` and the hand-written script below (same network,
data, split size, optimizer, schedule, batch size and epochs; both validate every epoch and
save the final weights) as whole processes, interleaved, and prints two medians:

- whole process: wall time from start to exit, start-up included (target <= 1.10);
- steady-state step: the training time per step of the epochs after the first, excluding
  validation (target <= 1.02); dlstudio's comes from the run's metrics.jsonl.

With ``--tasks``, it compares instead, in one process, a training task's steady-state step with
a hand-written loop doing the same work on a twin of the same compiled network (an ``nn.Module``
built from the same plan, holding the same weights) with the same batches (target <= 1.03):

- ``diffusion`` (graphs/diffusion_digits.json): the task's step against a plain DDPM step
  (timesteps and noise from a generator seeded alike, so the same noise; noised images, MSE
  on the noise, Adam, the moving average of the weights);
- ``language_model`` (graphs/char_gpt.json): the task's step against a nanoGPT-style step
  (cross-entropy over the flattened logits, AdamW, gradient clipping, OneCycleLR per step).

With one torch thread, the time is the CPU time of the thread running the steps, timed in
interleaved blocks (order alternating); the figure is the ratio of the medians.

Usage: ``python benchmarks/train_overhead.py [--rounds 5] [--graph graphs/cnn_digits.json]``
or ``python benchmarks/train_overhead.py --tasks [--rounds 101] [--steps 3]``
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

#: The hand-written script: what someone would write for this network without DL Studio.
REFERENCE = '''
import json, sys, time
import numpy as np
import torch
from torch import nn
from sklearn.datasets import load_digits

epochs, batch_size, lr, out = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
torch.manual_seed(0)
digits = load_digits()
x = torch.from_numpy((digits.images / 16.0).astype(np.float32)).unsqueeze(1)
y = torch.from_numpy(digits.target.astype(np.int64))
order = torch.from_numpy(np.random.default_rng(0).permutation(len(x)))
n_val = round(len(x) * 0.2)
x_val, y_val, x_train, y_train = x[order[:n_val]], y[order[:n_val]], x[order[n_val:]], y[order[n_val:]]

model = nn.Sequential(
    nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(),
    nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
    nn.MaxPool2d(2), nn.Flatten(), nn.Dropout(0.25),
    nn.Linear(1024, 128), nn.ReLU(), nn.Linear(128, 10),
)
optimizer = torch.optim.Adam(model.parameters(), lr=lr)
scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
loss_fn = nn.CrossEntropyLoss()
generator = torch.Generator().manual_seed(0)
train_seconds = []
for epoch in range(epochs):
    model.train()
    started = time.perf_counter()
    total = 0.0
    for index in torch.randperm(len(x_train), generator=generator).split(batch_size):
        loss = loss_fn(model(x_train[index]), y_train[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.item() * len(index)
    train_seconds.append(time.perf_counter() - started)
    model.eval()
    with torch.no_grad():
        correct = sum(int((model(x_val[i]).argmax(1) == y_val[i]).sum()) for i in torch.arange(n_val).split(batch_size))
    scheduler.step()
    print(f"epoch {epoch + 1}: loss {total / len(x_train):.4f} val_accuracy {correct / n_val:.4f}", file=sys.stderr)
torch.save(model.state_dict(), out + "/model.pt")
json.dump({"train_seconds": train_seconds, "steps": -(-len(x_train) // batch_size)}, open(out + "/times.json", "w"))
'''


def run_dlstudio(graph: Path, work: Path, index: int) -> tuple[float, float, float]:
    """(wall seconds, steady-state seconds per step, final val accuracy)."""
    out = work / f"dl{index}"
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "dlstudio", "run", str(graph), "--out", str(out)],
                   check=True, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    steps = records[0]["step"]
    step = statistics.median(r["train_seconds"] / steps for r in records[1:])
    return wall, step, records[-1]["val_accuracy"]


def run_reference(script: Path, config: dict, work: Path, index: int) -> tuple[float, float]:
    out = work / f"ref{index}"
    out.mkdir()
    args = [str(config["epochs"]), str(config["batch_size"]), str(config["optimizer"]["params"]["lr"]), str(out)]
    started = time.perf_counter()
    subprocess.run([sys.executable, str(script), *args], check=True, cwd=ROOT,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    times = json.loads((out / "times.json").read_text())
    return wall, statistics.median(t / times["steps"] for t in times["train_seconds"][1:])


# --- tasks against hand-written loops, in one process ---------------------------------------------

TASK_TARGET = 1.03
Step = Callable[[torch.Tensor], torch.Tensor]


def task_and_twin(name: str) -> tuple[Any, Any, nn.Module]:
    """The run's parts and task for an example graph, and a twin of its network with its weights."""
    from dlstudio.core.compiler import build_module
    from dlstudio.core.io import load_graph
    from dlstudio.train.distributed import World
    from dlstudio.train.setup import prepare, start_task

    graph = load_graph(ROOT / "graphs" / f"{name}.json")
    parts = prepare(graph, graph.training, World(), ROOT / "graphs")
    task = start_task(parts)
    twin = build_module(parts.plan)
    twin.load_state_dict(parts.module.state_dict(), strict=True)
    return parts, task, twin.train()


def diffusion_steps() -> tuple[Step, Step, list[torch.Tensor]]:
    """The diffusion task's step, and a plain DDPM step on the twin."""
    parts, task, net = task_and_twin("diffusion_digits")
    settings, images = parts.config.diffusion, parts.train_inputs[0]
    steps = torch.arange(settings.timesteps + 1, dtype=torch.float64) / settings.timesteps
    signal = torch.cos((steps + 0.008) / 1.008 * math.pi / 2) ** 2
    abar = torch.cumprod(1 - (1 - signal[1:] / signal[:-1]).clamp(max=0.999), 0).float()
    optimizer = torch.optim.Adam(net.parameters(), lr=parts.config.optimizer.params["lr"])
    average = copy.deepcopy(net).requires_grad_(False)
    mine, theirs = list(average.parameters()), list(net.parameters())
    generator = torch.Generator().manual_seed(parts.config.seed)  # the task's noise stream
    updates = [0]

    def hand(index: torch.Tensor) -> torch.Tensor:
        x0 = images[index]
        t = torch.randint(0, settings.timesteps, (len(x0),), generator=generator)
        noise = torch.randn(x0.shape, generator=generator)
        a = abar[t].view(-1, 1, 1, 1)
        loss = F.mse_loss(net(a.sqrt() * x0 + (1 - a).sqrt() * noise, t), noise)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        updates[0] += 1
        with torch.no_grad():
            torch._foreach_lerp_(mine, theirs, 1 - min(settings.ema_decay, (1 + updates[0]) / (10 + updates[0])))
        return loss.detach()

    return lambda index: task.step(index)["total"], hand, parts.batches.epoch(0, parts.device)


def language_model_steps() -> tuple[Step, Step, list[torch.Tensor]]:
    """The language_model task's step, and a nanoGPT-style step on the twin."""
    parts, task, net = task_and_twin("char_gpt")
    config, tokens, targets = parts.config, parts.train_inputs[0], parts.train_target
    optimizer = torch.optim.AdamW(net.parameters(), lr=config.optimizer.params["lr"])
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.scheduler.params["max_lr"],
                                                   total_steps=config.epochs * len(parts.batches))

    def hand(index: torch.Tensor) -> torch.Tensor:
        logits = net(tokens[index])
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets[index].view(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), config.grad_clip)
        optimizer.step()
        schedule.step()
        return loss.detach()

    return lambda index: task.step(index)["total"], hand, parts.batches.epoch(0, parts.device)


def timed(step: Step, batches: list[torch.Tensor], start: int, count: int) -> float:
    """Thread CPU milliseconds per step for ``count`` steps from batch ``start`` on."""
    began = time.thread_time()
    for i in range(start, start + count):
        step(batches[i % len(batches)])
    return (time.thread_time() - began) * 1000 / count


def compare_task(name: str, make: Callable[[], tuple[Step, Step, list[torch.Tensor]]], rounds: int,
                 steps: int) -> float:
    task, hand, batches = make()
    timed(task, batches, 0, 3)  # warm up allocator and kernels
    timed(hand, batches, 0, 3)
    times: dict[str, list[float]] = {"task": [], "hand": []}
    for index in range(rounds):
        for key in (["task", "hand"] if index % 2 == 0 else ["hand", "task"]):
            times[key].append(timed(task if key == "task" else hand, batches, 3 + index * steps, steps))
    ratio = statistics.median(times["task"]) / statistics.median(times["hand"])
    print(f"{name:<15} task {statistics.median(times['task']):7.2f} ms/step   hand-written "
          f"{statistics.median(times['hand']):7.2f} ms/step   ratio {ratio:.3f}", flush=True)
    return ratio


def compare_tasks(rounds: int, steps: int) -> None:
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, 1 thread, {rounds} rounds x {steps} steps, load {os.getloadavg()[0]:.1f}")
    ratios = [compare_task("diffusion", diffusion_steps, rounds, steps),
              compare_task("language_model", language_model_steps, rounds, steps)]
    print(f"worst ratio {max(ratios):.3f}  (target <= {TASK_TARGET}); load {os.getloadavg()[0]:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 5, or 101 with --tasks)")
    parser.add_argument("--graph", type=Path, default=ROOT / "graphs" / "cnn_digits.json")
    parser.add_argument("--tasks", action="store_true", help="compare the diffusion and language_model tasks' "
                                                             "steps with hand-written loops instead")
    parser.add_argument("--steps", type=int, default=3, help="with --tasks: steps per round")
    args = parser.parse_args()
    if args.tasks:
        compare_tasks(args.rounds or 101, args.steps)
        return
    args.rounds = args.rounds or 5
    config = json.loads(args.graph.read_text())["training"]
    with tempfile.TemporaryDirectory(prefix="dlstudio-bench-") as tmp:
        work = Path(tmp)
        script = work / "reference.py"
        script.write_text(REFERENCE)
        whole, step, accuracy = [], [], []
        for index in range(args.rounds):
            first_dl = index % 2 == 0
            if first_dl:
                dl = run_dlstudio(args.graph, work, index)
            ref = run_reference(script, config, work, index)
            if not first_dl:
                dl = run_dlstudio(args.graph, work, index)
            whole.append(dl[0] / ref[0])
            step.append(dl[1] / ref[1])
            accuracy.append(dl[2])
            print(f"round {index + 1}: dlstudio {dl[0]:.2f}s ({1000 * dl[1]:.3f} ms/step), "
                  f"hand-written {ref[0]:.2f}s ({1000 * ref[1]:.3f} ms/step)", flush=True)
    print(f"whole-process ratio (median of {args.rounds}): {statistics.median(whole):.3f}  (target <= 1.10)")
    print(f"steady-state step ratio (median of {args.rounds}): {statistics.median(step):.3f}  (target <= 1.02)")
    print(f"dlstudio final val_accuracy: {min(accuracy):.4f} .. {max(accuracy):.4f}")


if __name__ == "__main__":
    main()
