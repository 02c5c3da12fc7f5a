"""The tsadmin chain's pure parts: rules as iptables-save prints them, and when to rewrite them."""

from __future__ import annotations

import pytest

from ts_isr.config import Invalid
from ts_isr.errors import DeviceError
from ts_isr.linux.firewall import (
    ChainSpec,
    Firewall,
    check_owned,
    foreign_references,
    foreign_rules,
    parse_filter,
    parse_logopts,
    render_chain,
    render_install,
    render_removal,
)
from ts_isr.linux.iptables_backend import LIMITS
from ts_isr.linux.names import derive_names

NAMES = derive_names("TS", LIMITS)


def table_text(builtin_rules: dict[str, list[str]], chain_rules: list[str] | None) -> str:
    lines = ["*filter", ":INPUT ACCEPT [0:0]", ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]"]
    if chain_rules is not None:
        lines.append(":TS - [0:0]")
    for chain, rules in builtin_rules.items():
        lines += [f"-A {chain} {rule}" for rule in rules]
    lines += chain_rules or []
    return "\n".join([*lines, "COMMIT"]) + "\n"


def test_allow_first_then_log_and_drop_on_source_and_destination():
    rules = render_chain(NAMES, 4, ChainSpec(allow_action="RETURN"))
    assert rules[:4] == [
        "-A TS -m set --match-set TSallowaddr src -j RETURN",
        "-A TS -m set --match-set TSallowaddr dst -j RETURN",
        "-A TS -m set --match-set TSallownet src -j RETURN",
        "-A TS -m set --match-set TSallownet dst -j RETURN",
    ]
    assert rules[4:8] == [
        '-A TS -m set --match-set TSblockaddr src -j LOG --log-prefix "ThreatSTOP-TSblock "',
        "-A TS -m set --match-set TSblockaddr src -j DROP",
        '-A TS -m set --match-set TSblockaddr dst -j LOG --log-prefix "ThreatSTOP-TSblock "',
        "-A TS -m set --match-set TSblockaddr dst -j DROP",
    ]
    assert len(rules) == 12
    assert not any("addr6" in r or "net6" in r for r in rules)


@pytest.mark.parametrize(
    ("direction", "with_uid"), [("in", {"src"}), ("out", {"dst"}), ("both", {"src", "dst"})]
)
def test_logopts_go_to_the_chosen_direction_only(direction, with_uid):
    spec = ChainSpec(logopts=parse_logopts("--log-uid"), logopts_direction=direction)
    logs = [r for r in render_chain(NAMES, 4, spec) if "-j LOG" in r]
    assert {r.split()[6] for r in logs if r.endswith("--log-uid")} == with_uid


def test_logopts_are_parsed_strictly_into_iptables_save_order():
    assert parse_logopts("--log-uid --log-level 6 --log-tcp-sequence") == (
        "--log-level",
        "6",
        "--log-tcp-sequence",
        "--log-uid",
    )
    assert parse_logopts("–log-uid --log-level warning") == ("--log-uid",)  # the seed's en dash; 4 is default
    for bad in ("--log-prefix x", "--log-level 9", "--log-level", "; reboot", "-j ACCEPT"):
        with pytest.raises(Invalid):
            parse_logopts(bad)


def test_nothing_to_do_when_the_chain_is_in_place_and_on_top():
    rules = render_chain(NAMES, 4, ChainSpec())
    jumps = {chain: ["-j TS"] for chain in ("INPUT", "FORWARD", "OUTPUT")}
    jumps["INPUT"].append("-p tcp -m tcp --dport 22 -j ACCEPT")
    assert render_install(parse_filter(table_text(jumps, rules)), NAMES, rules) is None


def test_a_rule_moved_above_the_jump_puts_the_jump_back_on_top():
    rules = render_chain(NAMES, 4, ChainSpec())
    table = {"INPUT": ["-s 192.0.2.9/32 -j ACCEPT", "-j TS"], "FORWARD": ["-j TS"], "OUTPUT": ["-j TS"]}
    batch = render_install(parse_filter(table_text(table, rules)), NAMES, rules)
    assert batch is not None
    lines = batch.splitlines()
    assert lines[:2] == ["*filter", ":TS - [0:0]"]
    assert lines.count("-D INPUT -j TS") == 1
    assert {"-I INPUT 1 -j TS", "-I OUTPUT 1 -j TS", "-I FORWARD 1 -j TS"} <= set(lines)
    assert not any("192.0.2.9" in line for line in lines), "the host's own rule is never touched"
    assert lines[-1] == "COMMIT"


def test_changed_options_rewrite_the_chain_in_one_batch():
    old = render_chain(NAMES, 4, ChainSpec(allow_action="ACCEPT"))
    new = render_chain(NAMES, 4, ChainSpec(allow_action="RETURN"))
    jumps = {chain: ["-j TS"] for chain in ("INPUT", "FORWARD", "OUTPUT")}
    batch = render_install(parse_filter(table_text(jumps, old)), NAMES, new)
    assert batch is not None and all(rule in batch.splitlines() for rule in new)


