"""Log upload: pure part planning and wire format, then real HTTPS uploads to a local server.

Every failure case checks the same promise: nothing is lost, the next run
sends what is left, and once it succeeds every line arrived exactly once.
"""

from __future__ import annotations

import email.parser
import email.policy
import gzip
import hashlib
import io
import os
import time
from pathlib import Path

import pytest

from tests.support.https_server import (
    ConnectProxy,
    Failure,
    LogServer,
    logfile_fixture,  # noqa: F401 (a pytest fixture)
    server_fixture,  # noqa: F401 (a pytest fixture)
)
from tests.support.tools import free_port
from ts_isr.errors import ConfigError, LockedError, TsError
from ts_isr.lock import run_lock
from ts_isr.log import log
from ts_isr.logupload import (
    CHUNK,
    FIELDS,
    FILE_FIELD,
    KEEPALIVE_TRUST,
    Destination,
    Device,
    LogSpool,
    MultipartBody,
    Part,
    Uploader,
    UploadError,
    form_fields,
    is_rotated_name,
    is_spool_name,
    line_cut,
    opened_for_writing,
    spool_name,
    upload_logs,
)

DEVICE = Device("198.51.100.7", "192.0.2.1")


def numbered(first: int, last: int) -> bytes:
    """Syslog-like lines whose numbers show loss, duplication and order."""
    return b"".join(
        b"<134>Nov 21 12:00:00 isr %%SEC-6-IPACCESSLOGP: line %07d denied\n" % i for i in range(first, last)
    )


# --- pure ---------------------------------------------------------------------------------------


def cut(data: bytes, start: int, part_size: int) -> int:
    return line_cut(lambda offset, length: data[offset : offset + length], start, len(data), part_size)


def test_a_part_ends_after_the_last_newline_that_fits():
    data = b"aaaa\nbbbb\ncccc\n"
    assert cut(data, 0, 12) == 10
    assert cut(data, 0, 10) == 10
    assert cut(data, 10, 12) == len(data)
    assert cut(data, 0, 100) == len(data)


def test_a_line_longer_than_a_part_is_cut_at_the_limit():
    data = b"x" * 50 + b"\n"
    assert cut(data, 0, 20) == 20


def test_the_newline_is_found_more_than_one_read_window_back():
    data = b"short\n" + b"y" * (CHUNK + 100) + b"\n"
    assert cut(data, 0, CHUNK + 50) == 6


def test_spool_names_sort_oldest_first_and_never_collide():
    taken: set[str] = set()
    names = []
    for when in (1_700_000_000.5, 1_700_000_000.5, 1_600_000_000.0):
        names.append(spool_name("device.log", when, taken.__contains__))
        taken.add(names[-1])
    assert len(set(names)) == 3
    assert sorted(names) == [names[2], names[0], names[1]]
    assert all(is_spool_name("device.log", name) for name in names)
    assert not is_spool_name("device.log", "device.log.1")


@pytest.mark.parametrize(
    ("name", "rotated"),
    [
        ("device.log.1", True),
        ("device.log.12.gz", True),
        ("device.log-20261121", True),
        ("device.log-20261121.gz", True),
        ("device.log", False),
        ("device.log.spool", False),
        ("device.log.bak", False),
        ("other.log.1", False),
        ("device.log.1.xz", False),
    ],
)
def test_logrotate_names_are_recognised(name, rotated):
    assert is_rotated_name("device.log", name) is rotated


def test_the_multipart_body_is_standard_and_streams_with_its_length():
    payload = gzip.compress(b"hello\n")
    part = Part("device.log.x", 2, 10, 16, final=True)
    fields = form_fields(DEVICE, part, "ab" * 32)
    assert tuple(fields) == FIELDS
    body = MultipartBody(fields, "device.log.x.part2.gz", io.BytesIO(payload), len(payload))
    pieces = []
    while piece := body.read(7):
        pieces.append(piece)
    raw = b"".join(pieces)
    assert len(raw) == len(body)
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + body.content_type.encode() + b"\r\n\r\n" + raw
    )
    got = {p.get_param("name", header="content-disposition"): p for p in message.iter_parts()}
    assert got["device_ip"].get_content() == "198.51.100.7"
    assert got["offset"].get_content() == "10"
    assert got["length"].get_content() == "6"
    assert got["final"].get_content() == "yes"
    assert got[FILE_FIELD].get_filename() == "device.log.x.part2.gz"
    assert gzip.decompress(got[FILE_FIELD].get_payload(decode=True)) == b"hello\n"


# --- real HTTPS ---------------------------------------------------------------------------------


def spool_for(logfile: Path, tmp_path: Path, **options) -> LogSpool:
    return LogSpool(logfile, tmp_path / "state", reopen_command=None, close_timeout=2, **options)


