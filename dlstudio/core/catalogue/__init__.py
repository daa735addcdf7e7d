"""The layer catalogue: every module in this package is one layer family.

Importing the package imports each family module, which registers its declarations with
:func:`dlstudio.core.spec.register`. Adding a family or a layer touches one file.

Consumers look layer types up in a :class:`Catalogue`, never in the registry: the built-ins
(:data:`BUILTINS`), or a scope made from them that adds a file's own types (its blocks), so
that two open files may each define a type of the same name without seeing each other's.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
from collections.abc import Iterable, Iterator, Mapping

from dlstudio.core.blocks import block_specs
from dlstudio.core.graph import Graph
from dlstudio.core.spec import CATALOGUE, LayerSpec


def _load_families() -> None:
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")


_load_families()

#: Family names in a stable order for the palette.
FAMILY_ORDER = (
    "Graph", "Dense", "Convolution", "Pooling", "Normalization", "Regularization",
    "Activation", "Shape", "Merge", "Sequence", "State space", "Attention", "Experts", "Adapters", "Diffusion",
    "Advanced",
)


class Catalogue(Mapping[str, LayerSpec]):
    """Layer specs by type name (a read-only mapping: ``get``, ``[]``, ``in``, ``values()``).

    A scope made with :meth:`scoped` holds its base's specs and its own; the base never sees
    the scope's. Lookups are one dict lookup, as analysis makes one per node.
    """

    def __init__(self, specs: Mapping[str, LayerSpec], base: Catalogue | None = None) -> None:
        self._specs = specs
        self.base = base
        #: Why some of a file's own types were left out (a block named like a built-in).
        self.problems: list[str] = []

    def __getitem__(self, type_name: str) -> LayerSpec:
        return self._specs[type_name]

    def get(self, type_name: str, default: LayerSpec | None = None) -> LayerSpec | None:  # type: ignore[override]
        return self._specs.get(type_name, default)

    def __contains__(self, type_name: object) -> bool:
        return type_name in self._specs

    def __iter__(self) -> Iterator[str]:
        return iter(self._specs)

    def __len__(self) -> int:
        return len(self._specs)

    def __repr__(self) -> str:
        own = len(self) - len(self.base) if self.base is not None else len(self)
        return f"<Catalogue of {len(self)} layer types, {own} of its own>"

    def scoped(self, specs: Iterable[LayerSpec]) -> Catalogue:
        """A child catalogue that adds ``specs`` to this one's; ValueError on a name clash."""
        own: dict[str, LayerSpec] = {}
        for spec in specs:
            if spec.type in self._specs:
                raise ValueError(f"'{spec.type}' is already a layer type: give it another name")
            if spec.type in own:
                raise ValueError(f"'{spec.type}' is defined twice")
            own[spec.type] = spec
        return Catalogue({**self._specs, **own}, self)

    def families(self) -> dict[str, list[LayerSpec]]:
        """Layer specs grouped by family, in palette order."""
        groups: dict[str, list[LayerSpec]] = {}
        for spec in self._specs.values():
            groups.setdefault(spec.family, []).append(spec)
        order = {name: i for i, name in enumerate(FAMILY_ORDER)}
        return {name: groups[name] for name in sorted(groups, key=lambda f: (order.get(f, 99), f))}


#: The built-in layer types (a live view of the registry every family module fills).
BUILTINS = Catalogue(CATALOGUE)


#: Scopes made for files with blocks, by the blocks' text: re-analysing after an edit outside
#: the blocks finds the same layer types (and their cached analyses).
_SCOPES: dict[str, Catalogue] = {}
_SCOPE_LIMIT = 64


def catalogue_for(graph: Graph) -> Catalogue:
    """The layer types ``graph`` may use: the built-ins and the file's own blocks."""
    if not graph.blocks:
        return BUILTINS
    key = json.dumps({name: block.model_dump(mode="json") for name, block in graph.blocks.items()},
                     sort_keys=True, default=str)
    scope = _SCOPES.get(key)
    if scope is None:
        if len(_SCOPES) >= _SCOPE_LIMIT:
            _SCOPES.clear()
        scope = _SCOPES[key] = _scope_of(block_specs(graph))
    return scope


def _scope_of(specs: list[LayerSpec]) -> Catalogue:
    """A scope with ``specs``; one named like a built-in is left out and named in ``problems``."""
    clashes = [spec for spec in specs if spec.type in BUILTINS]
    scope = BUILTINS.scoped(spec for spec in specs if spec.type not in BUILTINS)
    scope.problems = [f"block '{spec.type}' has the name of a built-in layer type: rename the block"
                      for spec in clashes]
    return scope


def families() -> dict[str, list[LayerSpec]]:
    """The built-in layer specs grouped by family, in palette order."""
    return BUILTINS.families()


__all__ = ["BUILTINS", "CATALOGUE", "Catalogue", "LayerSpec", "catalogue_for", "families"]
