"""The one place tsadmin runs a host tool: argv lists only, batches on stdin, failures as one line."""

from __future__ import annotations

import os
import shutil
import subprocess

from ts_isr.errors import ConfigError, DeviceError
from ts_isr.log import escape

SBIN_PATH = "/usr/sbin:/sbin:/usr/bin:/bin"


def find_tool(name: str) -> str:
    """The tool's path; cron's PATH often lacks /sbin, where ipset and iptables live."""
    path = shutil.which(name) or shutil.which(name, path=SBIN_PATH)
    if path is None:
        raise DeviceError(f"{name} is not installed; install it (apt-get install {name}) and run again")
    return path


def run_tool(argv: list[str], stdin: str | None = None, *, timeout: float = 600.0) -> str:
    """Run a host tool; its stdout, or :class:`DeviceError` with the tool's first error line."""
    command = [find_tool(argv[0]), *argv[1:]]
    try:
        done = subprocess.run(
            command, input=stdin, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        raise DeviceError(f"{argv[0]} did not finish in {timeout:.0f}s; check the host's load") from None
    if done.returncode != 0:
        first = next((line for line in done.stderr.splitlines() if line.strip()), "no error text")
        raise DeviceError(f"{' '.join(argv[:2])} failed: {escape(first)}")
    return done.stdout


def require_root(command: str) -> None:
    """Every tsadmin command changes or reads kernel firewall state: say so at once without root."""
    if os.geteuid() != 0:
        raise ConfigError(f"tsadmin {command} must run as root; run: sudo tsadmin {command}")
