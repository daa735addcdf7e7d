"""``dlstudio summary --deploy``: parameters, activation memory at batch 1, FLOPs and int8 size."""

from __future__ import annotations

import json
import subprocess
import sys

from dlstudio.cli import main
from dlstudio.core.deploy import deploy_json, size_text
from dlstudio.core.io import load_graph
from dlstudio.core.summary import summarize
from tests.conftest import GRAPHS, ROOT


def test_every_node_counts_its_outputs_bytes_and_the_totals_add_up():
    summary = summarize(load_graph(GRAPHS / "cnn_digits.json"), 1)
    report = deploy_json(summary)
    nodes = {n["id"]: n for n in report["nodes"]}
    assert nodes["image"]["activation_bytes"] == 1 * 8 * 8 * 4
    assert nodes["conv1"]["activation_bytes"] == 32 * 8 * 8 * 4
    assert nodes["pool"]["activation_bytes"] == 64 * 4 * 4 * 4
    assert nodes["fc1"]["params"] == 64 * 4 * 4 * 128 + 128 and nodes["fc1"]["int8_bytes"] == nodes["fc1"]["params"]
    assert report["activation_bytes"] == sum(n["activation_bytes"] for n in report["nodes"])
    assert report["params"] == 151_306 == sum(n["params"] for n in report["nodes"])
    assert report["fp32_bytes"] == 4 * report["int8_bytes"] == 4 * 151_306
    assert report["flops"] == summarize(load_graph(GRAPHS / "cnn_digits.json")).flops


def test_a_symbolic_length_is_unknown_until_given_and_integer_inputs_count_their_width(capsys):
    path = str(GRAPHS / "lstm_sequence.json")
    assert main(["summary", path, "--deploy", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["activation_bytes"] is None and report["flops"] is None
    assert main(["summary", path, "--deploy", "--json", "--size", "T=12"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["nodes"][0]["activation_bytes"] == 12 * 8  # int64 tokens
    assert report["activation_bytes"] is not None and report["flops"] > 0


def test_the_table_ends_with_the_totals_and_refuses_another_batch(capsys):
    path = str(GRAPHS / "cnn_digits.json")
    assert main(["summary", path, "--deploy"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["node", "type", "params", "activations", "FLOPs", "int8", "size"]
    assert lines[-2].split()[:2] == ["total", "151,306"] and lines[-2].endswith("147.8 KiB")
    assert lines[-1].startswith("at batch 1; weights 591.0 KiB in fp32, 147.8 KiB in int8")
    assert main(["summary", path, "--deploy", "--batch", "4"]) == 2
    assert "--deploy reports batch 1" in capsys.readouterr().err


def test_sizes_read_in_binary_units():
    assert [size_text(s) for s in (None, 812, 4096, 3 * 2**19, 2**31)] == ["?", "812 B", "4.0 KiB", "1.5 MiB",
                                                                         "2.0 GiB"]


def test_the_deployment_report_imports_no_torch():
    code = ("import sys; from dlstudio.cli import main; "
            f"main(['summary', {str(GRAPHS / 'cnn_digits.json')!r}, '--deploy']); "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
