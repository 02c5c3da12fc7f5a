"""Root's log upload trusts nothing another user controls (issue 16's reproduction, with `nobody`).

A log folder another user can write lets that user plant ``<logfile>.spool/``
with an ``uploaded`` symlink into a root-owned folder, a crafted ``.gz``, and a
``.tmp`` symlink onto a root-owned file.  The run must refuse with one line
naming the folder and the fix, change nothing outside the spool, and lose
nothing in it.  Inside folders root does trust, symlinks are still never
followed (belt and braces: an admin's stray link must not redirect root's
writes either).
"""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.support.https_server import (
    LogServer,
    server_fixture,  # noqa: F401 (a pytest fixture)
)
from tests.support.tools import require_root
from tests.support.users import NOBODY
from ts_isr.errors import ConfigError, TsError
from ts_isr.logupload import Destination, Device, LogSpool, Uploader, upload_logs

STAMP = "device.log.20261101T000000.000000Z"
SECRET = b"root's own configuration\n"
CRAFTED = b"<134>line nobody wants root to write somewhere\n"
LIVE = b"<134>Nov 21 12:00:00 isr %SEC-6-IPACCESSLOGP: a real line\n"


@pytest.fixture
def base():
    """A folder `nobody` can reach (pytest's tmp_path is root's 0700 and would hide everything)."""
    require_root()
    path = Path(tempfile.mkdtemp(prefix="logup-trust."))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


def as_nobody(script: str, cwd: Path) -> None:
    """Run ``script`` in sh as the unprivileged `nobody`, as an attacker on the host would."""
    subprocess.run(
        ["/bin/sh", "-ec", script],
        cwd=cwd,
        user=NOBODY.pw_uid,
        group=NOBODY.pw_gid,
        extra_groups=[],
        check=True,
        timeout=30,
    )


def victim(base: Path) -> Path:
    """A root-owned folder with a root-owned 0600 file and files old enough for any expiry."""
    folder = base / "victim"
    folder.mkdir(mode=0o755)
    (folder / "secret.conf").write_bytes(SECRET)
    (folder / "secret.conf").chmod(0o600)
    month_ago = time.time() - 30 * 86400
    for name in ("old-a", "old-b"):
        (folder / name).write_text(name)
        os.utime(folder / name, (month_ago, month_ago))
    return folder


def snapshot(folder: Path) -> dict[str, tuple[bytes | str, int, int]]:
    """Every entry under ``folder`` (not following links): content or link target, mode, owner."""
    seen = {}
    for path in sorted(folder.rglob("*")):
        info = path.lstat()
        content = os.readlink(path) if path.is_symlink() else path.read_bytes() if path.is_file() else "dir"
        seen[str(path.relative_to(folder))] = (content, info.st_mode, info.st_uid)
    return seen


def plant(log_folder: Path, target: Path) -> None:
    """What `nobody` plants in the log folder: the spool, its links, a crafted gzip."""
    crafted = log_folder.parent / "crafted.gz"
    crafted.write_bytes(gzip.compress(CRAFTED))
    crafted.chmod(0o644)
    as_nobody(
        "mkdir -p device.log.spool && cd device.log.spool\n"
        f"ln -s {target} uploaded\n"
        f"cp ../../crafted.gz {STAMP}.gz && chmod 666 {STAMP}.gz\n"
        f"ln -s {target / 'secret.conf'} {STAMP}.tmp\n",
        cwd=log_folder,
    )


def run(spool: LogSpool, server: LogServer):
    destination = Destination(server.url, ca_bundle=server.ca_file, connect_timeout=5, read_timeout=5)
    with Uploader(destination, Device("198.51.100.7", "192.0.2.1")) as uploader:
        return upload_logs(spool, uploader, part_size=40_000, keep_days=7)


def spool_in(log_folder: Path, base: Path) -> LogSpool:
    state = base / "state"
    return LogSpool(log_folder / "device.log", state, reopen_command=None, close_timeout=1)


