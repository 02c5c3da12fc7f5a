"""Upload a device's syslog files to ThreatSTOP over HTTPS: every line once, none lost.

Shared by ``loguploadclient`` (Cisco) and ``tsadmin logs`` (Linux host): it
knows files, a URL and a device's identity; of a config it only reads the
upload keys both schemas share (:func:`upload_configured`).

How one run goes (:func:`upload_logs`, under a lock):

1. **Rotate first.**  The live log (``logfile``, written by syslog-ng) is
   renamed into the spool directory ``<logfile>.spool/`` (same filesystem,
   so the rename is atomic) under a UTC time stamp, e.g.
   ``device.log.20261121T122242.123456Z``; then the reopen command
   (default ``syslog-ng-ctl reopen``; SIGUSR1 does the same) makes
   syslog-ng close it and start a new live file.  Lines that arrive in
   between still land in the renamed file, which is uploaded only once no
   process holds it open (checked in ``/proc``), so a file being written is
   never sent half.  We rotate ourselves, rather than wait for logrotate,
   so that each run sends everything logged up to that moment.
2. **logrotate's files too.**  Files logrotate rotated beside the live log
   (``device.log.1``, ``device.log-20261121``, ``device.log.2.gz``) are
   moved into the spool the same way; gzip ones are inflated there first.
3. **Upload, oldest first,** in parts of at most ``part_size`` bytes
   (5 MB by default, the vendor's web form's limit) cut after a newline.
   A part counts as sent only when the server answers 2xx; its end offset
   is then recorded in ``<state_dir>/logupload/<file>.json`` so a later run
   resumes after the last confirmed part.  Any failure stops the run and
   leaves the rest for the next one; nothing is ever deleted unsent.
4. **Keep, then expire.**  A fully sent file moves to ``<spool>/uploaded/``
   (its mtime set to the upload time) and is deleted ``keep_days`` later.

Wire format: the vendor does not publish one, so the project chose this; it
lives only in this module's "Wire format" section (FIELDS, FILE_FIELD,
FILE_CONTENT_TYPE, form_fields, part_file_name).
One HTTPS ``POST`` to ``url`` per part, ``multipart/form-data`` with the
text fields ``device_ip`` (the address ThreatSTOP knows the device by),
``device_id`` (its identifier), ``file_name`` (the spool file's name),
``part`` (1, 2, ...), ``offset`` and ``length`` (the part's bytes in the
uncompressed file), ``sha256`` (of the uncompressed part), ``final``
(``yes`` on a file's last part), then the file field ``logfile``:
``<file_name>.part<N>.gz``, ``application/gzip``.  ``file_name`` with
``offset`` identifies a part, so a server can drop a part it already has
(one sent again after its answer was lost).  Redirects are refused: a 302
turned into a GET would look like a confirmation.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import re
import secrets
import shlex
import shutil
import ssl
import stat
import subprocess
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit

import requests

from ts_isr.errors import ConfigError, TsError
from ts_isr.files import write_atomic
from ts_isr.lock import run_lock
from ts_isr.log import add_secret, log
from ts_isr.tools import find_tool

DEFAULT_PART_SIZE = 5_000_000
DEFAULT_REOPEN_COMMAND = ("syslog-ng-ctl", "reopen")
CHUNK = 1 << 20
# Compressed parts stay in memory up to this size, then spill to a temporary file.
PACKED_IN_MEMORY = 16 << 20


class UploadError(TsError):
    """The upload failed; what was confirmed stays recorded and the rest waits for the next run."""


# --- Wire format (the project's choice; see the module docstring) -------------------------------
FIELDS = ("device_ip", "device_id", "file_name", "part", "offset", "length", "sha256", "final")
FILE_FIELD = "logfile"
FILE_CONTENT_TYPE = "application/gzip"


@dataclass(frozen=True)
class Device:
    """Who the logs belong to: ThreatSTOP attributes them by the registered address."""

    address: str
    identifier: str


@dataclass(frozen=True)
class Part:
    """Bytes ``start``..``end`` of one spool file, the ``number``-th part sent of it."""

    file_name: str
    number: int
    start: int
    end: int
    final: bool


def form_fields(device: Device, part: Part, sha256: str) -> dict[str, str]:
    """The text fields sent with one part, in :data:`FIELDS` order."""
    values = (
        device.address,
        device.identifier,
        part.file_name,
        str(part.number),
        str(part.start),
        str(part.end - part.start),
        sha256,
        "yes" if part.final else "no",
    )
    return dict(zip(FIELDS, values, strict=True))


def part_file_name(part: Part) -> str:
    return f"{part.file_name}.part{part.number}.gz"


# --- Pure planning ----------------------------------------------------------------------------


def line_cut(read_at: Callable[[int, int], bytes], start: int, size: int, part_size: int) -> int:
    """End offset of the part that starts at ``start``: after the last newline within ``part_size``.

    ``read_at(offset, length)`` reads the file; only the tail of the window is
    read, backwards, so a part is never held in memory.  A line longer than
    ``part_size`` is cut at the limit: it cannot fit any other way.
    """
    limit = start + part_size
    if limit >= size:
        return size
    position = limit
    while position > start:
        window_start = max(start, position - CHUNK)
        newline = read_at(window_start, position - window_start).rfind(b"\n")
        if newline >= 0:
            return window_start + newline + 1
        position = window_start
    return limit


_STAMP = "%Y%m%dT%H%M%S.%fZ"


def spool_name(log_name: str, when: float, taken: Callable[[str], bool]) -> str:
    """``<log_name>.<UTC time stamp>`` (``-1``, ``-2``... if taken): names sort oldest first."""
    stamp = datetime.fromtimestamp(when, UTC).strftime(_STAMP)
    name = f"{log_name}.{stamp}"
    serial = 0
    while taken(name):
        serial += 1
        name = f"{log_name}.{stamp}-{serial}"
    return name


def is_spool_name(log_name: str, name: str) -> bool:
    return re.fullmatch(re.escape(log_name) + r"\.\d{8}T\d{6}\.\d{6}Z(?:-\d+)?", name) is not None


def is_rotated_name(log_name: str, name: str) -> bool:
    """logrotate's names for ``log_name``: ``.1``, ``.2.gz``, ``-20261121``, ``-20261121.gz``..."""
    return re.fullmatch(re.escape(log_name) + r"[.-]\d[\d._-]*(?:\.gz)?", name) is not None


