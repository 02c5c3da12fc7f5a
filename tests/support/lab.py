"""Fixtures around the lab device: a real SSH server in a subprocess that netmiko drives unchanged.

Usage::

    with lab_device(tmp_path, platform="asa", line_cost_ms=1, preload={"TS_BLOCK": [...]}) as dev:
        ConnectHandler(**dev.netmiko_params())
        assert dev.running()["TS_BLOCK"] == [...]
"""

from __future__ import annotations

import json
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.tools import free_port

READY_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
DEVICE_TYPES = {"ios": "cisco_ios", "asa": "cisco_asa"}


@dataclass
class LabDevice:
    host: str
    port: int
    username: str
    password: str
    secret: str
    platform: str
    state_dir: Path
    process: subprocess.Popen[str] | None = None

    def known_hosts_line(self) -> str:
        """The OpenSSH known_hosts line for this device (``[127.0.0.1]:PORT ssh-ed25519 AAAA...``)."""
        algorithm, key = (self.state_dir / "ssh_host_key.pub").read_text().split()[:2]
        return f"[{self.host}]:{self.port} {algorithm} {key}"

    def _state(self) -> dict[str, dict[str, list[str]]]:
        return json.loads((self.state_dir / "state.json").read_text())

    def running(self) -> dict[str, list[str]]:
        return self._state()["running"]

    def startup(self) -> dict[str, list[str]]:
        return self._state()["startup"]

    def commands(self) -> list[str]:
        """Every line the device received, in order (the enable secret shows as ``********``)."""
        path = self.state_dir / "commands.log"
        return path.read_text().splitlines() if path.exists() else []

    def netmiko_params(self) -> dict[str, Any]:
        return {
            "device_type": DEVICE_TYPES[self.platform],
            "host": self.host,
            "port": self.port,
            "username": self.username,
            "password": self.password,
            "secret": self.secret,
        }


def knob_arguments(knobs: dict[str, Any]) -> list[str]:
    """``line_cost_ms=1`` -> ``--line-cost-ms 1``; ``refuse_login=True`` -> ``--refuse-login``."""
    argv: list[str] = []
    for name, value in knobs.items():
        flag = "--" + name.replace("_", "-")
        if value is True:
            argv.append(flag)
        elif value is not False and value is not None:
            argv += [flag, str(value)]
    return argv


@contextmanager
def lab_device(tmp_path: Path, platform: str = "ios", **knobs: Any) -> Iterator[LabDevice]:
    """Start ``python -m ts_isr.lab device`` on a free port, wait until it is ready, SIGTERM it at exit.

    ``preload={"GROUP": [members]}`` boots the device with that running and startup configuration
    (``group_types={"GROUP": "v6-network"}`` for IOS IPv6 groups);
    ``state_dir=device.state_dir`` restarts a device on an earlier one's state and host key.
    """
    state_dir = knobs.pop("state_dir", None) or Path(tmp_path) / f"lab-{platform}-{secrets.token_hex(4)}"
    state_dir.mkdir(parents=True, exist_ok=True)
    preload = knobs.pop("preload", None)
    types = knobs.pop("group_types", {})  # {"TS6": "v6-network"}: an IOS IPv6 group preloaded
    if preload is not None:
        preload_file = state_dir / "preload.json"
        preload_file.write_text(json.dumps({"running": preload, "startup": preload, "types": types}))
        knobs["preload"] = preload_file
    device = LabDevice(
        host="127.0.0.1",
        port=free_port(),
        username="tsadmin",
        password="pw-" + secrets.token_hex(6),
        secret="en-" + secrets.token_hex(6),
        platform=platform,
        state_dir=state_dir,
    )
    argv = [sys.executable, "-m", "ts_isr.lab", "device", "--platform", platform, "--port", str(device.port)]
    argv += ["--username", device.username, "--state-dir", str(state_dir), *knob_arguments(knobs)]
    env = dict(os.environ, LAB_PASSWORD=device.password, LAB_SECRET=device.secret)
    with open(state_dir / "stderr.log", "w") as stderr:
        process = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=stderr, text=True, env=env, cwd=Path(__file__).parents[2]
        )
    device.process = process
    try:
        _wait_ready(process, state_dir / "stderr.log")
        yield device
    finally:
        _stop(process)


def free_ports(count: int) -> int:
    """The first of ``count`` consecutive free TCP ports on loopback."""
    for _ in range(200):
        base = random.randrange(20000, 60000 - count)
        sockets = []
        try:
            for port in range(base, base + count):
                sock = socket.socket()
                sockets.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise RuntimeError(f"no {count} consecutive free ports on 127.0.0.1")


@contextmanager
def lab_fleet(
    tmp_path: Path, count: int, platforms: tuple[str, ...] = ("ios", "asa"), **knobs: Any
) -> Iterator[list[LabDevice]]:
    """``count`` lab devices served by one process (``--count``), platforms in turn, each with its
    own state: a fleet without a process per router."""
    state_dir = Path(tmp_path) / f"lab-fleet-{secrets.token_hex(4)}"
    state_dir.mkdir(parents=True)
    base = free_ports(count)
    password, secret = "pw-" + secrets.token_hex(6), "en-" + secrets.token_hex(6)
    devices = [
        LabDevice(
            "127.0.0.1",
            base + i,
            "tsadmin",
            password,
            secret,
            platforms[i % len(platforms)],
            state_dir / f"dev-{i}",
        )
        for i in range(count)
    ]
    argv = [sys.executable, "-m", "ts_isr.lab", "device", "--port", str(base), "--count", str(count)]
    argv += ["--platforms", ",".join(platforms), "--username", "tsadmin", "--state-dir", str(state_dir)]
    argv += knob_arguments(knobs)
    env = dict(os.environ, LAB_PASSWORD=password, LAB_SECRET=secret)
    with open(state_dir / "stderr.log", "w") as stderr:
        process = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=stderr, text=True, env=env, cwd=Path(__file__).parents[2]
        )
    try:
        _wait_ready(process, state_dir / "stderr.log")
        yield devices
    finally:
        _stop(process)


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_ready(process: subprocess.Popen[str], stderr: Path) -> None:
    """Block until the device prints its ready line (read in a thread so a hung start times out)."""
    assert process.stdout is not None
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.append(process.stdout.readline()), daemon=True)
    reader.start()
    reader.join(READY_TIMEOUT)
    if not lines or "ready" not in lines[0]:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT)
        said = (lines[0] if lines else "").strip()
        raise RuntimeError(f"lab device did not start: {said} {stderr.read_text().strip()}")
