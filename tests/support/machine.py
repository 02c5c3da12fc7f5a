"""The machine as a test found it: files, folders and root's crontab saved first and put back after.

The Debian package tests install for real (``apt-get``), run ``tsadmin add`` and ``threatstop-setup``
against the real ``/etc``, crontab and syslog-ng; :class:`MachineState` makes sure that whatever they
wrote is undone, even after a failed test.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

from tests.support.tools import require_tool


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def root_crontab() -> str | None:
    """Root's crontab as ``crontab -l`` prints it; None when root has none."""
    done = subprocess.run(["crontab", "-l"], capture_output=True, text=True, check=False)
    return done.stdout if done.returncode == 0 else None


def set_root_crontab(text: str | None) -> None:
    if text is None:
        subprocess.run(["crontab", "-r"], capture_output=True, check=False)
    else:
        subprocess.run(["crontab", "-"], input=text, text=True, capture_output=True, check=True)


class MachineState:
    """Saves ``paths`` (files or whole folders, present or not), root's crontab, and the names in
    ``new_files_in`` folders; :meth:`restore` puts every path back, removes what was not there
    (new files in those folders included) and restores the crontab."""

    def __init__(self, paths: Iterable[str], workdir: Path, new_files_in: Iterable[str] = ()) -> None:
        self.paths = [Path(path) for path in paths]
        self.workdir = workdir
        self.folders = [Path(folder) for folder in new_files_in]
        self.saved: dict[Path, Path | None] = {}
        self.names: dict[Path, set[str]] = {}
        self.crontab: str | None = None

    def save(self) -> MachineState:
        require_tool("crontab")
        for index, path in enumerate(self.paths):
            if not os.path.lexists(path):
                self.saved[path] = None
                continue
            copy = self.workdir / f"saved-{index}"
            if path.is_dir() and not path.is_symlink():
                shutil.copytree(path, copy, symlinks=True)
            else:
                shutil.copy2(path, copy, follow_symlinks=False)
            self.saved[path] = copy
        self.names = {folder: set(os.listdir(folder)) for folder in self.folders if folder.is_dir()}
        self.crontab = root_crontab()
        return self

    def restore(self) -> None:
        for path, copy in self.saved.items():
            if os.path.lexists(path):
                _remove(path)
            if copy is None:
                continue
            if copy.is_dir():
                shutil.copytree(copy, path, symlinks=True)
            else:
                shutil.copy2(copy, path, follow_symlinks=False)
        for folder, names in self.names.items():
            for name in set(os.listdir(folder)) - names:
                _remove(folder / name)
        set_root_crontab(self.crontab)


class DistributionDaemon:
    """A daemon of the distribution in the foreground, started for a test when none runs, as on a
    Debian host; stopped again after (only when the test started it)."""

    name: str
    argv: tuple[str, ...]

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None

    def running(self) -> bool:
        raise NotImplementedError

    def start(self) -> DistributionDaemon:
        if self.running():
            return self
        argv = [require_tool(self.argv[0]), *self.argv[1:]]
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while not self.running():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the distribution's {self.name} did not start")
            time.sleep(0.1)
        return self

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class DistributionSyslogNg(DistributionDaemon):
    """The distribution's own syslog-ng (``/etc/syslog-ng/syslog-ng.conf``, its default control socket)."""

    name = "syslog-ng"
    argv = ("syslog-ng", "-F", "--no-caps")
    CONTROL = Path("/var/lib/syslog-ng/syslog-ng.ctl")

    def running(self) -> bool:
        return subprocess.run(["syslog-ng-ctl", "stats"], capture_output=True, check=False).returncode == 0


class DistributionCron(DistributionDaemon):
    """Debian's cron (``cron -f`` writes /run/crond.pid): ``tsadmin add`` installs its cron lines only
    where a cron daemon will run them.  Its pid file goes with it."""

    name = "cron"
    argv = ("cron", "-f")
    PIDFILE = Path("/run/crond.pid")

    def running(self) -> bool:
        try:
            os.kill(int(self.PIDFILE.read_text().split()[0]), 0)
        except (OSError, ValueError, IndexError):
            return False
        return True

    def stop(self) -> None:
        super().stop()
        if self.process is not None:
            self.PIDFILE.unlink(missing_ok=True)
