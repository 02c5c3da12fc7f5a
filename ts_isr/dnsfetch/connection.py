"""The transport: one pipelined TCP connection per server (RFC 7766), and failover between servers."""

from __future__ import annotations

import random
import socket
import struct
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar, cast

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
# (or one byte) just inside each timeout costs seconds, not minutes, before the next is tried.
MIN_SERVER_DEADLINE = 30.0
DEADLINE_TIMEOUTS = 6
RECEIVE_SIZE = 1 << 18
_QUICKACK = getattr(socket, "TCP_QUICKACK", None)  # Linux only

T = TypeVar("T")
Account = Callable[[int, Response], None]  # (question index, its answer)


def server_deadline(timeout: float) -> float:
    """How long one server may take for all its answers: 30 s, more only with a long ``dns_timeout``."""
    return max(MIN_SERVER_DEADLINE, DEADLINE_TIMEOUTS * timeout)


def fetch_deadline(timeout: float, servers: int) -> float:
    """How long a whole fetch may take: each server it may ask its own :func:`server_deadline`."""
    return max(1, servers) * server_deadline(timeout)


@dataclass(frozen=True)
class Deadline:
    """An instant on the monotonic clock and the bound it stands for, so a line can name the bound."""

    at: float
    seconds: float
    what: str

    @classmethod
    def after(cls, seconds: float, what: str) -> Deadline:
        return cls(time.monotonic() + seconds, seconds, what)

    def left(self) -> float:
        return self.at - time.monotonic()

    def sooner(self, other: Deadline | None) -> Deadline:
        return self if other is None or self.at <= other.at else other

    def __str__(self) -> str:
        return f"{self.what} ({self.seconds:g}s)"


class DnsConnection:
    """One TCP connection to one server, questions pipelined on it (RFC 7766, 6.2.1.1).

    Every connect, send and receive waits at most ``timeout`` and never past
    ``deadline``: a server that trickles answers, or bytes, cannot stretch
    the bound, as the time left is measured before each system call.
    """

    def __init__(self, host: str, port: int, timeout: float, deadline: Deadline | None = None) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.deadline = deadline or Deadline.after(server_deadline(timeout), "the time one server gets")
        self._buffer = bytearray()
        self._sock = self._open()

    def _wait(self) -> float:
        """How long the next system call may wait; ServerError once the deadline has passed."""
        left = self.deadline.left()
        if left <= 0:
            raise ServerError(f"no whole answer within {self.deadline}")
        return min(self.timeout, left)

    def _open(self) -> socket.socket:
        sock = socket.create_connection((self.host, self.port), timeout=self._wait())
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def _reconnect(self) -> None:
        self.close()
        self._buffer.clear()
        try:
            self._sock = self._open()
        except OSError as exc:
            raise ServerError(f"cannot reconnect ({_reason(exc)})") from None

    def close(self) -> None:
        self._sock.close()

    def _read_exact(self, size: int) -> bytes:
        buffer = self._buffer
        while len(buffer) < size:
            self._sock.settimeout(self._wait())
            if _QUICKACK is not None:
                # Acknowledge at once: a server that sends small answers with Nagle's
                # algorithm would otherwise wait out our delayed ACK (40 ms) each time.
                self._sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
            try:
                chunk = self._sock.recv(max(RECEIVE_SIZE, size - len(buffer)))
            except TimeoutError:
                self._wait()  # the deadline's line when that is what ran out
                raise ServerError(f"no answer within {self.timeout:g}s") from None
            if not chunk:
                raise EOFError
            buffer += chunk
        with memoryview(buffer) as view:
            data = bytes(view[:size])
        del buffer[:size]
        return data

    def _send(self, ident: int, question: bytes) -> None:
        self._sock.settimeout(self._wait())  # sendall's timeout bounds the whole call
        self._sock.sendall(query_wire(ident, question))

    def exchange(
        self,
        questions: Sequence[tuple[dns.name.Name, int]],
        account: Account | None = None,
    ) -> list[Response]:
        """Ask every question, up to :data:`WINDOW` in flight; answers in the order of the questions.

        ``account`` sees each answer as it arrives and may raise to stop (a bound on size).
        A server may close between answers (RFC 7766 lets it): the questions not answered are
        asked again on a new connection.  A close with questions unread is a reset, which
        destroys the answers not yet read; so after a connection that gave nothing, the next
        one gets half as many questions in flight, down to one, which no reset can lose.
        """
        wires = [question_wire(name, rtype) for name, rtype in questions]
        results: list[Response | None] = [None] * len(questions)
        base = random.randrange(0x10000)
        queue = deque(range(len(questions)))
        pending: dict[int, int] = {}
        window, fruitful = WINDOW, False
        while queue or pending:
            try:
                while queue and len(pending) < window:
                    index = queue.popleft()
                    ident = (base + index) & 0xFFFF
                    pending[ident] = index
                    self._send(ident, wires[index])
                (length,) = struct.unpack(">H", self._read_exact(2))
                response = parse_response(self._read_exact(length))
            except (EOFError, ConnectionError) as exc:
                if not fruitful:
                    if window == 1:
                        raise ServerError(f"connection closed ({type(exc).__name__})") from None
                    window //= 2
                queue.extendleft(sorted(pending.values(), reverse=True))
                pending.clear()
                self._reconnect()
                fruitful = False
                continue
            except OSError as exc:
                raise ServerError(f"connection failed ({_reason(exc)})") from None
            index = pending.pop(response.ident, -1)
            if index < 0:
                raise Malformed("answer to a question that was not asked")
            if not echoes(response, wires[index]):
                raise Malformed("answer does not match its question")
            if account is not None:
                account(index, response)
            results[index] = response
            fruitful = True
        return cast(list[Response], results)


def _reason(exc: OSError | ServerError) -> str:
    if isinstance(exc, ServerError):
        return str(exc)
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
    *,
    deadline: Deadline | None = None,
    per_server: float | None = None,
) -> T:
    """``work`` on the first server that does it whole: configured port, then 5353 if unreachable.

    A server that answers but fails (timeout, SERVFAIL, NXDOMAIN...) is not
    asked again on 5353: the port works, the data does not.  Each server gets
    ``per_server`` seconds (default :func:`server_deadline`) for both ports and
    all its answers, and none goes past ``deadline`` (default: the whole
    fetch's :func:`fetch_deadline`); once that has passed, no server is asked.
    """
    overall = deadline or Deadline.after(fetch_deadline(timeout, len(servers)), "the whole fetch's bound")
    seconds = server_deadline(timeout) if per_server is None else per_server
    problems: list[str] = []
    advice: set[str] = set()  # what to do, when every server failed the same way
    for server in servers:
        if overall.left() <= 0:
            problems.append(f"{server} not asked: past {overall}")
            continue
        bound = Deadline.after(seconds, "the time one server gets").sooner(overall)
        ports = [port] if port == fallback_port else [port, fallback_port]
        for attempt in ports:
            try:
                connection = DnsConnection(server, attempt, timeout, bound)
            except (OSError, ServerError) as exc:
                problems.append(f"{server} port {attempt}: {_reason(exc)}")
                advice.add(ServerError.advice)
                continue
            try:
                return work(connection)
            except ServerError as exc:
                problems.append(f"{server} port {attempt}: {exc}")
                advice.add(exc.advice)
                log.warning(f"DNS server {server} port {attempt} failed {what}: {exc}; trying the next")
                break
            finally:
                connection.close()
    raise FetchError(
        f"cannot get {what} from any DNS server ({'; '.join(problems) or 'none configured'}); "
        f"{advice.pop() if len(advice) == 1 else ServerError.advice}"
    )
