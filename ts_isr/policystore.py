"""The last good policy on disk, with the time it was fetched.

It lets a run refuse a suspicious fetch (an empty block list where the last
one was not), shows what was last applied, and answers ``--search`` without
the network.  The file is the ``--print-policy`` text under one header line,
then a ``lifeline <cidr> <listed-by> <what>`` line for each of this system's
lifelines that the block list covered (kept reachable all the same); written
atomically with mode 0600, and read back strictly: a damaged file is
reported, never half-used.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ts_isr.errors import FetchError
from ts_isr.files import check_dir, open_nofollow, safe_name, trusted_dir, write_atomic
from ts_isr.log import log
from ts_isr.policy import Policy, parse_token
from ts_isr.ranges import Cidr

FILE_NAME = "last_good_policy.txt"


def store_path(state_dir: Path, key: str = "") -> Path:
    """The file of a single-device run (``key`` empty), or of one device of a fleet."""
    return state_dir / (FILE_NAME if not key else f"last_good_policy-{safe_name(key)}.txt")


_HEADER = "# ts_isr last good policy, fetched "


_WHAT = re.compile(r"[a-z_]{1,32}")


@dataclass(frozen=True)
class SparedLifeline:
    """A lifeline the block list covered: ``listed_by`` named it, and it stayed reachable."""

    lifeline: Cidr
    listed_by: Cidr
    what: str  # which lifeline: dns_server, device, external_ip, ...


@dataclass(frozen=True)
class StoredPolicy:
    policy: Policy
    fetched_at: datetime
    spared: tuple[SparedLifeline, ...] = ()


def render(policy: Policy, fetched_at: datetime, spared: Sequence[SparedLifeline] = ()) -> str:
    return (
        _HEADER
        + fetched_at.astimezone(UTC).isoformat()
        + "\n"
        + "".join(f"{line}\n" for line in policy.lines())
        + "".join(f"lifeline {s.lifeline} {s.listed_by} {s.what}\n" for s in spared)
    )


def _spared(words: list[str]) -> SparedLifeline | None:
    if len(words) != 3 or not _WHAT.fullmatch(words[2]):
        return None
    lifeline, listed_by = (parse_token(word, family_prefix=False) for word in words[:2])
    return None if lifeline is None or listed_by is None else SparedLifeline(lifeline, listed_by, words[2])


def parse(text: str) -> StoredPolicy:
    """The stored form back; any line out of place raises ValueError naming it."""
    lines = text.splitlines()
    if not lines or not lines[0].startswith(_HEADER):
        raise ValueError("missing header line")
    fetched_at = datetime.fromisoformat(lines[0][len(_HEADER) :])
    entries: dict[str, list[Cidr]] = {"block": [], "allow": []}
    spared: list[SparedLifeline] = []
    for number, line in enumerate(lines[1:], start=2):
        kind, _, token = line.partition(" ")
        if kind == "lifeline":
            lifeline = _spared(token.split(" "))
            if lifeline is None:
                raise ValueError(f"line {number} is not 'lifeline <cidr> <cidr> <what>'")
            spared.append(lifeline)
            continue
        cidr = parse_token(token, family_prefix=False)
        if kind not in entries or cidr is None:
            raise ValueError(f"line {number} is not 'block <cidr>' or 'allow <cidr>'")
        entries[kind].append(cidr)
    return StoredPolicy(Policy(tuple(entries["block"]), tuple(entries["allow"])), fetched_at, tuple(spared))


def save_last_good(
    state_dir: Path,
    policy: Policy,
    fetched_at: datetime | None = None,
    spared: Sequence[SparedLifeline] = (),
    key: str = "",
) -> Path:
    """Write atomically (temporary file, fsync, rename) with mode 0600 in a 0700 directory that
    only root or the running user can change (:func:`~ts_isr.files.trusted_dir`)."""
    path = store_path(trusted_dir(state_dir, "state_dir"), key)
    write_atomic(path, render(policy, fetched_at or datetime.now(UTC), spared))
    return path


def adopt_unkeyed(state_dir: Path, key: str) -> None:
    """Before 2026-12, a single device's last good policy was ``last_good_policy.txt``: the first run of
    a device after the upgrade takes it over as its own (renamed, so that no other device does), and
    its shrink guard keeps its reference.  Where several configs shared the folder, the one that runs
    first may take another device's: its guard then asks for ``--force`` once."""
    keyed, unkeyed = store_path(state_dir, key), store_path(state_dir)
    try:
        check_dir(state_dir, "state_dir")
        if not keyed.exists() and unkeyed.is_file() and not unkeyed.is_symlink():
            os.rename(unkeyed, keyed)
            log.info(f"The last good policy {unkeyed} is now this device's: {keyed.name}")
    except FileNotFoundError:
        return  # no state_dir yet: nothing ran before


def load_last_good(state_dir: Path, key: str = "") -> StoredPolicy | None:
    """The last good policy, or None when there is none yet; a state_dir or file another user
    could have written is refused (it decides whether a fetched list is believed)."""
    path = store_path(state_dir, key)
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
