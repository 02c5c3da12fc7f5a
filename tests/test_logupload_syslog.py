"""A real syslog-ng writes the log while it is uploaded: no line lost, none sent twice.

syslog-ng runs in the foreground with its own config, pid file, persist file
and control socket under tmp_path, and receives numbered lines over UDP on a
free loopback port; numbering them end to end shows every line arrived once.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.support.https_server import LogServer
from tests.support.tools import free_port, require_tool
from ts_isr.logupload import Destination, Device, LogSpool, Uploader, spool_name, upload_logs

LINE = re.compile(rb"^seq (\d+) ", re.M)


def config_version(syslog_ng: str) -> str:
    text = subprocess.run([syslog_ng, "--version"], capture_output=True, text=True, check=True).stdout
    return re.search(r"Config version: (\d+\.\d+)", text).group(1)


class SyslogNg:
    """syslog-ng with a UDP source on ``port`` and a file destination ``logfile``."""

    def __init__(self, tmp_path: Path, logfile: Path) -> None:
        self.binary = require_tool("syslog-ng")
        self.ctl = require_tool("syslog-ng-ctl")
        self.port = free_port(socket.SOCK_DGRAM)
        self.control = tmp_path / "syslog-ng.ctl"
        self.config = tmp_path / "syslog-ng.conf"
        self.config.write_text(
            f"@version: {config_version(self.binary)}\n"
            "options { flush_lines(0); stats_freq(0); };\n"
            f'source s_device {{ network(ip("127.0.0.1") port({self.port}) transport("udp") '
            "so_rcvbuf(8388608) flags(no-parse)); };\n"
            f'destination d_device {{ file("{logfile}" template("$MSG\\n") create-dirs(yes)); }};\n'
            "log { source(s_device); destination(d_device); };\n"
        )
        self.output = tmp_path / "syslog-ng.out"
        self.process = subprocess.Popen(
            [
                self.binary,
                "--foreground",
                "--no-caps",
                f"--cfgfile={self.config}",
                f"--pidfile={tmp_path / 'syslog-ng.pid'}",
                f"--persist-file={tmp_path / 'syslog-ng.persist'}",
                f"--control={self.control}",
            ],
            stdout=self.output.open("w"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while not self._answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"syslog-ng did not start: {self.output.read_text()}")
            time.sleep(0.1)

    def _answers(self) -> bool:
        done = subprocess.run(
            [self.ctl, "stats", f"--control={self.control}"], capture_output=True, check=False
        )
        return done.returncode == 0

    @property
    def reopen_command(self) -> tuple[str, ...]:
        return (self.ctl, "reopen", f"--control={self.control}")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


class Sender(threading.Thread):
    """Sends ``seq N`` lines, numbered from 0, until stopped; ``sent`` is how many went out."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.sent = 0
        self.stopped = threading.Event()

    def run(self) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            while not self.stopped.is_set():
                sock.sendto(b"seq %07d from the device's syslog" % self.sent, ("127.0.0.1", self.port))
                self.sent += 1
                if self.sent % 20 == 0:
                    time.sleep(0.005)


def numbers(data: bytes) -> list[int]:
    return [int(n) for n in LINE.findall(data)]


def wait_for(condition, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def logfile(tmp_path):
    return tmp_path / "log" / "device.log"


@pytest.fixture
def syslog_ng(tmp_path, logfile):
    running = SyslogNg(tmp_path, logfile)
    yield running
    running.stop()


@pytest.fixture
def sender(syslog_ng):
    running = Sender(syslog_ng.port)
    yield running
    running.stopped.set()


@pytest.fixture
def server(tmp_path):
    with LogServer(tmp_path / "server", delay=0.05) as running:
        yield running


@pytest.fixture
def uploader(server):
    destination = Destination(server.url, ca_bundle=server.ca_file, read_timeout=30)
    with Uploader(destination, Device("198.51.100.7", "192.0.2.1")) as running:
        yield running


def stop_and_flush(sender: Sender, logfile: Path) -> None:
    """Stop sending and wait until syslog-ng wrote the last line."""
    sender.stopped.set()
    sender.join()
    last = sender.sent - 1
    wait_for(lambda: logfile.exists() and last in numbers(logfile.read_bytes()[-200:]), f"line {last}")


def test_lines_written_during_an_upload_go_in_the_next_run_none_lost_none_twice(
    tmp_path, logfile, syslog_ng, sender, server, uploader
):
    spool = LogSpool(logfile, tmp_path / "state", reopen_command=syslog_ng.reopen_command)
    sender.start()
    wait_for(lambda: logfile.exists() and logfile.stat().st_size > 100_000, "the first lines")
    upload_logs(spool, uploader, part_size=20_000)
    sent_during_first_run = sender.sent
    first_run = numbers(server.received())
    time.sleep(0.3)
    stop_and_flush(sender, logfile)
    upload_logs(spool, uploader, part_size=20_000)
    everything = numbers(server.received())
    assert everything == list(range(sender.sent)), "a line was lost, duplicated or reordered"
    assert len(first_run) > 1000
    assert first_run[-1] + 1 < sent_during_first_run, "the first run should have overlapped with logging"
    assert everything[len(first_run)] == first_run[-1] + 1
    assert all(upload.size <= 20_000 for upload in server.uploads)
    assert not logfile.exists() or numbers(logfile.read_bytes()) == []


def test_a_run_that_died_between_rename_and_reopen_is_finished_by_the_next(
    tmp_path, logfile, syslog_ng, sender, server, uploader
):
    spool = LogSpool(logfile, tmp_path / "state", reopen_command=syslog_ng.reopen_command, close_timeout=1)
    sender.start()
    wait_for(lambda: logfile.exists() and logfile.stat().st_size > 20_000, "the first lines")
    spool.spool_dir.mkdir(parents=True)
    renamed = spool.spool_dir / spool_name(logfile.name, time.time(), lambda name: False)
    os.rename(logfile, renamed)  # ... and the run died here, before its reopen
    time.sleep(0.2)
    upload_logs(spool, uploader, rotate=False)
    assert server.uploads and not renamed.exists()
    stop_and_flush(sender, logfile)
    upload_logs(spool, uploader)
    assert numbers(server.received()) == list(range(sender.sent))
