"""upload_rules runs against a lab device and a policy server: a config beside the device, and the runs.

Usage::

    run = Run(tmp_path, knot, device, capsys)
    code, out = run(block_list="block1.ts.test")   # in this process, as cron would call main()
    result = run.measured(timeout=60)        # a child process: exit code, wall time, peak memory
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tests.support.knot import KnotServer
from ts_isr.commands.upload_rules import main

ZONE = "ts.test."
ROOT = Path(__file__).resolve().parents[2]


def odd_hosts(prefix: str, count: int, start: int = 0) -> list[str]:
    """``count`` addresses that never aggregate: every other address from ``prefix``.0.0."""
    return [f"{prefix}.{n // 128}.{(n % 128) * 2 + 1}" for n in range(start, start + count)]


def expected_members(platform: str, hosts: list[str]) -> set[str]:
    prefix = "network-object " if platform == "asa" else ""
    return {f"{prefix}host {host}" for host in hosts}


class Run:
    """One device, its config beside it, and upload_rules runs against both."""

    def __init__(self, tmp_path: Path, knot: KnotServer, device, capsys) -> None:
        self.dir = tmp_path / f"run-{device.platform}-{device.port}"
        self.dir.mkdir()
        self.device = device
        self.capsys = capsys
        self.known_hosts = self.dir / "known_hosts"
        self.known_hosts.write_text(device.known_hosts_line() + "\n")
        self.values = {
            "device": device.host,
            "ssh_port": device.port,
            "username": device.username,
            "password": device.password,
            "enable_pw": device.secret,
            "personality": device.platform,
            "block_list": f"block1.{ZONE}",
            "dns_server": "127.0.0.1",
            "port": knot.port,
            "ssh_timeout": 20,
        }
        self.config = self.dir / "threatstop.conf"
        self.write()

    def write(self, **changes) -> None:
        self.values.update(changes)
        text = "".join(f"{key}={value}\n" for key, value in self.values.items() if value is not None)
        self.config.write_text(text)
        self.config.chmod(0o600)

    def __call__(self, *flags: str, **changes) -> tuple[int, str]:
        if changes:
            self.write(**changes)
        self.capsys.readouterr()
        code = main(["--config", str(self.config), "--detailed-exitcodes", *flags])
        return code, self.capsys.readouterr().out

    def group(self, name: str = "threatstop-block") -> set[str]:
        return set(self.device.running().get(name, []))

    @property
    def log(self) -> str:
        return (self.dir / "tsoutput.log").read_text()

    def configured(self) -> bool:
        return "configure terminal" in self.device.commands()

    def owned(self, name: str = "threatstop-block") -> str:
        """The tool's ownership record of group ``name`` (empty when there is none)."""
        path = self.dir / "state" / f"owned-{self.device.host}-{self.device.port}-{name}.txt"
        return path.read_text() if path.exists() else ""

    def measured(self, timeout: float, **changes) -> Measured:
        """upload_rules in a child process, killed after ``timeout`` s: exit code, time and peak memory."""
        if changes:
            self.write(**changes)
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        peak = self.dir / "measured.peak"
        peak.unlink(missing_ok=True)
        argv = [sys.executable, "-m", "tests.support.peak", str(peak)]  # measured alone, not as the runner
        argv += [sys.executable, "-m", "ts_isr.commands.upload_rules", "--config", str(self.config)]
        output = self.dir / "measured.out"
        started = time.monotonic()
        with open(output, "w") as out:
            child = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
        try:
            child.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            child.terminate()  # the launcher kills upload_rules and still writes its peak
            child.wait()
            child.returncode = -9
        seconds = time.monotonic() - started
        peak_kib = int(peak.read_text()) if peak.exists() else 0
        return Measured(child.returncode, seconds, peak_kib / 1024, output.read_text())


@dataclass(frozen=True)
class Measured:
    code: int  # negative: killed by that signal (it ran past the test's timeout)
    seconds: float
    peak_mb: float
    out: str
