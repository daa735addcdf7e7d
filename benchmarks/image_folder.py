"""Memory and speed of training on an image folder as it grows (target: memory ratio about 1).

Generates 10,000 small PNG images (64x64 RGB, 10 class folders) in a temporary folder, and
trains a small network one epoch on the first 2,500 and then on all 10,000, each in a fresh
process through ``dlstudio run``. Images load lazily (decoded batch by batch by DataLoader
workers, with the augmentations a training section declares), so the peak memory of the
training process should not grow with the folder; decoded whole, 10,000 such images would
take 470 MiB more than 2,500. Prints peak RSS (the trainer's process, and its largest worker)
and images per second, side by side, and their ratios.

    python benchmarks/image_folder.py [--images 10000] [--small 2500] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SIZE = 64
CLASSES = 10


def generate(root: Path, count: int) -> None:
    """``count`` PNG images, numbered so that the first n are an even spread over the classes."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for name in range(CLASSES):
        (root / f"class{name}").mkdir(parents=True, exist_ok=True)
    for i in range(count):
        label = i % CLASSES
        pixels = rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
        pixels[:, :, label % 3] //= 2
        Image.fromarray(pixels).save(root / f"class{label}" / f"{i:06d}.png", compress_level=1)


def subset(source: Path, target: Path, count: int) -> None:
    """A folder with the first ``count`` images of ``source`` (links, not copies)."""
    for folder in sorted(source.iterdir()):
        (target / folder.name).mkdir(parents=True, exist_ok=True)
    for folder in sorted(source.iterdir()):
        for file in sorted(folder.iterdir()):
            if int(file.stem) < count:
                (target / folder.name / file.name).symlink_to(file)


def graph(folder: Path, workers: int) -> dict:
    chain = [("image", "Input", {"shape": [3, SIZE, SIZE]}), ("pool", "AvgPool2d", {"kernel_size": 8}),
             ("flatten", "Flatten", {}), ("fc", "Linear", {"out_features": CLASSES}), ("logits", "Output", {})]
    return {"format": "dlstudio.graph", "version": 1, "name": "image folder benchmark",
            "nodes": [{"id": i, "type": t, "params": p} for i, t, p in chain],
            "edges": [{"source": a[0], "target": b[0]} for a, b in zip(chain, chain[1:], strict=False)],
            "training": {"dataset": {"name": "image_folder", "params": {"path": str(folder), "size": [SIZE, SIZE]},
                                     "inputs": {"image": "x"}},
                         "epochs": 1, "batch_size": 64, "validation_split": 0.1, "num_workers": workers,
                         "augment": {"flip": True, "crop_padding": 4, "mean": [0.5], "std": [0.25]}}}


def child(graph_path: str, out: str) -> None:
    """Run one epoch here; print JSON: seconds, peak RSS of this process and of its workers."""
    sys.path.insert(0, str(ROOT))
    from dlstudio.cli import main

    started = time.perf_counter()
    code = main(["run", graph_path, "--out", out, "--json"])
    seconds = time.perf_counter() - started
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps({"code": code, "seconds": seconds, "rss_mib": own, "worker_rss_mib": workers}))


def measure(folder: Path, images: int, workers: int, scratch: Path) -> dict:
    path = scratch / f"graph-{images}.json"
    path.write_text(json.dumps(graph(folder, workers)))
    result = subprocess.run([sys.executable, __file__, "--child", str(path), str(scratch / f"run-{images}")],
                            capture_output=True, text=True, check=True, cwd=scratch)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    if report["code"] != 0:
        raise SystemExit(f"training on {images} images failed: {result.stderr[-500:]}")
    return {**report, "images": images, "per_second": images / report["seconds"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--small", type=int, default=2_500)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        started = time.perf_counter()
        generate(scratch / "all", args.images)
        print(f"generated {args.images:,} PNG images of {SIZE}x{SIZE} in {time.perf_counter() - started:.1f} s")
        subset(scratch / "all", scratch / "small", args.small)
        small = measure(scratch / "small", args.small, args.workers, scratch)
        large = measure(scratch / "all", args.images, args.workers, scratch)
    print(f"{'images':>8} {'peak RSS MiB':>13} {'worker MiB':>11} {'images/s':>9} {'seconds':>8}")
    for row in (small, large):
        print(f"{row['images']:>8,} {row['rss_mib']:>13.0f} {row['worker_rss_mib']:>11.0f} "
              f"{row['per_second']:>9.0f} {row['seconds']:>8.1f}")
    print(f"memory ratio (x{args.images / args.small:.0f} images): {large['rss_mib'] / small['rss_mib']:.2f}; "
          f"speed ratio: {large['per_second'] / small['per_second']:.2f}")


if __name__ == "__main__":
    main()
