"""What a fleet run tells its admin: a progress line while it runs, one table when it ends."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ts_isr.policy import split_count


@dataclass(frozen=True)
class Outcome:
    """One device's run, as the summary shows it."""

    name: str
    result: str  # "unchanged", "changed" or "failed"
    added: int = 0
    removed: int = 0
    seconds: float = 0.0
    reason: str = ""  # a failure's one line
    kind: str = ""  # a failure's kind (authentication, host_key, unreachable, timeout, ...)
    added_ipv6: int = 0  # of ``added``, the IPv6 entries
    removed_ipv6: int = 0

    @property
    def failed(self) -> bool:
        return self.result == "failed"


def progress(done: int, total: int, failed: int) -> str:
    return f"{done} of {total} devices done, {failed} failed"


def summary(outcomes: Sequence[Outcome]) -> list[str]:
    """The table (host, result and a failure's kind, added, removed, seconds, reason), then one line
    of totals."""
    header = ("host", "result", "added", "removed", "seconds", "reason")
    rows = [
        (
            o.name,
            f"{o.result} ({o.kind})" if o.kind else o.result,  # what failed: a retry tells them apart
            split_count(o.added - o.added_ipv6, o.added_ipv6),  # as the device's log counts them
            split_count(o.removed - o.removed_ipv6, o.removed_ipv6),
            f"{o.seconds:.1f}",
            o.reason,
        )
        for o in sorted(outcomes, key=lambda o: (not o.failed, o.name))
    ]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header) - 1)]

    def line(row: Sequence[str]) -> str:
        cells = [cell.ljust(width) for cell, width in zip(row, widths)]
        return "  ".join([*cells, row[-1]]).rstrip()

    failed = [o.name for o in outcomes if o.failed]
    changed = sum(o.result == "changed" for o in outcomes)
    total = f"{len(outcomes)} devices: {changed} changed, {len(outcomes) - changed - len(failed)} unchanged, "
    total += f"{len(failed)} failed" + (f" ({', '.join(sorted(failed))})" if failed else "")
    return [line(header), *(line(row) for row in rows), total]
