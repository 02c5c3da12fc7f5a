"""Each request's total time bounded, whatever the server does.

requests and urllib3 bound each socket operation (connect, one send, one
receive), never a whole request: a server that trickles its answer a byte a
second, or takes in the upload as slowly, keeps every operation under its
timeout for days, and the run holds its lock all that time.  A
:class:`Deadline` shuts the request's sockets down when its time is up, so
whatever send or receive is blocked on them returns at once;
:class:`GuardedAdapter` makes a session's HTTPS connections report their
sockets to the deadline in force (a new connection from its TCP connect on,
so a slow TLS handshake or proxy tunnel counts too; a kept-alive one when it
sends a request).
"""

from __future__ import annotations

import contextlib
import socket
import threading
from contextvars import ContextVar, Token
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

_ACTIVE: ContextVar[Deadline | None] = ContextVar("logupload_deadline", default=None)


class Deadline:
    """While active (``with``), every socket a guarded connection uses is shut down after ``seconds``."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self._sockets: list[Any] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._token: Token[Deadline | None] | None = None

    def __enter__(self) -> Deadline:
        self._token = _ACTIVE.set(self)
        self._timer.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._timer.cancel()
        if self._token is not None:
            _ACTIVE.reset(self._token)

    def watch(self, sock: Any) -> None:
        with self._lock:
            self._sockets.append(sock)
            if self.expired:
                _shut(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                _shut(sock)


def _shut(sock: Any) -> None:
    """End every send and receive blocked on ``sock``, in any thread, now.

    ``socket.shutdown`` of the file descriptor, not ``SSLSocket.shutdown``:
    the TLS state stays intact for the thread still using it, which then sees
    the connection end and raises.
    """
    raw = getattr(sock, "socket", sock)  # urllib3's SSLTransport (TLS inside a TLS proxy) wraps one
    with contextlib.suppress(OSError):
        socket.socket.shutdown(raw, socket.SHUT_RDWR)


def _watch(sock: Any) -> None:
    deadline = _ACTIVE.get()
    if deadline is not None and sock is not None:
        deadline.watch(sock)


class _GuardedConnection(HTTPSConnection):
    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        _watch(sock)
        return sock

    def request(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        _watch(self.sock)
        super().request(*args, **kwargs)


class _GuardedPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedConnection


_POOLS = {"http": HTTPConnectionPool, "https": _GuardedPool}


class GuardedAdapter(HTTPAdapter):
    """requests' adapter whose HTTPS connections (direct or through an HTTP proxy) obey a Deadline."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if not proxy.lower().startswith("socks"):  # SOCKS pools are their own classes: bounded per operation
            manager.pool_classes_by_scheme = _POOLS
        return manager
