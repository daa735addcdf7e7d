"""The trainer: a fit / train / validate loop that reports through typed events.

No Qt here. The GUI runs ``Trainer(graph, config, callbacks=[bridge]).fit()`` on a worker
thread and calls :meth:`Trainer.request_stop` or :meth:`Trainer.request_pause` from the UI
thread; both are checked before every batch. The command line runs the same object.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterable
from pathlib import Path

import torch

from dlstudio.bugs import InternalError, report_bug
from dlstudio.core.errors import DLStudioError, os_error_line
from dlstudio.core.export import render_module
from dlstudio.core.graph import Graph
from dlstudio.core.training import TrainingConfig, monitor_mode
from dlstudio.train import distributed
from dlstudio.train.activations import ActivationProbe, ActivationRequest
from dlstudio.train.callbacks import CallbackFn, Dispatcher
from dlstudio.train.checkpoint import latest_checkpoint, load_state, save_state
from dlstudio.train.data.lazy import data_workers
from dlstudio.train.distributed import World
from dlstudio.train.errors import ConfigError, Diverged, OutOfMemory, RunDirError, TrainError
from dlstudio.train.events import (
    CheckpointSaved,
    EpochEnd,
    Failed,
    Finished,
    FinishReason,
    LearningRate,
    RunStarted,
    StepEnd,
    Throughput,
    epoch_samples,
    step_losses,
)
from dlstudio.train.magnitude import SPARSITY_FILE
from dlstudio.train.parts import Parts
from dlstudio.train.preprocess import PREPROCESS, preprocessing_record, record_json
from dlstudio.train.pretrained import load_pretrained
from dlstudio.train.qat import QUANTIZATION_FILE
from dlstudio.train.rundir import RunDir
from dlstudio.train.setup import prepare, start_task
from dlstudio.train.state import LoopState, capture, restore
from dlstudio.train.tasks.base import TOTAL, Task


class Trainer:
    """Trains one graph with one training configuration (``graph.training`` by default).

    ``run_dir`` (a :class:`RunDir`) receives the record, metrics, checkpoints and final model;
    with ``resume`` the loop continues from its newest checkpoint. ``base_dir`` is where
    relative data paths start (the graph file's folder).
    """

    def __init__(self, graph: Graph, config: TrainingConfig | None = None,
                 callbacks: Iterable[CallbackFn] = (), *, run_dir: RunDir | None = None,
                 resume: bool = False, base_dir: Path | None = None, max_steps: int | None = None,
                 activations: ActivationRequest | None = None, world: World | None = None) -> None:
        config = config if config is not None else graph.training
        if config is None:
            raise ConfigError(f"graph '{graph.name}' has no training section",
                              "add one in the Training panel or the file's \"training\" key")
        self.graph = graph
        self.given_config = config
        self.emit = Dispatcher(callbacks)
        self.run_dir = run_dir
        self.resume = resume
        self.base_dir = base_dir
        self.max_steps = max_steps
        self.activations = activations
        self.world = world or World()
        self.state = LoopState()
        #: what the run has to tell before it starts (a repaired metric log), sent with RunStarted
        self.notes: list[str] = []
        self.parts: Parts | None = None
        self.task: Task | None = None
        self.error: TrainError | None = None
        self._crashed = False  # an unexpected error, perhaps on this process only
        self._stop = threading.Event()
        self._stop_reason: FinishReason = "stopped"
        self._running = threading.Event()
        self._running.set()

    # -- control from other threads ---------------------------------------------------------------

    def request_stop(self, reason: FinishReason = "stopped") -> None:
        """Stop before the next batch; a checkpoint is written first."""
        self._stop_reason = reason
        self._stop.set()
        self._running.set()

    def request_pause(self) -> None:
        self._running.clear()

    def request_resume(self) -> None:
        self._running.set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    # -- the run -------------------------------------------------------------------------------------

    def fit(self) -> Finished | Failed:
        """Train to the end; returns (and emits) Finished or Failed. Unexpected errors re-raise."""
        started = time.perf_counter()
        try:
            self.parts = prepare(self.graph, self.given_config, self.world, self.base_dir)
            self.task = start_task(self.parts)
            self._open_run()
            reason = self._loop()
            return self._finish(reason, started)
        except TrainError as error:
            return self._fail(error)
        except torch.OutOfMemoryError:
            batch = self.given_config.batch_size
            return self._fail(OutOfMemory(f"the device ran out of memory with batch size {batch}",
                                          f"use a smaller batch (--batch-size {max(1, batch // 2)}) "
                                          "or precision bf16"))
        except Exception as error:
            self._crashed = True
            lost = distributed.rank_lost(self.world) if self.world.distributed else None
            if lost is not None:  # a collective failed because a peer died: name it, not torch's error
                return self._fail(lost)
            if isinstance(error, DLStudioError | OSError):  # a node failing at run time, a file problem
                self._fail(TrainError(os_error_line(error) if isinstance(error, OSError) else str(error)))
                raise
            line = report_bug(error, "training")  # a bug: the details go to the log
            self._fail(TrainError(line))
            raise InternalError(line) from error
        finally:
            self._leave_group()

    def _leave_group(self) -> None:
        if not self.world.distributed:
            return
        if self.parts is not None:
            self.parts.model = self.parts.module  # drop the DDP wrapper before its group
        distributed.shutdown(together=not self._crashed)

    def _fail(self, error: TrainError) -> Failed:
        self.error = error
        event = Failed(error.kind, str(error), error.advice, self.state.epoch, self.state.step)  # type: ignore[arg-type]
        self.emit(event)
        return event

    @property
    def config(self) -> TrainingConfig:
        assert self.parts is not None
        return self.parts.config

    @property
    def _writes(self) -> bool:
        return self.run_dir is not None and self.world.is_main

    def _open_run(self) -> None:
        p = self.parts
        assert p is not None
        pretrained = None
        if self.resume:
            self._restore()
        elif p.config.init_weights:
            pretrained = load_pretrained(p.module, p.config.init_weights, self.base_dir,
                                         p.config.init_weights_map)
        if not self.resume and self._writes:
            assert self.run_dir is not None
            extra = {"world_size": self.world.size, "data": {
                "train_samples": p.data.train_size, "val_samples": p.data.val_size, **p.data.arrays.info}}
            if pretrained is not None:
                extra["init_weights"] = pretrained.record()
            self.run_dir.write_record(self.graph, p.config.model_dump(mode="json"), extra)
            self.run_dir.write_file(PREPROCESS, record_json(preprocessing_record(p.config, p.data)))
        if p.pruning is not None:
            self.emit.callbacks.insert(0, p.pruning)  # prunes before anyone hears of the step
        self.probe = None
        if self.activations is not None and self.world.is_main:
            inputs = p.val_inputs if p.data.val_size else p.train_inputs
            self.probe = ActivationProbe(p.module, p.plan, self.activations, inputs)
        self.emit(RunStarted(
            run_dir=str(self.run_dir.path) if self.run_dir else None, device=str(p.device),
            epochs=p.config.epochs, start_epoch=self.state.epoch, steps_per_epoch=len(p.batches),
            train_samples=p.data.train_size, val_samples=p.data.val_size,
            parameters=sum(t.numel() for t in p.module.parameters()), world_size=self.world.size,
            trainable=sum(t.numel() for t in p.module.parameters() if t.requires_grad),
            init_weights=pretrained.summary() if pretrained else None, notes=tuple(self.notes),
            data_workers=data_workers(p.data.train)))

    def _loop(self) -> FinishReason:
        config = self.config
        while self.state.epoch < config.epochs:
            epoch_started = time.perf_counter()
            self._train_epoch()
            train_seconds = time.perf_counter() - epoch_started
            if self._stop.is_set() and self.state.batch < len(self.parts.batches):  # type: ignore[union-attr]
                self._checkpoint()
                return self._stop_reason
            self._throughput(train_seconds)
            metrics = self._end_epoch(epoch_started, train_seconds)
            if self._early_stop(metrics):
                return "early_stopping"
            if self._stop.is_set():
                return self._stop_reason
        return "completed"

    def _train_epoch(self) -> None:
        p = self.parts
        assert p is not None and self.task is not None
        p.model.train()
        epoch, state = self.state.epoch, self.state
        if p.quantization is not None:
            p.quantization.at_epoch(epoch)
        self.emit(LearningRate(epoch + 1, state.step, tuple(g["lr"] for g in p.optimizer.param_groups)))
        batches = p.batches.epoch(epoch, p.train_target.device)
        for index in range(state.batch, len(batches)):
            if self._should_stop():
                return
            losses = self._global_losses(self.task.step(batches[index]))
            loss_value = losses[TOTAL]
            state.batch, state.step = index + 1, state.step + 1
            count = len(batches[index]) * self.world.size
            state.add_losses(losses, count)
            if not math.isfinite(loss_value):
                raise Diverged(f"the loss became {loss_value} at epoch {epoch + 1}, step {state.step}; "
                               "the last good checkpoint is kept",
                               "lower the learning rate, set grad_clip, or check the data for NaN values")
            self.emit(StepEnd(epoch + 1, state.step, index + 1, len(batches), loss_value,
                              p.optimizer.param_groups[0]["lr"], step_losses(losses)))
            if self.probe is not None and self.probe.due(state.step):
                for sample in self.probe.sample(state.step):
                    self.emit(sample)
            if self.max_steps is not None and state.step >= self.max_steps:
                self.request_stop("max_steps")

    def _should_stop(self) -> bool:
        """The stop flag (every process agrees), after waiting out a pause."""
        if not self._running.is_set():
            self._running.wait()
        if not self.world.distributed:
            return self._stop.is_set()
        flag = torch.tensor([float(self._stop.is_set())], device=self.parts.collective_device)  # type: ignore[union-attr]
        distributed.all_reduce_sum(flag)
        if flag.item() > 0 and not self._stop.is_set():
            self.request_stop(self._stop_reason)
        return self._stop.is_set()

    def _global_losses(self, losses: dict[str, torch.Tensor]) -> dict[str, float]:
        """The step's named losses as floats, averaged over every process (one collective)."""
        if not self.world.distributed:
            return {name: value.item() for name, value in losses.items()}
        assert self.parts is not None
        stacked = torch.stack([v.float().reshape(()) for v in losses.values()]).to(self.parts.collective_device)
        distributed.all_reduce_sum(stacked)
        return {name: total / self.world.size for name, total in zip(losses, stacked.tolist(), strict=True)}

    # -- epoch end -----------------------------------------------------------------------------------

    def validate(self) -> dict[str, float]:
        """The task's metrics over the validation split (every process's share, summed)."""
        p = self.parts
        assert p is not None and self.task is not None
        if not p.data.val_size:
            return {}
        return self.task.validate()

    def _throughput(self, seconds: float) -> None:
        if seconds > 0 and self.state.samples:
            steps = len(self.parts.batches)  # type: ignore[union-attr]
            self.emit(Throughput(self.state.epoch + 1, self.state.step, self.state.samples / seconds,
                                 steps / seconds))

    def _end_epoch(self, epoch_started: float, train_seconds: float) -> dict[str, float]:
        p, state = self.parts, self.state
        assert p is not None
        metrics = {**state.train_losses(), **self.validate(), **(p.pruning.metrics() if p.pruning else {})}
        for schedule in p.schedules.values():
            schedule.after_epoch(metrics)
        state.next_epoch()
        state.history.append(metrics)
        seconds = time.perf_counter() - epoch_started
        state.seconds += seconds
        files = self.task.epoch_files(state.epoch) if self.world.is_main else {}  # type: ignore[union-attr]
        if self._writes:
            assert self.run_dir is not None
            lr = p.optimizer.param_groups[0]["lr"]
            self.run_dir.append_metrics({"epoch": state.epoch, "step": state.step, **metrics, "lr": lr,
                                         "train_seconds": round(train_seconds, 6),
                                         "seconds": round(state.seconds, 3)})
            for name, data in files.items():
                self.run_dir.write_file(name, data)
            if p.pruning is not None:
                self.run_dir.write_file(SPARSITY_FILE, record_json(p.pruning.report()))
        self.emit(EpochEnd(state.epoch, state.step, metrics, seconds))
        for sample in epoch_samples(state.epoch, state.step, files):
            self.emit(sample)
        self._check_finite(metrics)
        self._checkpoint()
        return metrics

    def _check_finite(self, metrics: dict[str, float]) -> None:
        """Refuse to checkpoint NaN or infinite weights, so the last good checkpoint stays."""
        p = self.parts
        assert p is not None
        bad = [k for k, v in metrics.items() if not math.isfinite(v)]
        if not bad and all(bool(torch.isfinite(t).all()) for t in p.module.parameters()):
            return
        what = f"{bad[0]} became {metrics[bad[0]]}" if bad else "the weights became NaN or infinite"
        raise Diverged(f"{what} after epoch {self.state.epoch}; the last good checkpoint is kept",
                       "lower the learning rate, set grad_clip, or check the data for NaN values")

    def _early_stop(self, metrics: dict[str, float]) -> bool:
        rule = self.config.early_stopping
        if rule is None or rule.monitor not in metrics:
            return False
        value, state = metrics[rule.monitor], self.state
        sign = 1.0 if monitor_mode(rule.monitor, rule.mode) == "min" else -1.0
        if state.best is None or sign * (state.best - value) > rule.min_delta:
            state.best, state.waited = value, 0
            return False
        state.waited += 1
        return state.waited >= rule.patience

    def _finish(self, reason: FinishReason, started: float) -> Finished:
        p = self.parts
        assert p is not None
        if self._writes and reason != "interrupted":
            assert self.run_dir is not None
            self.run_dir.write_final(p.module.state_dict(), render_module(p.plan, p.analysis.graph))
            if p.quantization is not None:
                self.run_dir.write_file(QUANTIZATION_FILE, p.quantization.saved())
        last = self.state.history[-1] if self.state.history else {}
        event = Finished(reason, self.state.epoch, self.state.step, last, time.perf_counter() - started,
                         str(self.run_dir.path) if self.run_dir else None)
        self.emit(event)
        return event

    # -- checkpoints ---------------------------------------------------------------------------------

    def _checkpoint(self) -> None:
        if not self._writes:
            return
        assert self.run_dir is not None
        assert self.parts is not None and self.task is not None
        state = capture(self.parts, self.task, self.state)
        path = save_state(self.run_dir.checkpoints, f"step-{self.state.step:09d}", state)
        self.emit(CheckpointSaved(self.state.epoch, self.state.step, str(path)))

    def _restore(self) -> None:
        assert self.parts is not None and self.task is not None and self.run_dir is not None
        path = latest_checkpoint(self.run_dir.checkpoints)
        if path is None:
            raise RunDirError(f"{self.run_dir.path}: has no complete checkpoint to resume from")
        try:
            self.state = restore(self.parts, self.task, load_state(path))
        except (KeyError, TypeError, ValueError, IndexError, AttributeError, RuntimeError) as error:
            detail = f"no entry {error}" if isinstance(error, KeyError) else " ".join(str(error).split())[:160]
            raise RunDirError(f"{path}: its saved state does not fit this run ({detail})",
                              "resume from an earlier checkpoint or start a new run") from None
        if self._writes:
            note = self.run_dir.truncate_metrics(self.state.step)
            if note:
                self.notes.append(note)
