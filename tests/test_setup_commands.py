"""The README's set-up commands are the ones CI runs, and its system packages are the ones the
editor's start-up check asks for."""

from __future__ import annotations

import re

from dlstudio.ui.platform_check import XCB_PACKAGES
from tests.conftest import ROOT


def _readme_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", readme, re.S)]


def _apt_line(commands: list[str]) -> str:
    return next(line for line in commands if "apt-get install" in line)


def test_ci_runs_the_readme_set_up_and_test_commands_verbatim() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    commands = _readme_commands()
    test_command = next(line for line in commands if line.endswith("python -m pytest -n 2 -q"))
    for command in (_apt_line(commands), test_command):
        assert command in (line.strip() for line in ci), command


def test_the_readme_installs_the_packages_the_start_up_check_names() -> None:
    packages = _apt_line(_readme_commands()).split("apt-get install -y", 1)[1].split()
    assert packages == list(XCB_PACKAGES)
