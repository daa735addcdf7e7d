"""The graph file format: lossless round trips, stable bytes, unknown keys kept, versions."""

from __future__ import annotations

import contextlib
import copy
import difflib
import io
import json
import os
import random

import pytest

from dlstudio import analyze, load_graph, save_graph
from dlstudio.cli import main
from dlstudio.core import io as graph_io
from dlstudio.core.errors import GraphFileError
from dlstudio.core.graph import Graph
from dlstudio.core.io import graph_to_json, parse_json, write_atomic
from tests.conftest import GRAPHS

RICH = {
    "format": "dlstudio.graph", "version": 1, "name": "rich graph",
    "description": "Free text: \u00e9t\u00e9, \u6771\u4eac, quotes \" ' and a\nnewline.",
    "future_section": {"b": [1, 2.5, None], "a": True},
    "nodes": [
        {"id": "x", "type": "Input", "params": {"shape": [3, 8, 8], "dtype": "float32"},
         "position": [0, -12.5]},
        {"id": "conv", "type": "Conv2d", "label": "stem \u2013 3x3",
         "params": {"out_channels": 4, "kernel_size": [3, 3], "padding": 1, "bias": False},
         "position": [120.25, 40], "colour": "#ff0000", "meta": {"z": 1, "a": [1, {"k": "v"}]}},
        {"id": "act", "type": "ReLU", "label": ""},
        {"id": "head", "type": "Flatten"},
        {"id": "fc", "type": "Linear", "params": {"out_features": 10}},
        {"id": "out", "type": "Output"},
    ],
    "edges": [
        {"source": "x", "target": "conv"}, {"source": "conv", "target": "act.input", "style": "dashed"},
        {"source": "act", "target": "head"}, {"source": "head.output", "target": "fc"},
        {"source": "fc", "target": "out"},
    ],
}


def _dump(graph: Graph) -> dict:
    return {**graph.model_dump(mode="json"), "extras": [graph.model_extra] + [
        n.model_extra for n in graph.nodes] + [e.model_extra for e in graph.edges]}


def test_load_save_load_is_lossless(tmp_path):
    first = load_graph(RICH)
    save_graph(first, tmp_path / "g.json")
    second = load_graph(tmp_path / "g.json")
    assert _dump(second) == _dump(first)
    assert analyze(second).ok


def test_saving_what_was_loaded_gives_the_same_bytes(tmp_path):
    path = tmp_path / "g.json"
    save_graph(load_graph(RICH), path)
    saved = path.read_bytes()
    save_graph(load_graph(path), path)
    assert path.read_bytes() == saved
    assert saved.isascii() and saved.endswith(b"\n")


@pytest.mark.parametrize("path", sorted(GRAPHS.glob("*.json")), ids=lambda p: p.stem)
def test_example_files_are_in_the_saved_form(path):
    assert graph_to_json(load_graph(path)) == path.read_text()


def _shuffled(value, rng: random.Random):
    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        return {key: _shuffled(item, rng) for key, item in items}
    if isinstance(value, list):
        return [_shuffled(item, rng) for item in value]
    return value


@pytest.mark.parametrize("seed", range(5))
def test_key_order_in_the_file_does_not_depend_on_the_input(seed):
    shuffled = _shuffled(RICH, random.Random(seed))
    assert graph_to_json(load_graph(shuffled)) == graph_to_json(load_graph(RICH))


def test_keys_are_written_in_the_documented_order():
    doc = json.loads(graph_to_json(load_graph(RICH)))
    assert list(doc) == ["format", "version", "name", "description", "nodes", "edges", "future_section"]
    conv = doc["nodes"][1]
    assert list(conv) == ["id", "type", "params", "label", "position", "colour", "meta"]
    assert list(conv["params"]) == sorted(conv["params"])
    assert list(doc["edges"][1]) == ["source", "target", "style"]


