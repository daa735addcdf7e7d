"""Whether Qt's platform plugin can load, checked before the QApplication exists.

On Linux under X11 Qt loads the xcb plugin, which needs system libraries that pip cannot
install; when one is missing Qt aborts with a message naming at most one of them. This module
asks ``ldd`` which libraries the plugin (and the Qt libraries it pulls in) cannot find, so the
editor can name all of them and the ``apt-get`` command that installs them, and exit 2.
Other platforms (offscreen, wayland, macOS, Windows) are not checked. It imports no Qt.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

#: The Debian/Ubuntu package of each library the xcb plugin and its Qt libraries load (their
#: ``NEEDED`` entries, less the C and C++ runtimes every system has). The README lists these.
XCB_LIBRARY_PACKAGES: dict[str, str] = {
    "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1",
    "libdbus-1.so.3": "libdbus-1-3",
    "libfontconfig.so.1": "libfontconfig1",
    "libfreetype.so.6": "libfreetype6",
    "libglib-2.0.so.0": "libglib2.0-0",
    "libgthread-2.0.so.0": "libglib2.0-0",
    "libX11.so.6": "libx11-6",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libxcb.so.1": "libxcb1",
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-util.so.1": "libxcb-util1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
}

XCB_PACKAGES: tuple[str, ...] = tuple(sorted(set(XCB_LIBRARY_PACKAGES.values())))
XCB_PLUGIN = "libqxcb.so"
WHEEL_LIBRARY_PREFIXES = ("libQt6", "libicu", "libpyside6", "libshiboken6")  # PySide6 ships these


def loads_xcb(environ: Mapping[str, str], platform: str = sys.platform) -> bool:
    """Whether Qt would start with the xcb plugin and nothing to fall back on."""
    if not platform.startswith("linux"):
        return False
    requested = environ.get("QT_QPA_PLATFORM", "").strip()
    if requested:
        plugins = [entry.split(":")[0] for entry in requested.split(";") if entry]
        return plugins == ["xcb"]  # with a fallback ("xcb;wayland") Qt copes by itself
    wayland_session = environ.get("XDG_SESSION_TYPE") == "wayland" and environ.get("WAYLAND_DISPLAY")
    return not wayland_session


def missing_libraries(ldd_output: str) -> list[str]:
    """The libraries ``ldd`` reports as ``not found``, each once, in the order it names them."""
    missing: list[str] = []
    for line in ldd_output.splitlines():
        name, arrow, where = line.strip().partition("=>")
        if arrow and where.strip() == "not found" and name.strip() not in missing:
            missing.append(name.strip())
    return missing


def install_commands(missing: list[str]) -> list[str]:
    """The commands that bring back ``missing``: apt for system libraries (the whole list when
    one is not in the table, since the packages pull in what they need), pip for PySide6's own."""
    from_wheel = [name for name in missing if name.startswith(WHEEL_LIBRARY_PREFIXES)]
    system = [name for name in missing if name not in from_wheel]
    commands = []
    if system:
        known = all(name in XCB_LIBRARY_PACKAGES for name in system)
        packages = sorted({XCB_LIBRARY_PACKAGES[name] for name in system}) if known else XCB_PACKAGES
        commands.append("sudo apt-get install " + " ".join(packages))
    if from_wheel:
        commands.append("pip install --force-reinstall pyside6")
    return commands


def xcb_plugin(environ: Mapping[str, str]) -> Path | None:
    """The xcb plugin Qt would load: ``QT_QPA_PLATFORM_PLUGIN_PATH`` first, then PySide6's own."""
    folders = [Path(environ["QT_QPA_PLATFORM_PLUGIN_PATH"])] if environ.get("QT_QPA_PLATFORM_PLUGIN_PATH") else []
    spec = importlib.util.find_spec("PySide6")
    for location in (spec.submodule_search_locations or []) if spec else []:
        folders.append(Path(location) / "Qt" / "plugins" / "platforms")
    return next((folder / XCB_PLUGIN for folder in folders if (folder / XCB_PLUGIN).is_file()), None)


def ldd(path: Path) -> str | None:
    """``ldd``'s report on ``path``; None when there is no ldd or it fails."""
    tool = shutil.which("ldd")
    if tool is None:
        return None
    try:
        result = subprocess.run([tool, str(path)], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout if result.returncode == 0 else None


def platform_problem(environ: Mapping[str, str] | None = None) -> str | None:
    """One line naming what keeps Qt's platform plugin from loading, or None when nothing does."""
    environ = os.environ if environ is None else environ
    if not loads_xcb(environ):
        return None
    plugin = xcb_plugin(environ)
    report = ldd(plugin) if plugin is not None else None
    missing = missing_libraries(report or "")
    if not missing:
        return None
    return (f"Qt's X11 (xcb) platform plugin cannot load, missing {', '.join(missing)}; "
            f"install them with: {' && '.join(install_commands(missing))}")
