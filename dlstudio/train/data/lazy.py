"""Image files decoded batch by batch, in worker processes, with seeded augmentations.

An image dataset read from files (``image_folder``, ``image_csv``) holds its images as an
:class:`ImageSource`: the paths, which looks like an N x C x H x W float32 array to the split
and the checks but decodes nothing. After the split, each part is a :class:`LazyImages` field
that the tasks index like a tensor (``x[index]``). The training batches of an epoch are known
in advance (:class:`LoaderBatches`), so a ``torch.utils.data.DataLoader`` with worker
processes decodes them ahead of the step that asks; validation batches likewise. Memory
holds the paths and a few batches in flight, however many images the folder has.

Augmentations (``training.augment``) are drawn from a generator seeded by (seed, epoch,
sample), so a sample is augmented the same way whatever the number of workers or the batch
it falls in, and a resumed run sees the very pixels it would have seen.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from dlstudio.core.training import AugmentConfig
from dlstudio.train.data.arrays import DataSplit
from dlstudio.train.errors import DataError

#: Decoding workers when the training section does not say: a few, leaving a core for the step.
MAX_DEFAULT_WORKERS = 4


def default_workers() -> int:
    """Worker processes for decoding: none inside a daemon process (which may not start children)
    or off the main thread, else up to MAX_DEFAULT_WORKERS, one core fewer than the machine has."""
    if multiprocessing.current_process().daemon or threading.current_thread() is not threading.main_thread():
        return 0
    return max(0, min(MAX_DEFAULT_WORKERS, (os.cpu_count() or 1) - 1))


def loader_context() -> str | None:
    """How the decoding workers start: forked (fast) from a process with one thread, spawned from
    one with others running (the app's trainer listens and reports on threads, and forking a
    threaded process can copy a held lock into the child)."""
    return "spawn" if threading.active_count() > 1 else None


def decode_image(path: str, size: tuple[int, int], channels: int) -> np.ndarray:
    """One image file as C x H x W float32 in 0..1, greyscaled or made RGB and resized."""
    from PIL import Image, UnidentifiedImageError

    height, width = size
    try:
        with Image.open(path) as image:
            converted = image.convert("L" if channels == 1 else "RGB").resize((width, height))
            pixels = np.asarray(converted, dtype=np.float32)
    except (UnidentifiedImageError, OSError) as error:
        raise DataError(f"{path}: cannot read image ({' '.join(str(error).split())[:120]})",
                        "remove the file, or convert it to PNG or JPEG") from None
    return pixels.reshape(height, width, channels).transpose(2, 0, 1) / 255.0


@dataclass(frozen=True)
class ImageSource:
    """Image files standing for an N x C x H x W float32 array: indexing selects files."""

    paths: np.ndarray  # of str
    size: tuple[int, int]
    channels: int
    dtype: np.dtype = field(default=np.dtype(np.float32))

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.paths), self.channels, *self.size)

    @property
    def ndim(self) -> int:
        return 4

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: Any) -> Any:
        """Files for an array, slice or mask; decoded pixels for an integer (and what follows)."""
        head, rest = (index[0], index[1:]) if isinstance(index, tuple) else (index, ())
        if isinstance(head, int | np.integer):
            return self.decode(int(head))[rest]
        return replace(self, paths=self.paths[head])

    def decode(self, i: int) -> np.ndarray:
        return decode_image(str(self.paths[i]), self.size, self.channels)


@dataclass(frozen=True)
class Transform:
    """What happens to a decoded image: random augmentations (training only) and normalisation."""

    augment: AugmentConfig | None
    seed: int
    train: bool

    def __call__(self, image: np.ndarray, epoch: int, index: int) -> np.ndarray:
        a = self.augment
        if a is None:
            return image
        if self.train:
            rng = np.random.default_rng([self.seed, epoch, index])
            image = _jitter(_flip(_crop(image, a.crop_padding, rng), a.flip, rng), a, rng)
        if a.mean is not None or a.std is not None:
            image = normalise(image, a.mean, a.std)
        return image


def normalise(image: np.ndarray, mean: Sequence[float] | None, std: Sequence[float] | None) -> np.ndarray:
    """(image - mean) / std per channel (a single value applies to every channel)."""
    channels = image.shape[-3]
    m = np.resize(np.asarray(mean if mean is not None else [0.0], np.float32), channels)
    s = np.resize(np.asarray(std if std is not None else [1.0], np.float32), channels)
    return ((image - m[:, None, None]) / s[:, None, None]).astype(np.float32)


def _crop(image: np.ndarray, padding: int, rng: np.random.Generator) -> np.ndarray:
    if not padding:
        return image
    _, height, width = image.shape
    padded = np.pad(image, ((0, 0), (padding, padding), (padding, padding)))
    top, left = rng.integers(0, 2 * padding + 1, size=2)
    return padded[:, top:top + height, left:left + width]


def _flip(image: np.ndarray, flip: bool, rng: np.random.Generator) -> np.ndarray:
    return image[:, :, ::-1] if flip and rng.random() < 0.5 else image


def _jitter(image: np.ndarray, a: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """Brightness, contrast and saturation, each by a factor drawn from [1 - x, 1 + x]."""
    def factor(amount: float) -> float:
        return float(rng.uniform(max(0.0, 1 - amount), 1 + amount)) if amount else 1.0

    image = image * factor(a.brightness)
    grey = image.mean(axis=0, keepdims=True) if image.shape[0] == 1 else _grey(image)
    image = grey.mean() + (image - grey.mean()) * factor(a.contrast)
    if image.shape[0] == 3 and a.saturation:
        grey = _grey(image)
        image = grey + (image - grey) * factor(a.saturation)
    return np.clip(image, 0.0, 1.0).astype(np.float32)


def _grey(image: np.ndarray) -> np.ndarray:
    return (0.299 * image[0] + 0.587 * image[1] + 0.114 * image[2])[None]


class _Samples(torch.utils.data.Dataset):
    """What the workers hold: the files and the transform; an item is (epoch, sample index)."""

    def __init__(self, source: ImageSource, transform: Transform) -> None:
        self.source, self.transform = source, transform

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, item: tuple[int, int]) -> torch.Tensor:
        epoch, index = item
        return torch.from_numpy(np.ascontiguousarray(self.transform(self.source.decode(index), epoch, index)))


class _Plan:
    """The batch sampler: the batches the next pass over the loader takes, as (epoch, index) items."""

    def __init__(self) -> None:
        self.batches: list[list[tuple[int, int]]] = []

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


def _one_thread(worker: int) -> None:
    torch.set_num_threads(1)


class LazyImages:
    """One split's images, indexed like a tensor: ``x[index]`` is the decoded batch on the
    field's device. Batches announced by :meth:`expect` come from the worker processes."""

    def __init__(self, source: ImageSource, transform: Transform, workers: int) -> None:
        self.source, self.transform, self.workers = source, transform, workers
        self.device = torch.device("cpu")
        self.dtype = torch.float32
        self._plan = _Plan()
        self._expected: list[torch.Tensor] = []
        self._epoch = 0
        self._position = 0
        self._loader: DataLoader | None = None
        self._iterator: Iterator[torch.Tensor] | None = None

    @property
    def shape(self) -> torch.Size:
        return torch.Size(self.source.shape)

    def __len__(self) -> int:
        return len(self.source)

    def to(self, device: torch.device | str) -> LazyImages:
        self.device = torch.device(device)
        return self

    def expect(self, batches: list[torch.Tensor], epoch: int = 0) -> None:
        """The batches the next requests will be, in order (an epoch's, or the validation's)."""
        self._expected, self._epoch, self._iterator = batches, epoch, None

    def __getitem__(self, index: Any) -> torch.Tensor:
        if isinstance(index, torch.Tensor) and index.dim() == 1:
            batch = self._prefetched(index)
            if batch is not None:
                return batch.to(self.device)
        picked = np.arange(len(self.source))[_numpy_index(index)]
        items = [self._sample(int(i)) for i in np.atleast_1d(picked)]
        return torch.stack(items).to(self.device) if np.ndim(picked) else items[0].to(self.device)

    def _sample(self, index: int) -> torch.Tensor:
        image = self.transform(self.source.decode(index), self._epoch, index)
        return torch.from_numpy(np.ascontiguousarray(image))

    def _prefetched(self, index: torch.Tensor) -> torch.Tensor | None:
        """The batch from the workers when ``index`` is the one expected next (or, after a
        skip, a later expected one: the loader restarts there); None when it was not announced."""
        if self._iterator is not None and self._position < len(self._expected) \
                and torch.equal(self._expected[self._position].cpu(), index.cpu()):
            return self._next()
        for position, expected in enumerate(self._expected):
            if len(expected) == len(index) and torch.equal(expected.cpu(), index.cpu()):
                self._start(position)
                return self._next()
        return None

    def _start(self, position: int) -> None:
        epoch = self._epoch
        self._plan.batches = [[(epoch, int(i)) for i in batch.tolist()] for batch in self._expected[position:]]
        if self._loader is None:
            workers = self.workers
            self._loader = DataLoader(_Samples(self.source, self.transform), batch_sampler=self._plan,
                                      num_workers=workers, persistent_workers=workers > 0,
                                      worker_init_fn=_one_thread if workers else None,
                                      prefetch_factor=2 if workers else None,
                                      multiprocessing_context=loader_context() if workers else None)
        self._iterator = iter(self._loader)
        self._position = position

    def _next(self) -> torch.Tensor:
        assert self._iterator is not None
        try:
            batch = next(self._iterator)
        except Exception as error:  # noqa: BLE001  (a worker's error comes back wrapped, many lines)
            lines = [line for line in str(error).splitlines() if line.strip()]
            last = lines[-1] if lines else type(error).__name__
            raise DataError(last.removeprefix("dlstudio.train.errors.DataError: ")) from None
        self._position += 1
        return batch

    def nbytes(self) -> int:
        """Bytes held in memory: none of the images (only their paths)."""
        return 0