# --- The spool: files and their progress --------------------------------------------------------


@dataclass(frozen=True)
class Progress:
    """How much of a spool file the server has confirmed."""

    offset: int = 0
    parts: int = 0


class LogSpool:
    """The live log, its spool of rotated files, and the record of what the server confirmed."""

    def __init__(
        self,
        logfile: Path,
        state_dir: Path,
        *,
        reopen_command: Sequence[str] | None = DEFAULT_REOPEN_COMMAND,
        spool_dir: Path | None = None,
        close_timeout: float = 10.0,
    ) -> None:
        self.logfile = logfile
        self.spool_dir = spool_dir or logfile.parent / f"{logfile.name}.spool"
        self.uploaded_dir = self.spool_dir / "uploaded"
        self.progress_dir = state_dir / "logupload"
        self.lock_path = state_dir / "logupload.lock"
        self.reopen_command = tuple(reopen_command or ())
        self.close_timeout = close_timeout

    def _new_path(self, when: float) -> Path:
        """A free spool name: neither it nor its packed form (``.gz``, inflated later into it) exists."""
        return self.spool_dir / spool_name(
            self.logfile.name,
            when,
            lambda n: (self.spool_dir / n).exists() or (self.spool_dir / f"{n}.gz").exists(),
        )

    def _make_dirs(self) -> None:
        for directory in (self.spool_dir, self.uploaded_dir, self.progress_dir):
            directory.mkdir(parents=True, exist_ok=True, mode=0o750)

    def rotate(self) -> Path | None:
        """Move the live log into the spool and make its writer reopen; None if it is empty."""
        try:
            size = self.logfile.stat().st_size
        except FileNotFoundError:
            size = 0
        if size == 0:
            log.info(f"No new lines in {self.logfile}.")
            return None
        self._make_dirs()
        target = self._new_path(time.time())
        try:
            os.rename(self.logfile, target)
        except OSError as exc:
            raise UploadError(
                f"cannot move {self.logfile} into {self.spool_dir}: {exc.strerror}; "
                "run as the user that owns the log directory (root)"
            ) from None
        try:
            self.reopen()
        except UploadError:
            self._put_back(target)
            raise
        log.info(f"Rotated {self.logfile} to {target.name}.")
        return target

    def reopen(self) -> None:
        """Make the writer close renamed files and open the live log again (no-op without a command)."""
        if not self.reopen_command:
            return
        tool = find_tool(self.reopen_command[0])
        shown = shlex.join(self.reopen_command)
        if tool is None:
            raise UploadError(
                f"log reopen command not found: {shown}; install syslog-ng or set log_reopen_command"
            )
        try:
            done = subprocess.run(
                [tool, *self.reopen_command[1:]],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise UploadError(f"'{shown}' did not finish in 60 s; check that syslog-ng runs") from None
        if done.returncode != 0:
            detail = (done.stderr or done.stdout).strip().splitlines()
            raise UploadError(
                f"'{shown}' failed (exit {done.returncode}: {detail[0] if detail else 'no message'}); "
                "start syslog-ng or set log_reopen_command; nothing was lost or sent"
            )

    def _put_back(self, target: Path) -> None:
        """Undo a rotation whose reopen failed, unless the writer already made a new live file."""
        try:
            os.link(target, self.logfile)
        except OSError:
            return
        target.unlink()

    def adopt_rotated(self) -> list[Path]:
        """Move logrotate's rotated files into the spool (gzip ones inflated), oldest first."""
        if not self.logfile.parent.is_dir():
            log.warning(f"{self.logfile.parent} does not exist: is syslog-ng receiving the device's syslog?")
            return []
        found = [
            path
            for path in self.logfile.parent.iterdir()
            if is_rotated_name(self.logfile.name, path.name) and path.is_file()
        ]
        adopted = []
        for path in sorted(found, key=lambda p: (p.stat().st_mtime, p.name)):
            if _held_open(path):
                log.info(f"{path.name} is still being written by logrotate; it goes on the next run.")
                continue
            self._make_dirs()
            target = self._new_path(path.stat().st_mtime)
            if path.name.endswith(".gz"):
                target = target.with_name(target.name + ".gz")
            os.rename(path, target)
            log.info(f"Took logrotate's {path.name} as {target.name}.")
            adopted.append(target)
        self._inflate_all()
        return adopted

    def _inflate_all(self) -> None:
        """``X.gz`` in the spool becomes ``X``; the .gz is removed only once ``X`` is whole on disk."""
        if not self.spool_dir.is_dir():
            return
        for packed in sorted(self.spool_dir.glob("*.gz")):
            plain = packed.with_name(packed.name[: -len(".gz")])
            if plain.exists():
                if _same_inflated(packed, plain):
                    packed.unlink()  # a run stopped between renaming X into place and removing X.gz
                    continue
                moved = self._new_path(packed.stat().st_mtime)
                os.rename(packed, moved.with_name(moved.name + ".gz"))
                packed, plain = moved.with_name(moved.name + ".gz"), moved
            partial = plain.with_name(plain.name + ".tmp")
            mode = stat.S_IMODE(packed.stat().st_mode)
            try:
                with gzip.open(packed, "rb") as source, os.fdopen(_create(partial, mode), "wb") as sink:
                    shutil.copyfileobj(source, sink, CHUNK)
                    sink.flush()
                    os.fsync(sink.fileno())
            except (OSError, EOFError, zlib.error) as exc:
                partial.unlink(missing_ok=True)
                log.warning(f"{packed} is not a whole gzip file ({exc}); it is kept and not uploaded")
                continue
            os.rename(partial, plain)
            packed.unlink()

    def pending(self) -> list[Path]:
        """Spool files not yet fully confirmed, oldest first."""
        if not self.spool_dir.is_dir():
            return []
        names = sorted(p.name for p in self.spool_dir.iterdir() if is_spool_name(self.logfile.name, p.name))
        return [self.spool_dir / name for name in names]

    def wait_closed(self, path: Path) -> bool:
        """True once no process has ``path`` open (its writer reopened); False after close_timeout."""
        deadline = time.monotonic() + self.close_timeout
        while _held_open(path):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True

    def _progress_path(self, path: Path) -> Path:
        return self.progress_dir / f"{path.name}.json"

    def progress(self, path: Path) -> Progress:
        try:
            data = json.loads(self._progress_path(path).read_text())
            return Progress(int(data["offset"]), int(data["parts"]))
        except FileNotFoundError:
            return Progress()
        except (ValueError, KeyError, TypeError):
            raise UploadError(
                f"{self._progress_path(path)} is damaged; delete it to send {path.name} again from its start"
            ) from None

    def record(self, path: Path, progress: Progress) -> None:
        """Write the confirmed offset atomically: a crash leaves the old or the new record, never half."""
        target = self._progress_path(path)
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
        write_atomic(target, json.dumps({"offset": progress.offset, "parts": progress.parts}))

    def mark_done(self, path: Path) -> None:
        """Move a fully confirmed file to uploaded/ with the upload time as its mtime."""
        done = self.uploaded_dir / path.name
        self.uploaded_dir.mkdir(exist_ok=True, mode=0o750)
        os.rename(path, done)
        os.utime(done)
        self._progress_path(path).unlink(missing_ok=True)

    def expire(self, keep_days: int, now: float) -> list[Path]:
        """Delete uploaded files older than ``keep_days`` and records of files no longer pending."""
        removed = []
        if self.uploaded_dir.is_dir():
            for path in sorted(self.uploaded_dir.iterdir()):
                if now - path.stat().st_mtime >= keep_days * 86400:
                    path.unlink()
                    removed.append(path)
        if self.progress_dir.is_dir():
            for record in self.progress_dir.glob("*.json"):
                if not (self.spool_dir / record.name[: -len(".json")]).exists():
                    record.unlink()
        return removed


def _create(path: Path, mode: int) -> int:
    """A new file with exactly ``mode`` (the umask would loosen or tighten it)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    os.fchmod(fd, mode)
    return fd


def _same_inflated(packed: Path, plain: Path) -> bool:
    """Whether ``packed`` inflates to exactly ``plain`` (compared in chunks; a broken gzip is not)."""
    try:
        with gzip.open(packed, "rb") as left, plain.open("rb") as right:
            while True:
                a, b = left.read(CHUNK), right.read(CHUNK)
                if a != b:
                    return False
                if not a:
                    return True
    except (OSError, EOFError, zlib.error):
        return False


def opened_for_writing(fdinfo: str) -> bool:
    """Whether a ``/proc/<pid>/fdinfo/<fd>`` entry is open for writing (its ``flags:`` are octal)."""
    for line in fdinfo.splitlines():
        if line.startswith("flags:"):
            return int(line.split()[1], 8) & os.O_ACCMODE in (os.O_WRONLY, os.O_RDWR)
    return True  # no flags line: assume a writer, the safe side


def _held_open(path: Path) -> bool:
    """Whether any process we can see has ``path`` open for writing (root sees all).

    Readers (``tail -f``, ``less``) do not count: they cannot add lines.
    """
    try:
        target = path.stat()
    except FileNotFoundError:
        return False
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        fd_dir = f"/proc/{pid}/fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in fds:
            try:
                if not os.readlink(f"{fd_dir}/{fd}").startswith("/"):
                    continue
                opened = os.stat(f"{fd_dir}/{fd}")
                if (opened.st_dev, opened.st_ino) != (target.st_dev, target.st_ino):
                    continue
                with open(f"/proc/{pid}/fdinfo/{fd}", encoding="ascii") as info:
                    if opened_for_writing(info.read()):
                        return True
            except OSError:
                continue
    return False


# --- Sending ------------------------------------------------------------------------------------


def compress_range(source: BinaryIO, start: int, end: int, sink: BinaryIO, level: int) -> str:
    """gzip bytes ``start``..``end`` of ``source`` into ``sink`` in chunks; the sha256 of the input."""
    digest = hashlib.sha256()
    packer = zlib.compressobj(level, zlib.DEFLATED, 31)
    source.seek(start)
    remaining = end - start
    while remaining > 0:
        chunk = source.read(min(CHUNK, remaining))
        if not chunk:
            raise UploadError(f"{getattr(source, 'name', 'log')} shrank while being sent; it is sent again")
        remaining -= len(chunk)
        digest.update(chunk)
        sink.write(packer.compress(chunk))
    sink.write(packer.flush())
    return digest.hexdigest()


@dataclass
class Packed:
    """One part, gzip-compressed and ready to post; ``close`` frees its buffer."""

    part: Part
    data: BinaryIO
    size: int
    sha256: str

    def close(self) -> None:
        self.data.close()


def pack_part(
    source: BinaryIO, name: str, number: int, start: int, size: int, part_size: int, level: int
) -> Packed:
    """Cut the part that starts at ``start`` on a line boundary and compress it into a buffer."""

    def read_at(offset: int, length: int) -> bytes:
        source.seek(offset)
        return source.read(length)

    end = line_cut(read_at, start, size, part_size)
    if end < size and read_at(end - 1, 1) != b"\n":
        log.warning(f"a line in {name} is longer than log_part_size ({part_size} bytes): it is split in two")
    part = Part(name, number, start, end, final=end >= size)
    buffer = tempfile.SpooledTemporaryFile(max_size=PACKED_IN_MEMORY)  # noqa: SIM115 (Packed owns it)
    try:
        digest = compress_range(source, start, end, buffer, level)
    except BaseException:
        buffer.close()
        raise
    return Packed(part, buffer, buffer.tell(), digest)


class MultipartBody:
    """A ``multipart/form-data`` body read from a file as it is sent, with a known length."""

    def __init__(
        self, fields: Mapping[str, str], file_name: str, payload: BinaryIO, payload_size: int
    ) -> None:
        boundary = f"ts-isr-{secrets.token_hex(16)}"
        self.content_type = f"multipart/form-data; boundary={boundary}"
        head = b"".join(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
            for name, value in fields.items()
        )
        head += (
            f"--{boundary}\r\nContent-Disposition: form-data; "
            f'name="{FILE_FIELD}"; filename="{file_name}"\r\nContent-Type: {FILE_CONTENT_TYPE}\r\n\r\n'
        ).encode()
        self._pieces: list[BinaryIO | bytes] = [head, payload, f"\r\n--{boundary}--\r\n".encode()]
        self._length = len(head) + payload_size + len(self._pieces[2])

    def __len__(self) -> int:
        return self._length

    def read(self, size: int = -1) -> bytes:
        out = b""
        while self._pieces and (size < 0 or len(out) < size):
            piece = self._pieces[0]
            want = -1 if size < 0 else size - len(out)
            if isinstance(piece, bytes):
                taken = piece if want < 0 else piece[:want]
                rest = piece[len(taken) :]
                if rest:
                    self._pieces[0] = rest
                else:
                    self._pieces.pop(0)
                out += taken
            else:
                data = piece.read(want)
                if not data:
                    self._pieces.pop(0)
                out += data
        return out


@dataclass(frozen=True)
class Destination:
    """Where parts go and how: TLS is always verified, against ``ca_bundle`` when one is given."""

    url: str
    ca_bundle: Path | None = None
    proxy: str | None = None
    connect_timeout: float = 15.0
    read_timeout: float = 120.0


def default_ca_bundle() -> str | bool:
    """$REQUESTS_CA_BUNDLE, else the system's CA file, else requests' own (certifi)."""
    if os.environ.get("REQUESTS_CA_BUNDLE"):
        return os.environ["REQUESTS_CA_BUNDLE"]
    system = ssl.get_default_verify_paths().cafile
    return system if system and os.path.isfile(system) else True


#: Seconds a kept-alive connection is trusted after its last answer.  A server may close an idle
#: connection just as the next request goes out on it (Apache does after 5 s); past this the next
#: part goes on a fresh connection, never on one that may be gone.
KEEPALIVE_TRUST = 2.0


class Uploader:
    """Sends parts over one HTTPS session; each ``send`` returns only once the server confirmed."""

    def __init__(self, destination: Destination, device: Device, *, level: int = 6) -> None:
        if urlsplit(destination.url).scheme != "https":
            raise ConfigError(f"{destination.url} is not https://; logs are never sent unencrypted")
        if destination.ca_bundle is not None and not os.access(destination.ca_bundle, os.R_OK):
            raise ConfigError(
                f"CA bundle {destination.ca_bundle} cannot be read; fix ca_bundle (TLS is always verified)"
            )
        self.destination = destination
        self.device = device
        self.level = level
        self.host = urlsplit(destination.url).hostname or destination.url
        self.verify = str(destination.ca_bundle) if destination.ca_bundle else default_ca_bundle()
        self.session = requests.Session()
        self._answered_at: float | None = None
        # Per request, so that the config's proxy wins over https_proxy (requests lets the
        # environment override a session's proxies); without one, the environment's applies.
        self.proxies = {"https": destination.proxy} if destination.proxy else {}
        if destination.proxy:
            add_secret(urlsplit(destination.proxy).password)

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> Uploader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def send(self, packed: Packed) -> None:
        """Post one packed part; returns only once the server confirmed it with a 2xx."""
        part = packed.part
        packed.data.seek(0)
        if self._answered_at is not None and time.monotonic() - self._answered_at > KEEPALIVE_TRUST:
            self.session.close()  # drops idle pooled connections; the session opens a new one
        body = MultipartBody(
            form_fields(self.device, part, packed.sha256), part_file_name(part), packed.data, packed.size
        )
        with self._post(body, part) as response:
            self._answered_at = time.monotonic()
            if not 200 <= response.status_code < 300:
                raise UploadError(self._refusal(response, part))

    @contextlib.contextmanager
    def _post(self, body: MultipartBody, part: Part) -> Iterator[requests.Response]:
        what = f"part {part.number} of {part.file_name}"
        again = "it is kept and sent again on the next run"
        try:
            response = self.session.post(
                self.destination.url,
                data=body,
                headers={"Content-Type": body.content_type},
                timeout=(self.destination.connect_timeout, self.destination.read_timeout),
                allow_redirects=False,
                verify=self.verify,
                proxies=self.proxies,
            )
        except requests.exceptions.SSLError as exc:
            raise UploadError(
                f"TLS check of {self.host} failed ({_reason(exc)}); if the server's CA is private, "
                f"set ca_bundle to its certificate (verification is never turned off); {again}"
            ) from None
        except requests.exceptions.ProxyError as exc:
            raise UploadError(f"proxy refused {what} ({_reason(exc)}); check proxy or https_proxy") from None
        except requests.exceptions.ConnectTimeout:
            raise UploadError(
                f"cannot connect to {self.host} within {self.destination.connect_timeout:g} s; "
                f"check that TCP 443 is open (or set proxy); {again}"
            ) from None
        except requests.exceptions.Timeout:
            raise UploadError(
                f"{self.host} did not answer {what} within {self.destination.read_timeout:g} s; {again}"
            ) from None
        except requests.exceptions.RequestException as exc:
            raise UploadError(f"sending {what} to {self.host} failed ({_reason(exc)}); {again}") from None
        try:
            yield response
        finally:
            response.close()

    def _refusal(self, response: requests.Response, part: Part) -> str:
        status = f"{response.status_code} {response.reason or ''}".strip()
        what = f"{self.host} refused part {part.number} of {part.file_name} ({status})"
        if response.status_code == 413:
            return f"{what}: the part is too large; lower log_part_size; it is sent again on the next run"
        if 300 <= response.status_code < 400:
            where = response.headers.get("Location", "elsewhere")
            return f"{what}: it redirects to {where}; set url to the final address"
        return f"{what}; it is kept and sent again on the next run"


_REASONS = (
    (r"certificate verify failed: ([^(')\]]+)", None),
    (r"Remote end closed", "the server closed the connection without an answer"),
    (r"reset by peer", "the connection was reset"),
    (r"Broken pipe", "the connection broke"),
    (r"Connection refused", "the connection was refused"),
    (r"Name or service not known|name resolution", "the host name is not known"),
)


def _reason(exc: BaseException) -> str:
    """What went wrong, in a few plain words, from a requests/urllib3 exception chain."""
    text = str(exc)
    for pattern, words in _REASONS:
        match = re.search(pattern, text)
        if match:
            return words or match.group(1).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:200]


# --- The run ------------------------------------------------------------------------------------


@dataclass
class UploadReport:
    """What one run did: files fully confirmed, parts and bytes sent, files left for later."""

    files_done: list[str] = field(default_factory=list)
    parts_sent: int = 0
    bytes_sent: int = 0
    bytes_compressed: int = 0
    waiting: list[str] = field(default_factory=list)
    expired: list[str] = field(default_factory=list)


def upload_logs(
    spool: LogSpool,
    uploader: Uploader,
    *,
    part_size: int = DEFAULT_PART_SIZE,
    keep_days: int = 7,
    rotate: bool = True,
) -> UploadReport:
    """One run: rotate, adopt logrotate's files, send every closed spool file oldest first, expire.

    Raises :class:`UploadError` at the first failure; everything confirmed
    before it stays recorded, everything else waits for the next run.
    """
    report = UploadReport()
    try:
        with run_lock(spool.lock_path, "log upload"):
            _run(spool, uploader, part_size, keep_days, rotate, report)
    except OSError as exc:
        raise UploadError(
            f"{exc.filename or 'log spool'}: {exc.strerror or exc}; check that the log and state "
            "directories are writable by this user (cron runs it as root); nothing was lost"
        ) from None
    return report


def upload_configured(
    config: Any, logfile: Path, device: Device, reopen_command: Sequence[str] | None, *, rotate: bool = True
) -> UploadReport:
    """One run from a loaded config (Cisco or Linux: both name the upload keys alike)."""
    spool = LogSpool(logfile, config.state_dir, reopen_command=reopen_command)
    destination = Destination(config.url, ca_bundle=config.ca_bundle, proxy=config.proxy)
    with Uploader(destination, device) as uploader:
        return upload_logs(
            spool,
            uploader,
            part_size=config.log_part_size,
            keep_days=config.keep_uploaded_days,
            rotate=rotate,
        )


def _run(
    spool: LogSpool, uploader: Uploader, part_size: int, keep_days: int, rotate: bool, report: UploadReport
) -> None:
    """The run's steps, under the lock; ``report`` fills in as parts are confirmed."""
    if rotate:
        spool.rotate()
    spool.adopt_rotated()
    pending = spool.pending()
    log.info(f"{len(pending)} log file(s) to upload.")
    for index, path in enumerate(pending):
        if not spool.wait_closed(path):
            # A run that died between its rename and its reopen left the writer on a spool file.
            spool.reopen()
        if not spool.wait_closed(path):
            report.waiting = [p.name for p in pending[index:]]
            log.warning(
                f"{path.name} is still open for writing {spool.close_timeout:g} s after the reopen; "
                "it and newer files go on the next run (check log_reopen_command)"
            )
            break
        try:
            _upload_file(spool, uploader, path, part_size, report)
        except UploadError as exc:
            left = len(pending) - index
            raise UploadError(f"{exc} ({left} log file(s) wait for the next run)") from None
    report.expired = [p.name for p in spool.expire(keep_days, time.time())]
    log.info(
        f"Uploaded {len(report.files_done)} file(s) in {report.parts_sent} part(s): "
        f"{report.bytes_sent} bytes ({report.bytes_compressed} compressed)."
    )


def _upload_file(
    spool: LogSpool, uploader: Uploader, path: Path, part_size: int, report: UploadReport
) -> None:
    """Send ``path`` from its last confirmed offset, recording each confirmed part before the next.

    The next part is compressed in a worker thread while the current one is
    on the wire (zlib and TLS release the GIL): the run then goes as fast as
    ``gzip | curl``.  At most two parts are in memory.
    """
    progress = spool.progress(path)
    size = path.stat().st_size
    with path.open("rb") as source, ThreadPoolExecutor(1, thread_name_prefix="logupload-pack") as packer:

        def pack(start: int, number: int) -> Packed:
            return pack_part(source, path.name, number, start, size, part_size, uploader.level)

        upcoming = (
            packer.submit(pack, progress.offset, progress.parts + 1) if progress.offset < size else None
        )
        try:
            while upcoming is not None:
                packed = upcoming.result()
                part = packed.part
                upcoming = None if part.final else packer.submit(pack, part.end, part.number + 1)
                with contextlib.closing(packed):
                    uploader.send(packed)
                spool.record(path, Progress(part.end, part.number))
                report.parts_sent += 1
                report.bytes_sent += part.end - part.start
                report.bytes_compressed += packed.size
                log.debug(f"Part {part.number} of {path.name} ({part.start}..{part.end}) confirmed.")
        finally:
            if upcoming is not None and not upcoming.cancel():
                with contextlib.suppress(Exception):
                    upcoming.result().close()
    spool.mark_done(path)
    report.files_done.append(path.name)
    log.info(f"Uploaded {path.name} ({size} bytes).")
