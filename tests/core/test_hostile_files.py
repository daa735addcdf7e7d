"""Bad input never crashes: one line on stderr, no traceback, exit 2 for a file that cannot be
read (1 for a graph that loads but is invalid); the loader only ever raises GraphFileError,
and analysis never raises at all.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dlstudio import analyze, load_graph
from dlstudio.cli import main
from dlstudio.core.catalogue import CATALOGUE
from dlstudio.core.errors import GraphFileError

GOOD = {
    "format": "dlstudio.graph", "version": 1, "name": "small cnn",
    "nodes": [
        {"id": "x", "type": "Input", "params": {"shape": [1, 8, 8]}},
        {"id": "conv", "type": "Conv2d", "params": {"out_channels": 4, "kernel_size": 3}},
        {"id": "act", "type": "ReLU"},
        {"id": "flat", "type": "Flatten"},
        {"id": "fc", "type": "Linear", "params": {"out_features": 10}},
        {"id": "out", "type": "Output"},
    ],
    "edges": [{"source": a, "target": b} for a, b in
              [("x", "conv"), ("conv", "act"), ("act", "flat"), ("flat", "fc"), ("fc", "out")]],
}


def _text(doc: dict) -> str:
    return json.dumps(doc)


def _with(**changes: object) -> str:
    return _text({**GOOD, **changes})


def _node_params(params: dict) -> str:
    nodes = [dict(n) for n in GOOD["nodes"]]
    nodes[4] = {**nodes[4], "params": params}
    return _with(nodes=nodes)


#: name -> file content (str or bytes) that cannot be loaded.
FILE_ERRORS: dict[str, str | bytes] = {
    "empty": "",
    "not_json": "this is not json",
    "truncated": _text(GOOD)[:-20],
    "binary": bytes(range(256)) * 4,
    "latin1": _text(GOOD).replace("small cnn", "caf\u00e9").encode("latin-1"),
    "array": "[1, 2, 3]",
    "number": "42",
    "other_format": _with(format="something.else"),
    "nodes_not_a_list": _with(nodes={"x": 1}),
    "node_without_id": _with(nodes=[{"type": "Input"}]),
    "edge_is_a_string": _with(edges=["x->out"]),
    "nan": _text(GOOD).replace('"out_features": 10', '"out_features": NaN'),
    "infinity": _text(GOOD).replace('"out_features": 10', '"out_features": Infinity'),
    "minus_infinity": _text(GOOD).replace('"out_features": 10', '"out_features": -Infinity'),
    "float_overflow": _text(GOOD).replace('"out_features": 10', '"out_features": 1e999'),
    "huge_int": _text(GOOD).replace('"out_features": 10', '"out_features": ' + "1" + "0" * 100),
    "huge_version": _with(version=10**100),
    "nested_100k": '{"format": "dlstudio.graph", "version": 1, "nodes": ' + "[" * 100_000 + "]" * 100_000 + "}",
    "nested_params": _node_params({"out_features": json.loads("[" * 200 + "]" * 200)}),
    "unbalanced_100k": "[" * 100_000,
    "duplicate_ids": _with(nodes=[*GOOD["nodes"], {"id": "fc", "type": "ReLU"}]),
    "duplicate_keys": _text(GOOD).replace('"name": "small cnn"', '"name": "a", "name": "b"'),
    "unicode_id": _text(GOOD).replace('"fc"', '"f\u00e7"'),
    "fullwidth_id": _text(GOOD).replace('"fc"', '"\uff46c"'),
    "id_too_long": _text(GOOD).replace('"fc"', '"' + "f" * 65 + '"'),
    "lone_surrogate": _text(GOOD).replace("small cnn", "\\ud800"),
    "newer_version": _with(version=7),
    "position_out_of_range": _text(GOOD).replace('"type": "ReLU"', '"type": "ReLU", "position": [1e300, 0]'),
}

#: name -> document that loads but is not a valid network.
INVALID_GRAPHS: dict[str, dict] = {
    "self_loop": {**GOOD, "edges": [*GOOD["edges"], {"source": "act", "target": "act"}]},
    "cycle": {**GOOD, "edges": [e for e in GOOD["edges"] if e["target"] != "act"]
              + [{"source": "flat", "target": "act"}]},
    "shape_10e12": {**GOOD, "nodes": [{"id": "x", "type": "Input", "params": {"shape": [10**6, 10**6]}},
                                      *GOOD["nodes"][1:]]},
    "params_10e12": {**GOOD, "nodes": [{"id": "x", "type": "Input", "params": {"shape": [10**6]}},
                                       {"id": "fc", "type": "Linear", "params": {"out_features": 10**6}},
                                       GOOD["nodes"][5]],
                     "edges": [{"source": "x", "target": "fc"}, {"source": "fc", "target": "out"}]},
    "unknown_type": {**GOOD, "nodes": [*GOOD["nodes"][:2], {"id": "act", "type": "Magic\nLayer"},
                                       *GOOD["nodes"][3:]]},
    "edge_to_nowhere": {**GOOD, "edges": [*GOOD["edges"], {"source": "fc", "target": "ghost\x1b[2J"}]},
    "no_input_no_output": {**GOOD, "nodes": GOOD["nodes"][1:-1], "edges": GOOD["edges"][1:-1]},
}

AWKWARD_IDS = ["class", "forward", "training", "self", "torch"]
KEYWORD_IDS = {**GOOD, "nodes": [{**n, "id": new} for n, new in
                                 zip(GOOD["nodes"], [*AWKWARD_IDS, "out"], strict=True)],
               "edges": [{"source": a, "target": b} for a, b in zip(AWKWARD_IDS, [*AWKWARD_IDS[1:], "out"],
                                                                      strict=True)]}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("hostile")
    for name, content in FILE_ERRORS.items():
        path = folder / f"{name}.json"
        (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)
    for name, doc in INVALID_GRAPHS.items():
        (folder / f"{name}.json").write_text(json.dumps(doc))
    (folder / "keyword_ids.json").write_text(json.dumps(KEYWORD_IDS))
    (folder / "a_directory.json").mkdir()
    with open(folder / "big_50mb.json", "wb") as handle:
        handle.write(b'{"format": "dlstudio.graph", "version": 1, "description": "')
        handle.write(b"x" * (50 * 2**20))
        handle.write(b'"}')
    return folder


def _file_error_names() -> list[str]:
    return [*FILE_ERRORS, "missing", "a_directory", "big_50mb"]


def _run(argv: list[str], capsys) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("name", _file_error_names())
def test_loader_raises_only_graph_file_error(corpus, name):
    with pytest.raises(GraphFileError) as caught:
        load_graph(corpus / f"{name}.json")
    assert "\n" not in str(caught.value) and str(caught.value).isprintable()


@pytest.mark.parametrize("command", ["validate", "summary", "export"])
@pytest.mark.parametrize("name", _file_error_names())
def test_file_errors_give_one_line_and_exit_2(corpus, name, command, capsys):
    code, out, err = _run([command, str(corpus / f"{name}.json")], capsys)
    assert code == 2
    assert out == "" and len(err.splitlines()) == 1 and "Traceback" not in err
    assert f"{name}.json" in err


@pytest.mark.parametrize("command", ["validate", "summary", "export"])
@pytest.mark.parametrize("name", sorted(INVALID_GRAPHS))
def test_invalid_graphs_exit_1_with_lines_naming_the_file(corpus, name, command, capsys):
    path = str(corpus / f"{name}.json")
    code, out, err = _run([command, path], capsys)
    assert code == 1 and "Traceback" not in out + err
    lines = (out if command == "validate" else err).splitlines()
    assert lines and all(line.isprintable() for line in lines)
    if command != "export":
        assert all(line.startswith(path + ": ") for line in lines)
    else:
        assert len(lines) == 1 and "has errors" in lines[0]


def test_keyword_and_module_attribute_ids_validate_summarise_and_export(corpus, capsys):
    path = str(corpus / "keyword_ids.json")
    assert _run(["validate", path], capsys)[0] == 0
    assert _run(["summary", path], capsys)[0] == 0
    code, source, _ = _run(["export", path], capsys)
    assert code == 0
    compile(source, "exported.py", "exec")


def test_ten_to_the_twelve_is_refused_before_torch_is_even_imported(corpus):
    """compile_graph raises GraphInvalidError while torch is still not loaded: nothing allocated."""
    script = (
        "import sys, dlstudio\n"
        "for name in ('shape_10e12', 'params_10e12'):\n"
        "    try:\n"
        f"        dlstudio.compile_graph({str(corpus)!r} + '/' + name + '.json')\n"
        "    except dlstudio.GraphInvalidError as error:\n"
        "        print(error)\n"
        "print('torch' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    *errors, torch_loaded = done.stdout.splitlines()
    assert torch_loaded == "False"
    assert "over 2^31 elements" in errors[0] and "parameters, over the limit" in errors[1]


@pytest.mark.parametrize("command", ["validate", "summary", "export"])
def test_in_a_real_process_no_file_gives_a_traceback(corpus, command):
    """Deep nesting and huge files in a fresh interpreter (C recursion, memory), every file at once."""
    names = ["nested_100k", "unbalanced_100k", "big_50mb", "binary", "nan", "duplicate_ids", "missing"]
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    for name in names if command != "validate" else [None]:
        files = [str(corpus / f"{n}.json") for n in (names if name is None else [name])]
        done = subprocess.run([sys.executable, "-m", "dlstudio", command, *files], capture_output=True,
                              text=True, timeout=120, env=env)
        assert done.returncode == 2, (name, done.stderr)
        assert "Traceback" not in done.stderr
        assert len(done.stderr.splitlines()) == len(files), done.stderr


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_an_endless_file_is_refused_before_it_is_read():
    with pytest.raises(GraphFileError, match="is a device, not a regular file"):
        load_graph("/dev/zero")


def test_a_huge_file_is_refused_after_the_size_limit(tmp_path):
    path = tmp_path / "huge.json"
    path.write_bytes(b" " * (16 * 2**20 + 1))
    with pytest.raises(GraphFileError, match="over 16 MB"):
        load_graph(path)


def test_a_path_with_a_nul_byte_or_of_a_wrong_type_is_a_file_error():
    with pytest.raises(GraphFileError):
        load_graph("graph\x00.json")
    with pytest.raises(GraphFileError):
        load_graph(42)  # type: ignore[arg-type]


# -- fuzzing: any JSON-like value, any mutation of a valid document -------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**40), 10**40)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
layer_types = st.sampled_from(sorted(CATALOGUE)) | st.text(max_size=12)


def _param_names(type_name: str) -> list[str]:
    spec = CATALOGUE.get(type_name)
    return [p.name for p in spec.params] or ["x"] if spec else ["x"]


@st.composite
def mutated_documents(draw: st.DrawFn) -> dict:
    """GOOD with a few random edits: retyped nodes, odd parameter values, rewired or odd edges."""
    doc = json.loads(json.dumps(GOOD))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["type", "param", "edge", "drop"]))
        node = draw(st.sampled_from(doc["nodes"])) if doc["nodes"] else None
        if kind == "type" and node is not None:
            node["type"] = draw(layer_types)
        elif kind == "param" and node is not None:
            name = draw(st.sampled_from(_param_names(node["type"])))
            node.setdefault("params", {})[name] = draw(json_values)
        elif kind == "edge":
            ends = [n["id"] for n in doc["nodes"]] + ["ghost"]
            port = draw(st.sampled_from(["", ".input", ".in0", ".in1", ".output", ".h_n", ".x"]))
            doc["edges"].append({"source": draw(st.sampled_from(ends)),
                                 "target": draw(st.sampled_from(ends)) + port})
        elif kind == "drop" and doc["nodes"]:
            doc["nodes"].remove(node)
    if draw(st.booleans()):
        key = draw(st.sampled_from(["name", "description", "nodes", "edges", "version", "extra"]))
        doc[key] = draw(json_values)
    return doc


def _load_and_analyze(doc: object) -> None:
    try:
        graph = load_graph(doc)  # type: ignore[arg-type]
    except GraphFileError:
        return
    analysis = analyze(graph)
    internal = [d.one_line() for d in analysis.diagnostics if "internal error" in d.message]
    assert not internal, internal
    if analysis.ok:
        assert all(isinstance(v, int) for v in analysis.param_counts.values())


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(mutated_documents())
def test_mutated_documents_load_or_fail_cleanly_and_analysis_never_raises(doc):
    _load_and_analyze(doc)


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(json_values)
def test_any_json_value_loads_or_fails_cleanly(value):
    _load_and_analyze(value)
    if isinstance(value, dict):
        _load_and_analyze({**value, "format": "dlstudio.graph", "version": 1})


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_any_bytes_parse_or_fail_cleanly(tmp_path_factory, raw):
    path = tmp_path_factory.mktemp("bytes") / "g.json"
    path.write_bytes(raw)
    try:
        load_graph(path)
    except GraphFileError as error:
        assert str(error).isprintable()


def test_finite_floats_survive_but_non_finite_never_reach_a_graph():
    doc = json.loads(json.dumps(GOOD))
    doc["nodes"][4]["params"]["out_features"] = math.inf
    analysis = analyze(load_graph(doc))  # a dict source: refused as a parameter value
    assert not analysis.ok
