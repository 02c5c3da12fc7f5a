"""Files that readers must see whole: the one way this project replaces a file."""

from __future__ import annotations

import os
import site
import sys
import tempfile
from pathlib import Path


def write_atomic(path: Path, text: str, mode: int = 0o600) -> None:
    """Replace ``path`` with ``text`` in one rename: readers see the old file or the new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


CHECKOUT = Path(__file__).resolve().parent.parent
INSTALLED = (Path(sys.prefix) / "share" / "ts_isr", Path(site.USER_BASE or "~/.local") / "share" / "ts_isr")


def project_file(relative: str) -> Path:
    """A file the project ships (a template): in the checkout, else where ``pip install`` put it."""
    for base in (CHECKOUT, *INSTALLED):
        if (base / relative).is_file():
            return base / relative
    return CHECKOUT / relative
