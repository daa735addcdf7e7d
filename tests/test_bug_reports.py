"""An exception that reaches a last-resort handler is a bug: the user reads one plain line like
every other refusal (what was being done, where the details are), never a raw exception name;
the traceback goes to the log for the bug report. The bugs are planted by replacing the one
function each path calls with one that fails."""

from __future__ import annotations

import pytest

from dlstudio.bugs import LOG_DIR_ENV, LOG_NAME, InternalError, report_bug
from dlstudio.cli import main
from tests.conftest import GRAPHS
from tests.hostile import assert_plain

EXAMPLE = str(GRAPHS / "mlp_iris.json")


def _fail(*args: object, **kwargs: object) -> None:
    raise KeyError("planted")


@pytest.fixture
def log(tmp_path, monkeypatch):
    monkeypatch.setenv(LOG_DIR_ENV, str(tmp_path))
    return tmp_path / LOG_NAME


def test_the_line_names_what_was_done_and_where_the_details_are(log):
    try:
        _fail()
    except KeyError as error:
        line = report_bug(error, "g.json: export")
    assert line == f"g.json: export: internal error (details for a bug report in {log}; a bug in DL Studio, please report it)"
    assert_plain(line)
    assert "KeyError: 'planted'" in log.read_text() and "Traceback" in log.read_text()


def test_a_log_that_cannot_be_written_still_gives_a_plain_line(tmp_path, monkeypatch):
    monkeypatch.setenv(LOG_DIR_ENV, str(tmp_path / "missing" / "folder"))
    line = report_bug(ValueError("x"), "probe")
    assert line.startswith("probe: internal error (its details could not be written to ")
    assert_plain(line)


@pytest.mark.parametrize("command", ["validate", "summary"])
def test_a_command_line_bug_is_one_plain_line_and_exit_1(log, monkeypatch, capsys, command):
    monkeypatch.setattr("dlstudio.core.analysis.analyze", _fail)
    monkeypatch.setattr("dlstudio.core.summary.summarize", _fail)
    assert main([command, EXAMPLE]) == 1
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(f"dlstudio: {EXAMPLE}: {command}: internal error (details for a bug report in {log}")
    assert_plain(line)
    assert "KeyError: 'planted'" in log.read_text()


def test_a_training_bug_fails_the_run_plainly_and_is_logged(log, monkeypatch, capsys, tmp_path):
    monkeypatch.setattr("dlstudio.train.trainer.start_task", _fail)
    assert main(["run", EXAMPLE, "--out", str(tmp_path / "run"), "--max-steps", "1"]) == 1
    err = capsys.readouterr().err
    assert f"dlstudio: {EXAMPLE}: run: training: internal error (details for a bug report in {log}" in err
    assert_plain(err)
    assert "KeyError: 'planted'" in log.read_text()


def test_the_trainer_reports_the_bug_as_its_failure(log, monkeypatch):
    from dlstudio.core.io import load_graph
    from dlstudio.train.trainer import Trainer

    monkeypatch.setattr("dlstudio.train.trainer.start_task", _fail)
    trainer = Trainer(load_graph(EXAMPLE))
    with pytest.raises(InternalError) as raised:
        trainer.fit()
    assert isinstance(raised.value.__cause__, KeyError)  # kept for --debug's traceback
    assert str(trainer.error).startswith("training: internal error (details for a bug report in ")
    assert_plain(str(trainer.error))
