"""The Debian packages for tests: built by the project's own script, installed and removed with apt-get.

``build(version, out)`` runs ``scripts/build-deb.sh --version VERSION --out OUT`` (a copy of the
checkout, the checkout untouched); ``apt(...)`` runs apt-get without questions, waiting for the dpkg
lock rather than failing when another apt run holds it, optionally inside a network namespace.
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BUILD_TIMEOUT = 600
APT_TIMEOUT = 300
PACKAGES = ("ts-iptables", "ts-isr")


@dataclass(frozen=True)
class Build:
    version: str
    debs: dict[str, Path]
    seconds: float

    def deb(self, package: str) -> Path:
        return self.debs[package]


def build(version: str, out: Path) -> Build:
    """Both packages as ``version``; the build's log tail is the failure message."""
    start = time.monotonic()
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "build-deb.sh"), "--version", version, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    debs = {package: next(out.glob(f"{package}_{version}_*.deb")) for package in PACKAGES}
    return Build(version, debs, time.monotonic() - start)


def apt(*args: str, netns: str | None = None) -> subprocess.CompletedProcess[str]:
    """``apt-get -y ARGS`` (in ``netns`` when given): no prompt, the dpkg lock awaited."""
    argv = ["apt-get", "-y", "-q", "-o", "DPkg::Lock::Timeout=120", *args]
    if netns is not None:
        argv = ["ip", "netns", "exec", netns, *argv]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    return subprocess.run(argv, capture_output=True, text=True, timeout=APT_TIMEOUT, env=env, check=False)


def apt_ok(*args: str, netns: str | None = None) -> str:
    done = apt(*args, netns=netns)
    assert done.returncode == 0, f"apt-get {' '.join(args)} failed:\n{done.stdout}{done.stderr}"
    return done.stdout


def installed_version(package: str) -> str | None:
    """The installed version (``dpkg-query``), None when the package is not installed."""
    done = subprocess.run(
        ["dpkg-query", "-W", "-f=${db:Status-Status} ${Version}", package],
        capture_output=True,
        text=True,
        check=False,
    )
    status, _, version = done.stdout.partition(" ")
    return version if done.returncode == 0 and status == "installed" else None


def known(package: str) -> bool:
    """dpkg knows the package at all (installed, or removed with its configuration left)."""
    done = subprocess.run(
        ["dpkg-query", "-W", "-f=${db:Status-Status}", package], capture_output=True, text=True, check=False
    )
    return done.returncode == 0 and done.stdout not in ("", "not-installed")


def purge_all(netns: str | None = None) -> None:
    """Take both packages off the machine (maintainer scripts included), whatever state a test left;
    in ``netns`` when tsadmin's rules are there (its prerm removes them where it runs)."""
    present = [package for package in PACKAGES if known(package)]
    if present:
        apt_ok("purge", *present, netns=netns)


def folder_size(path: Path) -> int:
    """Bytes in the files under ``path`` (what ``du -sb`` counts, symlinks as links)."""
    return sum(entry.lstat().st_size for entry in path.rglob("*"))
