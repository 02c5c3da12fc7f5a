"""Fixtures every test file shares."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ts_isr.metrics import DEBIAN_TEXTFILE_DIR


@pytest.fixture(autouse=True, scope="session")
def metrics_dir_left_as_found() -> Iterator[None]:
    """Runs whose config names no metrics_dir write to Debian's textfile folder when it exists, as
    an installed suite does; the machine's folder is given back as the tests found it."""
    before = set(DEBIAN_TEXTFILE_DIR.iterdir()) if DEBIAN_TEXTFILE_DIR.is_dir() else set()
    yield
    if DEBIAN_TEXTFILE_DIR.is_dir():
        for path in set(DEBIAN_TEXTFILE_DIR.iterdir()) - before:
            path.unlink()
