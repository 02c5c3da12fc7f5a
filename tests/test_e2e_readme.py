"""README's first command on a fresh clone: what is committed is enough for the demo to finish.

``bash scripts/demo.sh`` makes a virtualenv with ``pip install`` (PyPI), and
tests reach no network but loopback; so the clone runs the entry point that
demo.sh ends with, ``python -m ts_isr.demo``, with this virtualenv's Python.
The first test keeps README, demo.sh and that entry point together.  README's
second command (scripts/test.sh) is what CI runs.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.support.tools import require_tool

ROOT = Path(__file__).resolve().parents[1]
DEMO_ENTRY = '.venv/bin/python -m ts_isr.demo "$@"'


def test_readme_runs_demo_sh_and_demo_sh_runs_the_demo_module() -> None:
    commands = re.findall(r"^ {4}(bash \S+)", (ROOT / "README.md").read_text(), re.M)
    assert commands == ["bash scripts/demo.sh", "bash scripts/test.sh"]
    last = (ROOT / "scripts/demo.sh").read_text().strip().splitlines()[-1]
    assert last == f"exec {DEMO_ENTRY}", "demo.sh changed its entry point: run that one in the test below"


def test_the_demo_finishes_on_a_fresh_clone(tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    cloned = subprocess.run(
        [require_tool("git"), "clone", "--quiet", str(ROOT), str(clone)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert cloned.returncode == 0, cloned.stderr
    env = {name: value for name, value in os.environ.items() if not name.startswith(("PYTHON", "TS_"))}

    def python(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, *argv], cwd=clone, env=env, capture_output=True, text=True, timeout=300
        )

    probe = python("-c", "import ts_isr.demo; print(ts_isr.demo.__file__)")
    assert probe.stdout.strip() == str(clone / "ts_isr" / "demo.py"), "the clone's code runs, not this tree's"
    done = python("-m", "ts_isr.demo", "--dir", str(tmp_path / "demo"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "demo: done" in done.stdout and done.stdout.count("(exit 4: changed)") == 2
