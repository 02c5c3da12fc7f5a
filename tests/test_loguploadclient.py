"""loguploadclient as cron runs it: the checkout's bin/ wrapper, a threatstop.conf, a real HTTPS server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.https_server import (
    Failure,
    LogServer,
    server_fixture,  # noqa: F401 (a pytest fixture)
)
from ts_isr.errors import Exit
from ts_isr.lock import run_lock
from ts_isr.logupload import LogSpool

ROOT = Path(__file__).resolve().parent.parent
LINES = b"".join(b"<134>%%SEC-6-IPACCESSLOGP: list 101 denied 192.0.2.%d\n" % (i % 250) for i in range(2000))


def write_config(tmp_path: Path, server: LogServer, **overrides: str) -> Path:
    values = {
        "device": "192.0.2.1",
        "external_ip": "198.51.100.7",
        "block_list": "mypolicy.1234.threatstop.local",
        "username": "admin",
        "password": "s3cret-pw",
        "url": server.url,
        "ca_bundle": str(server.ca_file),
        "logfile": str(tmp_path / "log" / "device.log"),
        "state_dir": str(tmp_path / "state"),
        "tsoutput": str(tmp_path / "tsoutput.log"),
        "log_reopen_command": "true",
        "log_part_size": "20000",
    } | overrides
    path = tmp_path / "threatstop.conf"
    path.write_text("".join(f"{key}={value}\n" for key, value in values.items()))
    path.chmod(0o600)
    (tmp_path / "log").mkdir(exist_ok=True)
    return path


def loguploadclient(config: Path, *args: str, module: bool = False) -> subprocess.CompletedProcess[str]:
    """Run it as cron does: no TTY, no proxy in the environment."""
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    command = (
        [sys.executable, "-m", "ts_isr.commands.loguploadclient"]
        if module
        else [str(ROOT / "bin/loguploadclient")]
    )
    return subprocess.run(
        [*command, "--config", str(config), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
        check=False,
    )


def test_a_run_uploads_the_log_quietly_and_logs_in_tsoutput(server, tmp_path):
    config = write_config(tmp_path, server)
    (tmp_path / "log" / "device.log").write_bytes(LINES)
    done = loguploadclient(config)
    assert (done.returncode, done.stdout, done.stderr) == (Exit.UNCHANGED, "", "")
    assert server.received() == LINES
    assert {u.fields["device_ip"] for u in server.uploads} == {"198.51.100.7"}
    assert {u.fields["device_id"] for u in server.uploads} == {"192.0.2.1"}
    log_text = (tmp_path / "tsoutput.log").read_text()
    assert "[INFO ] : Uploaded 1 file(s) in" in log_text
    assert "s3cret-pw" not in log_text


def test_a_server_failure_is_one_error_line_and_the_next_run_sends_it(server, tmp_path):
    config = write_config(tmp_path, server)
    (tmp_path / "log" / "device.log").write_bytes(LINES)
    server.fail(Failure.SERVER_ERROR, after=1)
    failed = loguploadclient(config, module=True)
    assert failed.returncode == Exit.FAILED
    [line] = failed.stdout.splitlines()
    assert line.startswith("[ERROR] : ") and "500" in line and "next run" in line
    assert loguploadclient(config).returncode == Exit.UNCHANGED
    assert server.received() == LINES


def test_plain_http_is_a_config_error_and_nothing_moves(server, tmp_path):
    config = write_config(tmp_path, server, url=server.url.replace("https:", "http:"))
    (tmp_path / "log" / "device.log").write_bytes(LINES)
    done = loguploadclient(config)
    assert done.returncode == Exit.CONFIG
    [line] = done.stdout.splitlines()
    assert line.startswith("[ERROR] : ") and "url" in line and "https" in line
    assert (tmp_path / "log" / "device.log").read_bytes() == LINES


def test_a_running_upload_holds_off_a_second(server, tmp_path):
    config = write_config(tmp_path, server)
    (tmp_path / "log" / "device.log").write_bytes(LINES)
    spool = LogSpool(tmp_path / "log" / "device.log", tmp_path / "state")
    with run_lock(spool.lock_path, "log upload"):
        done = loguploadclient(config)
    assert done.returncode == Exit.LOCKED
    assert "another log upload run" in done.stdout
    assert server.attempts == 0


def test_an_unwritable_log_folder_is_the_same_one_line_as_the_other_commands(server, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    config = write_config(tmp_path, server, tsoutput=str(blocker / "tsoutput.log"))
    (tmp_path / "log" / "device.log").write_bytes(LINES)
    done = loguploadclient(config)
    assert done.returncode == Exit.FAILED
    [line] = done.stdout.splitlines()
    assert line.startswith("[ERROR] : cannot write the log") and "internal error" not in line
    assert server.attempts == 0 and (tmp_path / "log" / "device.log").read_bytes() == LINES


def test_a_log_folder_another_user_owns_is_one_error_line_and_nothing_moves(server, tmp_path):
    """Issue 16: root must not work in a folder another user controls (a planted link would redirect it)."""
    config = write_config(tmp_path, server)
    (tmp_path / "log" / "device.log").write_bytes(LINES)
    os.chown(tmp_path / "log", 65534, 65534)
    done = loguploadclient(config)
    assert done.returncode == Exit.FAILED
    [line] = done.stdout.splitlines()
    assert line.startswith("[ERROR] : log folder ") and "owned by uid 65534" in line and "chown root" in line
    assert sorted(p.name for p in (tmp_path / "log").iterdir()) == ["device.log"]
    assert (tmp_path / "log" / "device.log").read_bytes() == LINES
    assert server.attempts == 0


def test_control_characters_from_the_server_reach_cron_mail_and_the_log_escaped(server, tmp_path):
    """Issue 16: a reason phrase and Location with ESC and BEL must not drive the admin's terminal."""
    config = write_config(tmp_path, server)
    (tmp_path / "log" / "device.log").write_bytes(LINES)
    server.fail(Failure.CONTROL_CHARACTERS)
    failed = loguploadclient(config)
    assert failed.returncode == Exit.FAILED
    [line] = failed.stdout.splitlines()
    log_text = (tmp_path / "tsoutput.log").read_text()
    for shown in (failed.stdout, log_text):
        assert "\x1b" not in shown and "\x07" not in shown
    assert "302 Found\\x1b]0;owned\\x07\\x1b[2J" in line
    assert f"redirects to https://127.0.0.1:{server.port}/\\x1b[31melsewhere\\x07" in line
    assert "302 Found\\x1b]0;owned\\x07\\x1b[2J" in log_text
    assert loguploadclient(config).returncode == Exit.UNCHANGED
    assert server.received() == LINES