def uploader_for(server: LogServer, read_timeout: float = 10) -> Uploader:
    destination = Destination(
        server.url, ca_bundle=server.ca_file, connect_timeout=5, read_timeout=read_timeout
    )
    return Uploader(destination, DEVICE)


def run(spool: LogSpool, server: LogServer, part_size: int = 40_000, **options):
    with uploader_for(server, options.pop("read_timeout", 10)) as uploader:
        return upload_logs(spool, uploader, part_size=part_size, **options)


def test_parts_cut_on_lines_arrive_whole_once_and_in_order(server, logfile, tmp_path):
    content = numbered(0, 3000)
    logfile.write_bytes(content)
    spool = spool_for(logfile, tmp_path)
    report = run(spool, server)
    assert server.received() == content
    assert report.parts_sent == len(server.uploads) > 3
    assert report.bytes_sent == len(content)
    offset = 0
    for number, upload in enumerate(server.uploads, 1):
        assert upload.fields["device_ip"] == "198.51.100.7"
        assert upload.fields["device_id"] == "192.0.2.1"
        assert upload.fields["part"] == str(number)
        assert upload.fields["offset"] == str(offset)
        assert upload.fields["length"] == str(upload.size) and upload.size <= 40_000
        assert upload.fields["sha256"] == hashlib.sha256(upload.data).hexdigest()
        assert upload.fields["final"] == ("yes" if number == len(server.uploads) else "no")
        assert upload.data.endswith(b"\n")
        offset += upload.size
    assert not logfile.exists()
    assert spool.pending() == []
    assert [p.read_bytes() for p in spool.uploaded_dir.iterdir()] == [content]
    assert list(spool.progress_dir.iterdir()) == []
    assert run(spool, server).parts_sent == 0


#: The ordinary ways a server fails; tests/test_logupload_hostile.py has the hostile ones.
ORDINARY = (Failure.SERVER_ERROR, Failure.TOO_LARGE, Failure.HANG, Failure.RESET, Failure.REDIRECT)


@pytest.mark.parametrize("failure", ORDINARY)
def test_a_failed_part_is_kept_resumed_next_run_and_never_sent_twice(server, logfile, tmp_path, failure):
    content = numbered(0, 2000)
    logfile.write_bytes(content)
    spool = spool_for(logfile, tmp_path)
    server.fail(failure, after=2)
    with pytest.raises(UploadError, match="next run") as caught:
        run(spool, server, read_timeout=1.5)
    assert "\n" not in str(caught.value)
    assert len(server.uploads) == 2
    [pending] = spool.pending()
    assert pending.read_bytes() == content
    assert spool.progress(pending).parts == 2
    run(spool, server)
    assert server.received() == content
    assert [u.fields["part"] for u in server.uploads] == [str(n) for n in range(1, len(server.uploads) + 1)]


@pytest.mark.parametrize(
    ("failure", "words"),
    [
        (Failure.SERVER_ERROR, "500"),
        (Failure.TOO_LARGE, "lower log_part_size"),
        (Failure.HANG, "did not answer"),
        (Failure.RESET, "without an answer|reset|broke"),
        (Failure.REDIRECT, "set url"),
    ],
)
def test_each_failure_says_what_happened(server, logfile, tmp_path, failure, words):
    logfile.write_bytes(numbered(0, 10))
    server.fail(failure)
    with pytest.raises(UploadError, match=words):
        run(spool_for(logfile, tmp_path), server, read_timeout=1.5)
    assert server.uploads == []


def test_a_certificate_from_another_ca_is_refused_and_the_next_run_sends_all(logfile, tmp_path, server):
    content = numbered(0, 500)
    logfile.write_bytes(content)
    spool = spool_for(logfile, tmp_path)
    with LogServer(tmp_path / "rogue") as rogue:
        wrong = Destination(rogue.url, ca_bundle=server.ca_file, connect_timeout=5, read_timeout=5)
        with Uploader(wrong, DEVICE) as uploader, pytest.raises(UploadError, match=r"TLS check .* ca_bundle"):
            upload_logs(spool, uploader)
        assert rogue.uploads == [] and rogue.attempts == 0
    run(spool, server)
    assert server.received() == content


def test_a_missing_ca_bundle_or_plain_http_is_a_config_error(server, tmp_path):
    with pytest.raises(ConfigError, match="ca_bundle"):
        Uploader(Destination(server.url, ca_bundle=tmp_path / "nope.pem"), DEVICE)
    with pytest.raises(ConfigError, match="unencrypted"):
        Uploader(Destination(server.url.replace("https", "http")), DEVICE)


