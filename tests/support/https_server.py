"""A real HTTPS log server on 127.0.0.1 for tests: it records what it accepts and fails on request.

Certificates come from trustme: each server has its own CA unless one is
given, so a second server is "a certificate from the wrong CA" for a client
that trusts only the first one's ``ca_file``.  It accepts the project's
multipart parts (see ts_isr.logupload) and raw gzip bodies (``curl
--data-binary @-``), inflates them and keeps what it received, in order.
"""

from __future__ import annotations

import hashlib
import re
import select
import socket
import ssl
import struct
import sys
import threading
import time
import traceback
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import trustme


class Failure(StrEnum):
    """How the server fails the next request(s)."""

    SERVER_ERROR = "500"
    TOO_LARGE = "413"
    HANG = "hang"  # reads the body, then answers nothing until the client gives up
    RESET = "reset"  # reads 1 KiB of the body, then resets the TCP connection
    REDIRECT = "302"  # a redirect that a careless client would follow with a GET and call success
    # Hostile servers (issue 16): each would hold a run, and its lock, forever or eat the host's memory.
    HUGE_BODY = "huge body"  # accepts the part, then answers 200 with a 3 GB body, as fast as it can
    TRICKLE = "endless trickled body"  # reads the part, answers 200, then one body byte a second
    SLOW_READER = "slow reader"  # takes in the upload 4 KiB at a time, 80 KB/s, behind a small window
    CONTROL_CHARACTERS = "control characters"  # a 302 with ESC and BEL in its reason and Location


#: What HUGE_BODY announces and sends, and what TRICKLE announces.
HUGE = 3_000_000_000
#: What CONTROL_CHARACTERS puts in its reason phrase and (after the server's address) its Location.
HOSTILE_REASON = "Found\x1b]0;owned\x07\x1b[2J"
HOSTILE_PATH = "/\x1b[31melsewhere\x07"


@dataclass(frozen=True)
class Upload:
    """One accepted request: its form fields, file name and inflated content."""

    fields: dict[str, str]
    file_name: str | None
    data: bytes | None  # None when the server was made with keep_data=False
    size: int
    sha256: str
    path: str