def test_an_edit_changes_one_line_of_the_file():
    graph = load_graph(RICH)
    before = graph_to_json(graph).splitlines()
    graph.node("fc").params["out_features"] = 12
    after = graph_to_json(graph).splitlines()
    changed = [line for line in difflib.unified_diff(before, after, lineterm="", n=0)
               if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    assert len(changed) == 2 and "12" in changed[1]


def test_unknown_keys_are_reported_as_warnings_and_kept():
    graph = load_graph(RICH)
    warnings = [d for d in analyze(graph).diagnostics if "unknown key" in d.message]
    assert {(d.node, d.severity) for d in warnings} == {
        (None, "warning"), ("conv", "warning"), ("act", "warning")}
    assert sorted(d.message.split("'")[1] for d in warnings) == [
        "colour", "edges[1].style", "future_section", "meta"]
    saved = json.loads(graph_to_json(graph))
    assert saved["future_section"] == RICH["future_section"]
    assert saved["nodes"][1]["meta"] == RICH["nodes"][1]["meta"]
    assert saved["edges"][1]["style"] == "dashed"


def test_unknown_parameters_are_errors_but_survive_a_save():
    doc = copy.deepcopy(RICH)
    doc["nodes"][4]["params"]["out_featurs"] = 3
    graph = load_graph(doc)
    assert any(d.param == "out_featurs" for d in analyze(graph).errors)
    assert json.loads(graph_to_json(graph))["nodes"][4]["params"]["out_featurs"] == 3


def test_a_newer_version_is_refused_with_the_release_that_reads_it():
    doc = {**RICH, "version": 3}
    with pytest.raises(GraphFileError, match=r"requires DL Studio >= 0\.3"):
        load_graph(doc)


@pytest.mark.parametrize("version", [0, -1, "1", 1.0, True, None])
def test_a_version_that_is_not_a_positive_whole_number_is_refused(version):
    with pytest.raises(GraphFileError, match="version"):
        load_graph({**RICH, "version": version})


def test_a_missing_version_is_refused():
    doc = {key: value for key, value in RICH.items() if key != "version"}
    with pytest.raises(GraphFileError, match="version"):
        load_graph(doc)


@pytest.fixture
def version_two(monkeypatch):
    """Pretend format version 2 exists: it renamed node type ``Dense`` to ``Linear``."""
    calls = []

    def rename_dense(doc: dict) -> dict:
        calls.append(doc["version"])
        nodes = [{**node, "type": "Linear" if node["type"] == "Dense" else node["type"]}
                 for node in doc["nodes"]]
        return {**doc, "nodes": nodes}

    monkeypatch.setattr(graph_io, "FORMAT_VERSION", 2)
    monkeypatch.setattr(graph_io, "MIGRATIONS", {1: rename_dense})
    return calls


def _old_file() -> dict:
    doc = copy.deepcopy(RICH)
    doc["nodes"][4]["type"] = "Dense"
    return doc


def test_old_versions_are_migrated_step_by_step(version_two, tmp_path):
    graph = load_graph(_old_file())
    assert version_two == [1]
    assert graph.version == 2 and graph.node("fc").type == "Linear"
    assert analyze(graph).ok
    save_graph(graph, tmp_path / "g.json")
    # written as the oldest version that holds it (version 2 only adds blocks and ties)
    assert json.loads((tmp_path / "g.json").read_text())["version"] == graph.needed_version == 1
    assert load_graph(tmp_path / "g.json").node("fc").type == "Linear"
    assert version_two == [1, 1]  # written as version 1, it is read through the step again


def test_the_input_document_is_not_changed_by_a_migration(version_two):
    doc = _old_file()
    before = copy.deepcopy(doc)
    load_graph(doc)
    assert doc == before


def test_after_a_migration_the_next_version_is_the_newer_one(version_two):
    with pytest.raises(GraphFileError, match=r"requires DL Studio >= 0\.3"):
        load_graph({**RICH, "version": 3})


def test_a_missing_or_failing_step_is_a_file_error(monkeypatch):
    monkeypatch.setattr(graph_io, "FORMAT_VERSION", 2)
    monkeypatch.setattr(graph_io, "MIGRATIONS", {})
    with pytest.raises(GraphFileError, match="no longer supported"):
        load_graph(RICH)

    def broken(doc: dict) -> dict:
        return {**doc, "nodes": doc["missing"]}

    monkeypatch.setattr(graph_io, "MIGRATIONS", {1: broken})
    with pytest.raises(GraphFileError, match="cannot upgrade it from version 1"):
        load_graph(RICH)


def test_schema_command_prints_a_valid_json_schema_that_accepts_the_examples():
    jsonschema = pytest.importorskip("jsonschema")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["schema"]) == 0
    schema = json.loads(out.getvalue())
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for path in sorted(GRAPHS.glob("*.json")):
        validator.validate(json.loads(path.read_text()))
    validator.validate(json.loads(graph_to_json(load_graph(RICH))))
    node_schema = schema["$defs"]["Node"]
    assert set(node_schema["required"]) == {"id", "type"}
    assert not validator.is_valid({**RICH, "format": "other"})
    assert not validator.is_valid({**RICH, "nodes": [{"id": "1x", "type": "Input"}]})


def test_a_byte_order_mark_is_accepted(tmp_path):
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(RICH).encode())
    assert load_graph(path).name == "rich graph"


def test_loading_a_graph_object_returns_an_independent_copy():
    graph = load_graph(RICH)
    copy_ = load_graph(graph)
    copy_.node("fc").params["out_features"] = 99
    assert graph.node("fc").params["out_features"] == 10


def test_an_interrupted_save_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "g.json"
    path.write_text("old")

    def fail(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        write_atomic(path, b"new")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["g.json"]


@pytest.mark.parametrize(("text", "message"), [
    ('{"name": "mlp', "not valid JSON: Unterminated string starting at line 1 column 10"),
    ('{"name": "a\tb"}', "not valid JSON: Invalid control character at line 1 column 12"),
    ('{"nodes": [1,]}', "not valid JSON: Expecting value at line 1 column 14"),
])
def test_a_json_error_names_its_place_once(text, message) -> None:
    """Python's messages that end in "at" (before the position it appends) read as one phrase."""
    with pytest.raises(GraphFileError) as raised:
        parse_json(text, "g.json")
    assert str(raised.value).endswith(message) and " at at " not in str(raised.value)


def test_objects_made_for_a_long_lived_document_join_the_oldest_generation_and_stay_collectable():
    import gc
    import weakref

    from dlstudio.core.io import paused_gc

    class Cell:
        pass

    with paused_gc(long_lived=True):
        made = [Cell() for _ in range(100)]
        ring = Cell()
        ring.me = ring  # a cycle: only the collector frees it
    assert gc.isenabled()
    oldest = {id(o) for o in gc.get_objects(generation=2)}
    assert all(id(o) in oldest for o in made)
    gone = weakref.ref(ring)
    del ring
    gc.collect()
    assert gone() is None
