"""tsadmin logs on a journald-only host (issue 15), against real journal files written by
systemd-journal-remote from the journal export format, and a real HTTPS log server.

Each kernel ThreatSTOP- line is uploaded once across runs and failures; a user's forged line (another
transport) never; a stretch vacuumed before it was read is logged with its size.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.hostroot import write_config
from tests.support.https_server import Failure, LogServer
from tests.support.tools import require_root, require_tool
from ts_isr.errors import Exit, TsError
from ts_isr.journal import (
    JOURNAL_LOCK,
    MAX_LINE,
    Journal,
    _entry,
    block_line,
    gap,
    parse_cursor,
    upload_from_journal,
)
from ts_isr.lock import run_lock

TSADMIN = Path(__file__).resolve().parent.parent / "bin" / "tsadmin"
JOURNAL_REMOTE = "/lib/systemd/systemd-journal-remote"
BOOT = "0123456789abcdef0123456789abcdef"
START = 1_764_518_400_000_000  # 2025-11-30 16:00:00 UTC, microseconds


def entry(n: int, message: str, transport: str = "kernel") -> str:
    """One entry in the journal export format; ``n`` orders them in time."""
    return (
        f"__REALTIME_TIMESTAMP={START + n * 1_000_000}\n__MONOTONIC_TIMESTAMP={1000 + n}\n_BOOT_ID={BOOT}\n"
        f"_TRANSPORT={transport}\n_HOSTNAME=box\nPRIORITY=4\nSYSLOG_IDENTIFIER=kernel\nMESSAGE={message}\n\n"
    )


def blocked(n: int) -> str:
    return f"ThreatSTOP-TSblock IN=eth0 OUT= SRC=192.0.2.{n} DST=198.51.100.1 LEN=84 PROTO=ICMP"


def write_journal(path: Path, entries: list[str]) -> None:
    """Append ``entries`` to the journal file ``path`` (created when absent), as journal-remote does."""
    path.parent.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [JOURNAL_REMOTE, f"--output={path}", "-"], input="".join(entries), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr


@pytest.fixture
def host(tmp_path: Path):
    require_root()
    require_tool("journalctl")
    if not Path(JOURNAL_REMOTE).exists():
        require_tool("systemd-journal-remote")  # fails under CI=true, says what to install
    root = tmp_path / "root"
    journal_dir = tmp_path / "journal"
    with LogServer(tmp_path / "server") as server:
        write_config(
            root,
            f"block_list=blk.test.threatstop.local\nurl={server.url}\nca_bundle={server.ca_file}\n"
            f"device_id=tdid-1\njournal_dir={journal_dir}\n",
        )

        def logs() -> subprocess.CompletedProcess[str]:
            argv = [sys.executable, str(TSADMIN), "logs", "--root", str(root)]
            return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)

        yield server, journal_dir / "remote.journal", logs, root


def uploaded_lines(server: LogServer) -> list[str]:
    return server.received().decode().splitlines()


def test_kernel_lines_go_once_and_a_forged_line_never(host) -> None:
    server, journal, logs, _ = host
    forged = "ThreatSTOP-TSblock IN=eth0 SRC=203.0.113.66 forged by a user"
    write_journal(
        journal, [entry(1, blocked(1)), entry(2, forged, "syslog"), entry(3, "usb 1-1: new device")]
    )
    first = logs()
    assert first.returncode == 0, first.stdout + first.stderr
    lines = uploaded_lines(server)
    assert len(lines) == 1 and lines[0].endswith(blocked(1)) and " box kernel: " in lines[0], lines
    assert logs().returncode == 0
    assert uploaded_lines(server) == lines, "nothing new: nothing sent again"

    write_journal(journal, [entry(4, blocked(4)), entry(5, blocked(5))])  # arrived since the last run
    assert logs().returncode == 0
    assert [line.split(" kernel: ")[1] for line in uploaded_lines(server)] == [
        blocked(1),
        blocked(4),
        blocked(5),
    ]


def test_a_server_failure_mid_upload_sends_every_line_once_on_the_next_run(host) -> None:
    server, journal, logs, root = host
    config = root / "opt/threatstop/threatstop.conf"
    config.write_text(config.read_text() + "log_part_size=1024\n")  # several parts: one confirmed, then 500
    write_journal(journal, [entry(n, blocked(n)) for n in range(1, 40)])
    server.fail(Failure.SERVER_ERROR, after=1)
    failed = logs()
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert not (root / "opt/threatstop/state/journal_cursor").exists(), "no confirmation, no cursor"
    assert len(server.uploads) == 1, "the first part was confirmed before the failure"
    write_journal(journal, [entry(40, blocked(40))])  # arrived meanwhile
    done = logs()
    assert done.returncode == 0, done.stdout + done.stderr
    assert logs().returncode == 0
    sent = [line.split(" kernel: ")[1] for line in uploaded_lines(server)]
    assert sent == [blocked(n) for n in range(1, 41)], sent


def test_a_line_that_arrives_during_an_upload_goes_with_the_next_one(host) -> None:
    """The cursor saved is the last uploaded line's, not the journal's end when the server answered."""
    server, journal, logs, _ = host
    write_journal(journal, [entry(1, blocked(1)), entry(2, blocked(2))])
    server.during = lambda: write_journal(journal, [entry(3, blocked(3))])
    first = logs()
    assert first.returncode == 0, first.stdout + first.stderr
    server.during = None
    assert [line.split(" kernel: ")[1] for line in uploaded_lines(server)] == [blocked(1), blocked(2)]
    assert logs().returncode == 0
    assert [line.split(" kernel: ")[1] for line in uploaded_lines(server)] == [blocked(n) for n in (1, 2, 3)]


def test_a_vacuumed_stretch_is_logged_with_its_size(host) -> None:
    server, journal, logs, root = host
    write_journal(journal, [entry(1, blocked(1))])
    assert logs().returncode == 0
    journal.unlink()  # vacuumed: only entries from an hour later are left
    write_journal(journal.with_name("later.journal"), [entry(3600, blocked(2))])
    done = logs()
    assert done.returncode == 0, done.stdout + done.stderr
    logged = (root / "var/log/threatstop/tsadmin.log").read_text()
    assert "were vacuumed before they were read" in logged and "over 3599 s" in logged, logged
    assert uploaded_lines(server)[-1].endswith(blocked(2))


def test_cursors_and_lines_are_read_strictly() -> None:
    cursor = parse_cursor("s=abc;i=1f;b=00;m=3e8;t=644d1f46e8000;x=1")
    assert cursor is not None and cursor.seqnum == 31 and cursor.realtime == 0x644D1F46E8000
    assert parse_cursor("garbage") is None
    later = parse_cursor("s=abc;i=2a;b=00;m=1;t=644d1f46e8000;x=1".replace("644d1f46e8000", "644d2f46e8000"))
    assert "10 journal entries" in (gap(cursor, later) or "")
    assert gap(cursor, cursor) is None
    assert block_line({"MESSAGE": "x", "_TRANSPORT": "kernel", "__REALTIME_TIMESTAMP": "0"}) is None
    forged = {"MESSAGE": "ThreatSTOP-x", "_TRANSPORT": "stdout", "__REALTIME_TIMESTAMP": "0"}
    assert block_line(forged) is None
    binary = {
        "MESSAGE": list(b"ThreatSTOP-TSblock \xff"),
        "_TRANSPORT": "kernel",
        "__REALTIME_TIMESTAMP": "0",
    }
    assert (block_line(binary) or "").endswith("ThreatSTOP-TSblock \ufffd\n")


def test_a_backlog_is_read_over_runs_in_bounded_batches(host, tmp_path: Path) -> None:
    """A first run after weeks, or a scan: each run reads at most ``limit`` entries, in bounded
    memory, and the next resumes after the last one; every line goes once, in order."""
    _, journal, _, _ = host
    write_journal(journal, [entry(n, blocked(n)) for n in range(1, 8)])
    state, logfile, sent = tmp_path / "state", tmp_path / "block.log", []
    state.mkdir()

    def upload() -> list[str]:
        sent.extend(logfile.read_text().splitlines())
        return []  # the server confirmed every part

    of_three = Journal(journal.parent, limit=3)
    runs = [upload_from_journal(of_three, state, logfile, upload, batches=2) for _ in range(3)]
    assert runs == [6, 1, 0], "two batches a run while they come full, then the rest"
    assert [line.split(" kernel: ")[1] for line in sent] == [blocked(n) for n in range(1, 8)]
    write_journal(journal, [entry(n, blocked(n)) for n in range(8, 16)])
    assert upload_from_journal(of_three, state, logfile, upload) == 8, "caught up in one run"
    assert [line.split(" kernel: ")[1] for line in sent] == [blocked(n) for n in range(1, 16)]


def test_a_second_logs_run_waits_for_the_first_and_changes_nothing(host) -> None:
    server, journal, logs, root = host
    write_journal(journal, [entry(1, blocked(1))])
    state = root / "opt/threatstop/state"
    state.mkdir(parents=True, exist_ok=True)
    with run_lock(state / JOURNAL_LOCK, "tsadmin logs"):
        second = logs()
    assert second.returncode == Exit.LOCKED, second.stdout + second.stderr
    assert second.stdout.count("[ERROR]") == 1 and "another tsadmin logs run" in second.stdout
    assert uploaded_lines(server) == [] and not (state / "journal_cursor").exists()
    assert logs().returncode == 0 and len(uploaded_lines(server)) == 1


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("not json\n", "not a journal entry"),
        ('{"MESSAGE": "no cursor"}\n', "not a journal entry"),
        ("[1, 2]\n", "not a journal entry"),
        ("x" * MAX_LINE, f"over {MAX_LINE} characters"),
    ],
)
def test_what_journalctl_prints_is_read_strictly(line: str, says: str) -> None:
    with pytest.raises(TsError, match=says):
        _entry(line)
    assert _entry("") is None, "the end"
