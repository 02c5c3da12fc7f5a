"""A DNS-over-TCP proxy on loopback that makes a real server misbehave on purpose.

It forwards whole DNS messages between client and server and can: delay
every message each way (a distant server), swallow the questions for some
names (a part that times out), close the connection after a number of
answers (a server that hangs up), rewrite answers (a server that sends
damaged ones), and count connections (pipelining checks).
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
    ) -> None:
        self.upstream = upstream
        self.delay = one_way_delay
        self.stall = {dns.name.from_text(name) for name in stall_names}
        self.close_after = close_after
        self.rewrite = rewrite
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
        up = self._pump(client, server, questions=True)
        down = self._pump(server, client, questions=False)
        up.join()
        down.join()
        client.close()
        server.close()

    def _pump(self, source: socket.socket, sink: socket.socket, *, questions: bool) -> threading.Thread:
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
                try:
                    sink.sendall(len(message).to_bytes(2, "big") + message)
                except OSError:
                    break
            for sock in (sink, source):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

        threading.Thread(target=read, daemon=True).start()
        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        return writer

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


class SilentServer:
    """Accepts TCP connections and never answers: a server that is up but dead."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._listener = socket.create_server((host, port))
        self.host = host
        self.port = self._listener.getsockname()[1]

    def __enter__(self) -> SilentServer:
        return self

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
