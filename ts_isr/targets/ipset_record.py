"""What the last good update put in the ipsets, recorded in the boot state's first line, so that the
next update can diff against the policy its caller already holds instead of reading 200,000 entries
back from the kernel (1.2 s, twice a first load).

The record is trusted only while it agrees with the kernel and with the caller: the sets' entry
counts (``ipset list -t``, headers without members) must equal the recorded ones, the caller's
policy must have the recorded digest, and the sets must have been read back within a day (the
record keeps when): an edit by hand that keeps the counts (one entry deleted, another added) is put
right within a day.  Python's hash of the sorted tuple of address tuples is the
digest: stable from run to run (ints and tuples are never salted), 8 ms at 200,000 entries, and a
consistency check, not a seal (the file is root's, mode 0600).  Anything else, and the update reads
the sets back as before.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from ts_isr.errors import DeviceError
from ts_isr.log import escape
from ts_isr.policy import Policy
from ts_isr.targets.base import KINDS

RECORD_PREFIX = "# tsadmin record: "
_RECORD = re.compile(
    re.escape(RECORD_PREFIX)
    + r"block (\d{1,9}) (-?\d{1,20}) allow (\d{1,9}) (-?\d{1,20}) read back (\d{1,12})"
)
#: Seconds a record vouches for the sets after they were last read back whole.
REREAD_AFTER = 24 * 3600
_TYPE = re.compile(r"hash:ip|hash:net")


@dataclass(frozen=True)
class SetHeader:
    """One set as ``ipset list -t`` shows it: no members, only what they are and how many."""

    hash_type: str
    family: int
    entries: int


@dataclass(frozen=True)
class Record:
    """Entries and digest of each list, by kind, and when the sets were last read back whole (epoch s)."""

    lists: Mapping[str, tuple[int, int]]
    read_back: int

    def vouches_for(self, policy: Policy, now: float) -> bool:
        """``policy`` is the one recorded, and the sets were read back within :data:`REREAD_AFTER`."""
        return record_of(policy, self.read_back).lists == self.lists and now - self.read_back < REREAD_AFTER

    @property
    def entries(self) -> int:
        """Entries of both lists: as many ``add`` lines as the boot state under this record holds."""
        return sum(size for size, _ in self.lists.values())

    def counted(self, counts: Mapping[str, int]) -> bool:
        """The kernel's sets hold as many entries of each list as recorded."""
        return all(counts.get(kind, 0) == size for kind, (size, _) in self.lists.items())


def record_of(policy: Policy, read_back: int) -> Record:
    return Record(
        {kind: (len(getattr(policy, kind)), hash(getattr(policy, kind))) for kind in KINDS}, read_back
    )


def render_record(record: Record) -> str:
    return (
        RECORD_PREFIX
        + " ".join(f"{kind} {size} {digest}" for kind, (size, digest) in record.lists.items())
        + f" read back {record.read_back}\n"
    )


def parse_record(line: str) -> Record | None:
    """The record from the boot state's first line; None for a state without one (older, or hand-made)."""
    match = _RECORD.fullmatch(line.rstrip("\n"))
    if not match:
        return None
    block, block_digest, allow, allow_digest, read_back = map(int, match.groups())
    return Record({"block": (block, block_digest), "allow": (allow, allow_digest)}, read_back)


def parse_terse(text: str, ours: frozenset[str]) -> dict[str, SetHeader]:
    """Our sets from ``ipset list -t``; the host's own sets are skipped unread."""
    headers: dict[str, SetHeader] = {}
    for block in text.split("\n\n"):
        fields = dict(line.partition(": ")[::2] for line in block.splitlines() if ": " in line)
        name = fields.get("Name")
        if name not in ours:
            continue
        family = fields.get("Header", "").split(" ", 2)[1:2]
        entries = fields.get("Number of entries", "")
        if not (
            _TYPE.fullmatch(fields.get("Type", ""))
            and family in (["inet"], ["inet6"])
            and entries.isascii()
            and entries.isdigit()
        ):
            raise DeviceError(
                f"ipset list -t shows set {name} in a form tsadmin does not know: {escape(block, 200)}"
            )
        headers[name] = SetHeader(fields["Type"], 6 if family == ["inet6"] else 4, int(entries))
    return headers