@pytest.mark.parametrize(
    ("how", "words"),
    [
        (
            "owned by nobody",
            r"log folder \S+/log is refused: it is owned by uid 65534.*chown root \S+/log",
        ),
        ("writable by everyone", r"log folder \S+/log is refused: every user can write it.*chmod o-w"),
    ],
)
def test_a_log_folder_another_user_controls_is_refused_and_nothing_changes(base, server, how, words):
    target = victim(base)
    log_folder = base / "log"
    log_folder.mkdir()
    if how == "owned by nobody":  # e.g. made by an rsyslog running as its own user
        os.chown(log_folder, NOBODY.pw_uid, NOBODY.pw_gid)
    else:
        log_folder.chmod(0o777)
    (log_folder / "device.log").write_bytes(LIVE)
    plant(log_folder, target)
    before_target, before_logs = snapshot(target), snapshot(log_folder)
    spool = spool_in(log_folder, base)
    with pytest.raises(TsError, match=words) as caught:
        run(spool, server)
    assert "\n" not in str(caught.value)
    assert snapshot(target) == before_target, "root's folder or file was changed through a planted link"
    assert snapshot(log_folder) == before_logs, "the spool or live log changed: something moved or was lost"
    assert server.attempts == 0


def test_a_spool_another_user_owns_is_refused_in_a_trusted_log_folder(base, server):
    target = victim(base)
    log_folder = base / "log"
    log_folder.mkdir(mode=0o755)
    (log_folder / "device.log").write_bytes(LIVE)
    (log_folder / "device.log.spool").mkdir()
    os.chown(log_folder / "device.log.spool", NOBODY.pw_uid, NOBODY.pw_gid)  # a folder once open to others
    as_nobody(f"ln -s {target} uploaded", cwd=log_folder / "device.log.spool")
    before_target, before_logs = snapshot(target), snapshot(log_folder)
    with pytest.raises(TsError, match=r"log spool \S+device.log.spool is refused: it is owned by uid 65534"):
        run(spool_in(log_folder, base), server)
    assert snapshot(target) == before_target
    assert snapshot(log_folder) == before_logs


def test_links_in_a_trusted_spool_are_never_followed(base, server):
    """Root's own stray links (or ones left from before the folder was locked down) redirect nothing:
    a ``.tmp`` link is replaced, not written through; a spool-named link is not sent; an ``uploaded``
    link is refused before anything is expired through it."""
    target = victim(base)
    log_folder = base / "log"
    spool_dir = log_folder / "device.log.spool"
    spool_dir.mkdir(parents=True, mode=0o755)
    (spool_dir / f"{STAMP}.gz").write_bytes(gzip.compress(CRAFTED))
    (spool_dir / f"{STAMP}.tmp").symlink_to(target / "secret.conf")
    (spool_dir / "device.log.20261102T000000.000000Z").symlink_to(target / "secret.conf")
    (log_folder / "device.log").write_bytes(LIVE)
    spool = spool_in(log_folder, base)
    before_target = snapshot(target)
    run(spool, server)
    assert snapshot(target) == before_target
    assert server.received() == CRAFTED + LIVE
    assert SECRET not in server.received()
    assert (spool_dir / "device.log.20261102T000000.000000Z").is_symlink(), "a link is left for root to see"
    sent = sorted(p.name for p in spool.uploaded_dir.iterdir())
    assert sent[0] == STAMP and len(sent) == 2
    shutil.rmtree(spool.uploaded_dir)
    spool.uploaded_dir.symlink_to(target)
    (log_folder / "device.log").write_bytes(LIVE)
    with pytest.raises(TsError, match=r"uploaded is a symbolic link; refused"):
        run(spool, server)
    assert snapshot(target) == before_target
    assert (log_folder / "device.log").read_bytes() == LIVE


def test_a_ca_bundle_another_user_can_change_is_refused(server, tmp_path):
    """Whoever could swap the CA bundle could read every upload: it is trusted like the config."""
    bundle = tmp_path / "ca.pem"
    shutil.copyfile(server.ca_file, bundle)
    os.chown(bundle, NOBODY.pw_uid, NOBODY.pw_gid)
    with pytest.raises(ConfigError, match=r"ca_bundle \S+ is refused: it is owned by uid"):
        Uploader(Destination(server.url, ca_bundle=bundle), Device("198.51.100.7", "192.0.2.1"))
    os.chown(bundle, 0, 0)
    Uploader(Destination(server.url, ca_bundle=bundle), Device("198.51.100.7", "192.0.2.1")).close()
