"""The catalogue as an object: built-in layer types, and scopes that add a file's own types
visible through that scope only (two files may each declare a type of the same name)."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from dlstudio.core.analysis import analyze
from dlstudio.core.catalogue import BUILTINS, CATALOGUE, Catalogue, catalogue_for
from dlstudio.core.compiler import compile_graph
from dlstudio.core.errors import GraphInvalidError
from dlstudio.core.layout import ROW, estimate_box, layered_layout
from tests.core.scoped_layers import (
    FAMILY,
    blending_graph,
    blending_mix,
    projecting_graph,
    projecting_mix,
)
from tests.core.torch_agree import exported_matches_compiled


def test_the_builtins_look_up_like_the_registry():
    assert len(BUILTINS) == len(CATALOGUE) and list(BUILTINS) == list(CATALOGUE)
    assert BUILTINS["Linear"] is CATALOGUE["Linear"] and BUILTINS.get("Linear") is CATALOGUE["Linear"]
    assert "Conv2d" in BUILTINS and "Nope" not in BUILTINS and BUILTINS.get("Nope") is None
    assert list(BUILTINS.families())[:3] == ["Graph", "Dense", "Convolution"]
    assert sorted(s.type for specs in BUILTINS.families().values() for s in specs) == sorted(CATALOGUE)


def test_a_scope_adds_its_own_types_and_falls_back_to_its_base():
    mix = projecting_mix()
    scope = BUILTINS.scoped([mix])
    assert scope["Mix"] is mix and scope.get("Mix") is mix and "Mix" in scope
    assert scope["Linear"] is BUILTINS["Linear"] and len(scope) == len(BUILTINS) + 1
    assert scope.base is BUILTINS and mix in scope.values()
    families = scope.families()
    assert list(families)[-1] == FAMILY and families[FAMILY] == [mix]
    assert {k: v for k, v in families.items() if k != FAMILY} == BUILTINS.families()


def test_two_scopes_each_resolve_their_own_declaration_of_the_same_name():
    projecting, blending = BUILTINS.scoped([projecting_mix()]), BUILTINS.scoped([blending_mix()])
    one, two = analyze(projecting_graph(), projecting), analyze(blending_graph(), blending)
    assert one.ok and two.ok, [d.one_line() for d in one.errors + two.errors]
    assert one.catalogue is projecting and two.catalogue is blending
    assert one.params["mix"] == {"in_features": 4, "width": 8} and one.param_counts["mix"] == 40
    assert two.params["mix"] == {"gain": 2.0} and two.param_counts["mix"] == 0
    assert one.output_type("mix").shape[1:] == (8,) and two.output_type("mix").shape[1:] == (4,)
    crossed = analyze(blending_graph(), projecting)
    assert not crossed.ok and any("'left'" in d.message for d in crossed.errors)
    assert not analyze(projecting_graph(), blending).ok


def test_the_builtins_never_see_a_scope_s_types():
    BUILTINS.scoped([projecting_mix()])
    assert "Mix" not in BUILTINS and "Mix" not in CATALOGUE
    assert catalogue_for(projecting_graph()) is BUILTINS
    analysis = analyze(projecting_graph())
    assert analysis.catalogue is BUILTINS
    assert [d.message for d in analysis.errors] == ["unknown layer type 'Mix'"]


def test_a_name_taken_by_a_builtin_or_twice_in_one_scope_is_refused():
    with pytest.raises(ValueError, match="'Linear' is already a layer type"):
        BUILTINS.scoped([replace(projecting_mix(), type="Linear")])
    with pytest.raises(ValueError, match="'Mix' is defined twice"):
        BUILTINS.scoped([projecting_mix(), blending_mix()])
    with pytest.raises(ValueError, match="'Mix' is already a layer type"):
        BUILTINS.scoped([projecting_mix()]).scoped([blending_mix()])


def test_compile_and_export_go_through_the_analysis_scope():
    projecting = analyze(projecting_graph(), BUILTINS.scoped([projecting_mix()]))
    source = exported_matches_compiled(projecting)
    assert "self.mix = nn.Linear(4, 8)" in source
    blending = analyze(blending_graph(), BUILTINS.scoped([blending_mix()]))
    source = exported_matches_compiled(blending)
    assert "mix = x * 2.0 + x" in source
    x = torch.randn(3, 4)
    assert torch.equal(compile_graph(blending)(x), x * 2.0 + x)
    with pytest.raises(GraphInvalidError):
        compile_graph(projecting_graph())


def test_layout_sizes_boxes_from_the_catalogue_it_is_given():
    blending = BUILTINS.scoped([blending_mix()])
    assert set(estimate_box("Mix", blending).inputs) == {"left", "right"}
    assert set(estimate_box("Mix", BUILTINS).inputs) == {"input"}  # an unknown type's default box
    graph = blending_graph()
    graph.nodes.append(graph.node("mix").model_copy(update={"id": "mix2"}))
    graph.edges.append(graph.edges[0].model_copy(update={"target": "mix2.left"}))

    def gap(catalogue: Catalogue) -> float:
        """How far apart the two Mix nodes of one column are placed."""
        positions = layered_layout(graph, catalogue=catalogue)
        return abs(positions["mix2"][1] - positions["mix"][1])

    assert gap(blending) == gap(BUILTINS) + ROW  # a two-row box is one row taller
