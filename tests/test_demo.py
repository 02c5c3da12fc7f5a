"""README's first command: the demo runs end to end (lab ISR, policy DNS server, setup, two runs)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.support.tools import free_port
from ts_isr.demo import run_setup

ROOT = Path(__file__).resolve().parents[1]


def test_demo_loads_then_changes_incrementally(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "ts_isr.demo", "--dir", str(tmp_path / "demo")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert "setup wrote the config" in out
    assert out.count("(exit 4: changed)") == 2
    new = [int(n) for n in re.findall(r"(\d+) items are new in the ThreatSTOP block list", out)]
    assert len(new) == 2 and new[1] < new[0], "the second run sends only the difference"
    assert "configure terminal" not in out, "the demo shows the log, not the device's command detail"
    config = (tmp_path / "demo" / "threatstop.conf").read_text()
    password = re.search(r"^password\s*=\s*(\S+)", config, re.M).group(1)
    assert password not in out and password not in (tmp_path / "demo" / "tsoutput.log").read_text()


def test_a_setup_that_cannot_finish_fails_the_demo(tmp_path):
    """Review item 27: no fallback that writes the config itself and hides a broken setup."""
    unreachable = SimpleNamespace(port=free_port(), password="pw-demo", secret="en-demo")
    config = tmp_path / "threatstop.conf"
    with pytest.raises(SystemExit, match=r"demo: FAILED: setup could not finish \(.*cannot reach"):
        run_setup(config, unreachable, free_port(), tmp_path)