def test_a_proxy_from_config_or_environment_carries_the_upload(server, logfile, tmp_path, monkeypatch):
    for name in ("no_proxy", "NO_PROXY", "https_proxy", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)
    spool = spool_for(logfile, tmp_path)
    with ConnectProxy() as proxy:
        logfile.write_bytes(numbered(0, 10))
        monkeypatch.setenv("https_proxy", f"http://127.0.0.1:{free_port()}")  # the config's proxy wins
        destination = Destination(server.url, ca_bundle=server.ca_file, proxy=proxy.url)
        with Uploader(destination, DEVICE) as uploader:
            upload_logs(spool, uploader)
        monkeypatch.setenv("https_proxy", proxy.url)
        logfile.write_bytes(numbered(10, 20))
        run(spool, server)
    assert proxy.targets == [f"127.0.0.1:{server.port}"] * 2
    assert server.received() == numbered(0, 20)


def test_a_second_run_is_refused_while_one_holds_the_lock(server, logfile, tmp_path):
    logfile.write_bytes(numbered(0, 10))
    spool = spool_for(logfile, tmp_path)
    with run_lock(spool.lock_path, "log upload"), pytest.raises(LockedError):
        run(spool, server)
    assert logfile.exists() and server.attempts == 0
    nowhere = spool_for(tmp_path / "no-such-dir" / "device.log", tmp_path)
    assert run(nowhere, server).parts_sent == 0


def test_a_failed_reopen_puts_the_log_back(server, logfile, tmp_path):
    content = numbered(0, 10)
    logfile.write_bytes(content)
    spool = LogSpool(logfile, tmp_path / "state", reopen_command=("false",))
    with pytest.raises(UploadError, match=r"'false' failed .* log_reopen_command"):
        run(spool, server)
    assert logfile.read_bytes() == content and spool.pending() == []
    missing = LogSpool(logfile, tmp_path / "state", reopen_command=("no-such-reopen-tool",))
    with pytest.raises(UploadError, match="not found"):
        run(missing, server)
    assert logfile.read_bytes() == content


def test_logrotate_files_go_first_oldest_first_gzip_inflated(server, logfile, tmp_path):
    old, older, live = numbered(0, 100), numbered(100, 200), numbered(200, 300)
    older_path = logfile.with_name("device.log.2.gz")
    older_path.write_bytes(gzip.compress(old))
    logfile.with_name("device.log.1").write_bytes(older)
    logfile.write_bytes(live)
    now = time.time()
    os.utime(older_path, (now - 7200, now - 7200))
    os.utime(logfile.with_name("device.log.1"), (now - 3600, now - 3600))
    broken = logfile.with_name("device.log-20261120.gz")
    truncated = gzip.compress(b"half written\n")[:-6]
    broken.write_bytes(truncated)
    os.utime(broken, (now - 9000, now - 9000))
    spool = spool_for(logfile, tmp_path)
    run(spool, server)
    assert server.received() == old + older + live
    leftovers = [p.name for p in spool.spool_dir.iterdir() if p.is_file()]
    assert len(leftovers) == 1 and leftovers[0].endswith(".gz")
    assert (spool.spool_dir / leftovers[0]).read_bytes() == truncated


def test_a_file_still_open_for_writing_waits_for_the_next_run(server, logfile, tmp_path):
    spool = spool_for(logfile, tmp_path, spool_dir=tmp_path / "spool")
    spool.close_timeout = 0.3
    logfile.write_bytes(numbered(0, 10))
    with logfile.open("ab") as writer:
        report = run(spool, server)
        writer.write(numbered(10, 20))
    assert report.waiting and server.uploads == []
    run(spool, server)
    assert server.received() == numbered(0, 20)


def test_uploaded_files_are_kept_then_expired(server, logfile, tmp_path):
    spool = spool_for(logfile, tmp_path)
    logfile.write_bytes(numbered(0, 10))
    run(spool, server, keep_days=7)
    [kept] = spool.uploaded_dir.iterdir()
    logfile.write_bytes(numbered(10, 20))
    run(spool, server, keep_days=7)
    assert kept.exists() and len(list(spool.uploaded_dir.iterdir())) == 2
    eight_days_ago = time.time() - 8 * 86400
    os.utime(kept, (eight_days_ago, eight_days_ago))
    report = run(spool, server, keep_days=7)
    assert report.expired == [kept.name] and not kept.exists()
    run(spool, server, keep_days=0)
    assert list(spool.uploaded_dir.iterdir()) == []


def test_an_empty_or_missing_log_sends_nothing(server, logfile, tmp_path):
    spool = spool_for(logfile, tmp_path)
    assert run(spool, server).parts_sent == 0
    logfile.touch()
    assert run(spool, server).parts_sent == 0
    assert logfile.exists() and server.attempts == 0
    nowhere = spool_for(tmp_path / "no-such-dir" / "device.log", tmp_path)
    assert run(nowhere, server).parts_sent == 0


