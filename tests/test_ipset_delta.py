"""Changes in place, purely: the batch's order across every set, and the boot state patched after it."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from ts_isr.linux.iptables_backend import LIMITS
from ts_isr.linux.names import derive_names
from ts_isr.policy import Policy, parse_token
from ts_isr.targets.base import Members, Plan, plan_changes, plan_from_previous
from ts_isr.targets.ipset import render_update, state_members
from ts_isr.targets.ipset_delta import patched_state, render_delta
from ts_isr.targets.ipset_record import Record, record_of, render_record

NAMES = derive_names("TS", LIMITS)
LIVE = frozenset(spec.name for spec in NAMES.sets)


def policy(block: tuple[str, ...], allow: tuple[str, ...] = ()) -> Policy:
    return Policy(tuple(sorted(map(parse_token, block))), tuple(sorted(map(parse_token, allow))))


BEFORE = policy(
    ("192.0.2.1", "192.0.2.2", "203.0.113.0/24", "2001:db8::1", "2001:db8:1::/48"),
    ("198.51.100.7", "2001:db8::99"),
)
AFTER = policy(
    ("192.0.2.1", "192.0.2.3", "203.0.112.0/23", "2001:db8::2", "2001:db8:1::/48"),
    ("198.51.100.8", "2001:db8::98", "198.18.0.0/15"),
)


def members(of: Policy) -> Members:
    return {"block": frozenset(of.block), "allow": frozenset(of.allow)}


def saved_state(of: Policy, read_back: int = 1_700_000_000) -> tuple[str, Record]:
    """The boot state a swap of ``of`` writes, under its record."""
    update = render_update(NAMES, members(of), ())
    "".join(update.chunks())
    record = record_of(of, read_back)
    return render_record(record) + update.state, record


def test_a_small_change_adds_before_it_removes() -> None:
    """A /24 replaced by its /23: the /23 goes in before the /24 goes out, so nothing is uncovered."""
    block = frozenset({parse_token("203.0.113.0/24"), parse_token("192.0.2.1")})
    installed = {"block": block, "allow": frozenset()}
    plan = plan_changes(installed, policy(("192.0.2.1", "203.0.112.0/23")), frozenset({4, 6}), ordered=False)
    assert render_delta(NAMES, plan, LIVE) == "add TSblocknet 203.0.112.0/23\ndel TSblocknet 203.0.113.0/24\n"
    assert render_delta(NAMES, plan, LIVE - {"TSblocknet"}) is None, (
        "a set that is not there is left to a swap"
    )


def test_every_addition_of_every_set_and_list_comes_before_any_removal() -> None:
    lines = render_delta(NAMES, plan_from_previous(BEFORE, AFTER), LIVE)
    assert lines is not None
    verbs = [line.split()[0] for line in lines.splitlines()]
    assert verbs == sorted(verbs), "adds (a) before dels (d)"
    touched = {line.split()[1] for line in lines.splitlines()}
    assert touched == {
        "TSblockaddr",
        "TSblocknet",
        "TSblockaddr6",
        "TSallowaddr",
        "TSallownet",
        "TSallowaddr6",
    }
    assert {(verb, line.split()[2]) for verb, line in zip(verbs, lines.splitlines(), strict=True)} == {
        ("add", "192.0.2.3"),
        ("add", "203.0.112.0/23"),
        ("add", "2001:db8::2"),
        ("add", "198.51.100.8"),
        ("add", "198.18.0.0/15"),
        ("add", "2001:db8::98"),
        ("del", "2001:db8::99"),
        ("del", "192.0.2.2"),
        ("del", "203.0.113.0/24"),
        ("del", "2001:db8::1"),
        ("del", "198.51.100.7"),
    }


def test_the_patched_boot_state_holds_what_a_fresh_one_would() -> None:
    saved, before = saved_state(BEFORE)
    patched = patched_state(saved, before, plan_from_previous(BEFORE, AFTER), NAMES)
    assert patched is not None and not patched.startswith("#"), (
        "no record line: the caller writes the new one"
    )
    assert state_members(patched, NAMES) == members(AFTER)
    fresh, _ = saved_state(AFTER)
    assert sorted(patched.splitlines()) == sorted(fresh.partition("\n")[2].splitlines())


def drop_line(text: str, line: str) -> str:
    assert f"\n{line}\n" in text
    return text.replace(f"\n{line}\n", "\n")


EXTRA = "add TSblockaddr 192.0.2.1\nadd TSblockaddr 192.0.2.9\n"
DAMAGES = {
    "another record": lambda saved: saved.replace("read back 1700000000", "read back 1700000001"),
    "a removed entry missing": lambda saved: drop_line(saved, "add TSblockaddr 192.0.2.2"),
    "fewer entries than recorded": lambda saved: drop_line(saved, "add TSblockaddr 192.0.2.1"),
    "more entries than recorded": lambda saved: saved.replace("add TSblockaddr 192.0.2.1\n", EXTRA),
    "a set that gains entries not created": lambda saved: saved.replace("create TSallownet ", "create TSx "),
}


@pytest.mark.parametrize("damage", DAMAGES.values(), ids=DAMAGES.keys())
def test_a_boot_state_that_does_not_add_up_is_not_patched(damage: Callable[[str], str]) -> None:
    """Then ``ipset save`` writes it, as before the patch existed."""
    saved, before = saved_state(BEFORE)
    assert patched_state(damage(saved), before, plan_from_previous(BEFORE, AFTER), NAMES) is None


def test_a_plan_that_changes_nothing_patches_nothing_away() -> None:
    saved, before = saved_state(BEFORE)
    unchanged: Plan = plan_from_previous(BEFORE, BEFORE)
    assert patched_state(saved, before, unchanged, NAMES) == saved.partition("\n")[2]
