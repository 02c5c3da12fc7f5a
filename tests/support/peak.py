"""``python -m tests.support.peak PEAKFILE ARGV...``: run ARGV from this small process and write its peak
memory (KiB) to PEAKFILE.

A child's ``ru_maxrss`` starts at its parent's resident size when forked and keeps it across exec, so
a program started straight from a test runner grown to hundreds of MB would seem that large.  Forked
from this launcher instead, it is measured alone.
"""

from __future__ import annotations

import os
import signal
import sys


def main() -> int:
    peak_file, argv = sys.argv[1], sys.argv[2:]
    pid = os.fork()
    if pid == 0:
        os.execvp(argv[0], argv)
    signal.signal(signal.SIGTERM, lambda *_: os.kill(pid, signal.SIGKILL))
    _, status, usage = os.wait4(pid, 0)
    with open(peak_file, "w", encoding="ascii") as handle:
        handle.write(f"{usage.ru_maxrss}\n")
    code = os.waitstatus_to_exitcode(status)
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main())
