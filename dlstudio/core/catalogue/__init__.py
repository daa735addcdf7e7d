"""The layer catalogue: importing this package registers every family's declarations."""

from dlstudio.core.spec import CATALOGUE, LayerSpec

from dlstudio.core.catalogue import (  # noqa: F401  (imported for registration)
    activation,
    dense,
    graph_io,
)

FAMILIES: tuple[str, ...] = tuple(dict.fromkeys(spec.family for spec in CATALOGUE.values()))

__all__ = ["CATALOGUE", "FAMILIES", "LayerSpec"]
