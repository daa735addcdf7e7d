"""Fuzzing the command line with mutated example graphs: whatever the file holds, every command
ends with exit 0, 1 (invalid graph or configuration) or 2 (usage or file error), and what it
prints has no traceback and no raw exception class name. The bulk runs in-process (fast); a
sample goes through ``python -m dlstudio`` in subprocesses under a memory limit."""

from __future__ import annotations

import json
import random

import pytest

from dlstudio.cli import main
from tests.conftest import GRAPHS
from tests.hostile import assert_plain, mutate, run_limited

EXAMPLES = {path.name: json.loads(path.read_text()) for path in sorted(GRAPHS.glob("*.json"))}
#: Examples that train in a fraction of a second for one step on the CPU.
QUICK = ["mlp_iris.json", "mlp_digits.json", "cnn_digits.json", "lstm_sequence.json", "moe_sequence.json"]


def _mutants(tmp_path, seed: int, count: int, names: list[str] | None = None) -> list[str]:
    rng = random.Random(seed)
    paths = []
    for index in range(count):
        name = rng.choice(names or list(EXAMPLES))
        path = tmp_path / f"m{index}_{name}"
        path.write_text(json.dumps(mutate(EXAMPLES[name], rng)))
        paths.append(str(path))
    return paths


def _command(command: str, path: str, tmp_path) -> list[str]:
    if command == "export":
        return ["export", path, "-o", str(tmp_path / "exported.py")]
    if command == "run":
        return ["run", path, "--max-steps", "1", "--device", "cpu", "--out", path + ".run"]
    return [command, path]


@pytest.mark.parametrize("command", ["validate", "summary", "export"])
def test_mutated_examples_are_refused_plainly_in_process(tmp_path, capsys, command):
    codes = set()
    for path in _mutants(tmp_path, seed={"validate": 1, "summary": 2, "export": 3}[command], count=150):
        code = main(_command(command, path, tmp_path))
        codes.add(code)
        assert code in (0, 1, 2), path
        assert_plain(capsys.readouterr().err)
    assert codes == {0, 1, 2}  # the mutations reach past loading, and some leave a valid graph


def test_mutated_training_sections_run_or_are_refused_plainly(tmp_path, capsys):
    codes = set()
    for path in _mutants(tmp_path, seed=11, count=30, names=QUICK):
        code = main(_command("run", path, tmp_path))
        codes.add(code)
        assert code in (0, 1, 2, 3), path
        assert_plain(capsys.readouterr().err)
    assert {0, 2} <= codes


def test_mutated_examples_in_subprocesses_under_a_memory_limit(tmp_path):
    paths = _mutants(tmp_path, seed=5, count=40)
    result = run_limited(["validate", *paths], memory_gib=1)
    assert result.returncode in (0, 1, 2)
    assert_plain(result.stderr)
    assert len(result.stdout.splitlines()) + len(result.stderr.splitlines()) >= len(paths)
    for command in ("summary", "export"):
        for path in paths[:4]:
            result = run_limited(_command(command, path, tmp_path), memory_gib=1)
            assert result.returncode in (0, 1, 2) and "Traceback" not in result.stderr
            assert_plain(result.stderr)


def test_a_mutated_run_in_a_subprocess_ends_plainly(tmp_path):
    for path in _mutants(tmp_path, seed=3, count=2, names=["mlp_iris.json"]):
        result = run_limited(_command("run", path, tmp_path), memory_gib=6, timeout=120)
        assert result.returncode in (0, 1, 2, 3)
        assert_plain(result.stderr)


def test_an_os_error_names_the_file_and_the_reason(tmp_path, capsys):
    example = str(GRAPHS / "mlp_iris.json")
    assert main(["export", example, "-o", str(tmp_path)]) == 2
    assert capsys.readouterr().err == f"dlstudio: {tmp_path}: is a directory\n"
    (tmp_path / "taken").write_text("")
    assert main(["run", example, "--out", str(tmp_path / "taken"), "--max-steps", "1"]) == 2
    assert capsys.readouterr().err == f"dlstudio: {tmp_path / 'taken'}: file exists\n"
