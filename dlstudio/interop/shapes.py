"""Which shape layer a reshape is: Flatten when it joins neighbouring dimensions, Unflatten
when it splits one (both keep symbolic sizes flowing), else Reshape to the fixed sizes."""

from __future__ import annotations

import math
from typing import Any


def reshape_layer(before: tuple[int, ...], after: tuple[int, ...]) -> tuple[str, dict[str, Any]]:
    """``(type, params)`` of the layer that turns shape ``before`` into ``after`` (batch kept)."""
    joined = _joined(before, after)
    if joined is not None:
        start, end = joined
        return "Flatten", {"start_dim": start, **({} if end == len(before) - 1 else {"end_dim": end})}
    split = _split(before, after)
    if split is not None:
        dim, sizes = split
        return "Unflatten", {"dim": dim, "unflattened_size": sizes}
    return "Reshape", {"shape": list(after[1:])}


def _joined(before: tuple[int, ...], after: tuple[int, ...]) -> tuple[int, int] | None:
    """``(start, end)`` when ``after`` joins dims start..end of ``before`` into one."""
    extra = len(before) - len(after)
    for start in range(1, len(after) if extra > 0 else 0):
        end = start + extra
        if (before[:start] == after[:start] and before[end + 1:] == after[start + 1:]
                and math.prod(before[start:end + 1]) == after[start]):
            return start, end
    return None


def _split(before: tuple[int, ...], after: tuple[int, ...]) -> tuple[int, list[int]] | None:
    """``(dim, sizes)`` when ``after`` splits dim ``dim`` of ``before`` into ``sizes``."""
    count = len(after) - len(before) + 1
    for dim in range(1, len(before) if count > 1 else 0):
        sizes = after[dim:dim + count]
        if before[:dim] == after[:dim] and before[dim + 1:] == after[dim + count:] and math.prod(sizes) == before[dim]:
            return dim, list(sizes)
    return None
