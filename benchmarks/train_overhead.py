"""What does ``dlstudio run`` cost over a hand-written PyTorch script training the same thing?

Runs ``dlstudio run graphs/cnn_digits.json`` and the hand-written script below (same network,
data, split size, optimizer, schedule, batch size and epochs; both validate every epoch and
save the final weights) as whole processes, interleaved, and prints two medians:

- whole process: wall time from start to exit, start-up included (target <= 1.10);
- steady-state step: the training time per step of the epochs after the first, excluding
  validation (target <= 1.02); dlstudio's comes from the run's metrics.jsonl.

Usage: ``python benchmarks/train_overhead.py [--rounds 5] [--graph graphs/cnn_digits.json]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--graph", type=Path, default=ROOT / "graphs" / "cnn_digits.json")
    args = parser.parse_args()
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
