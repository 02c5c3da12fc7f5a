"""The version a command reports: the Debian package's when it runs from one, else the Python package's.

The seed: "with installs after v5.00 you can use native package manager
commands to find installed version"; ``tsadmin version`` agrees with them.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from ts_isr import __version__
from ts_isr.tools import child_env, find_tool

QUERY_TIMEOUT = 10.0


def _dpkg_query(*args: str) -> str | None:
    tool = find_tool("dpkg-query")
    if tool is None:
        return None
    try:
        done = subprocess.run(
            [tool, *args], capture_output=True, text=True, timeout=QUERY_TIMEOUT, check=False, env=child_env()
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def package_of(path: Path) -> str | None:
    """The Debian package that installed ``path`` (``dpkg-query -S``), None outside a package install."""
    found = _dpkg_query("-S", str(path))
    if not found:
        return None
    return found.split(":", 1)[0].split(",")[0].strip() or None


def installed_version(module_file: str = __file__) -> str:
    """``dpkg-query -W -f='${Version}'`` of the package this code came from, else ``__version__``."""
    package = package_of(Path(module_file).resolve())
    version = _dpkg_query("-W", "-f=${Version}", package) if package else None
    return version or __version__
