"""IPv6 on the Cisco side end to end: Knot DNS serves a policy of both families, upload_rules pushes
it over real SSH (netmiko) to the lab IOS (object-group v6-network) and ASA (mixed groups)."""

from __future__ import annotations

import pytest

from tests.support.knot import KnotServer, make_zone_records
from tests.support.lab import lab_device
from tests.support.upload import ZONE, Run, odd_hosts
from ts_isr.errors import Exit

V4 = odd_hosts("198.18", 20)
V6_HOSTS = [f"2001:db8:7::{n:x}" for n in range(1, 21, 2)]  # never aggregated
V6_NETS = ["2001:db8:100::/48", "2001:db8:200::/56"]
USERS_V6 = ["host 2001:DB8:0:0:0:0:0:BEEF", "2001:0db8:0999::/48"]  # odd spellings, as a user may type


@pytest.fixture(scope="module")
def knot(tmp_path_factory):
    server = KnotServer(tmp_path_factory.mktemp("knot"))
    records = make_zone_records(
        a={"allow6": ["2001:db8:7::1", "203.0.113.1"], "v4only": ["203.0.113.1"]},
        apl={
            "mixed": [
                *(f"1:{host}/32" for host in V4),
                *(f"2:{host}/128" for host in V6_HOSTS),
                *(f"2:{net}" for net in V6_NETS),
            ]
        },
    )
    server.add_zone(ZONE, records)
    server.start()
    yield server
    server.stop()


def v6_members(prefix: str) -> set[str]:
    return {f"{prefix}host {host}" for host in V6_HOSTS} | {f"{prefix}{net}" for net in V6_NETS}


def v4_members(prefix: str) -> set[str]:
    return {f"{prefix}host {host}" for host in V4}


def test_ios_puts_ipv6_in_v6_network_groups_converges_and_keeps_the_users(tmp_path, knot, capsys):
    preload = {"TS6": ["2001:db8:7::1/128", *USERS_V6]}
    with lab_device(tmp_path, platform="ios", preload=preload, group_types={"TS6": "v6-network"}) as device:
        run = Run(tmp_path, knot, device, capsys)
        code, out = run(block_list=f"mixed.{ZONE}", object_group_block_v6="TS6")
        assert code == Exit.CHANGED, out
        assert run.group() == v4_members("")
        # The user's 2001:db8:7::1/128 holds the policy's first host already: not added again.
        assert run.group("TS6") == v6_members("") - {"host 2001:db8:7::1"} | {"2001:db8:7::1/128", *USERS_V6}
        assert "object-group v6-network TS6" in device.commands()
        assert "V6-Network" not in out and "IPv6 entries" not in run.log
        assert "11 items are new in the ThreatSTOP block IPv6 list" in run.log  # 2 nets + 9 hosts
        assert "2001:db8:7::1/128" not in run.owned("TS6")  # it was there before: the user's
        code, out = run()
        assert code == Exit.UNCHANGED, out
        assert "configure terminal" not in device.commands()[-20:]
        # The policy loses its IPv6 entries: the tool takes out its own only, never the user's.
        code, out = run("--force", block_list=f"allow6.{ZONE}")
        assert code == Exit.CHANGED, out
        assert run.group("TS6") == {"2001:db8:7::1/128", *USERS_V6}


def test_ios_without_v6_keys_behaves_as_before(tmp_path, knot, capsys):
    with lab_device(tmp_path, platform="ios") as device:
        run = Run(tmp_path, knot, device, capsys)
        code, out = run(block_list=f"mixed.{ZONE}")
        assert code == Exit.CHANGED, out
        assert run.group() == v4_members("") and set(device.running()) == {"threatstop-block"}
        assert "12 IPv6 entries of the block list skipped: object_group_block_v6 is not set" in run.log
        assert not any("v6-network" in line for line in device.commands())


def test_an_emptied_v6_group_keeps_the_ipv6_placeholder(tmp_path, knot, capsys):
    with lab_device(tmp_path, platform="ios") as device:
        run = Run(tmp_path, knot, device, capsys)
        assert run(block_list=f"mixed.{ZONE}", object_group_block_v6="TS6")[0] == Exit.CHANGED
        code, out = run("--force", block_list=f"v4only.{ZONE}")
        assert code == Exit.CHANGED, out
        assert run.group("TS6") == {"host 2001:db8::ff"}  # never empty: IOS-XE would delete it


def test_asa_mixed_groups_converge_and_keep_the_users_ipv6(tmp_path, knot, capsys):
    preload = {"threatstop-block": [f"network-object {USERS_V6[0]}", f"network-object {USERS_V6[1]}"]}
    with lab_device(tmp_path, platform="asa", version="9.16", preload=preload) as device:
        run = Run(tmp_path, knot, device, capsys)
        code, out = run(block_list=f"mixed.{ZONE}")
        assert code == Exit.CHANGED, out
        users = {f"network-object {line}" for line in USERS_V6}
        assert run.group() == v4_members("network-object ") | v6_members("network-object ") | users
        assert "32 (20 IPv4, 12 IPv6) items are new in the ThreatSTOP block list" in run.log
        assert run()[0] == Exit.UNCHANGED
        code, out = run("--force", block_list=f"allow6.{ZONE}")
        assert code == Exit.CHANGED, out
        assert run.group() == {"network-object host 2001:db8:7::1", "network-object host 203.0.113.1"} | users


def test_an_asa_before_9_gets_ipv4_only_and_the_log_says_why(tmp_path, knot, capsys):
    with lab_device(tmp_path, platform="asa", version="8.4") as device:
        run = Run(tmp_path, knot, device, capsys)
        code, out = run(block_list=f"mixed.{ZONE}")
        assert code == Exit.CHANGED, out
        assert run.group() == v4_members("network-object ")
        assert "12 IPv6 entries of the block list skipped: show version names release 8.4" in run.log
        assert "needs ASA 9.0 or later" in run.log
        code, out = run(ipv6="no")
        assert code == Exit.UNCHANGED and "skipped: ipv6=no in the config" in run.log


def test_dry_run_and_print_policy_count_ipv6_apart(tmp_path, knot, capsys):
    with lab_device(tmp_path, platform="asa", version="9.16") as device:
        run = Run(tmp_path, knot, device, capsys)
        code, out = run("--print-policy", block_list=f"mixed.{ZONE}")
        assert code == Exit.UNCHANGED and "block 2001:db8:100::/48" in out.splitlines()
        assert "the policy holds 32 (20 IPv4, 12 IPv6) block entries and 0 allow entries" in run.log
        code, out = run("--dry-run")
        assert code == Exit.CHANGED and "+ block 2001:db8:7::1/128" in out.splitlines()
        assert "Dry run: 32 (20 IPv4, 12 IPv6) entries to add, 0 to remove" in run.log
        assert device.running() == {} and "configure terminal" not in device.commands()
