"""A training step of a compiled graph against the same network written by hand (target <= 1.02).

Four networks: an MLP, a CNN, an LSTM classifier and a Transformer encoder classifier. Each
graph is built here from the catalogue and compiled; its hand-written twin below holds the
same layers and receives the compiled module's weights (strict load), so both compute the
same thing. One step is zero_grad, forward, cross-entropy, backward and an SGD update. The
two are timed interleaved (order alternating), a block of steps per round; the figure is
the ratio of the two medians over the rounds (the median of the per-round ratios is printed
too). With one torch thread, the time is the CPU time of the thread running the steps, which
other processes on a busy machine do not inflate the way they inflate wall-clock time
(printed too).

    python benchmarks/compile_overhead.py [--rounds 301] [--steps 1] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dlstudio import compile_graph, load_graph  # noqa: E402
from dlstudio.core.catalogue import BUILTINS  # noqa: E402

TARGET = 1.02


def graph(name: str, inputs: list[dict], layers: list[tuple[str, str, dict]]) -> dict:
    """A chain: each layer ``(id, type, params)`` takes the previous node's output."""
    nodes = [*inputs]
    edges = []
    previous = inputs[0]["id"]
    for node_id, kind, params in layers:
        nodes.append({"id": node_id, "type": kind, "params": params})
        edges.append({"source": previous, "target": f"{node_id}.{BUILTINS[kind].inputs[0]}"})
        previous = f"{node_id}.output" if kind == "LSTM" else node_id
    nodes.append({"id": "logits", "type": "Output"})
    edges.append({"source": previous, "target": "logits"})
    return {"format": "dlstudio.graph", "version": 1, "name": name, "nodes": nodes, "edges": edges}


MLP_GRAPH = graph("mlp", [{"id": "x", "type": "Input", "params": {"shape": [784]}}], [
    ("fc1", "Linear", {"out_features": 512}), ("act1", "ReLU", {}),
    ("fc2", "Linear", {"out_features": 256}), ("act2", "ReLU", {}),
    ("fc3", "Linear", {"out_features": 10}),
])

CNN_GRAPH = graph("cnn", [{"id": "x", "type": "Input", "params": {"shape": [3, 32, 32]}}], [
    ("conv1", "Conv2d", {"out_channels": 32, "kernel_size": 3, "padding": 1}),
    ("bn1", "BatchNorm2d", {}), ("act1", "ReLU", {}), ("pool1", "MaxPool2d", {"kernel_size": 2}),
    ("conv2", "Conv2d", {"out_channels": 64, "kernel_size": 3, "padding": 1}),
    ("bn2", "BatchNorm2d", {}), ("act2", "ReLU", {}), ("pool2", "MaxPool2d", {"kernel_size": 2}),
    ("flat", "Flatten", {}), ("fc1", "Linear", {"out_features": 128}), ("act3", "ReLU", {}),
    ("fc2", "Linear", {"out_features": 10}),
])

TOKENS = [{"id": "tokens", "type": "Input", "params": {"shape": [32], "dtype": "int64"}}]

LSTM_GRAPH = graph("lstm", TOKENS, [
    ("embed", "Embedding", {"num_embeddings": 1000, "embedding_dim": 64}),
    ("lstm", "LSTM", {"hidden_size": 128}),
    ("last", "SelectIndex", {"dim": 1, "index": -1}),
    ("head", "Linear", {"out_features": 10}),
])

TRANSFORMER_GRAPH = graph("transformer", TOKENS, [
    ("embed", "Embedding", {"num_embeddings": 1000, "embedding_dim": 64}),
    ("enc1", "TransformerEncoderLayer", {"nhead": 4, "dim_feedforward": 128, "dropout": 0.0}),
    ("enc2", "TransformerEncoderLayer", {"nhead": 4, "dim_feedforward": 128, "dropout": 0.0}),
    ("pool", "Mean", {"dim": 1}),
    ("head", "Linear", {"out_features": 10}),
])


class HandMLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(784, 512)
        self.act1 = nn.ReLU()
        self.fc2 = nn.Linear(512, 256)
        self.act2 = nn.ReLU()
        self.fc3 = nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc3(self.act2(self.fc2(self.act1(self.fc1(x)))))


class HandCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, kernel_size=3, padding=1)
        self.bn1 = nn.BatchNorm2d(32)
        self.act1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3, padding=1)
        self.bn2 = nn.BatchNorm2d(64)
        self.act2 = nn.ReLU()
        self.pool2 = nn.MaxPool2d(2)
        self.flat = nn.Flatten()
        self.fc1 = nn.Linear(64 * 8 * 8, 128)
        self.act3 = nn.ReLU()
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1(self.act1(self.bn1(self.conv1(x))))
        x = self.pool2(self.act2(self.bn2(self.conv2(x))))
        return self.fc2(self.act3(self.fc1(self.flat(x))))


