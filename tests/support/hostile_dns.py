"""Hostile DNS-over-TCP servers for the fetch's bounds, and a child process that measures the fetch.

:class:`RuleServer` answers from a rule instead of a zone, so an index of a
million names or a policy of gigabytes costs nothing to set up: a rule gives
the record data for a question, and the answer is built by hand (each owner a
pointer to the question, as Knot compresses it).  Pipelined questions are
answered in order, one connection per thread.  The rules: :func:`fanning`
(an index whose every name points at many more) and :func:`fat` (parts that
each fill a 64 KiB answer).

:func:`measured_child` runs Python code in a child process under an address
space cap (so a fetch that does not hold its bounds fails there instead of
taking the machine's memory) and gives back what it printed, its wall time
and its peak resident memory.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import dns.name

from tests.support.dnsproxy import _read_message

A, PTR, TXT = 1, 12, 16
Rule = Callable[[dns.name.Name, int], list[bytes]]  # the record data of the answer, of the question's type
REPO = Path(__file__).resolve().parents[2]


def answer_wire(query: bytes, rdatas: list[bytes]) -> bytes:
    """An authoritative answer to ``query`` holding ``rdatas`` (none: NODATA), framed for TCP."""
    end = dns.name.from_wire(query, 12)[1] + 12 + 4
    rtype = struct.unpack_from(">H", query, end - 4)[0]
    header = query[:2] + struct.pack(">HHHHH", 0x8400, 1, len(rdatas), 0, 0)
    records = b"".join(b"\xc0\x0c" + struct.pack(">HHIH", rtype, 1, 300, len(r)) + r for r in rdatas)
    message = header + query[12:end] + records
    return len(message).to_bytes(2, "big") + message


class RuleServer:
    """A DNS server on loopback TCP whose answers come from ``rule``; counts the questions it got."""

    def __init__(self, rule: Rule, host: str = "127.0.0.1", port: int = 0) -> None:
        self.rule = rule
        self.questions = 0
        self._listener = socket.create_server((host, port))
        self.host = host
        self.port = self._listener.getsockname()[1]
        self._clients: list[socket.socket] = []

    def __enter__(self) -> RuleServer:
        threading.Thread(target=self._accept_loop, daemon=True).start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._listener.close()
        for client in self._clients:
            with contextlib.suppress(OSError):
                client.shutdown(socket.SHUT_RDWR)
            client.close()

    def _accept_loop(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self._clients.append(client)
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        while (query := _read_message(client)) is not None:
            self.questions += 1
            name = dns.name.from_wire(query, 12)[0]
            rtype = struct.unpack_from(">H", query, 12 + len(name.to_wire()))[0]
            try:
                client.sendall(answer_wire(query, self.rule(name, rtype)))
            except OSError:
                return


def fanning(list_name: str, fans: Sequence[int]) -> Rule:
    """``list`` names ``fans[0]`` index names, each of those ``fans[1]`` more, and so on; the names of
    the last level (and any other name) are parts of one address.  (1000, 400): 400,000 parts."""
    root = dns.name.from_text(list_name)

    def rule(name: dns.name.Name, rtype: int) -> list[bytes]:
        label = b"n" if name == root else name.labels[0]
        inside = name == root or (name.parent() == root and label.startswith(b"n"))
        depth = label.count(b"-") + 1 if name != root else 0
        if inside and depth < len(fans):
            if rtype != PTR:
                return []
            joint = b"" if name == root else b"-"
            return [
                dns.name.Name((label + joint + b"%d" % j, *root.labels)).to_wire() for j in range(fans[depth])
            ]
        return [bytes([10, 1, 2, 3])] if rtype == A else []

    return rule


def fat(list_name: str, parts: int, rtype: int) -> Rule:
    """``list`` names ``parts`` parts, each a full answer of ``rtype``: 4,000 addresses, or 240 TXT strings.

    The index's targets point at the question's name (compressed), so 2,200 of them fit one answer.
    """
    root = dns.name.from_text(list_name)
    index = [b"%c" % len(b"p%d" % i) + b"p%d" % i + b"\xc0\x0c" for i in range(parts)]
    body = (
        [bytes([10, i >> 8, i & 255, 1]) for i in range(4000)] if rtype == A else [b"\xff" + b"x" * 255] * 240
    )

    def rule(name: dns.name.Name, asked: int) -> list[bytes]:
        if name == root:
            return index if asked == PTR else []
        return body if asked == rtype else []

    return rule


@dataclass(frozen=True)
class Measured:
    """What a child printed (one JSON line), how long it ran, and its peak resident memory."""

    output: dict
    seconds: float
    peak_mib: float


def measured_child(code: str, *, timeout: float, address_space_mib: int = 1536) -> Measured:
    """Run ``code`` (which prints one JSON line) in a child Python capped at ``address_space_mib``."""

    def cap() -> None:
        limit = address_space_mib << 20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    started = time.monotonic()
    child = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=cap,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        out, err = child.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        child.kill()
        child.communicate()
        raise AssertionError(f"the fetch still ran after {timeout}s") from None
    seconds = time.monotonic() - started
    lines = out.decode().strip().splitlines()
    if child.returncode != 0 or not lines:
        raise AssertionError(f"the child failed ({child.returncode}): {err.decode()[-2000:]}")
    output = json.loads(lines[-1])
    return Measured(output, seconds, output.pop("peak_kib") / 1024)


CHILD_FETCH = """
import json
from ts_isr.errors import FetchError
{setup}
try:
    result = {{"ok": {call}}}
except FetchError as exc:
    result = {{"error": str(exc)}}
except MemoryError:
    result = {{"error": "MemoryError"}}
# VmHWM, not ru_maxrss: that one counts the parent's pages the child had between fork and exec.
with open("/proc/self/status") as status:
    result["peak_kib"] = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
print(json.dumps(result, default=str))
"""


def measured_fetch(setup: str, call: str, *, timeout: float, address_space_mib: int = 1536) -> Measured:
    """``call`` (an expression, after ``setup``) in a measured child: ``ok`` its value, else ``error``."""
    code = CHILD_FETCH.format(setup=setup, call=call)
    return measured_child(code, timeout=timeout, address_space_mib=address_space_mib)
