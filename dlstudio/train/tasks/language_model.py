"""The language_model task: predict the next token at every position of windows slid over a text.

The text (dataset ``text`` or ``shakespeare``) is tokenized whole (``training.language_model.
tokenizer``: char or byte). Its end (``validation_split`` of the tokens) validates, cut into
side-by-side windows so that every held-out token is predicted once; the rest trains. A
training window may start at any position of the training part, so every position is a target.
An epoch draws as many windows as fit side by side into the training part (about one
prediction per training token), at starts drawn anew each epoch by the seed, without
repeats. Validation reports ``val_loss`` and ``val_bits_per_char`` (the loss in bits per
character of text: loss / ln 2, times tokens per character).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dlstudio.core.analysis import Analysis
from dlstudio.core.io import graph_from_dict
from dlstudio.core.training import (
    TrainingConfig,
    dataset_args,
    language_model_settings,
    loss_output,
)
from dlstudio.train.data import Arrays, DataSplit, read_corpus
from dlstudio.train.distributed import World
from dlstudio.train.errors import DataError
from dlstudio.train.parts import check_graph
from dlstudio.train.tasks.supervised import SupervisedTask
from dlstudio.train.tokenizers import Tokenizer, tokenizer_for, tokenizer_from_record

#: Characters a sample continues the prompt by, unless told.
DEFAULT_LENGTH = 300
#: Characters of the text drawn after each epoch.
EPOCH_LENGTH = 160


class LanguageModelTask(SupervisedTask):
    """Next-token prediction: a step is a supervised step on windows gathered from the text."""

    name = "language_model"

    @classmethod
    def load_data(cls, config: TrainingConfig, base_dir: Path | None) -> DataSplit:
        text = read_corpus(config.dataset, base_dir)
        tokenizer = tokenizer_for(language_model_settings(config).tokenizer, text)
        return text_windows(text, tokenizer, dataset_args(config.dataset).length, config.validation_split)

    @classmethod
    def train_batches(cls, data: DataSplit, local_batch: int, seed: int, world: World) -> WindowBatches:
        length = data.train["x"].shape[1]
        return WindowBatches(data.train_size, math.ceil((data.train_size + length) / length),
                             local_batch, seed, world)

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        metrics = super().validate()
        bits = metrics["val_loss"] / math.log(2) * self.parts.data.arrays.info["tokens_per_char"]
        return {"val_loss": metrics.pop("val_loss"), "val_bits_per_char": bits, **metrics}

    def sample(self, count: int, seed: int, **options: Any) -> list[str]:
        """``count`` continuations of ``prompt`` (see :meth:`TextSampler.sample`)."""
        p = self.parts
        tokenizer = tokenizer_from_record(p.data.arrays.info)
        return TextSampler.of(p.module, p.analysis, p.config, tokenizer).sample(count, seed, **options)

    def epoch_files(self, epoch: int) -> dict[str, bytes]:
        """A text drawn after this epoch, by the run's seed and sampling settings."""
        text, = self.sample(1, self.parts.config.seed, length=EPOCH_LENGTH,
                            **sampling_options(self.parts.config))
        return {f"samples/epoch-{epoch:03d}.txt": text.encode("utf-8")}

    @classmethod
    def sampler(cls, module: nn.Module, record: dict[str, Any]) -> TextSampler:
        config = TrainingConfig.model_validate(record["config"])
        analysis, config = check_graph(graph_from_dict(record["graph"], "the run record"), config)
        return TextSampler.of(module, analysis, config, tokenizer_from_record(record.get("data", {})))


def sampling_options(config: TrainingConfig) -> dict[str, Any]:
    """The temperature and top-k that ``training.language_model`` sets for sample text."""
    settings = language_model_settings(config)
    options: dict[str, Any] = {"top_k": settings.sample_top_k}
    if settings.sample_temperature is not None:
        options["temperature"] = settings.sample_temperature
    return options


# --- data ------------------------------------------------------------------------------------------

def text_windows(text: str, tokenizer: Tokenizer, length: int, validation_split: float) -> DataSplit:
    """The tokenized text as training windows at every start (views, no copies) and validation
    windows side by side; ``arrays`` holds the whole text side by side, for the checks."""
    ids = torch.from_numpy(tokenizer.encode(text))
    held_out = round(len(ids) * validation_split)
    train, val = ids[: len(ids) - held_out], ids[len(ids) - held_out:]
    if len(train) < 2 * length + 1:
        raise DataError(f"the text has {len(train)} training tokens, too few for windows of {length}",
                        "use a longer text or a shorter dataset length")
    if validation_split > 0 and len(val) < length + 1:
        raise DataError(f"the validation part of the text has {len(val)} tokens, too few for a window "
                        f"of {length}", "raise validation_split, or use a shorter dataset length")
    windows = (len(ids) - 1) // length
    whole = ids[: windows * length + 1].numpy()
    info = {**tokenizer.record(), "characters": len(text), "tokens": len(ids),
            "tokens_per_char": len(ids) / max(len(text), 1)}
    arrays = Arrays({"x": whole[:-1].reshape(windows, length), "y": whole[1:].reshape(windows, length)},
                    classes={"y": tokenizer.size}, info=info)
    return DataSplit(_sliding(train, length), _side_by_side(val, length), arrays)