class HandLSTM(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(1000, 64)
        self.lstm = nn.LSTM(64, 128, batch_first=True)
        self.head = nn.Linear(128, 10)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        output, _ = self.lstm(self.embed(tokens))
        return self.head(output[:, -1])


class HandTransformer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(1000, 64)
        self.enc1 = nn.TransformerEncoderLayer(64, 4, dim_feedforward=128, dropout=0.0, batch_first=True)
        self.enc2 = nn.TransformerEncoderLayer(64, 4, dim_feedforward=128, dropout=0.0, batch_first=True)
        self.head = nn.Linear(64, 10)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.head(self.enc2(self.enc1(self.embed(tokens))).mean(1))


CASES: list[tuple[str, dict, type[nn.Module], Callable[[int], torch.Tensor], int]] = [
    ("MLP", MLP_GRAPH, HandMLP, lambda n: torch.randn(n, 784), 128),
    ("CNN", CNN_GRAPH, HandCNN, lambda n: torch.randn(n, 3, 32, 32), 64),
    ("LSTM", LSTM_GRAPH, HandLSTM, lambda n: torch.randint(0, 1000, (n, 32)), 64),
    ("Transformer", TRANSFORMER_GRAPH, HandTransformer, lambda n: torch.randint(0, 1000, (n, 32)), 64),
]


def train_steps(model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor,
                y: torch.Tensor, steps: int) -> tuple[float, float]:
    """Thread CPU seconds and wall-clock seconds for ``steps`` training steps."""
    loss_fn = nn.CrossEntropyLoss()
    start, start_cpu = time.perf_counter(), time.thread_time()
    for _ in range(steps):
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
    return time.thread_time() - start_cpu, time.perf_counter() - start


def twins(document: dict, hand_class: type[nn.Module]) -> tuple[nn.Module, nn.Module]:
    compiled = compile_graph(load_graph(document))
    hand = hand_class()
    hand.load_state_dict(compiled.state_dict(), strict=True)
    return compiled, hand


def compare(name: str, document: dict, hand_class: type[nn.Module], make: Callable[[int], torch.Tensor],
            batch: int, rounds: int, steps: int) -> float:
    torch.manual_seed(0)
    compiled, hand = twins(document, hand_class)
    x, y = make(batch), torch.randint(0, 10, (batch,))
    with torch.no_grad():
        assert torch.allclose(compiled.eval()(x), hand.eval()(x), atol=1e-5), f"{name}: twins differ"
    models = {"compiled": compiled.train(), "hand": hand.train()}
    optimizers = {k: torch.optim.SGD(m.parameters(), lr=1e-3) for k, m in models.items()}
    for key in models:  # warm up allocator and kernels
        train_steps(models[key], optimizers[key], x, y, 3)
    cpu: dict[str, list[float]] = {"compiled": [], "hand": []}
    wall: dict[str, list[float]] = {"compiled": [], "hand": []}
    ratios = []
    for index in range(rounds):
        order = ["compiled", "hand"] if index % 2 == 0 else ["hand", "compiled"]
        for key in order:
            spent, elapsed = train_steps(models[key], optimizers[key], x, y, steps)
            cpu[key].append(spent * 1000 / steps)
            wall[key].append(elapsed * 1000 / steps)
        ratios.append(cpu["compiled"][-1] / cpu["hand"][-1])
    ratio = statistics.median(cpu["compiled"]) / statistics.median(cpu["hand"])
    print(f"{name:<12} compiled {statistics.median(cpu['compiled']):8.2f} ms/step "
          f"(wall {statistics.median(wall['compiled']):7.2f})   hand-written "
          f"{statistics.median(cpu['hand']):8.2f} ms/step (wall {statistics.median(wall['hand']):7.2f})   "
          f"ratio {ratio:.3f} (per round: median {statistics.median(ratios):.3f})")
    return ratio


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=301, help="interleaved rounds (median taken; fewer wander by 3%% on a shared machine)")
    parser.add_argument("--steps", type=int, default=1, help="training steps per round")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), {args.rounds} rounds x {args.steps} steps")
    ratios = [compare(*case, rounds=args.rounds, steps=args.steps) for case in CASES]
    worst = max(ratios)
    print(f"worst ratio {worst:.3f}; target <= {TARGET}")
    return 0 if worst <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
