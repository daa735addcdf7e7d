"""The README's set-up commands are the ones CI runs, and its system packages are the ones the
editor's start-up check asks for."""

from __future__ import annotations

import re

from dlstudio.ui.platform_check import XCB_PACKAGES
from tests.conftest import ROOT


def _readme_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", readme, re.S)]


def _packages(command: str) -> list[str]:
    return command.split("apt-get install -y", 1)[1].split("&&", 1)[0].split()


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    test_command = next(line for line in _readme_commands() if line.endswith("python -m pytest -n 2 -q"))
    assert test_command in (line.strip() for line in ci), test_command


def test_both_readme_commands_install_the_system_packages_first_and_then_set_up() -> None:
    app, tests = _readme_commands()[:2]
    assert app.endswith("&& dlstudio") and tests.endswith("python -m pytest -n 2 -q")
    for command in (app, tests):
        assert command.startswith("sudo apt-get update && sudo apt-get install -y ")
        assert "python3 -m venv .venv" in command and "pip install torch==2.13.0" in command


def test_the_readme_installs_the_packages_the_start_up_check_names() -> None:
    for command in _readme_commands()[:2]:
        assert _packages(command) == list(XCB_PACKAGES)