def test_an_unwritable_state_directory_is_one_clear_error(server, logfile, tmp_path):
    logfile.write_bytes(numbered(0, 10))
    (tmp_path / "state").write_text("a file where the state directory should be")
    with pytest.raises(TsError, match=r"state_dir \S+ is not a folder; remove it or choose another path"):
        run(LogSpool(logfile, tmp_path / "state", reopen_command=None), server)
    assert logfile.read_bytes() == numbered(0, 10)


def test_a_line_longer_than_a_part_is_split_with_a_warning(server, logfile, tmp_path, caplog, monkeypatch):
    monkeypatch.setattr(log, "propagate", True)  # setup_logging, run by other tests, turns it off
    content = b"short\n" + b"z" * 3000 + b"\nend\n"
    logfile.write_bytes(content)
    run(spool_for(logfile, tmp_path), server, part_size=1024)
    assert server.received() == content
    assert "longer than log_part_size" in caplog.text


def test_rotated_gzip_files_with_the_same_mtime_are_both_sent(server, logfile, tmp_path):
    """Review item 8: device.log.1.gz and device.log.2.gz with one mtime used to take one spool name."""
    first, second = numbered(0, 100), numbered(100, 200)
    when = time.time() - 3600
    for name, content in (("device.log.2.gz", first), ("device.log.1.gz", second)):
        path = logfile.with_name(name)
        path.write_bytes(gzip.compress(content))
        os.utime(path, (when, when))
    spool = spool_for(logfile, tmp_path)
    run(spool, server)
    assert sorted(server.received().splitlines(keepends=True)) == sorted((first + second).splitlines(True))
    assert len(server.uploads) == 2


def test_a_packed_file_whose_plain_twin_differs_is_kept_and_sent(server, logfile, tmp_path):
    """A .gz is removed beside its plain twin only when it inflates to exactly that twin."""
    spool = spool_for(logfile, tmp_path)
    spool.spool_dir.mkdir(parents=True)
    name = spool_name(logfile.name, time.time() - 60, lambda n: False)
    (spool.spool_dir / name).write_bytes(numbered(0, 50))
    (spool.spool_dir / f"{name}.gz").write_bytes(gzip.compress(numbered(50, 100)))
    twin = spool_name(logfile.name, time.time() - 30, lambda n: False)
    (spool.spool_dir / twin).write_bytes(numbered(100, 150))
    (spool.spool_dir / f"{twin}.gz").write_bytes(gzip.compress(numbered(100, 150)))  # a stopped inflate
    run(spool, server)
    assert sorted(server.received().splitlines()) == sorted(numbered(0, 150).splitlines())
    assert not list(spool.spool_dir.glob("*.gz"))


def test_an_inflated_file_keeps_the_mode_of_its_gzip(server, logfile, tmp_path):
    """Review item 18: a 0600 rotated log must not become 0644 in the spool."""
    packed = logfile.with_name("device.log.1.gz")
    packed.write_bytes(gzip.compress(numbered(0, 10)))
    packed.chmod(0o600)
    spool = spool_for(logfile, tmp_path)
    run(spool, server)
    [sent] = spool.uploaded_dir.iterdir()
    assert sent.stat().st_mode & 0o777 == 0o600


def test_a_reader_holding_the_log_open_does_not_delay_the_upload(server, logfile, tmp_path):
    """Review item 9: `tail -f` or `less` on the spool file cannot add lines, so it must not count."""
    spool = spool_for(logfile, tmp_path, spool_dir=tmp_path / "spool")
    spool.close_timeout = 0.3
    logfile.write_bytes(numbered(0, 10))
    with logfile.open("rb"):
        report = run(spool, server)
    assert not report.waiting
    assert server.received() == numbered(0, 10)


def test_open_flags_tell_writers_from_readers():
    assert opened_for_writing("pos:\t0\nflags:\t0100001\nmnt_id:\t29\n")
    assert opened_for_writing("pos:\t0\nflags:\t02100002\n")
    assert not opened_for_writing("pos:\t0\nflags:\t0100000\nmnt_id:\t29\n")


def test_a_connection_left_idle_is_not_reused_for_the_next_file(logfile, tmp_path):
    """A server drops an idle keep-alive connection just as a request arrives on it (seen once in CI,
    where waiting for syslog-ng to close a file left the connection idle): the next file must go on a
    fresh connection, not fail on the stale one."""
    with LogServer(tmp_path / "server", keepalive=1.0) as server, uploader_for(server) as uploader:
        spool = spool_for(logfile, tmp_path)
        logfile.write_bytes(numbered(0, 10))
        upload_logs(spool, uploader)
        time.sleep(KEEPALIVE_TRUST + 0.5)  # longer than the server keeps it and than the client trusts it
        logfile.write_bytes(numbered(10, 20))
        upload_logs(spool, uploader)
        assert server.received() == numbered(0, 20)
