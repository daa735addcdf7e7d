"""The check that Qt's xcb plugin can load, before the QApplication exists (it would abort)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dlstudio.ui.platform_check import (
    XCB_LIBRARY_PACKAGES,
    install_commands,
    ldd,
    loads_xcb,
    missing_libraries,
    platform_problem,
    xcb_plugin,
)
from tests.conftest import ROOT

LDD_OUTPUT = """\
\tlinux-vdso.so.1 (0x00007ffd4b5f2000)
\tlibQt6XcbQpa.so.6 => /venv/PySide6/Qt/lib/libQt6XcbQpa.so.6 (0x00007f0e1c000000)
\tlibxcb-cursor.so.0 => /lib/x86_64-linux-gnu/libxcb-cursor.so.0 (0x00007f0e1bff0000)
\tlibxcb-icccm.so.4 => not found
\tlibxcb-keysyms.so.1 => not found
\tlibxcb-icccm.so.4 => not found
\t/lib64/ld-linux-x86-64.so.2 (0x00007f0e1c3a0000)
"""

real_ldd = pytest.mark.skipif(not sys.platform.startswith("linux") or shutil.which("ldd") is None,
                              reason="ldd is a Linux tool")


def test_ldd_output_gives_each_missing_library_once_in_order() -> None:
    assert missing_libraries(LDD_OUTPUT) == ["libxcb-icccm.so.4", "libxcb-keysyms.so.1"]
    assert missing_libraries(LDD_OUTPUT.replace("not found", "/usr/lib/x.so (0x1)")) == []


@pytest.mark.parametrize(("environ", "platform", "checked"), [
    ({}, "linux", True),
    ({"QT_QPA_PLATFORM": "xcb"}, "linux", True),
    ({"QT_QPA_PLATFORM": "xcb:nograb"}, "linux", True),
    ({"QT_QPA_PLATFORM": "offscreen"}, "linux", False),
    ({"QT_QPA_PLATFORM": "wayland"}, "linux", False),
    ({"QT_QPA_PLATFORM": "xcb;wayland"}, "linux", False),  # Qt falls back by itself
    ({"XDG_SESSION_TYPE": "wayland", "WAYLAND_DISPLAY": "wayland-0"}, "linux", False),
    ({"XDG_SESSION_TYPE": "x11"}, "linux", True),
    ({}, "darwin", False),
    ({"QT_QPA_PLATFORM": "xcb"}, "win32", False),
])
def test_only_a_start_on_xcb_is_checked(environ, platform, checked) -> None:
    assert loads_xcb(environ, platform) is checked


def test_missing_libraries_map_to_their_debian_packages() -> None:
    assert install_commands(["libxcb-icccm.so.4", "libxcb-keysyms.so.1", "libgthread-2.0.so.0"]) == [
        "sudo apt-get install libglib2.0-0 libxcb-icccm4 libxcb-keysyms1"]
    whole_list = install_commands(["libxcb-icccm.so.4", "libunknown.so.1"])[0]
    assert whole_list.split()[3:] == sorted(set(XCB_LIBRARY_PACKAGES.values()))
    assert install_commands(["libQt6XcbQpa.so.6"]) == ["pip install --force-reinstall pyside6"]


@real_ldd
def test_the_table_names_what_the_real_plugin_loads() -> None:
    """Every library ldd finds missing has its package in the table, and every table entry is a
    library the plugin really loads (so the README's list neither lacks nor pads)."""
    plugin = xcb_plugin({})
    assert plugin is not None and plugin.name == "libqxcb.so"
    report = ldd(plugin)
    assert report is not None
    loaded = {line.split()[0] for line in report.splitlines() if "=>" in line}
    assert set(XCB_LIBRARY_PACKAGES) <= loaded
    assert set(missing_libraries(report)) <= set(XCB_LIBRARY_PACKAGES)


def _plugin_without_its_qt_libraries(tmp_path: Path) -> Path:
    """A copy of the real plugin in a folder where its Qt libraries (found relative to it) are not."""
    folder = tmp_path / "platforms"
    folder.mkdir()
    shutil.copy(xcb_plugin({}), folder / "libqxcb.so")
    return folder


@real_ldd
def test_a_plugin_that_cannot_load_is_named_with_its_missing_libraries(tmp_path) -> None:
    folder = _plugin_without_its_qt_libraries(tmp_path)
    environ = {"QT_QPA_PLATFORM": "xcb", "QT_QPA_PLATFORM_PLUGIN_PATH": str(folder)}
    problem = platform_problem(environ)
    assert problem is not None and "\n" not in problem
    assert "missing libQt6XcbQpa.so.6" in problem
    assert "pip install --force-reinstall pyside6" in problem
    assert platform_problem({**environ, "QT_QPA_PLATFORM": "offscreen"}) is None


@real_ldd
def test_the_command_exits_2_with_one_line_instead_of_aborting(tmp_path) -> None:
    env = dict(os.environ, QT_QPA_PLATFORM="xcb", DISPLAY=":4711",
               QT_QPA_PLATFORM_PLUGIN_PATH=str(_plugin_without_its_qt_libraries(tmp_path)),
               XDG_CONFIG_HOME=str(tmp_path / "config"), XDG_DATA_HOME=str(tmp_path / "data"))
    done = subprocess.run([sys.executable, "-m", "dlstudio"], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("dlstudio: Qt's X11 (xcb) platform plugin")
    assert "libQt6XcbQpa.so.6" in lines[0]
