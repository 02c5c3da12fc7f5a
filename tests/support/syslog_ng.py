"""A real syslog-ng for tests: foreground, its own control socket, pid and persist files, loading the
conf.d snippet under test by ``@include``; and the lab device's syslog sent until it is filed."""

from __future__ import annotations

import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

from tests.support.tools import missing, require_tool
from ts_isr.lab import syslog


def wait_until(check, timeout: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class SyslogNg:
    """A real syslog-ng in the foreground, with its own files, loading a conf.d snippet by @include.

    ``head`` goes before the include (sources the snippet expects, such as a host's ``s_src``);
    ``cfgfile`` places the main configuration elsewhere than ``workdir`` (a test root's /etc).
    """

    def __init__(self, workdir: Path, snippet: Path, *, head: str = "", cfgfile: Path | None = None) -> None:
        self.workdir = workdir
        self.control = workdir / "syslog-ng.ctl"
        self.cfgfile = cfgfile or workdir / "syslog-ng.conf"
        self.cfgfile.parent.mkdir(parents=True, exist_ok=True)
        self.cfgfile.write_text(f'@version: current\n{head}@include "{snippet}"\n', encoding="utf-8")
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        binary = require_tool("syslog-ng")
        self.process = subprocess.Popen(
            [
                binary,
                "--foreground",
                "--stderr",
                f"--cfgfile={self.cfgfile}",
                f"--pidfile={self.workdir / 'syslog-ng.pid'}",
                f"--persist-file={self.workdir / 'syslog-ng.persist'}",
                f"--control={self.control}",
                "--no-caps",
            ],
            stdout=subprocess.DEVNULL,
            stderr=(self.workdir / "syslog-ng.stderr").open("wb"),
        )
        wait_until(self.ready, what="syslog-ng's control socket")

    def ready(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            stderr = (self.workdir / "syslog-ng.stderr").read_text(errors="replace")
            raise AssertionError(f"syslog-ng exited {self.process.returncode}: {stderr}")
        ctl = require_tool("syslog-ng-ctl")
        done = subprocess.run(
            [ctl, "stats", "--control", str(self.control)], capture_output=True, timeout=10, check=False
        )
        return done.returncode == 0

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def device_says(port: int, message: str, logfile: Path, timeout: float = 60.0) -> None:
    """Send ``message`` from the lab's syslog sender (an ISR's ``logging host`` datagram) until it is in
    ``logfile``: UDP may drop a datagram on a loaded box, so it is sent again once a second."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        syslog.send([syslog.ios_line(message, 1, datetime.now(UTC))], "127.0.0.1", port)
        resend = time.monotonic() + 1.0
        while time.monotonic() < resend:
            if file_has(logfile, message):
                return
            time.sleep(0.02)
    raise AssertionError(f"{message!r} never reached {logfile} within {timeout}s")


def file_has(path: Path, text: str) -> bool:
    return path.exists() and text in path.read_text(errors="replace")


def check_in_distribution_config(conf_d: Path, workdir: Path) -> None:
    """The distribution's own syslog-ng.conf, its conf.d include pointed at ``conf_d``, passes syntax-only:
    no name in the snippets clashes with the host's (``s_src``, ``d_kern``...) and each parses there.
    (References to undefined objects pass this check; the suites run the snippets for real for those.)"""
    main = Path("/etc/syslog-ng/syslog-ng.conf")
    if not main.exists():
        missing(f"{main} is not installed (Debian package syslog-ng-core)")
    include = '@include "/etc/syslog-ng/conf.d/*.conf"'
    text = main.read_text(encoding="utf-8")
    assert include in text, f"{main} no longer includes conf.d as Debian's does"
    cfgfile = workdir / "distribution-syslog-ng.conf"
    cfgfile.write_text(text.replace(include, f'@include "{conf_d}/*.conf"'), encoding="utf-8")
    done = subprocess.run(
        [require_tool("syslog-ng"), "--syntax-only", f"--cfgfile={cfgfile}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
