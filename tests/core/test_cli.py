"""The command line: validate, summary (table and JSON), export and schema; exit codes."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from dlstudio import analyze, compile_graph, load_graph
from dlstudio.cli import main
from dlstudio.core.errors import GraphFileError
from tests.conftest import GRAPHS

MLP = {
    "format": "dlstudio.graph", "version": 1, "name": "cli mlp",
    "nodes": [
        {"id": "x", "type": "Input", "params": {"shape": [64]}},
        {"id": "fc1", "type": "Linear", "params": {"out_features": 32}},
        {"id": "act", "type": "ReLU"},
        {"id": "fc2", "type": "Linear", "params": {"out_features": 10}},
        {"id": "probs", "type": "Softmax"},
        {"id": "logits", "type": "Output"},
        {"id": "p", "type": "Output"},
    ],
    "edges": [
        {"source": "x", "target": "fc1"}, {"source": "fc1", "target": "act"},
        {"source": "act", "target": "fc2"}, {"source": "fc2", "target": "logits"},
        {"source": "fc2", "target": "probs"}, {"source": "probs", "target": "p"},
    ],
}


@pytest.fixture
def graph_file(tmp_path) -> Path:
    path = tmp_path / "mlp.json"
    path.write_text(json.dumps(MLP))
    return path


@pytest.fixture
def broken_file(tmp_path) -> Path:
    doc = json.loads(json.dumps(MLP))
    doc["nodes"][3]["params"]["in_features"] = 31
    doc["edges"].append({"source": "act", "target": "ghost"})
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(doc))
    return path


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_validate_a_good_file_prints_ok_and_exits_0(graph_file, capsys):
    assert run(["validate", str(graph_file)], capsys) == (0, f"{graph_file}: ok\n", "")


def test_validate_prints_file_node_message_fix_lines_and_exits_1(broken_file, capsys):
    code, out, err = run(["validate", str(broken_file)], capsys)
    assert code == 1 and err == ""
    lines = out.splitlines()
    assert f"{broken_file}: fc2: Linear 'fc2' expects last dimension 31 but gets 32 from 'act' " \
           "(remove in_features to infer it, or set it to 32)" in lines
    assert f"{broken_file}: edge target 'ghost' names no node (delete the edge or create the node)" in lines


def test_validate_many_files_exits_with_the_worst_status(graph_file, broken_file, tmp_path, capsys):
    code, out, err = run(["validate", str(graph_file), str(broken_file), str(tmp_path / "none.json")], capsys)
    assert code == 2
    assert out.splitlines()[0] == f"{graph_file}: ok"
    assert err.splitlines() == [f"{tmp_path / 'none.json'}: no such file"]


def test_validate_shows_warnings_only_when_asked(graph_file, tmp_path, capsys):
    doc = json.loads(json.dumps(MLP))
    doc["nodes"].append({"id": "spare", "type": "ReLU"})
    doc["edges"].append({"source": "act", "target": "spare"})
    path = tmp_path / "spare.json"
    path.write_text(json.dumps(doc))
    assert run(["validate", str(path)], capsys) == (0, f"{path}: ok\n", "")
    code, out, _ = run(["validate", "--warnings", str(path)], capsys)
    assert code == 0 and out.startswith(f"{path}: warning: spare: 'spare' does not reach any Output")


@pytest.mark.parametrize("batch", [1, 7])
def test_summary_json_has_the_totals_outputs_and_nodes(graph_file, capsys, batch):
    code, out, err = run(["summary", str(graph_file), "--json", "--batch", str(batch)], capsys)
    assert code == 0 and err == ""
    report = json.loads(out)
    module = compile_graph(load_graph(graph_file))
    params = sum(p.numel() for p in module.parameters())
    assert report["params"] == report["trainable_params"] == params == 64 * 32 + 32 + 32 * 10 + 10
    assert report["outputs"] == {"logits": [batch, 10], "p": [batch, 10]}
    per_sample = analyze(load_graph(graph_file)).total_flops
    assert report["flops"] == batch * per_sample and per_sample >= 64 * 32 + 32 * 10
    nodes = {node["id"]: node for node in report["nodes"]}
    assert list(nodes) == ["x", "fc1", "act", "fc2", "probs", "logits", "p"]  # file order breaks ties
    assert nodes["fc1"] == {"id": "fc1", "type": "Linear", "outputs": {"output": [batch, 32]},
                            "params": 64 * 32 + 32, "flops": batch * 64 * 32, "reaches_output": True}


def test_summary_table_lists_every_node_and_the_total(graph_file, capsys):
    code, out, _ = run(["summary", str(graph_file), "--batch", "2"], capsys)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["node", "type", "output", "shape", "params", "FLOPs"]
    assert lines[3].split()[:3] == ["fc1", "Linear", "[2,"]
    assert lines[-1].split()[:2] == ["total", "2,410"]


def test_summary_without_a_batch_says_n_and_counts_flops_per_sample(graph_file, capsys):
    """As the editor shows shapes and FLOPs, not as if the batch were 1."""
    code, out, _ = run(["summary", str(graph_file)], capsys)
    assert code == 0 and out.splitlines()[3].split()[:3] == ["fc1", "Linear", "[N,"]
    report = json.loads(run(["summary", str(graph_file), "--json"], capsys)[1])
    analysis = analyze(load_graph(graph_file))
    assert report["batch"] is None and report["outputs"] == {"logits": ["N", 10], "p": ["N", 10]}
    assert report["flops"] == analysis.total_flops


def test_summary_fills_symbolic_sizes_when_given(tmp_path, capsys):
    doc = {"format": "dlstudio.graph", "version": 1, "name": "seq",
           "nodes": [{"id": "x", "type": "Input", "params": {"shape": ["T", 8]}},
                     {"id": "fc", "type": "Linear", "params": {"out_features": 4}},
                     {"id": "out", "type": "Output"}],
           "edges": [{"source": "x", "target": "fc"}, {"source": "fc", "target": "out"}]}
    path = tmp_path / "seq.json"
    path.write_text(json.dumps(doc))
    report = json.loads(run(["summary", str(path), "--json"], capsys)[1])
    assert report["outputs"] == {"out": ["N", "T", 4]}
    report = json.loads(run(["summary", str(path), "--json", "--size", "T=5", "--batch", "3"], capsys)[1])
    assert report["outputs"] == {"out": [3, 5, 4]} and report["flops"] == 3 * 5 * 8 * 4


@pytest.mark.parametrize("argv", [["--batch", "0"], ["--size", "T"], ["--size", "T=-1"], ["--size", "1=2"]])
def test_summary_refuses_bad_options_with_exit_2(graph_file, capsys, argv):
    code, out, err = run(["summary", str(graph_file), *argv], capsys)
    assert code == 2 and out == "" and len(err.splitlines()) == 1


def test_summary_of_an_invalid_graph_lists_the_errors_and_exits_1(broken_file, capsys):
    code, out, err = run(["summary", str(broken_file)], capsys)
    assert code == 1 and out == ""
    assert all(line.startswith(f"{broken_file}: ") for line in err.splitlines())
    assert len(err.splitlines()) == 2


def test_export_writes_a_module_whose_weights_match(graph_file, tmp_path, capsys):
    target = tmp_path / "model.py"
    code, out, err = run(["export", str(graph_file), "--to", "python", "-o", str(target)], capsys)
    assert code == 0 and out == "" and err == f"wrote {target}\n"
    namespace: dict = {}
    exec(compile(target.read_text(), str(target), "exec"), namespace)  # noqa: S102
    exported = namespace["CliMlp"]()
    module = compile_graph(load_graph(graph_file))
    exported.load_state_dict(module.state_dict(), strict=True)
    x = torch.randn(3, 64)
    for a, b in zip(exported(x), module(x), strict=True):
        assert torch.equal(a, b)


def test_export_to_stdout_is_the_python_source(graph_file, capsys):
    code, out, _ = run(["export", str(graph_file)], capsys)
    assert code == 0
    assert any(isinstance(n, ast.ClassDef) and n.name == "CliMlp" for n in ast.parse(out).body)


def test_export_of_an_invalid_graph_exits_1_with_one_line(broken_file, capsys):
    code, out, err = run(["export", str(broken_file)], capsys)
    assert code == 1 and out == ""
    assert err.splitlines() == ["dlstudio: graph 'cli mlp' has errors: edge target 'ghost' names no "
                                "node (delete the edge or create the node) (and 1 more)"]


def test_debug_shows_the_exception_instead_of_a_line(tmp_path):
    with pytest.raises(GraphFileError):
        main(["summary", str(tmp_path / "none.json"), "--debug"])


def test_usage_errors_exit_2(capsys):
    assert main(["frobnicate"]) == 2
    assert main(["validate"]) == 2
    assert "usage:" in capsys.readouterr().err


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("dlstudio ")


def test_schema_is_json(capsys):
    code, out, _ = run(["schema"], capsys)
    assert code == 0 and json.loads(out)["title"] == "Graph"


def _dlstudio(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dlstudio", *args], capture_output=True, text=True,
                          timeout=120)


def test_in_a_subprocess_summary_json_and_validate_agree_with_the_api():
    path = GRAPHS / "mlp_digits.json"
    done = _dlstudio("summary", str(path), "--json", "--batch", "5")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    analysis = analyze(load_graph(path))
    assert report["params"] == analysis.total_params
    assert all(shape[0] == 5 for shape in report["outputs"].values())
    done = _dlstudio("validate", *map(str, sorted(GRAPHS.glob("*.json"))))
    assert done.returncode == 0 and done.stderr == ""
    assert len(done.stdout.splitlines()) == len(list(GRAPHS.glob("*.json")))


def test_in_a_subprocess_errors_are_one_line_without_traceback(broken_file, tmp_path):
    for args, code in ((["summary", str(tmp_path / "none.json")], 2), (["export", str(broken_file)], 1),
                       (["validate", str(tmp_path)], 2)):
        done = _dlstudio(*args)
        assert done.returncode == code, done.stderr
        assert len(done.stderr.splitlines()) == 1 and "Traceback" not in done.stderr


def _dlstudio_without_torch(*args: str) -> subprocess.CompletedProcess:
    """The command line in a fresh interpreter where ``import torch`` fails (a broken install)."""
    script = ("import sys; sys.modules['torch'] = None\n"
              f"from dlstudio.cli import main; sys.exit(main({list(args)!r}))")
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)


def test_a_broken_install_says_so_instead_of_dropping_the_run_command(graph_file):
    done = _dlstudio_without_torch("run", str(graph_file))
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith("dlstudio: broken install") and "torch" in done.stderr
    assert "invalid choice" not in done.stderr and len(done.stderr.splitlines()) == 1


def test_commands_that_need_no_torch_work_in_a_broken_install(graph_file):
    done = _dlstudio_without_torch("validate", str(graph_file))
    assert done.returncode == 0 and done.stdout.endswith(": ok\n"), done.stderr
