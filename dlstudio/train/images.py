"""Images drawn by a generative task as files: a grid as PNG (Pillow), an array as ``.npz``."""

from __future__ import annotations

import io
import math

import numpy as np

#: Pixels around and between the grid's images.
PAD = 1


def grid_png(images: np.ndarray, low: float, high: float, scale: int = 4) -> bytes:
    """``images`` N x C x H x W (C 1 or 3) with values from ``low`` to ``high``, as one PNG of a
    near-square grid, each pixel drawn ``scale`` times as wide and high."""
    from PIL import Image

    grid = _tiled(_bytes(images, low, high))
    picture = Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid)
    if scale > 1:
        picture = picture.resize((picture.width * scale, picture.height * scale), Image.Resampling.NEAREST)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def npz_bytes(samples: np.ndarray) -> bytes:
    """An ``.npz`` file holding ``samples``."""
    buffer = io.BytesIO()
    np.savez(buffer, samples=samples)
    return buffer.getvalue()


def _bytes(images: np.ndarray, low: float, high: float) -> np.ndarray:
    """N x H x W x C bytes, ``low`` black and ``high`` white."""
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"images must be N x C x H x W with 1 or 3 channels, not {images.shape}")
    unit = (images.astype(np.float32) - low) / max(high - low, 1e-12)
    return (np.clip(unit, 0, 1) * 255).round().astype(np.uint8).transpose(0, 2, 3, 1)


def _tiled(images: np.ndarray) -> np.ndarray:
    count, height, width, channels = images.shape
    columns = math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    grid = np.zeros((PAD + rows * (height + PAD), PAD + columns * (width + PAD), channels), np.uint8)
    for i, image in enumerate(images):
        top, left = PAD + (i // columns) * (height + PAD), PAD + (i % columns) * (width + PAD)
        grid[top:top + height, left:left + width] = image
    return grid
