"""A hostile or broken log server cannot hold the run (and its lock) or eat the host's memory.

Each case runs the upload in a child process (tests/support/upload_child.py)
whose address space is capped, and measures its wall time and peak resident
memory: a 3 GB answer is not read into memory, a body trickled a byte a second
and a server that takes in the upload slowly both end at the request's
deadline with one line naming the server and what it did, and the part they
held is not counted as sent: the next run sends it, every line once.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.https_server import (
    HUGE,
    ConnectProxy,
    Failure,
    LogServer,
    logfile_fixture,  # noqa: F401 (a pytest fixture)
    server_fixture,  # noqa: F401 (a pytest fixture)
)
from ts_isr.logupload import LogSpool

ROOT = Path(__file__).resolve().parent.parent
#: The child's address-space cap: far above what a bounded upload needs, far below a 3 GB answer.
MAX_MEMORY = 1 << 30
#: Peak resident memory a bounded upload stays under (measured: about 60 MB).
PEAK_LIMIT_MB = 200
#: Short per-operation timeouts, so that a request's deadline (their sum plus size / min_rate) is short.
FAST = {"connect_timeout": 2, "read_timeout": 2}


@dataclass(frozen=True)
class Outcome:
    ok: bool
    error: str | None
    parts: int | None
    peak_mb: float
    seconds: float


def numbered(count: int) -> bytes:
    return b"".join(b"<134>Nov 21 12:00:00 isr %%SEC-6-IPACCESSLOGP: line %07d\n" % i for i in range(count))


def incompressible(size: int) -> bytes:
    """Log lines gzip cannot shrink much, so that a part outgrows the sockets' buffers."""
    raw = base64.b64encode(os.urandom(size * 3 // 4))
    return b"".join(raw[i : i + 99] + b"\n" for i in range(0, len(raw), 99))


def upload_in_child(
    server: LogServer, logfile: Path, state: Path, *, part_size: int, bound: float, **destination: object
) -> Outcome:
    """Run one upload in a capped child; fail the test if it has not ended after ``bound`` seconds."""
    params = {
        "max_memory": MAX_MEMORY,
        "logfile": str(logfile),
        "state": str(state),
        "url": server.url,
        "ca_file": str(server.ca_file),
        "part_size": part_size,
        "destination": destination,
    }
    start = time.monotonic()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "tests.support.upload_child", json.dumps(params)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=bound,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"the upload was still running after {bound:g} s: nothing bounds it")
    seconds = time.monotonic() - start
    assert done.returncode == 0 and done.stdout, f"the child failed: {done.stderr[-2000:]}"
    result = json.loads(done.stdout)
    outcome = Outcome(seconds=seconds, **result)
    print(f"\n[figures] {seconds:.1f} s, peak {outcome.peak_mb:.0f} MB resident: {outcome.error or 'sent'}")
    return outcome


def pending_untouched(logfile: Path, state: Path, content: bytes) -> None:
    """The part the server held is not counted: the whole file waits, from its start, for the next run."""
    spool = LogSpool(logfile, state, reopen_command=None)
    [pending] = spool.pending()
    assert pending.read_bytes() == content
    assert spool.progress(pending).offset == 0


def test_a_3_gb_answer_is_not_read_into_memory(server, logfile, tmp_path):
    content = numbered(2000)
    logfile.write_bytes(content)
    server.fail(Failure.HUGE_BODY)
    outcome = upload_in_child(
        server, logfile, tmp_path / "state", part_size=1 << 20, bound=120, connect_timeout=5, read_timeout=5
    )
    assert outcome.ok, outcome.error  # a 200 is a confirmation, whatever follows it
    assert outcome.peak_mb < PEAK_LIMIT_MB, f"{outcome.peak_mb:.0f} MB resident for a {HUGE} byte answer"
    assert outcome.seconds < 30
    assert server.received() == content


@pytest.mark.parametrize(
    ("failure", "content", "part_size", "options", "words"),
    [
        (
            Failure.TRICKLE,
            numbered(500),
            1 << 20,
            FAST,
            r"127\.0\.0\.1 answered part 1 of device\.log\.\S+ \(200 OK\) but its answer had not ended after",
        ),
        (
            Failure.SLOW_READER,
            incompressible(6_000_000),
            8 << 20,
            FAST | {"min_rate": 1_000_000},
            r"127\.0\.0\.1 was still taking in part 1 of \S+ \(\d+ of \d+ bytes sent\) after \d+ s",
        ),
    ],
    ids=["trickled body", "slow reader"],
)
def test_a_request_ends_at_its_deadline_and_the_part_is_sent_next_run(
    server, logfile, tmp_path, failure, content, part_size, options, words
):
    logfile.write_bytes(content)
    server.fail(failure)
    outcome = upload_in_child(server, logfile, tmp_path / "state", part_size=part_size, bound=120, **options)
    assert not outcome.ok
    assert "\n" not in outcome.error
    assert outcome.error.count("127.0.0.1") == 1
    assert re.search(words, outcome.error), outcome.error
    assert "sent again on the next run" in outcome.error
    assert outcome.seconds < 25, f"the request's bound did not hold: {outcome.seconds:.0f} s"
    assert outcome.peak_mb < PEAK_LIMIT_MB
    assert server.uploads == []
    pending_untouched(logfile, tmp_path / "state", content)
    again = upload_in_child(server, logfile, tmp_path / "state", part_size=part_size, bound=120)
    assert again.ok, again.error
    assert server.received() == content


def test_the_deadline_holds_through_a_proxy(server, logfile, tmp_path):
    """Through a CONNECT proxy the deadline cuts the client's tunnel socket: the request ends the same."""
    logfile.write_bytes(numbered(500))
    server.fail(Failure.TRICKLE)
    with ConnectProxy() as proxy:
        outcome = upload_in_child(
            server, logfile, tmp_path / "state", part_size=1 << 20, bound=120, **FAST, proxy=proxy.url
        )
    assert not outcome.ok
    assert re.search(
        r"127\.0\.0\.1 answered part 1 of \S+ \(200 OK\) but its answer had not ended", outcome.error
    )
    assert outcome.seconds < 25, (
        f"the request's bound did not hold through the proxy: {outcome.seconds:.0f} s"
    )
    assert proxy.targets == [f"127.0.0.1:{server.port}"]
    assert server.uploads == []
