"""Two open documents, each with its own layer type named ``Mix``: the document, the canvas,
the inspector, the palette and quick-add each resolve their own document's declaration."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPointF

from dlstudio.core.catalogue import BUILTINS
from dlstudio.ui.canvas.quick_add import TYPE_ROLE, QuickAdd
from dlstudio.ui.canvas.view import GraphView
from dlstudio.ui.document import GraphDocument
from dlstudio.ui.panels.inspector import NodePage
from dlstudio.ui.panels.palette import PalettePanel
from tests.core.scoped_layers import (
    FAMILY,
    blending_graph,
    blending_mix,
    projecting_graph,
    projecting_mix,
)


@pytest.fixture
def documents(qtbot) -> tuple[GraphDocument, GraphDocument]:
    projecting = GraphDocument(projecting_graph(), catalogue=BUILTINS.scoped([projecting_mix()]))
    blending = GraphDocument(blending_graph(), catalogue=BUILTINS.scoped([blending_mix()]))
    return projecting, blending


def test_each_document_analyses_and_edits_with_its_own_declaration(documents):
    projecting, blending = documents
    assert projecting.analysis.ok and blending.analysis.ok
    assert projecting.analysis.catalogue is projecting.catalogue
    assert projecting.analysis.params["mix"] == {"in_features": 4, "width": 8}
    assert blending.analysis.params["mix"] == {"gain": 2.0}
    one, two = projecting.add_node("Mix", (0, 300)), blending.add_node("Mix", (0, 300))
    projecting.connect("x", one)
    with pytest.raises(ValueError, match="is not an input port"):
        blending.connect("x", two)  # two inputs: the bare id names neither
    blending.connect("x", f"{two}.right")
    assert blending.incoming_edge(f"{two}.right") is not None
    with pytest.raises(ValueError, match="unknown layer type 'Mix'"):
        GraphDocument().add_node("Mix", (0, 0))
    assert "Mix" not in BUILTINS


def test_a_document_given_a_new_graph_takes_that_graph_s_catalogue(documents):
    projecting, _ = documents
    projecting.replace_graph(projecting_graph())
    assert projecting.catalogue is BUILTINS
    assert [d.message for d in projecting.analysis.errors] == ["unknown layer type 'Mix'"]


def test_the_canvas_draws_and_adds_each_document_s_own_mix(qtbot, documents):
    views = []
    for document in documents:
        view = GraphView(document)
        qtbot.addWidget(view)
        views.append(view)
    ports = [view.scene_.nodes["mix"].view.ports for view in views]
    assert [p.inputs for p in ports] == [("input",), ("left", "right")]
    assert not any(view.scene_.nodes["mix"].view.missing for view in views)
    assert all(view.scene_.nodes["mix"].view.family == FAMILY for view in views)
    added = views[1].add_layer("Mix", QPointF(0, 600))
    assert added is not None and views[1].scene_.nodes[added].view.ports.inputs == ("left", "right")


def test_the_inspector_edits_each_document_s_own_parameters(qtbot, documents):
    pages = [NodePage(document, "mix") for document in documents]
    for page in pages:
        qtbot.addWidget(page)
    assert [page.spec for page in pages] == [d.catalogue["Mix"] for d in documents]
    assert [sorted(page.rows) for page in pages] == [["in_features", "width"], ["gain"]]


def test_the_palette_and_quick_add_list_the_document_s_types(qtbot, documents):
    projecting, _ = documents
    plain = GraphDocument()
    palettes = [PalettePanel(projecting), PalettePanel(plain)]
    for palette in palettes:
        qtbot.addWidget(palette)
    assert "Mix" in palettes[0].visible_types() and "Mix" not in palettes[1].visible_types()
    assert len(palettes[0].visible_types()) == len(palettes[1].visible_types()) + 1
    projecting.replace_graph(projecting_graph())  # back to the built-ins: the palette follows
    assert "Mix" not in palettes[0].visible_types()
    quick, quick_plain = QuickAdd(documents[1]), QuickAdd(plain)
    for popup in (quick, quick_plain):
        qtbot.addWidget(popup)
        popup.refilter("mix")
    assert quick.current_type() == "Mix" and "Mix" not in listed(quick_plain)
    assert listed(quick) == ["Mix", *listed(quick_plain)]


def listed(popup: QuickAdd) -> list[str]:
    return [popup.list.topLevelItem(i).data(0, TYPE_ROLE) for i in range(popup.list.topLevelItemCount())]
