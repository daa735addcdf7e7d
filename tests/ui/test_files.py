"""Files with nothing ever lost: atomic save, autosave and recovery, recent files, open errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QSettings, QUrl
from PySide6.QtWidgets import QMessageBox

from dlstudio.core.graph import Edge, Graph, Node
from dlstudio.core.io import graph_to_json, load_graph, save_graph
from dlstudio.ui.document import GraphDocument
from dlstudio.ui.files import (
    MAX_RECENT,
    Autosaver,
    RecentFiles,
    RecoveryStore,
    dropped_graph,
    example_folders,
    examples,
)
from tests.conftest import GRAPHS


def mlp() -> Graph:
    return Graph(name="mlp", nodes=[
        Node(id="x", type="Input", params={"shape": [8]}, position=(0, 0)),
        Node(id="fc", type="Linear", params={"out_features": 4}, position=(0, 120)),
        Node(id="out", type="Output", position=(0, 240)),
    ], edges=[Edge(source="x", target="fc"), Edge(source="fc", target="out")])


@pytest.fixture
def settings(tmp_path: Path) -> QSettings:
    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    path = tmp_path / "mlp.json"
    save_graph(mlp(), path)
    return path


# ----- atomic save -----------------------------------------------------------------------------


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


@pytest.mark.parametrize("broken", ["replace", "fsync", "write"])
def test_crash_during_save_leaves_old_file_whole(qtbot, saved: Path, monkeypatch, broken: str) -> None:
    before = saved.read_bytes()
    document = GraphDocument.open(saved)
    document.set_param("fc", "out_features", 32)

    def crash(*_args, **_kwargs):
        raise OSError(5, "simulated crash")

    if broken == "write":
        real_fdopen = os.fdopen

        class HalfWriter:
            def __init__(self, handle):
                self.handle = handle

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                self.handle.close()

            def write(self, data):
                self.handle.write(data[: len(data) // 2])
                raise OSError(28, "no space left on device")

        monkeypatch.setattr(os, "fdopen", lambda fd, mode: HalfWriter(real_fdopen(fd, mode)))
    else:
        monkeypatch.setattr(os, broken, crash)
    with pytest.raises(OSError):
        document.save()
    assert saved.read_bytes() == before
    assert _leftovers(saved.parent) == []
    assert document.modified
    monkeypatch.undo()
    document.save()
    assert load_graph(saved).node("fc").params["out_features"] == 32


# ----- recent files ------------------------------------------------------------------------------


def test_recent_files_newest_first_deduplicated_and_bounded(settings: QSettings, tmp_path: Path) -> None:
    recent = RecentFiles(settings)
    paths = [tmp_path / f"g{i}.json" for i in range(MAX_RECENT + 3)]
    for path in paths:
        recent.add(path)
    recent.add(paths[2])
    shown = recent.paths()
    assert len(shown) == MAX_RECENT
    assert shown[0] == paths[2].resolve()
    assert shown[1] == paths[-1].resolve()
    assert len(set(shown)) == len(shown)
    settings.sync()
    again = RecentFiles(QSettings(settings.fileName(), QSettings.Format.IniFormat))
    assert again.paths() == shown
    again.remove(shown[0])
    assert shown[0] not in again.paths()


# ----- autosave and recovery -----------------------------------------------------------------------


def test_autosave_writes_only_unsaved_work_and_save_clears_it(qtbot, saved: Path, tmp_path: Path) -> None:
    store = RecoveryStore(tmp_path / "recovery")
    document = GraphDocument.open(saved)
    autosaver = Autosaver(document, store, interval_ms=60_000)
    assert autosaver.autosave() is None
    document.set_param("fc", "out_features", 7)
    copy = autosaver.autosave()
    assert copy is not None and load_graph(copy).node("fc").params["out_features"] == 7
    assert saved.read_bytes() != copy.read_bytes()
    document.save()
    assert not copy.exists()
    assert store.pending() == []


def test_autosave_timer_fires(qtbot, saved: Path, tmp_path: Path) -> None:
    store = RecoveryStore(tmp_path / "recovery")
    document = GraphDocument.open(saved)
    autosaver = Autosaver(document, store, interval_ms=50)
    document.set_label("fc", "classifier")
    qtbot.waitUntil(lambda: any(store.folder.glob("*.meta.json")), timeout=3000)
    [recovery] = store.pending()
    assert recovery.graph.node("fc").label == "classifier"
    assert recovery.original == saved
    assert autosaver.key == recovery.key


def test_recovery_offered_only_when_newer_and_parseable_and_never_deleted(qtbot, saved: Path,
                                                                         tmp_path: Path) -> None:
    store = RecoveryStore(tmp_path / "recovery")
    edited = mlp()
    edited.node("fc").params["out_features"] = 99
    key = store.key_for(saved)
    store.write(key, edited, saved)
    [offered] = store.pending()
    assert offered.graph.node("fc").params["out_features"] == 99
    future = offered.saved_at + 100
    os.utime(saved, (future, future))  # the file was saved after the copy: nothing to offer
    assert store.pending() == []
    assert store.graph_file(key).exists()
    os.utime(saved, (offered.saved_at - 100, offered.saved_at - 100))
    store.graph_file(key).write_text("{ not json")
    assert store.pending() == []
    assert store.graph_file(key).exists() and store.meta_file(key).exists()


def test_untitled_work_is_recoverable(qtbot, tmp_path: Path) -> None:
    store = RecoveryStore(tmp_path / "recovery")
    document = GraphDocument(mlp())
    autosaver = Autosaver(document, store, interval_ms=60_000)
    document.set_graph_field("name", "draft")
    autosaver.autosave()
    [recovery] = store.pending()
    assert recovery.original is None and recovery.graph.name == "draft"
    assert "never saved" in recovery.title


# ----- examples and drops ----------------------------------------------------------------------------


def test_examples_come_from_the_graphs_folder(qtbot) -> None:
    found = examples()
    assert found, "no example graphs found"
    assert example_folders()[0] == GRAPHS
    assert {p.name for p in found} == {p.name for p in GRAPHS.glob("*.json")}


def test_examples_ship_inside_the_package() -> None:
    """``dlstudio/examples`` links to ``graphs/``, so a built wheel carries the examples."""
    import dlstudio

    packaged = Path(dlstudio.__file__).parent / "examples"
    assert packaged.resolve() == GRAPHS.resolve()
    assert sorted(p.name for p in packaged.glob("*.json")) == sorted(p.name for p in GRAPHS.glob("*.json"))


def test_dropped_json_is_recognised(qtbot, saved: Path) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(saved.with_suffix(".txt"))), QUrl.fromLocalFile(str(saved))])
    assert dropped_graph(mime) == saved
    other = QMimeData()
    other.setText(str(saved))
    assert dropped_graph(other) is None


# ----- in the window -------------------------------------------------------------------------------------


@pytest.fixture
def messages(monkeypatch) -> list[str]:
    """Message boxes record their text and return at once instead of blocking."""
    shown: list[str] = []

    def fake_exec(box: QMessageBox) -> int:
        shown.append(f"{box.windowTitle()}: {box.text()}")
        return 0

    monkeypatch.setattr(QMessageBox, "exec", fake_exec)
    return shown


def make_window(qtbot, tmp_path: Path, settings: QSettings):
    from dlstudio.ui.main_window import MainWindow

    window = MainWindow(settings=settings, recovery=RecoveryStore(tmp_path / "recovery"))
    qtbot.addWidget(window)
    window.show()
    return window


def test_open_error_shows_one_line_reason_and_app_stays_up(qtbot, tmp_path, settings, messages) -> None:
    window = make_window(qtbot, tmp_path, settings)
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "dlstudio.graph", "version": 1, "nodes": [{"id": "1x", "type": "Linear"}]}')
    assert not window.files.open_path(bad)
    assert not window.files.open_path(tmp_path / "missing.json")
    assert len(messages) == 2
    assert all("\n" not in text for text in messages)
    assert "not a legal identifier" in messages[0] and "no such file" in messages[1]
    assert window.isVisible() and window.document.path is None
    assert window.files.open_path(GRAPHS / "resnet18.json")
    assert window.document.graph.name == "resnet18"


def test_a_file_with_too_many_nodes_is_refused_in_one_line(qtbot, tmp_path, settings, messages) -> None:
    from dlstudio.core.io import MAX_NODES

    window = make_window(qtbot, tmp_path, settings)
    big = tmp_path / "big.json"
    nodes = ",".join(f'{{"id": "n{i}", "type": "ReLU"}}' for i in range(MAX_NODES + 1))
    big.write_text(f'{{"format": "dlstudio.graph", "version": 1, "nodes": [{nodes}]}}')
    assert not window.files.open_path(big)
    [message] = messages
    assert message.startswith(f"Cannot open file: {big}: has 200,001 nodes") and "(MAX_NODES" in message
    assert "\n" not in message and window.document.path is None and not window.document.graph.nodes


def test_save_reopen_and_compare(qtbot, tmp_path, settings, saved, messages) -> None:
    window = make_window(qtbot, tmp_path, settings)
    assert window.files.open_path(saved)
    window.document.set_param("fc", "out_features", 12)
    window.document.set_label("fc", "<b>not bold</b>")
    assert window.windowTitle() == "mlp.json* — DL Studio"
    assert window.files.save()
    assert window.windowTitle() == "mlp.json — DL Studio"
    text = graph_to_json(window.document.graph)
    assert saved.read_text() == text
    other = make_window(qtbot, tmp_path, settings)
    assert other.files.open_path(saved)
    assert graph_to_json(other.document.graph) == text
    assert window.recent.paths()[0] == saved.resolve()
    window.files.fill_recent(window.recent_menu)
    first = window.recent_menu.actions()[0]
    assert first.text().endswith("mlp.json")
    window.files.new()
    first.trigger()
    assert window.document.path == saved.resolve()


def test_failed_save_reports_and_keeps_changes(qtbot, tmp_path, settings, saved, messages, monkeypatch) -> None:
    window = make_window(qtbot, tmp_path, settings)
    window.files.open_path(saved)
    before = saved.read_bytes()
    window.document.set_param("fc", "out_features", 5)
    monkeypatch.setattr(os, "replace", lambda *a: (_ for _ in ()).throw(OSError(13, "Permission denied")))
    assert not window.files.save()
    assert messages and "Permission denied" in messages[-1]
    assert saved.read_bytes() == before and _leftovers(saved.parent) == []
    assert window.document.modified and window.windowTitle().startswith("mlp.json*")


def test_recover_after_simulated_crash(qtbot, tmp_path, settings, saved, messages) -> None:
    crashed = make_window(qtbot, tmp_path, settings)
    crashed.files.open_path(saved)
    crashed.document.set_param("fc", "out_features", 77)
    crashed.document.add_node("ReLU", (0, 360))
    crashed.autosaver.autosave()
    expected = graph_to_json(crashed.document.graph)
    crashed.autosaver.timer.stop()
    crashed.autosaver.blockSignals(True)  # the process "dies": nothing else happens to its files
    crashed.document.blockSignals(True)

    restarted = make_window(qtbot, tmp_path, settings)
    asked = []
    restarted.files.ask_recovery = lambda recovery: asked.append(recovery) or "recover"
    assert restarted.files.offer_recovery()
    assert len(asked) == 1 and asked[0].original == saved
    assert graph_to_json(restarted.document.graph) == expected
    assert restarted.document.path == saved and restarted.document.modified
    assert restarted.windowTitle() == "mlp.json* — DL Studio"
    assert load_graph(saved).node("fc").params["out_features"] == 4  # the file itself is untouched
    assert restarted.files.save()
    assert not asked[0].file.exists()
    assert RecoveryStore(tmp_path / "recovery").pending() == []


def test_declined_recovery_is_kept_for_later(qtbot, tmp_path, settings, saved, messages) -> None:
    store = RecoveryStore(tmp_path / "recovery")
    edited = mlp()
    edited.name = "edited"
    store.write(store.key_for(saved), edited, saved)
    window = make_window(qtbot, tmp_path, settings)
    window.files.ask_recovery = lambda recovery: "later"
    assert not window.files.offer_recovery()
    assert len(store.pending()) == 1
    window.files.ask_recovery = lambda recovery: "discard"
    assert not window.files.offer_recovery()
    assert store.pending() == []


def test_unknown_layer_types_open_as_missing_layers_and_survive_save(qtbot, tmp_path, settings, messages) -> None:
    path = tmp_path / "future.json"
    graph = mlp()
    graph.nodes.insert(2, Node(id="warp", type="WarpDrive", params={"factor": 9, "mode": "fast"},
                               position=(200, 180)))
    graph.edges = [Edge(source="x", target="fc"), Edge(source="fc", target="warp"), Edge(source="warp", target="out")]
    save_graph(graph, path)
    window = make_window(qtbot, tmp_path, settings)
    assert window.files.open_path(path)
    assert window.document.node("warp").params == {"factor": 9, "mode": "fast"}
    problems = [window.problems.topLevelItem(i).text(2) for i in range(window.problems.topLevelItemCount())]
    assert any("unknown layer type 'WarpDrive'" in text for text in problems)
    window.view.select_node("warp")
    window.inspector.show_nodes(["warp"])
    texts = " ".join(label.text() for label in window.inspector.page.findChildren(type(window.status_params)))
    assert "Missing layer: WarpDrive" in texts and '"fast"' in texts
    window.document.set_param("fc", "out_features", 6)
    assert window.files.save()
    reloaded = load_graph(path)
    assert reloaded.node("warp").params == {"factor": 9, "mode": "fast"}
    assert reloaded.node("warp").type == "WarpDrive"


def test_new_from_example_opens_an_unsaved_copy(qtbot, tmp_path, settings, messages) -> None:
    window = make_window(qtbot, tmp_path, settings)
    example = examples()[0]
    assert window.files.new_from_example(example)
    assert window.document.path is None
    original = load_graph(example)
    opened = window.document.graph
    assert [(n.id, n.type, n.params) for n in opened.nodes] == [(n.id, n.type, n.params) for n in original.nodes]
    assert opened.edges == original.edges
    assert all(n.position is not None for n in opened.nodes)  # laid out if the file had none
    assert not window.document.modified
    assert window.windowTitle() == f"{window.document.graph.name}.json — DL Studio"