def _sliding(ids: torch.Tensor, length: int) -> dict[str, torch.Tensor]:
    """Window ``i`` starts at token ``i``; the target is the input shifted by one."""
    return {"x": ids[:-1].unfold(0, length, 1), "y": ids[1:].unfold(0, length, 1)}


def _side_by_side(ids: torch.Tensor, length: int) -> dict[str, torch.Tensor]:
    windows = max(len(ids) - 1, 0) // length
    return {"x": ids[: windows * length].view(windows, length),
            "y": ids[1: windows * length + 1].view(windows, length)}


class WindowBatches:
    """``per_epoch`` window starts out of ``starts``, drawn by seed and epoch without repeats
    (until every start is used), sharded as ``TrainBatches`` shards: rank r of W takes every
    W-th, so W processes with batch B/W see the global batches one process sees with batch B."""

    def __init__(self, starts: int, per_epoch: int, local_batch: int, seed: int, world: World) -> None:
        self.starts, self.seed, self.local_batch, self.world = starts, seed, local_batch, world
        self.per_rank = math.ceil(per_epoch / world.size)

    def __len__(self) -> int:
        return math.ceil(self.per_rank / self.local_batch)

    def epoch(self, epoch: int, device: torch.device) -> list[torch.Tensor]:
        generator = torch.Generator().manual_seed(self.seed + epoch)
        total = self.per_rank * self.world.size
        rounds = math.ceil(total / self.starts)
        order = torch.cat([torch.randperm(self.starts, generator=generator) for _ in range(rounds)])
        mine = order[:total][self.world.rank::self.world.size]
        return list(mine.to(device).split(self.local_batch))


# --- sampling --------------------------------------------------------------------------------------

@dataclass
class TextSampler:
    """Continues a prompt token by token with a trained network: the last ``context`` tokens go
    in (padded at the end to ``width`` for a fixed-length Input; causal models ignore the
    padding), the scores at the last real position pick the next token."""

    module: nn.Module
    tokenizer: Tokenizer
    context: int
    width: int | None
    output_index: int | None

    @classmethod
    def of(cls, module: nn.Module, analysis: Analysis, config: TrainingConfig,
           tokenizer: Tokenizer) -> TextSampler:
        [input_node] = analysis.graph.nodes_of_type("Input")
        time = analysis.ports[(input_node.id, "output")].shape[1]
        outputs = [n.id for n in analysis.graph.nodes_of_type("Output")]
        index = outputs.index(loss_output(config, outputs)) if len(outputs) > 1 else None
        return cls(module, tokenizer, dataset_args(config.dataset).length,
                   time if isinstance(time, int) else None, index)

    @torch.no_grad()
    def sample(self, count: int, seed: int, prompt: str = "", length: int = DEFAULT_LENGTH,
               temperature: float = 1.0, top_k: int | None = None, top_p: float = 1.0) -> list[str]:
        """``count`` texts: ``prompt`` and ``length`` tokens after it, drawn with ``temperature``
        (0: always the likeliest) from the ``top_k`` likeliest tokens (all when None) whose
        probabilities add up to ``top_p``; the same seed gives the same texts."""
        start = self._start(prompt)
        device = next(self.module.parameters()).device
        tokens = torch.tensor([start] * count, dtype=torch.long, device=device)
        generator = torch.Generator(device=device).manual_seed(seed)
        was_training = self.module.training
        self.module.eval()
        for _ in range(length):
            scores = self._next_scores(tokens[:, -self.context:])
            chosen = choose(scores, temperature, top_k, top_p, generator)
            tokens = torch.cat([tokens, chosen[:, None]], dim=1)
        self.module.train(was_training)
        return [prompt + self.tokenizer.decode(row[len(start):].tolist()) for row in tokens]

    def _start(self, prompt: str) -> list[int]:
        """The prompt's tokens; without a prompt, a line break (or the first token), left out
        of the text returned."""
        try:
            return self.tokenizer.encode(prompt or "\n").tolist()
        except DataError:
            if prompt:
                raise
            return [0]

    def _next_scores(self, window: torch.Tensor) -> torch.Tensor:
        used = window.shape[1]
        if self.width is not None and used < self.width:
            window = torch.cat([window, window.new_zeros(len(window), self.width - used)], dim=1)
        outputs = self.module(window)
        scores = outputs if self.output_index is None else outputs[self.output_index]
        return scores[:, used - 1].float()


def choose(scores: torch.Tensor, temperature: float, top_k: int | None, top_p: float,
           generator: torch.Generator) -> torch.Tensor:
    """One token per row of ``scores`` [N, V], as :meth:`TextSampler.sample` says."""
    if temperature == 0:
        return scores.argmax(dim=1)
    scores = scores / temperature
    if top_k is not None and top_k < scores.shape[1]:
        kth = scores.topk(top_k, dim=1).values[:, -1:]
        scores = scores.masked_fill(scores < kth, -math.inf)
    if top_p < 1:
        ordered, order = scores.sort(dim=1, descending=True)
        before = ordered.softmax(dim=1).cumsum(dim=1) - ordered.softmax(dim=1)
        drop = torch.zeros_like(scores, dtype=torch.bool).scatter(1, order, before >= top_p)
        scores = scores.masked_fill(drop, -math.inf)
    return torch.multinomial(scores.softmax(dim=1), 1, generator=generator)[:, 0]


