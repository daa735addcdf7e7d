"""Quitting the app waits for its training worker process: that wait must be short.

Measured on the shared 2-core machine before the fix: a worker told to quit took 2.3 to 3.3 s
to end (a normal interpreter exit with torch loaded), and a spare worker still importing torch
held the app's quit for its whole import, up to the 5 s after which it was killed.
"""

from __future__ import annotations

import time

from dlstudio.train.worker import Ready, start_worker


def test_a_ready_worker_told_to_quit_ends_at_once() -> None:
    worker = start_worker()
    try:
        deadline = time.monotonic() + 120
        while not any(isinstance(e, Ready) for e in worker.poll()) and time.monotonic() < deadline:
            time.sleep(0.05)
        start = time.monotonic()
        worker.close(timeout=30)
        took = time.monotonic() - start
    finally:
        if worker.alive:
            worker.process.kill()
    assert worker.process.exitcode == 0  # it quit, it was not killed
    assert took < 1.0, f"quitting took {took:.2f} s"
