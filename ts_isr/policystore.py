"""The last good policy on disk, with the time it was fetched.

It lets a run refuse a suspicious fetch (an empty block list where the last
one was not) and shows what was last applied.  The file is the
``--print-policy`` text under one header line, written atomically with mode
0600, and read back strictly: a damaged file is reported, never half-used.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ts_isr.errors import FetchError
from ts_isr.files import check_dir, open_nofollow, trusted_dir, write_atomic
from ts_isr.policy import Policy, parse_token
from ts_isr.ranges import Cidr

FILE_NAME = "last_good_policy.txt"
_HEADER = "# ts_isr last good policy, fetched "


@dataclass(frozen=True)
class StoredPolicy:
    policy: Policy
    fetched_at: datetime


def render(policy: Policy, fetched_at: datetime) -> str:
    return (
        _HEADER
        + fetched_at.astimezone(UTC).isoformat()
        + "\n"
        + "".join(f"{line}\n" for line in policy.lines())
    )


def parse(text: str) -> StoredPolicy:
    """The stored form back; any line out of place raises ValueError naming it."""
    lines = text.splitlines()
    if not lines or not lines[0].startswith(_HEADER):
        raise ValueError("missing header line")
    fetched_at = datetime.fromisoformat(lines[0][len(_HEADER) :])
    entries: dict[str, list[Cidr]] = {"block": [], "allow": []}
    for number, line in enumerate(lines[1:], start=2):
        kind, _, token = line.partition(" ")
        cidr = parse_token(token, family_prefix=False)
        if kind not in entries or cidr is None:
            raise ValueError(f"line {number} is not 'block <cidr>' or 'allow <cidr>'")
        entries[kind].append(cidr)
    return StoredPolicy(Policy(tuple(entries["block"]), tuple(entries["allow"])), fetched_at)


def save_last_good(state_dir: Path, policy: Policy, fetched_at: datetime | None = None) -> Path:
    """Write atomically (temporary file, fsync, rename) with mode 0600 in a 0700 directory that
    only root or the running user can change (:func:`~ts_isr.files.trusted_dir`)."""
    path = trusted_dir(state_dir, "state_dir") / FILE_NAME
    write_atomic(path, render(policy, fetched_at or datetime.now(UTC)))
    return path


def load_last_good(state_dir: Path) -> StoredPolicy | None:
    """The last good policy, or None when there is none yet; a state_dir or file another user
    could have written is refused (it decides whether a fetched list is believed)."""
    path = state_dir / FILE_NAME
    try:
        check_dir(state_dir, "state_dir")
        with os.fdopen(open_nofollow(path, os.O_RDONLY), encoding="ascii") as handle:
            text = handle.read()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise FetchError(f"cannot read the last good policy {path} ({exc}); fix or remove the file") from None
    try:
        return parse(text)
    except ValueError as exc:
        raise FetchError(
            f"the last good policy {path} is damaged ({exc}); remove it to start afresh"
        ) from None
