"""Arrays to pictures: colour maps, feature-map grids, and a widget that shows an image crisply.

Pure NumPy into a QImage (no plotting library in the loop), so a 64-map grid costs well under a
millisecond to build. Small images are scaled up with nearest-neighbour sampling, so an 8x8
feature map stays eight crisp squares instead of a blur.
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np
from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPaintEvent, QPalette
from PySide6.QtWidgets import QSizePolicy, QWidget


@cache
def lut(name: str) -> np.ndarray:
    """A 256 x 3 uint8 lookup table of a pyqtgraph colour map (``inferno``, ``CET-D1`` ...)."""
    import pyqtgraph as pg

    table = pg.colormap.get(name).getLookupTable(0.0, 1.0, 256, alpha=False)
    return np.asarray(table, dtype=np.uint8)[:, :3]


def colourize(values: np.ndarray, table: np.ndarray, background: QColor | None = None) -> np.ndarray:
    """Values in 0..1 (NaN: background) to an H x W x 3 uint8 image."""
    index = np.clip(np.nan_to_num(values, nan=0.0) * 255, 0, 255).astype(np.uint8)
    rgb = table[index]
    if background is not None:
        rgb[np.isnan(values)] = (background.red(), background.green(), background.blue())
    return rgb


def normalise(values: np.ndarray, symmetric: bool = False) -> np.ndarray:
    """Scale to 0..1 (min..max), or around 0.5 for zero when ``symmetric``."""
    finite = values[np.isfinite(values)]
    if not finite.size:
        return np.zeros_like(values, dtype=float)
    if symmetric:
        bound = float(np.abs(finite).max()) or 1.0
        return 0.5 + values / (2 * bound)
    low, high = float(finite.min()), float(finite.max())
    return (values - low) / (high - low) if high > low else np.zeros_like(values, dtype=float)


def grid(maps: np.ndarray, gap: int = 1) -> np.ndarray:
    """``[C, H, W]`` maps, each scaled to 0..1, tiled in a near-square grid (NaN between)."""
    count, h, w = maps.shape
    cols = max(1, math.ceil(math.sqrt(count * h / max(w, 1))))
    rows = math.ceil(count / cols)
    out = np.full((rows * (h + gap) - gap, cols * (w + gap) - gap), np.nan)
    for i in range(count):
        r, c = divmod(i, cols)
        out[r * (h + gap): r * (h + gap) + h, c * (w + gap): c * (w + gap) + w] = normalise(maps[i])
    return out


def to_qimage(rgb: np.ndarray) -> QImage:
    """An H x W x 3 uint8 array as a QImage that owns its pixels."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    h, w = rgb.shape[:2]
    return QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


def grey_or_colour(image: np.ndarray) -> np.ndarray:
    """An image in 0..1, [H, W] or [H, W, 3], as H x W x 3 uint8."""
    pixels = np.clip(image * 255, 0, 255).astype(np.uint8)
    return np.repeat(pixels[:, :, None], 3, axis=2) if pixels.ndim == 2 else pixels


class ImageView(QWidget):
    """Shows one QImage scaled to fit, keeping its aspect ratio; a hint when there is none."""

    def __init__(self, hint: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.image: QImage | None = None
        self.hint = hint
        self.setMinimumSize(QSize(96, 96))
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def set_image(self, image: QImage | None, hint: str | None = None) -> None:
        self.image = image
        if hint is not None:
            self.hint = hint
        self.update()

    def target_rect(self) -> QRectF:
        if self.image is None or self.image.isNull():
            return QRectF()
        area = QRectF(self.rect()).adjusted(4, 4, -4, -4)
        scale = min(area.width() / self.image.width(), area.height() / self.image.height())
        w, h = self.image.width() * scale, self.image.height() * scale
        return QRectF(area.center().x() - w / 2, area.center().y() - h / 2, w, h)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        painter = QPainter(self)
        if self.image is None or self.image.isNull():
            painter.setPen(self.palette().color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text))
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.hint)
            return
        rect = self.target_rect()
        small = rect.width() >= self.image.width() * 1.5
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, not small)
        painter.drawImage(rect, self.image)
