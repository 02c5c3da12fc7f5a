"""Real components for tests: find them, or fail under CI and skip elsewhere."""

from __future__ import annotations

import os
import socket
import time

import pytest

from ts_isr.tools import find_tool

IN_CI = os.environ.get("CI", "").lower() == "true"


def missing(reason: str) -> None:
    """A real component is not here: under CI that is a failure, never a skip."""
    if IN_CI:
        pytest.fail(f"{reason} (CI must install it: see scripts/bootstrap.sh)")
    pytest.skip(reason)


def require_tool(name: str) -> str:
    path = find_tool(name)
    if path is None:
        missing(f"{name} is not installed")
    return path


def require_root() -> None:
    if os.geteuid() != 0:
        missing("needs root (network namespaces, ipset, iptables)")


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, host: str = "127.0.0.1", timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s")