class LogServer:
    """HTTPS on 127.0.0.1, a free port, a thread per connection; use as a context manager.

    ``url`` is ``https://127.0.0.1:PORT/logupload``; ``ca_file`` is the PEM of
    the CA that signed the server's certificate.  ``uploads`` lists accepted
    requests in order; ``attempts`` counts every request, failed ones too.
    ``delay`` seconds pass before each success is answered (a slow server); ``during``, when set,
    is called then too, while the client waits for the answer.
    """

    def __init__(
        self,
        directory: Path,
        *,
        ca: trustme.CA | None = None,
        keep_data: bool = True,
        hang_seconds: float = 60.0,
        delay: float = 0.0,
        keepalive: float | None = None,
    ) -> None:
        self.ca = ca or trustme.CA()
        directory.mkdir(parents=True, exist_ok=True)
        self.ca_file = directory / f"ca-{id(self)}.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_file))
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ca.issue_cert("127.0.0.1", "localhost").configure_cert(self.context)
        self.keep_data = keep_data
        self.hang_seconds = hang_seconds
        self.delay = delay
        #: A request arriving on a connection idle longer than this is reset, as a server does
        #: whose keep-alive timer fires while the request is on its way (Apache's default is 5 s).
        self.keepalive = keepalive
        self.uploads: list[Upload] = []
        self.during: Callable[[], None] | None = None
        self.attempts = 0
        #: Unexpected failures of the server itself (not the handshakes and resets tests provoke).
        self.errors: list[str] = []
        self._failures: list[Failure | None] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd = _Server(self)
        self.port = self._httpd.server_address[1]
        self.url = f"https://127.0.0.1:{self.port}/logupload"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="log-server", daemon=True
        )

    def fail(self, failure: Failure, times: int = 1, after: int = 0) -> None:
        """Let ``after`` requests succeed, fail the ``times`` next ones that way, then succeed again."""
        with self._lock:
            self._failures.extend([None] * after + [failure] * times)

    def received(self) -> bytes:
        """Everything accepted, inflated, in the order it arrived."""
        return b"".join(upload.data or b"" for upload in self.uploads)

    def start(self) -> LogServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=10)

    def __enter__(self) -> LogServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _next(self) -> Failure | None:
        with self._lock:
            self.attempts += 1
            return self._failures.pop(0) if self._failures else None

    def _accept(self, upload: Upload) -> None:
        with self._lock:
            self.uploads.append(upload)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, owner: LogServer) -> None:
        self.owner = owner
        super().__init__(("127.0.0.1", 0), _Handler)

    def finish_request(self, request: socket.socket, client_address: tuple[str, int]) -> None:
        # The TLS handshake runs in the connection's own thread: a client that
        # refuses the certificate must not stall the server.
        request.settimeout(30)
        tls = self.owner.context.wrap_socket(request, server_side=True)
        super().finish_request(tls, client_address)

    def handle_error(self, request: object, client_address: tuple[str, int]) -> None:
        """Refused handshakes and resets are what the tests provoke: not worth a traceback.

        Anything else is the server's own failure: kept, so that a test can show it."""
        exc = sys.exc_info()[1]
        if not isinstance(exc, (ssl.SSLError, ConnectionError, TimeoutError)):
            self.owner.errors.append("".join(traceback.format_exception(exc)))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the tests assert on what was recorded."""

    def do_POST(self) -> None:
        owner = self.server.owner
        idle_since = getattr(self, "answered_at", None)
        if owner.keepalive is not None and idle_since and time.monotonic() - idle_since > owner.keepalive:
            self._reset()
            return
        failure = owner._next()
        if failure is Failure.SLOW_READER:
            self._read_slowly(int(self.headers.get("Content-Length") or 0))
            return
        if failure is Failure.RESET:
            self.rfile.read(min(1024, int(self.headers.get("Content-Length") or 1024)))
            self._reset()
            return
        body = self._body()
        if failure is Failure.HANG:
            owner._stopping.wait(owner.hang_seconds)
            self.close_connection = True
            return
        if failure is Failure.REDIRECT:
            self.send_response(302)
            self.send_header("Location", f"https://127.0.0.1:{owner.port}/elsewhere")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if failure is Failure.CONTROL_CHARACTERS:
            self.send_response(302, HOSTILE_REASON)
            self.send_header("Location", f"https://127.0.0.1:{owner.port}{HOSTILE_PATH}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if failure is Failure.TRICKLE:
            self._stream(b"x", 1.0)
            return
        if failure is not None and failure is not Failure.HUGE_BODY:
            self._answer(int(failure.value), b"failing as told\n")
            return
        try:
            upload = self._parse(body)
        except ValueError as exc:
            self._answer(400, f"{exc}\n".encode())
            return
        if owner.delay:
            owner._stopping.wait(owner.delay)
        if owner.during is not None:
            owner.during()
        owner._accept(upload)
        if failure is Failure.HUGE_BODY:
            self._stream(b"x" * (1 << 20), 0.0)
            return
        self._answer(200, b'{"status": "ok"}\n')

    def do_GET(self) -> None:
        """The upload form's page: a client that follows a redirect with a GET lands here, on a 200."""
        self._answer(200, b"<html><body>log upload form</body></html>\n")

    def _answer(self, status: int, text: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(text)))
        self.end_headers()
        self.wfile.write(text)
        self.answered_at = time.monotonic()

    def _stream(self, block: bytes, pause: float) -> None:
        """Answer 200 with a body of :data:`HUGE` bytes: ``block`` after ``block``, ``pause`` s apart,
        until the client goes, the server stops, or (when trickling) ``hang_seconds`` have passed."""
        owner = self.server.owner
        self.close_connection = True
        self.send_response(200)
        self.send_header("Content-Length", str(HUGE))
        self.end_headers()
        until = time.monotonic() + owner.hang_seconds if pause else float("inf")
        sent = 0
        try:
            while sent < HUGE and time.monotonic() < until and not owner._stopping.wait(pause):
                self.wfile.write(block)
                self.wfile.flush()
                sent += len(block)
        except OSError:
            return  # the client hung up: what a bounded client does

    def _read_slowly(self, length: int) -> None:
        """Take the body in 4 KiB every 0.05 s behind an 8 KiB receive buffer, so the client's sends
        block and each one still succeeds; a whole part is answered 200 and kept, as a slow link's."""
        owner = self.server.owner
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
        until = time.monotonic() + owner.hang_seconds
        pieces = []
        try:
            while length > 0 and time.monotonic() < until and not owner._stopping.wait(0.05):
                piece = self.rfile.read1(min(4096, length))
                if not piece:
                    return
                pieces.append(piece)
                length -= len(piece)
        except OSError:
            return
        self.close_connection = True
        if length == 0:
            owner._accept(self._parse(b"".join(pieces)))
            self._answer(200, b'{"status": "ok"}\n')

    def _reset(self) -> None:
        """Drop the connection with a TCP reset, the client's request unanswered."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            pieces = []
            while size := int(self.rfile.readline().split(b";")[0], 16):
                pieces.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass
            return b"".join(pieces)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _parse(self, body: bytes) -> Upload:
        content_type = self.headers.get("Content-Type", "")
        fields: dict[str, str] = {}
        file_name = None
        packed = body
        boundary = re.search(r"boundary=\"?([^\";]+)", content_type)
        if content_type.startswith("multipart/form-data") and boundary:
            packed = b""
            for name, filename, content in _multipart(body, boundary.group(1).encode()):
                if filename is None:
                    fields[name] = content.decode()
                else:
                    file_name, packed = filename, content
        inflater = zlib.decompressobj(wbits=31)
        digest = hashlib.sha256()
        size = 0
        kept = []
        for start in range(0, len(packed), 1 << 20):
            data = inflater.decompress(packed[start : start + (1 << 20)])
            digest.update(data)
            size += len(data)
            if self.server.owner.keep_data:
                kept.append(data)
        if not inflater.eof:
            raise ValueError("the upload is not one whole gzip stream")
        data = b"".join(kept) if self.server.owner.keep_data else None
        return Upload(fields, file_name, data, size, digest.hexdigest(), self.path)


class ConnectProxy:
    """An HTTP CONNECT proxy on 127.0.0.1 (free port) that tunnels only to 127.0.0.1 and records targets.

    ``url`` is ``http://127.0.0.1:PORT``; ``targets`` lists each ``host:port`` asked for.
    """

    def __init__(self) -> None:
        self.targets: list[str] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._thread = threading.Thread(target=self._serve, name="connect-proxy", daemon=True)

    def __enter__(self) -> ConnectProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        self._listener.close()
        self._thread.join(timeout=10)

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._tunnel, args=(client,), daemon=True).start()

    def _tunnel(self, client: socket.socket) -> None:
        with client:
            head = b""
            while b"\r\n\r\n" not in head:
                data = client.recv(4096)
                if not data:
                    return
                head += data
            method, target = head.split(b" ", 2)[:2]
            host, _, port = target.decode().rpartition(":")
            if method != b"CONNECT" or host != "127.0.0.1":
                client.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
                return
            self.targets.append(target.decode())
            with socket.create_connection((host, int(port)), timeout=30) as upstream:
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                _pipe(client, upstream)


def _pipe(one: socket.socket, other: socket.socket) -> None:
    """Copy bytes both ways until either side closes."""
    peers = {one: other, other: one}
    while True:
        readable, _, _ = select.select(list(peers), [], [], 30)
        if not readable:
            return
        for sock in readable:
            data = sock.recv(1 << 16)
            if not data:
                return
            peers[sock].sendall(data)


def _multipart(body: bytes, boundary: bytes) -> list[tuple[str, str | None, bytes]]:
    """(name, filename, content) of each part of a multipart/form-data body."""
    parts = []
    for chunk in body.split(b"--" + boundary)[1:]:
        if chunk.startswith(b"--"):
            break
        head, _, content = chunk[2:].partition(b"\r\n\r\n")
        disposition = head.decode("latin-1")
        name = re.search(r'(?<![a-z])name="([^"]*)"', disposition)
        filename = re.search(r'filename="([^"]*)"', disposition)
        if name is None:
            raise ValueError("a multipart part has no name")
        parts.append((name.group(1), filename.group(1) if filename else None, content[:-2]))
    return parts


@pytest.fixture(name="server")
def server_fixture(tmp_path: Path):
    """A running :class:`LogServer` for one test (import this into a test module to use ``server``)."""
    with LogServer(tmp_path / "server") as running:
        yield running


@pytest.fixture(name="logfile")
def logfile_fixture(tmp_path: Path) -> Path:
    """Where syslog-ng would write the device's log: ``device.log`` in a folder of its own."""
    path = tmp_path / "log" / "device.log"
    path.parent.mkdir()
    return path
