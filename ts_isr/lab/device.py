"""The lab device's SSH shell: asyncssh in raw mode around the pure interpreter in cli.py.

Raw mode with our own echo (no asyncssh line editor) because the device must take thousands of
configuration lines a second, and because IOS echoes a line only once it has processed it.  Knobs
that make it behave like a slow or faulty device live here, not in the interpreter.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import os
import re
import socket
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import asyncssh

from ts_isr.lab.cli import DeviceState, Mode, Profile, Reply, Session
from ts_isr.lab.syslog import ios_line

STATE_FILE = "state.json"
COMMANDS_FILE = "commands.log"
HOST_KEY_FILE = "ssh_host_key"
SECRET_MASK = "********"
FLUSH_DELAY = 0.2
_LINE_END = re.compile(rb"\r\n|\r|\n|\x1a")


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


class LabServer(asyncssh.SSHServer):
    """Authentication: the configured user with password or an authorized key; or nobody (fault)."""

    def __init__(self, device: Device) -> None:
        self.device = device
        self.conn: asyncssh.SSHServerConnection | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self.conn = conn

    def begin_auth(self, username: str) -> bool:
        if self.device.authorized_keys and self.conn is not None and not self.device.knobs.refuse_login:
            self.conn.set_authorized_keys(asyncssh.import_authorized_keys(self.device.authorized_keys))
        return True

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        if self.device.knobs.refuse_login:
            return False
        return hmac.compare_digest(username.encode(), self.device.username.encode()) and hmac.compare_digest(
            password.encode(), self.device.password.encode()
        )

    def public_key_auth_supported(self) -> bool:
        return bool(self.device.authorized_keys) and not self.device.knobs.refuse_login

    def session_requested(self) -> LabSession:
        return LabSession(self.device)


class LabSession(asyncssh.SSHServerSession):
    """One shell channel: splits input into lines, applies the knobs, writes echo, output and prompt."""

    def __init__(self, device: Device) -> None:
        self.device = device
        self.cli = Session(device.profile, device.state, device.uptime)
        self.chan: asyncssh.SSHServerChannel | None = None
        self.user = self.peer = ""
        self.pending = bytearray()
        self.skip_lf = False
        self.hung = False
        self.closed = False
        self.worker: asyncio.Task[None] | None = None
        self.outbuf: list[str] = []
        self.flush_pending = False

    # asyncssh callbacks ---------------------------------------------------
    def connection_made(self, chan: asyncssh.SSHServerChannel) -> None:
        self.chan = chan
        self.user = chan.get_extra_info("username") or ""
        self.peer = (chan.get_extra_info("peername") or ("?",))[0]

    def pty_requested(self, term_type: str, term_size: tuple[int, int, int, int], term_modes: dict) -> bool:
        return True

    def shell_requested(self) -> bool:
        return True

    def session_started(self) -> None:
        greeting = ""
        if self.device.knobs.banner:
            greeting = "\r\n" + self.device.knobs.banner.replace("\n", "\r\n") + "\r\n"
        self._send(greeting + "\r\n" + self.cli.prompt())

    def data_received(self, data: bytes, datatype: int | None) -> None:
        self._after_half_rtt(self._arrive, data)

    def eof_received(self) -> bool:
        self._close()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.worker is not None:
            self.worker.cancel()
        self.device.flush_state()

    # input ------------------------------------------------------------------
    def _arrive(self, data: bytes) -> None:
        if self.closed or self.hung:
            return
        limit = self.device.knobs.input_buffer
        if limit is not None:
            data = data[: max(limit - len(self.pending), 0)]  # IOS drops what overflows its buffer
        self.pending += data
        if self.device.knobs.line_cost_ms:
            if self.worker is None or self.worker.done():
                self.worker = asyncio.get_running_loop().create_task(self._work())
        else:
            self._run_lines(self._take_lines())

    def _take_lines(self, limit: int | None = None) -> list[str]:
        lines, self.skip_lf = take_lines(self.pending, self.skip_lf, limit)
        return lines

    async def _work(self) -> None:
        """Slow device: each line costs line_cost_ms before its echo and prompt appear."""
        cost = self.device.knobs.line_cost_ms / 1000
        loop = asyncio.get_running_loop()
        # Paced by deadline, not by sleeping a full cost per line: timer overshoot
        # would otherwise make the lab slower than the device it plays.
        due = loop.time()
        while not self.closed and not self.hung:
            lines = self._take_lines(limit=1)
            if not lines:
                return
            due = max(due + cost, loop.time())
            await asyncio.sleep(due - loop.time())
            self._run_lines(lines)

    # processing -------------------------------------------------------------
    def _run_lines(self, lines: list[str]) -> None:
        out: list[str] = []
        received: list[str] = []
        knobs = self.device.knobs
        try:
            for raw in lines:
                line = edit_line(raw)
                if line == "\x1a":
                    line = "end" if self.cli.in_config() else ""
                password = self.cli.mode is Mode.PASSWORD
                received.append(SECRET_MASK if password else line)
                if knobs.hang_on and line.strip() and line.strip().startswith(knobs.hang_on):
                    out.append(line + "\r\n")
                    self.hung = True
                    return
                was_config = self.cli.in_config()
                try:
                    reply = self.cli.handle(line)
                except Exception:  # a lab bug must show in stderr.log, not as a silently dead session
                    traceback.print_exc()
                    reply = Reply(["% Lab device internal error (see its stderr)", ""])
                if (reply.changed or was_config) and not self.cli.in_config():
                    self.device.flush_state()  # saved or left configuration: on disk before the prompt
                if was_config and self.cli.mode is Mode.EXEC:
                    self.device.log(
                        f"%SYS-5-CONFIG_I: Configured from console by {self.user} on vty0 ({self.peer})",
                        severity=5,
                    )
                elif reply.changed:
                    self.device.changed()
                out.append((line if reply.echo else "") + "\r\n")
                out.extend(text + "\r\n" for text in reply.lines)
                if reply.close:
                    self._close(out)
                    return
                out.append(self.cli.prompt())
                if was_config and line.strip() and knobs.drop_after_lines is not None:
                    self.device.config_lines += 1
                    if self.device.config_lines == knobs.drop_after_lines:
                        self._drop(out)
                        return
        finally:
            self.device.record(received)
            if out and not self.closed:
                self._send("".join(out))

    def _send(self, text: str) -> None:
        """Queue output; written once per event-loop turn so a burst of lines costs one SSH packet."""
        self.outbuf.append(text)
        if not self.flush_pending:
            self.flush_pending = True
            asyncio.get_running_loop().call_soon(self._flush_output)

    def _flush_output(self) -> None:
        self.flush_pending = False
        data = "".join(self.outbuf).encode()
        self.outbuf.clear()
        self._after_half_rtt(self._write, data)

    def _after_half_rtt(self, action: Callable[[bytes], None], data: bytes) -> None:
        """Each way of the round trip takes half of ``rtt_ms``: input on arrival, output on leaving."""
        delay = self.device.knobs.rtt_ms / 2000
        if delay:
            asyncio.get_running_loop().call_later(delay, action, data)
        else:
            action(data)

    def _flush_now(self) -> None:
        """Before closing: whatever is queued goes out now, with no delay."""
        data = "".join(self.outbuf).encode()
        self.outbuf.clear()
        self._write(data)

    def _write(self, data: bytes) -> None:
        if self.chan is not None and not self.closed and data:
            self.chan.write(data)

    def _close(self, out: list[str] | None = None) -> None:
        if self.closed or self.chan is None:
            return
        self.outbuf.extend(out or [])
        self._flush_now()
        self.chan.exit(0)
        self.closed = True
        self.device.flush_state()

    def _drop(self, out: list[str]) -> None:
        """Fault: the TCP connection dies mid-push, after what was processed reached the client."""
        if self.chan is not None:
            self.outbuf.extend(out)
            self._flush_now()
            self.chan.get_extra_info("connection").abort()
        self.closed = True
        self.device.flush_state()


def take_lines(buffer: bytearray, skip_lf: bool, limit: int | None = None) -> tuple[list[str], bool]:
    """Remove complete lines from ``buffer``: CR, LF or CRLF ends a line, Ctrl-Z is a line of its own.

    A CR at the very end may be the first half of a CRLF split across packets: the returned flag
    says to skip a LF that starts the next packet, so it does not count as an empty line.
    """
    if skip_lf and not buffer:
        return [], True
    lines: list[str] = []
    start = 1 if skip_lf and buffer[:1] == b"\n" else 0
    skip_lf = False
    for match in _LINE_END.finditer(buffer, start):
        if limit is not None and len(lines) >= limit:
            break
        if match.group() == b"\x1a":
            if match.start() > start:
                lines.append(buffer[start : match.start()].decode("utf-8", "replace"))
            lines.append("\x1a")
        else:
            lines.append(buffer[start : match.start()].decode("utf-8", "replace"))
            skip_lf = match.group() == b"\r" and match.end() == len(buffer)
        start = match.end()
    del buffer[:start]
    return lines, skip_lf


def edit_line(line: str) -> str:
    """Apply backspace/delete as a terminal would before the parser sees the line."""
    if "\x7f" not in line and "\x08" not in line:
        return line
    kept: list[str] = []
    for char in line:
        if char in "\x7f\x08":
            if kept:
                kept.pop()
        else:
            kept.append(char)
    return "".join(kept)


async def serve(device: Device, host: str, port: int) -> asyncssh.SSHAcceptor:
    """Listen for SSH clients; sessions get a shell on the device."""
    return await asyncssh.create_server(
        lambda: LabServer(device),
        host,
        port,
        server_host_keys=[load_host_key(device.state_dir)],
        encoding=None,
        line_editor=False,
        allow_scp=False,
        sftp_factory=None,
        keepalive_interval=0,
    )
