"""The lab device's SSH shell: asyncssh in raw mode around the pure interpreter in cli.py.

Raw mode with our own echo (no asyncssh line editor) because the device must take thousands of
configuration lines a second, and because IOS echoes a line only once it has processed it.  Knobs
that make it behave like a slow, faulty or hostile device act here (hostile.py plans what a hostile
device prints), not in the interpreter; the device's state and files are in machine.py.
"""

from __future__ import annotations

import asyncio
import hmac
import traceback
from collections.abc import Callable, Iterator

import asyncssh

from ts_isr.lab.cli import Session
from ts_isr.lab.hostile import Hostile, Piece, babble_pieces, is_show, show_pieces
from ts_isr.lab.machine import SECRET_MASK, Device, load_host_key
from ts_isr.lab.model import Mode, Reply
from ts_isr.lab.terminal import edit_line, take_lines

_STREAM_BATCH = 65536  # bytes of hostile output written at once
_STREAM_BACKLOG = 1 << 20  # unsent bytes in the channel before a hostile stream waits for the client


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
        self.streaming: asyncio.Task[None] | None = None  # a hostile answer being written
        self.hostile = device.knobs.hostile if device.knobs.hostile != Hostile() else None  # speed

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
        for task in (self.worker, self.streaming):
            if task is not None:
                task.cancel()
        self.device.flush_state()

    # input ------------------------------------------------------------------
    def _arrive(self, data: bytes) -> None:
        if self.closed or self.hung:
            return
        limit = self.device.knobs.input_buffer
        if limit is not None:
            data = data[: max(limit - len(self.pending), 0)]  # IOS drops what overflows its buffer
        self.pending += data
        if self.streaming is not None:
            return  # the device is still printing an answer: the input waits
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
        while not self.closed and not self.hung and self.streaming is None:
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
        hostile = self.hostile
        try:
            for index, raw in enumerate(lines):
                line = edit_line(raw)
                if line == "\x1a":
                    line = "end" if self.cli.in_config() else ""
                password = self.cli.mode is Mode.PASSWORD
                received.append(SECRET_MASK if password else line)
                if knobs.hang_on and line.strip() and line.strip().startswith(knobs.hang_on):
                    out.append(line + "\r\n")
                    self.hung = True
                    return
                in_group = self.cli.mode is Mode.GROUP
                if hostile is not None and hostile.black_hole and in_group and line.strip():
                    continue  # swallowed: no echo, no prompt, no change
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
                pieces = None if hostile is None else self._hostile_pieces(hostile, line, in_group, reply)
                if pieces is not None:
                    self._stream(out, pieces, lines[index + 1 :])
                    return
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

    def _hostile_pieces(
        self, hostile: Hostile, line: str, in_group: bool, reply: Reply
    ) -> Iterator[Piece] | None:
        """The answer to ``line`` as a hostile mode prints it, or None to answer normally."""
        if hostile.babble and in_group and line.strip() and self.cli.mode is Mode.GROUP:
            return babble_pieces()
        if hostile.shapes_show() and is_show(line) and not reply.close:
            return show_pieces(hostile, self.device.profile.platform, reply.lines, self.cli.prompt())
        return None

    def _stream(self, out: list[str], pieces: Iterator[Piece], rest: list[str]) -> None:
        """Write ``pieces`` paced by their delays; the lines after this one wait until it is done."""
        self.pending[:0] = b"".join(line.encode() + b"\n" for line in rest)
        self._send("".join(out))
        out.clear()
        self.streaming = asyncio.get_running_loop().create_task(self._stream_out(pieces))

    async def _stream_out(self, pieces: Iterator[Piece]) -> None:
        batch: list[str] = []
        size = 0
        for text, delay in pieces:
            if delay or size > _STREAM_BATCH:
                self._send("".join(batch))
                batch, size = [], 0
                await asyncio.sleep(delay)
                while self.chan is not None and self.chan.get_write_buffer_size() > _STREAM_BACKLOG:
                    await asyncio.sleep(0.01)  # the client reads slower than the device prints
                if self.closed:
                    return
            batch.append(text)
            size += len(text)
        self._send("".join(batch))
        self.streaming = None
        self._arrive(b"")

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