def test_removal_takes_only_the_jumps_and_the_chain():
    rules = render_chain(NAMES, 4, ChainSpec())
    table = {"INPUT": ["-j TS", "-j TS", "-p tcp -j ACCEPT"], "FORWARD": ["-j TS"], "OUTPUT": []}
    batch = render_removal(parse_filter(table_text(table, rules)), NAMES)
    assert batch.splitlines() == [
        "*filter",
        "-D INPUT -j TS",
        "-D INPUT -j TS",
        "-D FORWARD -j TS",
        "-F TS",
        "-X TS",
        "COMMIT",
    ]
    assert render_removal(parse_filter(table_text({"INPUT": ["-p tcp -j ACCEPT"]}, None)), NAMES) is None


def test_a_host_chain_with_the_prefixs_name_is_refused_for_install_and_removal():
    """A host chain called like the prefix must never be emptied (install) or deleted (remove)."""
    host_chain = ["-A TS -s 10.1.1.1/32 -j DROP"]
    table = parse_filter(table_text({"INPUT": ["-j TS"]}, host_chain))
    assert foreign_rules(table, NAMES) == host_chain
    for removing in (False, True):
        with pytest.raises(DeviceError, match="chain TS holding rules tsadmin did not write"):
            check_owned(table, NAMES, 4, removing=removing)
    ours = render_chain(NAMES, 4, ChainSpec(allow_action="ACCEPT"))
    check_owned(parse_filter(table_text({"INPUT": ["-j TS"]}, ours)), NAMES, 4, removing=True)


def test_a_host_jump_to_our_chain_is_refused_before_removal():
    """HOST-FILTER -j TS would make -X fail after the sets were emptied: refuse first, say which rule."""
    lines = table_text({"INPUT": ["-j TS"]}, render_chain(NAMES, 4, ChainSpec())).splitlines()
    lines[1:1] = [":HOST-FILTER - [0:0]", "-A HOST-FILTER -j TS", "-A HOST-FILTER -j RETURN"]
    table = parse_filter("\n".join(lines))
    assert foreign_references(table, NAMES) == ["-A HOST-FILTER -j TS"]
    with pytest.raises(DeviceError, match=r"HOST-FILTER -j TS.*iptables -D HOST-FILTER -j TS"):
        check_owned(table, NAMES, 4, removing=True)
    check_owned(table, NAMES, 4, removing=False)


def test_docker_user_is_hooked_first_when_docker_made_it():
    """Docker's FORWARD accepts container traffic after DOCKER-USER, which Docker keeps on top."""
    rules = render_chain(NAMES, 4, ChainSpec())
    lines = table_text({"INPUT": [], "FORWARD": ["-j DOCKER-USER"]}, []).splitlines()
    lines[1:1] = [":DOCKER-USER - [0:0]", "-A DOCKER-USER -j RETURN"]
    table = parse_filter("\n".join(lines))
    batch = render_install(table, NAMES, rules)
    assert batch is not None and "-I DOCKER-USER 1 -j TS" in batch and "-I FORWARD 1 -j TS" in batch
    installed = parse_filter(
        "\n".join(lines).replace("-A DOCKER-USER -j RETURN", "-A DOCKER-USER -j TS\n-A DOCKER-USER -j RETURN")
    )
    assert foreign_references(installed, NAMES) == [], "our own DOCKER-USER jump is ours"


def test_a_host_without_ipv6_tables_removes_and_backs_up_ipv4_only():
    """ip6tables-save failing (IPv6 off) is an empty IPv6 table, not a failed remove."""
    v4 = table_text(
        {"INPUT": ["-j TS"], "OUTPUT": ["-j TS"], "FORWARD": ["-j TS"]}, render_chain(NAMES, 4, ChainSpec())
    )
    batches: list[tuple[str, str]] = []

    def run(argv, stdin=None):
        if argv[0].startswith("ip6tables"):
            raise DeviceError("ip6tables-save failed: can't initialize ip6tables table `filter'")
        if argv[0] == "iptables-restore":
            batches.append((argv[0], stdin))
        return v4

    firewall = Firewall(NAMES, run=run)
    assert firewall.remove()
    assert [tool for tool, _ in batches] == ["iptables-restore"]
    assert firewall.backup(6) == ""
    with pytest.raises(DeviceError):
        Firewall(
            NAMES, run=lambda argv, stdin=None: (_ for _ in ()).throw(DeviceError("no iptables"))
        ).backup(4)


def test_allow_matches_return_by_default_so_the_hosts_own_rules_still_apply():
    assert all(rule.endswith("-j RETURN") for rule in render_chain(NAMES, 4, ChainSpec()) if "allow" in rule)
