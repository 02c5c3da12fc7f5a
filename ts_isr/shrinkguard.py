"""The guard against a broken feed: a block list emptied, or shrunk past ``max_shrink``, against the
last good policy is far likelier a fault than a policy, and is refused unless ``--force``."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from pathlib import Path

from ts_isr.errors import FetchError
from ts_isr.log import log
from ts_isr.policy import Policy
from ts_isr.policystore import StoredPolicy, load_last_good
from ts_isr.ranges import Cidr, RangeSet


def last_good(state_dir: Path | None, key: str) -> tuple[StoredPolicy | None, str | None]:
    """The last good policy, and why it cannot be read when it is damaged."""
    if state_dir is None:
        return None, None
    try:
        return load_last_good(state_dir, key), None
    except FetchError as exc:
        log.warning(str(exc))
        return None, str(exc)


def lost_entries(
    previous: Iterable[Cidr], current: Iterable[Cidr], families: Collection[int]
) -> tuple[int, int]:
    """(entries of ``previous`` in ``families`` that ``current`` no longer covers, all of them).

    Coverage, not equality: the same addresses aggregated differently are not a loss.
    """
    now = [c for c in current if c.family in families]
    old = [c for c in previous if c.family in families]
    if old == now:
        return 0, len(old)  # the usual cron run: nothing changed, no per-entry look-up
    covered = {family: RangeSet.from_cidrs(now, family) for family in families}
    return sum(1 for c in old if not covered[c.family].covers(c.network, c.last)), len(old)


def check_against_last_good(
    policy: Policy,
    previous: StoredPolicy | None,
    damage: str | None,
    *,
    block_name: str,
    families: Collection[int],
    max_shrink: float,
    force: bool,
) -> None:
    """An emptied or much shrunk block list is far likelier a fault than a policy: refuse it.

    A last good policy that cannot be read counts as a non-empty one: a
    damaged file must not let an empty list through.
    """
    if force:
        return
    current = [c for c in policy.block if c.family in families]
    if damage is not None:
        if not current:
            raise FetchError(
                f"the block list {block_name} came back empty and the last good policy cannot be read "
                "to compare; nothing applied. If the policy really is empty now, run again with --force"
            )
        return
    if previous is None:
        return
    lost, before = lost_entries(previous.policy.block, current, families)
    if before and not current:
        raise FetchError(
            f"the block list {block_name} came back empty but the last good one "
            f"({previous.fetched_at:%Y-%m-%d %H:%M} UTC) had {before} entries; "
            "nothing applied. If the policy really is empty now, run again with --force"
        )
    if before and lost / before > max_shrink:
        raise FetchError(
            f"the block list {block_name} lost {lost} of the last good one's {before} entries "
            f"({lost / before:.0%}, more than max_shrink={max_shrink:.0%}); nothing applied. "
            "If the policy really shrank, run again with --force"
        )