def _numpy_index(index: Any) -> Any:
    return index.cpu().numpy() if isinstance(index, torch.Tensor) else index


class LoaderBatches:
    """An epoch's batches as the wrapped ``batches`` draw them, announced to the lazy fields so
    that their workers decode ahead."""

    def __init__(self, batches: Any, fields: list[LazyImages]) -> None:
        self.batches, self.fields = batches, fields

    def __len__(self) -> int:
        return len(self.batches)

    def epoch(self, epoch: int, device: torch.device) -> list[torch.Tensor]:
        indices = self.batches.epoch(epoch, device)
        for lazy in self.fields:
            lazy.expect(indices, epoch)
        return indices


def is_lazy(value: Any) -> bool:
    return isinstance(value, ImageSource | LazyImages)


def resident_bytes(value: Any) -> int:
    """Bytes a data field holds in memory (a lazy one: none)."""
    if isinstance(value, LazyImages):
        return value.nbytes()
    return value.numel() * value.element_size()


def data_workers(fields: dict[str, Any]) -> int:
    """How many processes decode the lazy fields among ``fields`` (0 when none are lazy)."""
    return max((v.workers for v in fields.values() if isinstance(v, LazyImages)), default=0)


def lazy_split(data: DataSplit, augment: AugmentConfig | None, seed: int, workers: int | None) -> DataSplit:
    """``data`` with each image source made a :class:`LazyImages` field (augmented in training)."""
    count = default_workers() if workers is None else workers

    def fields(part: dict[str, Any], train: bool) -> dict[str, Any]:
        return {k: LazyImages(v, Transform(augment, seed, train), count) if isinstance(v, ImageSource) else v
                for k, v in part.items()}

    return replace(data, train=fields(data.train, True), val=fields(data.val, False))


def in_memory(data: DataSplit) -> DataSplit:
    """``data`` with every image source decoded whole (for a task that needs all of it at once)."""
    def decoded(value: Any) -> Any:
        if not isinstance(value, ImageSource):
            return value
        return torch.from_numpy(np.stack([value.decode(i) for i in range(len(value))])
                                if len(value) else np.zeros(value.shape, np.float32))

    fields = {k: decoded(v) for k, v in data.arrays.fields.items()}
    arrays = replace(data.arrays, fields={k: v.numpy() if isinstance(v, torch.Tensor) else v for k, v in fields.items()})
    return replace(data, train={k: decoded(v) for k, v in data.train.items()},
                   val={k: decoded(v) for k, v in data.val.items()}, arrays=arrays)


def announce(train: dict[str, Any], val: dict[str, Any], batches: Any, val_batches: list[torch.Tensor]) -> Any:
    """Tell the lazy fields which batches come (each epoch's, the validation's); the batches to use."""
    for lazy in (v for v in val.values() if isinstance(v, LazyImages)):
        lazy.expect(val_batches)
    lazy_train = [v for v in train.values() if isinstance(v, LazyImages)]
    return LoaderBatches(batches, lazy_train) if lazy_train else batches
