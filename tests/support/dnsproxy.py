"""A DNS-over-TCP proxy on loopback that makes a real server misbehave on purpose.

It forwards whole DNS messages between client and server and can: delay
every message each way (a distant server), swallow the questions for some
names (a part that times out), close the connection after a number of
answers (a server that hangs up), rewrite answers (a server that sends
damaged ones), trickle answers a byte at a time (a server that keeps each
read just inside the timeout), reset a connection with more than so many
questions unanswered (a server that takes only a few at once), and count
connections (pipelining checks).
"""

from __future__ import annotations

import contextlib
import queue
import signal
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterable

import dns.name


def _read_exact(sock: socket.socket, size: int) -> bytes | None:
    data = bytearray()
    while len(data) < size:
        try:
            # A network path, not a TCP peer of its own: ACK at once, so the
            # delay is the only thing the proxy adds (no Nagle/delayed-ACK stall).
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
            chunk = sock.recv(size - len(data))
        except OSError:
            return None
        if not chunk:
            return None
        data += chunk
    return bytes(data)


def _read_message(sock: socket.socket) -> bytes | None:
    head = _read_exact(sock, 2)
    if head is None:
        return None
    return _read_exact(sock, struct.unpack(">H", head)[0])


def _question_name(wire: bytes) -> dns.name.Name:
    return dns.name.from_wire(wire, 12)[0]


class DnsTcpProxy:
    """Listens on ``host`` (127.0.0.1; ``port`` 0: chosen by the kernel) and forwards to ``upstream``."""

    def __init__(
        self,
        upstream: tuple[str, int],
        *,
        one_way_delay: float = 0.0,
        stall_names: Iterable[str] = (),
        close_after: int | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        rewrite: Callable[[bytes], bytes] | None = None,
        trickle: float = 0.0,
        max_in_flight: int | None = None,
    ) -> None:
        self.upstream = upstream
        self.delay = one_way_delay
        self.stall = {dns.name.from_text(name) for name in stall_names}
        self.close_after = close_after
        self.rewrite = rewrite
        self.trickle = trickle
        self.max_in_flight = max_in_flight
        self.connections = 0
        self._listener = socket.create_server((host, port))
        self.host = host
        self.port = self._listener.getsockname()[1]
        self._stopping = threading.Event()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> DnsTcpProxy:
        threading.Thread(target=self._accept_loop, daemon=True).start()
        return self

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
                self._sockets.append(client)
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            server = socket.create_connection(self.upstream, timeout=10)
        except OSError:
            client.close()
            return
        server.settimeout(None)
        for sock in (client, server):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._lock:
            self._sockets.append(server)
        in_flight = [0]  # questions forwarded and not yet answered, on this connection
        up = self._pump(client, server, questions=True, in_flight=in_flight)
        down = self._pump(server, client, questions=False, in_flight=in_flight)
        up.join()
        down.join()
        client.close()
        server.close()

    def _pump(
        self, source: socket.socket, sink: socket.socket, *, questions: bool, in_flight: list[int]
    ) -> threading.Thread:
        """A reader that timestamps each message and a writer that sends it when its delay is up."""
        outbox: queue.Queue[tuple[float, bytes] | None] = queue.Queue()

        def read() -> None:
            answers = 0
            while True:
                message = _read_message(source)
                if message is None:
                    break
                if questions and _question_name(message) in self.stall:
                    continue
                with self._lock:
                    in_flight[0] += 1 if questions else -1
                    too_many = self.max_in_flight is not None and in_flight[0] > self.max_in_flight
                if too_many:
                    _reset(source)
                    break
                if not questions and self.rewrite is not None:
                    message = self.rewrite(message)
                outbox.put((time.monotonic() + self.delay, message))
                answers += 0 if questions else 1
                if self.close_after is not None and not questions and answers >= self.close_after:
                    break
            outbox.put(None)

        def write() -> None:
            while (item := outbox.get()) is not None:
                due, message = item
                pause = due - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                if not self._send(sink, len(message).to_bytes(2, "big") + message, trickle=not questions):
                    break
            for sock in (sink, source):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

        threading.Thread(target=read, daemon=True).start()
        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        return writer

    def _send(self, sink: socket.socket, data: bytes, *, trickle: bool) -> bool:
        """Whole, or with ``trickle``: one byte, then a pause, and so on; False once the peer is gone."""
        pieces = [data[i : i + 1] for i in range(len(data))] if trickle and self.trickle else [data]
        for piece in pieces:
            if self._stopping.is_set():
                return False
            try:
                sink.sendall(piece)
            except OSError:
                return False
            if len(pieces) > 1:
                time.sleep(self.trickle)
        return True

    def stop(self) -> None:
        self._stopping.set()
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

    def __enter__(self) -> DnsTcpProxy:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _reset(sock: socket.socket) -> None:
    """Close with a reset (RST), as a server does that drops a connection with data unread."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()


class SilentServer:
    """Accepts TCP connections and never answers: a server that is up but dead."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._listener = socket.create_server((host, port))
        self.host = host
        self.port = self._listener.getsockname()[1]

    def __enter__(self) -> SilentServer:
        return self

    def connected(self) -> int:
        """How many clients connected since the last call (the kernel accepts them; nobody answers)."""
        self._listener.setblocking(False)
        count = 0
        with contextlib.suppress(BlockingIOError):
            while True:
                self._listener.accept()[0].close()
                count += 1
        return count

    def __exit__(self, *exc_info: object) -> None:
        self._listener.close()


def main(argv: list[str]) -> int:
    """``python -m tests.support.dnsproxy UPSTREAM_PORT ONE_WAY_DELAY``: a proxy in its own process,
    so a benchmark's client does not share its interpreter lock; prints its port, stops at SIGTERM."""
    proxy = DnsTcpProxy(("127.0.0.1", int(argv[0])), one_way_delay=float(argv[1])).start()
    print(proxy.port, flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    proxy.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
