"""The lab device itself: its configuration state, its files (state, command log, host key), its knobs.

Shared by every SSH session of one device; device.py gives each session a shell on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import asyncssh

from ts_isr.lab.hostile import Hostile
from ts_isr.lab.model import DeviceState, Profile
from ts_isr.lab.syslog import ios_line

STATE_FILE = "state.json"
COMMANDS_FILE = "commands.log"
HOST_KEY_FILE = "ssh_host_key"
SECRET_MASK = "********"
FLUSH_DELAY = 0.2


@dataclass(frozen=True)
class Knobs:
    """Realism and fault knobs; all off by default."""

    line_cost_ms: float = 0.0
    rtt_ms: float = 0.0
    input_buffer: int | None = None
    drop_after_lines: int | None = None
    refuse_login: bool = False
    hang_on: str | None = None
    banner: str | None = None
    syslog: tuple[str, int] | None = None  # `logging host`: where the device sends its own log lines
    hostile: Hostile = field(default_factory=Hostile)  # see hostile.py


def write_private(path: Path, text: str) -> None:
    """Write atomically, readable by the owner only (state may hold what a test preloaded)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def load_host_key(state_dir: Path | None) -> asyncssh.SSHKey:
    """The device's host key: stable per state directory so clients can pin it."""
    if state_dir is None:
        return asyncssh.generate_private_key("ssh-ed25519")
    path = state_dir / HOST_KEY_FILE
    if not path.exists():
        key = asyncssh.generate_private_key("ssh-ed25519")
        write_private(path, key.export_private_key().decode())
        (state_dir / f"{HOST_KEY_FILE}.pub").write_bytes(key.export_public_key())
    return asyncssh.read_private_key(str(path))


class Device:
    """One simulated router or firewall: its state, its files and the knobs shared by all sessions."""

    def __init__(
        self,
        profile: Profile,
        username: str,
        password: str,
        knobs: Knobs,
        state_dir: Path | None = None,
        preload: dict[str, dict[str, list[str]]] | None = None,
        authorized_keys: str | None = None,
    ) -> None:
        self.profile = profile
        self.username = username
        self.password = password
        self.knobs = knobs
        self.state_dir = state_dir
        self.authorized_keys = authorized_keys
        self.booted = time.monotonic()
        self.config_lines = 0
        self._flush_handle: asyncio.TimerHandle | None = None
        self._commands: IO[str] | None = None
        self.log_sequence = 0
        self._syslog: socket.socket | None = None
        if knobs.syslog is not None:
            self._syslog = socket.socket(
                socket.AF_INET6 if ":" in knobs.syslog[0] else socket.AF_INET, socket.SOCK_DGRAM
            )
            self._syslog.setblocking(False)
        state_file = state_dir / STATE_FILE if state_dir else None
        if preload is not None:
            self.state = DeviceState.from_snapshot(preload)
        elif state_file and state_file.exists():
            self.state = DeviceState.from_snapshot(json.loads(state_file.read_text()))
        else:
            self.state = DeviceState()
        if state_dir is not None:
            state_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(state_dir / COMMANDS_FILE, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            self._commands = os.fdopen(fd, "a")
            self.flush_state()

    def uptime(self) -> float:
        return time.monotonic() - self.booted

    def record(self, lines: list[str]) -> None:
        """Append received lines to commands.log (flushed per batch, so a test sees them at once)."""
        if self._commands is not None and lines:
            self._commands.write("".join(line + "\n" for line in lines))
            self._commands.flush()

    def changed(self) -> None:
        """Persist soon: after a burst of configuration lines, not after each one (speed)."""
        if self.state_dir is None or self._flush_handle is not None:
            return
        self._flush_handle = asyncio.get_running_loop().call_later(FLUSH_DELAY, self.flush_state)

    def flush_state(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        if self.state_dir is not None:
            write_private(self.state_dir / STATE_FILE, json.dumps(self.state.snapshot(), indent=1) + "\n")

    def log(self, message: str, severity: int) -> None:
        """Send one line to the `logging host`, as IOS does (UDP: lost if nobody listens)."""
        if self._syslog is None or self.knobs.syslog is None:
            return
        self.log_sequence += 1
        line = ios_line(message, self.log_sequence, datetime.now(UTC), self.profile.name, severity)
        with contextlib.suppress(OSError):
            self._syslog.sendto(line.encode(), self.knobs.syslog)

    def close(self) -> None:
        if self._syslog is not None:
            self._syslog.close()
        self.flush_state()
        if self._commands is not None:
            self._commands.close()
            self._commands = None
