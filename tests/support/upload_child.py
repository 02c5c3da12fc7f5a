"""One log upload in a child process, so that a test can cap and measure its memory and time.

``python -m tests.support.upload_child JSON`` caps its address space at
``max_memory`` bytes (a client that reads a huge answer whole fails there
instead of eating the host), runs :func:`ts_isr.logupload.upload_logs` with
the given spool and destination, and prints one JSON line: ``ok``,
``error`` (the one line a user would see), ``parts`` and ``peak_mb``
(``VmHWM``, the most memory it ever held resident).
"""

from __future__ import annotations

import json
import resource
import sys
from pathlib import Path

from ts_isr.errors import TsError
from ts_isr.logupload import Destination, Device, LogSpool, Uploader, upload_logs


def peak_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        kb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    return kb / 1024


def main(params: dict) -> dict:
    resource.setrlimit(resource.RLIMIT_AS, (params["max_memory"], params["max_memory"]))
    spool = LogSpool(Path(params["logfile"]), Path(params["state"]), reopen_command=None, close_timeout=1)
    destination = Destination(params["url"], ca_bundle=Path(params["ca_file"]), **params["destination"])
    try:
        with Uploader(destination, Device("198.51.100.7", "192.0.2.1")) as uploader:
            report = upload_logs(spool, uploader, part_size=params["part_size"])
    except TsError as exc:
        return {"ok": False, "error": str(exc), "parts": None, "peak_mb": peak_mb()}
    return {"ok": True, "error": None, "parts": report.parts_sent, "peak_mb": peak_mb()}


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))))
