"""A device that floods or prints without end, during a push or the login: bounded work and memory.

Prompt detection in a push did quadratic work on a line without whitespace (a reviewer's 64 KB of
``x`` took two minutes of CPU, holding the GIL a fleet's other devices need), and netmiko's login
read a flooding device without limit (377 MB in 21 s).  Work is measured here, never time: the
characters the prompt splitter's regexes were given, and the bytes a flooding device got sent.
"""

from __future__ import annotations

import asyncio
import random
import re
import secrets
import sys
import threading
from pathlib import Path

import asyncssh
import pytest

from tests.support.knot import KnotServer, make_zone_records
from tests.support.tools import free_port
from tests.support.upload import ZONE, Run, odd_hosts
from ts_isr.errors import DeviceMisbehaved, Exit
from ts_isr.targets.cisco import Device, Session, Stream
from ts_isr.targets.cisco.bounds import push_budget
from ts_isr.targets.cisco.ios import IosDialect
from ts_isr.targets.cisco.stream import check_bounds

# The pattern the push used to search everything buffered with: the reference for what a prompt is.
OLD_PROMPT = re.compile(r"[^\s#>()]+\(config[\w-]*\)#")
LOGIN_BYTES = 1 << 20
MEMORY_LIMIT_MB = 150.0  # a run peaks near 50 MB; the old code read the flood for 2 x ssh_timeout


def records_by_old_pattern(chunks: list[str]) -> list[str]:
    buffer, records = "", []
    for chunk in chunks:
        buffer += chunk
        while (found := OLD_PROMPT.search(buffer)) is not None:
            records.append(buffer[: found.start()])
            buffer = buffer[found.end() :]
    return records


def test_prompts_are_found_where_the_old_pattern_found_them():
    from ts_isr.targets.cisco.prompts import PromptSplitter

    pieces = ["R1", "x", "(", "(config", "-net", ")", "#", ")#", ">", "%", "host 192.0.2.1"]
    pieces += [" ", "\r\n", "\n", "\r", "\xa0", "é", "R1(config-network-group)#"]
    rng = random.Random(16)
    for _ in range(20_000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 30)))
        cuts = sorted(rng.sample(range(len(text) + 1), min(len(text) + 1, rng.randint(0, 5))))
        chunks = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)])]
        splitter, found = PromptSplitter(), []
        for chunk in chunks:
            found += splitter.feed(chunk)
        assert found == records_by_old_pattern(chunks), chunks


class Counting:
    """A compiled pattern that adds up how many characters it was given to search or match."""

    def __init__(self, pattern: re.Pattern[str], tally: list[int]) -> None:
        self.pattern = pattern
        self.tally = tally  # shared by the patterns of one module

    def search(self, text: str, pos: int = 0, endpos: int = sys.maxsize) -> re.Match[str] | None:
        found = self.pattern.search(text, pos, endpos)
        self.tally[0] += (found.end() if found else min(endpos, len(text))) - pos
        return found

    def match(self, text: str, pos: int = 0, endpos: int = sys.maxsize) -> re.Match[str] | None:
        self.tally[0] += min(endpos, len(text)) - pos  # a greedy match may read to endpos
        return self.pattern.match(text, pos, endpos)


def test_prompt_detection_reads_each_character_a_bounded_number_of_times(monkeypatch):
    """Long lines without whitespace, trickled, between echoes and prompts: work stays linear."""
    from ts_isr.targets.cisco import prompts

    tally = [0]
    for name, value in vars(prompts).copy().items():
        if isinstance(value, re.Pattern):
            monkeypatch.setattr(prompts, name, Counting(value, tally))
    prompt = "R1(config-network-group)#"
    lines = [f"host 192.0.2.{n}" for n in range(1, 41)]
    output = "".join(f"{line}\r\n{'x' * 8000}\r\n% Invalid input\r\n{prompt}" for line in lines)
    stream = Stream.of(lines)
    stream.take(0.0)
    feeds = 0
    for start in range(0, len(output), 256):
        stream.feed(output[start : start + 256], 0.0)
        feeds += 1
    assert stream.finished and len(stream.errors) == len(lines) and not stream.overlong
    assert tally[0] <= 2 * len(output) + prompts._MARK_MAX * feeds, (tally[0], len(output))


def test_a_line_without_end_fails_the_push_in_one_line(tmp_path):
    """The reviewer's push: 4 KiB of ``x`` at a time.  The feed stops past a few KB, and the push fails."""
    device = Device("192.0.2.7", 22, "u", None, None, tmp_path / "known_hosts", 5.0)
    session = Session(IosDialect(), device)
    stream = Stream.of(["host 192.0.2.1"])
    stream.take(0.0)
    fed = 0
    while fed < 200 * 1024 and not stream.overlong:
        stream.feed("x" * 4096, 0.0)
        fed += 4096
    assert fed <= 12 * 1024, "the line was cut off after a few KB"
    stream.feed("x" * 200 * 1024 + "\r\nR1(config-network-group)#", 0.0)
    assert stream.done == 0, "nothing more is read once the line is too long"
    said = r"^192.0.2.7 printed more than 8192 bytes without a line break while pushing 1 lines to \"G\""
    with pytest.raises(DeviceMisbehaved, match=said):
        check_bounds(session, stream, push_budget(1, 5.0), 0.0, 1, 'pushing 1 lines to "G"')
    assert session.broken, "nothing more is sent to it, not even `end`"


