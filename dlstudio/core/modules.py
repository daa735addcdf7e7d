"""Helper ``nn.Module`` classes for layers torch does not ship as one module.

The exporter copies a class's source from here into the generated file, so each class must
be self-contained: it may use only ``torch``, ``nn``, ``F`` and ``math``, and is formatted
the way ``ruff format`` writes it.
"""

from __future__ import annotations

import math  # noqa: F401  (available to helper classes, as in exported files)

import torch  # noqa: F401
import torch.nn.functional as F  # noqa: F401, N812
from torch import nn  # noqa: F401

#: Names of the helper classes, for the compiler's namespace and the exporter.
SUPPORT: dict[str, type] = {}


def support(cls: type) -> type:
    """Register a helper class under its own name."""
    SUPPORT[cls.__name__] = cls
    return cls
