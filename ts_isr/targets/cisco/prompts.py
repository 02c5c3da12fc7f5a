"""A push's output split at each configuration prompt, in linear time and with a bounded line.

A prompt is a hostname, ``(config``, a mode name and ``#`` (``R1(config-network-group)#``), all on
one line.  One regex with a leading ``[^\\s#>()]+``, searched over all the text buffered each time a
chunk arrived, was quadratic on a run without whitespace: 64 KB of ``x`` took two minutes of CPU,
holding the GIL every other device of a fleet needs.  Here only the ``(config...)#`` mark is searched
for, each character once (plus a mark's length where one may have begun), and a prompt's hostname
is then found by reading its record once.  A device that prints more than ``MAX_LINE_BYTES`` without a line
break is not answering configuration lines: the splitter stops reading and says so in ``overlong``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

MAX_LINE_BYTES = 8192  # echoes and IOS/ASA messages are under 300 characters
MAX_MODE_CHARS = 64  # "network-group", "if-range", "ext-nacl": no mode name comes near
_MARK = re.compile(rf"\(config[\w-]{{0,{MAX_MODE_CHARS}}}\)#")
_MARK_MAX = len("(config)#") + MAX_MODE_CHARS
_NOT_HOSTNAME = re.compile(r"[\s#>()]")  # a hostname is [^\s#>()]+
_UP_TO_LAST_BREAK = re.compile(r"[\s\S]*[\s#>()]")  # greedy: ends just after the last one


def _hostname_start(text: str, begin: int, mark: int) -> int:
    """Where the hostname ending at ``mark`` starts (``mark`` itself: there is none), not before ``begin``."""
    if mark == begin or _NOT_HOSTNAME.match(text, mark - 1, mark):
        return mark
    before = _UP_TO_LAST_BREAK.match(text, begin, mark)  # once a prompt: the text up to it is consumed
    return begin if before is None else before.end()


@dataclass
class PromptSplitter:
    """Text in, records out: each record is what the device printed between two prompts.

    Finds what ``[^\\s#>()]+\\(config[\\w-]*\\)#`` searched from the last prompt would (mode names
    up to ``MAX_MODE_CHARS``).  A prompt never spans a line break, so only the current line is
    kept as one string; the record's earlier lines wait in a list, joined once.
    """

    overlong: int = 0  # the unterminated line's length, once past MAX_LINE_BYTES: nothing more is read
    _lines: list[str] = field(default_factory=list)  # the record's text up to its last line break
    _line: str = ""  # the text since then (or since the last prompt), searched but for its end

    def feed(self, text: str) -> list[str]:
        """The records ``text`` completes, in order."""
        if self.overlong:
            return []
        line = self._line + text
        records: list[str] = []
        begin = 0
        at = max(0, len(self._line) - _MARK_MAX + 1)  # a mark cut off by the end of the last text
        while (mark := _MARK.search(line, at)) is not None:
            start = _hostname_start(line, begin, mark.start())
            if start == mark.start():  # "(config)#" with no hostname before it: not a prompt
                at = start + 1
                continue
            records.append("".join(self._lines) + line[begin:start])
            self._lines = []
            begin = at = mark.end()
        cut = max(line.rfind("\n", begin), line.rfind("\r", begin)) + 1
        if cut:
            self._lines.append(line[begin:cut])
        self._line = line[max(begin, cut) :]
        if len(self._line) > MAX_LINE_BYTES:
            self.overlong = len(self._line)
            self._lines, self._line = [], ""
        return records
