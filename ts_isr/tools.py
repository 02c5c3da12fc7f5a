"""Finding a system tool: the one lookup every part of ts_isr (and its tests) uses."""

from __future__ import annotations

import shutil

# cron's PATH (/usr/bin:/bin) lacks the sbin directories, where ipset, iptables and syslog-ng live.
SBIN_PATH = "/usr/sbin:/sbin:/usr/bin:/bin"


def find_tool(name: str) -> str | None:
    """The tool's path from PATH, else from the sbin directories; None when it is not installed."""
    return shutil.which(name) or shutil.which(name, path=SBIN_PATH)
