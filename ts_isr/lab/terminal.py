"""What a client types, as the device's line discipline sees it: lines split at CR, LF or Ctrl-Z, edited."""

from __future__ import annotations

import re

_LINE_END = re.compile(rb"\r\n|\r|\n|\x1a")


def take_lines(buffer: bytearray, skip_lf: bool, limit: int | None = None) -> tuple[list[str], bool]:
    """Remove complete lines from ``buffer``: CR, LF or CRLF ends a line, Ctrl-Z is a line of its own.

    A CR at the very end may be the first half of a CRLF split across packets: the returned flag
    says to skip a LF that starts the next packet, so it does not count as an empty line.
    """
    if skip_lf and not buffer:
        return [], True
    lines: list[str] = []
    start = 1 if skip_lf and buffer[:1] == b"\n" else 0
    skip_lf = False
    for match in _LINE_END.finditer(buffer, start):
        if limit is not None and len(lines) >= limit:
            break
        if match.group() == b"\x1a":
            if match.start() > start:
                lines.append(buffer[start : match.start()].decode("utf-8", "replace"))
            lines.append("\x1a")
        else:
            lines.append(buffer[start : match.start()].decode("utf-8", "replace"))
            skip_lf = match.group() == b"\r" and match.end() == len(buffer)
        start = match.end()
    del buffer[:start]
    return lines, skip_lf


def edit_line(line: str) -> str:
    """Apply backspace/delete as a terminal would before the parser sees the line."""
    if "\x7f" not in line and "\x08" not in line:
        return line
    kept: list[str] = []
    for char in line:
        if char in "\x7f\x08":
            if kept:
                kept.pop()
        else:
            kept.append(char)
    return "".join(kept)
