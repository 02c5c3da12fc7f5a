"""A second Unix user (``nobody``) who plants files where root will look, as a local attacker would."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.tools import require_root, require_tool

NOBODY = pwd.getpwnam("nobody")


@contextmanager
def public_tmp() -> Iterator[Path]:
    """A root-owned 0755 folder straight under /tmp: nobody can reach it (pytest's tmp_path is 0700
    above), and the folders above it are root's, so only what a test makes writable is."""
    require_root()
    path = Path(tempfile.mkdtemp(prefix="ts_isr-trust."))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path)


def nobodys(path: Path) -> Path:
    """Hand ``path`` (a symlink itself, not its target) to nobody."""
    os.lchown(path, NOBODY.pw_uid, NOBODY.pw_gid)
    return path


def as_nobody(argv: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` as nobody (real and effective uid, no supplementary groups)."""
    require_root()
    setpriv = require_tool("setpriv")
    command = [setpriv, "--reuid", "nobody", "--regid", "nogroup", "--clear-groups", *argv]
    return subprocess.run(command, capture_output=True, text=True, timeout=30, check=True, **kwargs)


def nobody_writes(path: Path, text: str) -> Path:
    """``text`` in a new file at ``path``, written by nobody's own process."""
    as_nobody(["/bin/sh", "-c", 'cat > "$0"', str(path)], input=text)
    return path


PRECIOUS = b"root's own file: keep me\n"


def precious(folder: Path) -> Path:
    """A root-owned file that a planted link points at: it must come out byte for byte the same."""
    path = folder / "precious"
    path.write_bytes(PRECIOUS)
    path.chmod(0o644)
    return path


def assert_untouched(path: Path) -> None:
    assert path.read_bytes() == PRECIOUS and path.stat().st_mode & 0o7777 == 0o644
