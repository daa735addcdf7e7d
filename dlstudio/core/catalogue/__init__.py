"""The layer catalogue: every module in this package is one layer family.

Importing the package imports each family module, which registers its declarations with
:func:`dlstudio.core.spec.register`. Adding a family or a layer touches one file.
"""

import importlib
import pkgutil

from dlstudio.core.spec import CATALOGUE, LayerSpec


def _load_families() -> None:
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")


_load_families()

#: Family names in a stable order for the palette.
FAMILY_ORDER = (
    "Graph", "Dense", "Convolution", "Pooling", "Normalization", "Regularization",
    "Activation", "Shape", "Merge", "Sequence", "State space", "Attention", "Experts", "Adapters",
    "Advanced",
)


def families() -> dict[str, list[LayerSpec]]:
    """Layer specs grouped by family, in palette order."""
    groups: dict[str, list[LayerSpec]] = {}
    for spec in CATALOGUE.values():
        groups.setdefault(spec.family, []).append(spec)
    order = {name: i for i, name in enumerate(FAMILY_ORDER)}
    return {name: groups[name] for name in sorted(groups, key=lambda f: (order.get(f, 99), f))}


__all__ = ["CATALOGUE", "LayerSpec", "families"]
