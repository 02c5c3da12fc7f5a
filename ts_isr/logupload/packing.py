"""What goes over the wire: parts cut on lines, gzip-compressed, in a multipart body."""

from __future__ import annotations

import hashlib
import secrets
import tempfile
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import BinaryIO

from ts_isr.errors import TsError
from ts_isr.log import log

DEFAULT_PART_SIZE = 5_000_000
CHUNK = 1 << 20
# Compressed parts stay in memory up to this size, then spill to a temporary file.
PACKED_IN_MEMORY = 16 << 20


class UploadError(TsError):
    """The upload failed; what was confirmed stays recorded and the rest waits for the next run."""


# --- Wire format (the project's choice; see the ts_isr.logupload docstring) ------------------------
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


# --- Cutting and packing parts ----------------------------------------------------------------


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
        #: Bytes handed to the connection so far (what a slow server has taken in, within its buffers).
        self.taken = 0

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
        self.taken += len(out)
        return out
