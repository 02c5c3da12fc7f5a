"""An ipset update that diffs against the policy it was last given, vouched for by the boot state's
record and the kernel's counts, instead of reading every entry back."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.support.netns import NetnsPair, entered
from tests.support.tools import require_tool
from ts_isr.errors import DeviceError
from ts_isr.linux.firewall import ChainSpec, LastApplied
from ts_isr.linux.iptables_backend import IptablesBackend
from ts_isr.linux.system import run_tool, start_tool
from ts_isr.policy import Policy, parse_token
from ts_isr.ranges import Cidr
from ts_isr.sortedchanges import sorted_changes
from ts_isr.targets.base import plan_from_previous
from ts_isr.targets.ipset_record import parse_record, parse_terse, record_of, render_record

TERSE = """\
Name: TRblockaddr
Type: hash:ip
Revision: 6
Header: family inet hashsize 1024 maxelem 65536 bucketsize 12 initval 0x5be77dea
Size in memory: 256
References: 2
Number of entries: 3

Name: hosts-own
Type: list:set
Header: size 8

Name: TRblocknet6
Type: hash:net
Revision: 7
Header: family inet6 hashsize 1024 maxelem 65536 bucketsize 12 initval 0x5b656ff1
Size in memory: 1240
References: 2
Number of entries: 0
"""
OURS = frozenset({"TRblockaddr", "TRblocknet6"})


@given(st.sets(st.integers(0, 300)), st.sets(st.integers(0, 300)))
def test_sorted_changes_are_the_set_differences(old: set[int], new: set[int]) -> None:
    added, removed = sorted_changes(tuple(sorted(old)), tuple(sorted(new)))
    assert added == sorted(new - old)
    assert removed == sorted(old - new)


def test_a_plan_from_the_previous_policy_keeps_the_policy_as_it_is() -> None:
    previous = Policy(
        (parse_token("192.0.2.1"), parse_token("203.0.113.0/24")), (parse_token("198.51.100.7"),)
    )
    policy = Policy((parse_token("192.0.2.1"), parse_token("203.0.112.0/23")), ())
    plan = plan_from_previous(previous, policy)
    block, allow = plan.change("block"), plan.change("allow")
    assert (block.add, block.remove) == ((parse_token("203.0.112.0/23"),), (parse_token("203.0.113.0/24"),))
    assert block.desired is policy.block
    assert (allow.add, allow.remove) == ((), (parse_token("198.51.100.7"),))


def test_the_terse_listing_gives_our_sets_counts_and_skips_the_hosts() -> None:
    headers = parse_terse(TERSE, OURS)
    assert set(headers) == OURS
    assert (
        headers["TRblockaddr"].hash_type,
        headers["TRblockaddr"].family,
        headers["TRblockaddr"].entries,
    ) == ("hash:ip", 4, 3)
    assert (headers["TRblocknet6"].family, headers["TRblocknet6"].entries) == (6, 0)


@pytest.mark.parametrize(
    "damage",
    [
        ("Number of entries: 3", "Number of entries: 3 x"),
        ("Type: hash:ip", "Type: bitmap:port"),
        ("family inet ", "family ipx "),
    ],
)
def test_a_terse_listing_in_an_unknown_form_is_refused(damage: tuple[str, str]) -> None:
    with pytest.raises(DeviceError, match="TRblockaddr in a form tsadmin does not know"):
        parse_terse(TERSE.replace(*damage, 1), OURS)


def test_the_record_reads_back_what_was_written_and_nothing_else() -> None:
    record = record_of(Policy((parse_token("192.0.2.1"),), ()), 1_764_518_400)
    assert parse_record(render_record(record)) == record
    assert parse_record("create TRblockaddr hash:ip family inet\n") is None
    assert parse_record(render_record(record).replace("block 1", "block 1; rm -rf /")) is None


# ---------------------------------------------------------------- against the kernel, in a namespace


@pytest.fixture
def host() -> Iterator[None]:
    for tool in ("ipset", "iptables"):
        require_tool(tool)
    with NetnsPair(()) as pair, entered(pair.host):
        yield


def hosts(first: int, count: int) -> tuple[Cidr, ...]:
    return tuple(Cidr(4, (10 << 24) + 2 * n, 32) for n in range(first, first + count))


def reparsed(policy: Policy) -> Policy:
    """The policy as the last good store gives it back: equal entries, none of the same objects."""
    return Policy(
        tuple(parse_token(str(c)) for c in policy.block), tuple(parse_token(str(c)) for c in policy.allow)
    )


def installed(tmp_path: Path, policy: Policy) -> Path:
    backend = IptablesBackend("TR")
    backend.apply(ChainSpec(), policy, lambda: None)
    backend.save(tmp_path / "state")
    return tmp_path / "state"


def watched(terse: str | None = None) -> tuple[IptablesBackend, list[list[str]]]:
    """A new backend (a new update process) whose tool runs are noted; ``terse`` stands for what
    ``ipset list -t`` prints."""
    backend, calls = IptablesBackend("TR"), []

    def run(argv: list[str], stdin: str | None = None) -> str:
        calls.append(argv)
        if terse is not None and argv == ["ipset", "list", "-t"]:
            return terse
        return run_tool(argv, stdin)

    def start(argv: list[str]) -> Callable[[], str]:
        calls.append(argv)
        if terse is not None and argv == ["ipset", "list", "-t"]:
            return lambda: terse
        return start_tool(argv)

    backend.target.run = run
    backend.target.start = start
    return backend, calls


def assert_read_back(
    caplog: pytest.LogCaptureFixture, state: Path, last: Policy, after: Policy, terse: str | None = None
) -> None:
    """An update the record does not vouch for: it reads every entry back, says so, and the sets end
    holding ``after``."""
    backend, calls = watched(terse)
    with caplog.at_level(logging.INFO, logger="ts_isr"):
        backend.apply(ChainSpec(), after, lambda: None, LastApplied(last, state))
    assert ["ipset", "save"] in calls and "reading them back" in caplog.text
    assert backend.read_policy() == after, "what was changed by hand is put right"


def test_an_update_changes_in_place_against_the_recorded_policy_without_reading_it_back(
    host: None, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    before = Policy(hosts(0, 3000), (parse_token("192.0.2.0/24"),))
    state = installed(tmp_path, before)
    after = Policy(hosts(30, 3000), ())
    backend, calls = watched()
    with caplog.at_level(logging.INFO, logger="ts_isr"):
        assert backend.apply(ChainSpec(), after, lambda: None, LastApplied(reparsed(before), state))
    assert ["ipset", "save"] not in calls, "no entry was read back"
    assert "changed in place" in caplog.text and "reading them back" not in caplog.text
    before_save = len(calls)
    backend.save(state)
    assert not [argv for argv in calls[before_save:] if argv[:2] == ["ipset", "save"]], (
        "the boot state was patched with the change, not printed whole"
    )
    assert backend.load(state) == after, "the boot state holds the update, under its record"
    assert backend.read_policy() == after
    again, calls = watched()
    assert not again.apply(ChainSpec(), after, lambda: None, LastApplied(reparsed(after), state))
    assert ["ipset", "save"] not in calls, "the record of an in-place change vouches for it too"


def test_a_boot_state_changed_since_the_check_is_saved_from_the_sets(host: None, tmp_path: Path) -> None:
    """Its record line no longer the one that vouched: the patch is refused, ``ipset save`` prints it."""
    before = Policy(hosts(0, 500), ())
    state = installed(tmp_path, before)
    after = Policy(hosts(7, 500), ())
    backend, calls = watched()
    backend.apply(ChainSpec(), after, lambda: None, LastApplied(reparsed(before), state))
    assert ["ipset", "save"] not in calls
    record, rest = state.read_text().split("\n", 1)
    state.write_text(record.replace("read back ", "read back 1") + "\n" + rest)
    backend.save(state)
    assert [argv for argv in calls if argv[:2] == ["ipset", "save"]], "printed by ipset save"
    assert backend.load(state) == after


def test_a_set_changed_by_hand_is_read_back_and_put_right(
    host: None, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    before = Policy(hosts(0, 500), ())
    state = installed(tmp_path, before)
    run_tool(["ipset", "add", "TRblockaddr", "203.0.113.9"])
    assert_read_back(caplog, state, reparsed(before), Policy(hosts(5, 500), ()))


def test_a_previous_policy_that_never_reached_the_sets_is_not_trusted(
    host: None, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The last run fetched (and kept as last good) a policy it failed to install: as many entries,
    other ones.  The record's digest tells them apart."""
    installed_policy = Policy(hosts(0, 500), ())
    state = installed(tmp_path, installed_policy)
    fetched_not_installed = Policy(hosts(1, 500), ())
    assert_read_back(caplog, state, fetched_not_installed, Policy(hosts(2, 500), ()))


def test_a_record_a_day_old_is_checked_by_reading_the_sets_back(
    host: None, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An edit by hand that keeps the counts (one entry out, another in) is put right within a day."""
    before = Policy(hosts(0, 500), ())
    state = installed(tmp_path, before)
    run_tool(["ipset", "del", "TRblockaddr", str(hosts(0, 1)[0].address_text())])
    run_tool(["ipset", "add", "TRblockaddr", "203.0.113.9"])
    first, rest = state.read_text().split("\n", 1)
    day_old = parse_record(first + "\n")
    assert day_old is not None
    aged = render_record(record_of(before, day_old.read_back - 24 * 3600 - 1))
    state.write_text(aged + rest)
    assert_read_back(caplog, state, reparsed(before), before)


def test_an_ipset_that_does_not_count_its_entries_is_read_back(
    host: None, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    before = Policy(hosts(0, 500), ())
    state = installed(tmp_path, before)
    listing = run_tool(["ipset", "list", "-t"])
    uncounted = "\n".join(line for line in listing.splitlines() if not line.startswith("Number of"))
    assert_read_back(caplog, state, reparsed(before), Policy(hosts(3, 500), ()), terse=uncounted)
    assert "in a form tsadmin does not know" in caplog.text
