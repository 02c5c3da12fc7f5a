"""The transport: one pipelined TCP connection per server (RFC 7766), and failover between servers."""

from __future__ import annotations

import random
import socket
import struct
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import BinaryIO, TypeVar, cast

import dns.name

from ts_isr.dnsfetch.wire import (
    Malformed,
    Response,
    ServerError,
    echoes,
    parse_response,
    query_wire,
    question_wire,
)
from ts_isr.errors import FetchError
from ts_isr.log import log

FALLBACK_PORT = 5353
# Questions in flight on one connection: enough to fill a long pipe, few enough
# that our queries always fit the server's receive buffer (no send/recv deadlock).
WINDOW = 64
# Hard bound for one server, whatever it trickles: a server that sends one answer
# just inside each timeout costs seconds, not minutes, before the next is tried.
MIN_SERVER_DEADLINE = 30.0
DEADLINE_TIMEOUTS = 6
MAX_FRUITLESS_CONNECTIONS = 3
_QUICKACK = getattr(socket, "TCP_QUICKACK", None)  # Linux only

T = TypeVar("T")


def server_deadline(timeout: float) -> float:
    """How long one server may take for all its answers: 30 s, more only with a long ``dns_timeout``."""
    return max(MIN_SERVER_DEADLINE, DEADLINE_TIMEOUTS * timeout)


class DnsConnection:
    """One TCP connection to one server, questions pipelined on it (RFC 7766, 6.2.1.1)."""

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.deadline_seconds = server_deadline(timeout)
        self.deadline = time.monotonic() + self.deadline_seconds
        self._sock, self._reader = self._open()

    def _open(self) -> tuple[socket.socket, BinaryIO]:
        sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock, sock.makefile("rb", buffering=1 << 18)

    def _reconnect(self) -> None:
        self.close()
        try:
            self._sock, self._reader = self._open()
        except OSError as exc:
            raise ServerError(f"cannot reconnect ({_reason(exc)})") from None

    def close(self) -> None:
        self._reader.close()
        self._sock.close()

    def _read_exact(self, size: int) -> bytes:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise ServerError(f"no whole answer within {self.deadline_seconds:.0f}s")
        self._sock.settimeout(min(self.timeout, remaining))
        if _QUICKACK is not None:
            # Acknowledge at once: a server that sends small answers with Nagle's
            # algorithm would otherwise wait out our delayed ACK (40 ms) each time.
            self._sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
        try:
            data = self._reader.read(size)
        except TimeoutError:
            raise ServerError(f"no answer within {self.timeout:g}s") from None
        if len(data) < size:
            raise EOFError
        return data

    def _send(self, ident: int, question: bytes) -> None:
        self._sock.settimeout(self.timeout)
        self._sock.sendall(query_wire(ident, question))

    def exchange(self, questions: Sequence[tuple[dns.name.Name, int]]) -> list[Response]:
        """Ask every question, up to :data:`WINDOW` in flight; answers in the order of the questions."""
        wires = [question_wire(name, rtype) for name, rtype in questions]
        results: list[Response | None] = [None] * len(questions)
        base = random.randrange(0x10000)
        queue = deque(range(len(questions)))
        pending: dict[int, int] = {}
        fruitless_connections = 0
        while queue or pending:
            try:
                while queue and len(pending) < WINDOW:
                    index = queue.popleft()
                    ident = (base + index) & 0xFFFF
                    pending[ident] = index
                    self._send(ident, wires[index])
                (length,) = struct.unpack(">H", self._read_exact(2))
                response = parse_response(self._read_exact(length))
            except (EOFError, ConnectionError) as exc:
                # The server may close between answers (RFC 7766 lets it, and a reset
                # loses answers not yet read): ask again on a new connection, but only
                # while connections keep giving answers.
                fruitless_connections += 1
                if fruitless_connections > MAX_FRUITLESS_CONNECTIONS:
                    raise ServerError(f"connection closed ({type(exc).__name__})") from None
                queue.extendleft(sorted(pending.values(), reverse=True))
                pending.clear()
                self._reconnect()
                continue
            except OSError as exc:
                raise ServerError(f"connection failed ({_reason(exc)})") from None
            index = pending.pop(response.ident, -1)
            if index < 0:
                raise Malformed("answer to a question that was not asked")
            if not echoes(response, wires[index]):
                raise Malformed("answer does not match its question")
            results[index] = response
            fruitless_connections = 0
        return cast(list[Response], results)


def _reason(exc: OSError) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    return exc.strerror or str(exc) or type(exc).__name__


def with_failover(
    servers: Sequence[str],
    port: int,
    timeout: float,
    work: Callable[[DnsConnection], T],
    what: str,
    fallback_port: int = FALLBACK_PORT,
) -> T:
    """``work`` on the first server that does it whole: configured port, then 5353 if unreachable.

    A server that answers but fails (timeout, SERVFAIL, NXDOMAIN...) is not
    asked again on 5353: the port works, the data does not.
    """
    problems = []
    for server in servers:
        ports = [port] if port == fallback_port else [port, fallback_port]
        for attempt in ports:
            try:
                connection = DnsConnection(server, attempt, timeout)
            except OSError as exc:
                problems.append(f"{server} port {attempt}: {_reason(exc)}")
                continue
            try:
                return work(connection)
            except ServerError as exc:
                problems.append(f"{server} port {attempt}: {exc}")
                log.warning(f"DNS server {server} port {attempt} failed {what}: {exc}; trying the next")
                break
            finally:
                connection.close()
    raise FetchError(
        f"cannot get {what} from any DNS server ({'; '.join(problems) or 'none configured'}); "
        "check dns_server and port in the config, and that this host's public IP is registered"
    )