class FloodDevice:
    """An SSH server that logs in like a small IOS device, then floods its terminal without end:
    right after authentication (``after="login"``) or once given the enable secret (``"enable"``).

    The lab device has no such mode; this one needs no more than a prompt, echoes and enable.  It
    writes only as fast as the client reads (SSH flow control), so ``sent`` bounds what was read.
    """

    host = "127.0.0.1"
    username = "tsadmin"
    platform = "ios"

    def __init__(self, after: str) -> None:
        self.after = after
        self.password = "pw-" + secrets.token_hex(6)
        self.secret = "en-" + secrets.token_hex(6)
        self.port = free_port()
        self.key = asyncssh.generate_private_key("ssh-ed25519")
        self.sent = 0
        self.sessions = 0
        self.closed = threading.Event()  # the client ended its connection
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._serve()), daemon=True)

    def known_hosts_line(self) -> str:
        algorithm, key = self.key.export_public_key().decode().split()[:2]
        return f"[{self.host}]:{self.port} {algorithm} {key}"

    def __enter__(self) -> FloodDevice:
        self._thread.start()
        assert self._ready.wait(30), "the flooding device did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)

    async def _serve(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        device = self

        class Server(asyncssh.SSHServer):
            def connection_lost(self, exc: Exception | None) -> None:
                device.closed.set()

            def begin_auth(self, username: str) -> bool:
                return True

            def password_auth_supported(self) -> bool:
                return True

            def validate_password(self, username: str, password: str) -> bool:
                return username == device.username and password == device.password

        server = await asyncssh.create_server(
            Server,
            self.host,
            self.port,
            server_host_keys=[self.key],
            process_factory=self._shell,
            encoding=None,
            line_editor=False,
            allow_scp=False,
        )
        self._ready.set()
        await self._stop.wait()
        server.close()
        await server.wait_closed()

    async def _shell(self, process: asyncssh.SSHServerProcess) -> None:
        self.sessions += 1
        try:
            if self.after == "login":
                await self._flood(process)
            process.stdout.write(b"\r\nR1>")
            enabling = False
            while line := await process.stdin.readline():
                typed = line.strip()
                if enabling:
                    await self._flood(process)
                enabling = typed == b"enable"
                process.stdout.write(b"enable\r\nPassword: " if enabling else typed + b"\r\nR1>")
        except (OSError, asyncssh.Error):
            pass  # the client went away
        finally:
            process.exit(0)

    async def _flood(self, process: asyncssh.SSHServerProcess) -> None:
        batch = b"".join(b"*Mar  1 00:00:00.%03d: %%SYS-7-FLOOD: debug output\r\n" % n for n in range(1000))
        while True:
            process.stdout.write(batch)
            self.sent += len(batch)
            await process.stdout.drain()


@pytest.mark.parametrize(
    "after, said",
    [("login", "while logging in"), ("enable", "while entering privileged mode")],
)
def test_a_device_that_floods_at_login_fails_the_login_in_bounded_memory(tmp_path, after, said):
    with FloodDevice(after) as flood:
        known_hosts = Path(tmp_path) / "known_hosts"
        known_hosts.write_text(flood.known_hosts_line() + "\n")
        login = (flood.host, flood.port, flood.username, flood.password, flood.secret)
        session = Session(IosDialect(), Device(*login, known_hosts, 5.0))
        message = rf"^127.0.0.1 sent more than {LOGIN_BYTES} bytes {said} \(a login shows a banner"
        with pytest.raises(DeviceMisbehaved, match=message):
            session.connect()
        session.close()
        assert flood.closed.wait(30), "the session was closed, not left open"
        assert flood.sessions == 1
        assert flood.sent < LOGIN_BYTES + (8 << 20), "read no more than the budget (and SSH's window)"


@pytest.fixture(scope="module")
def knot(tmp_path_factory):
    server = KnotServer(tmp_path_factory.mktemp("knot"))
    server.add_zone(ZONE, make_zone_records(a={"small": odd_hosts("198.18", 3)}))
    server.start()
    yield server
    server.stop()


def test_upload_rules_against_a_device_flooding_at_login_fails_in_one_line(tmp_path, knot, capsys):
    """As cron runs it: a child process, its peak memory measured; it ends by itself, failed."""
    with FloodDevice("login") as flood:
        run = Run(tmp_path, knot, flood, capsys)
        result = run.measured(timeout=120, block_list=f"small.{ZONE}", ssh_timeout=5)
        with capsys.disabled():
            print(f"\nlogin flood: exit {result.code}, peak {result.peak_mb:.0f} MB, sent {flood.sent} B")
        assert result.code == Exit.FAILED, result.out[-2000:]
        errors = [line for line in result.out.splitlines() if "ERROR" in line]
        assert len(errors) == 1, result.out[-2000:]
        assert f"127.0.0.1 sent more than {LOGIN_BYTES} bytes while logging in" in errors[0]
        assert result.peak_mb < MEMORY_LIMIT_MB
