"""tsadmin end to end, as root, inside network namespaces the tests create: real ipset, iptables, Knot.

The policy server (Knot) runs on the host namespace's own loopback; tsadmin
runs there with ``ip netns exec``; the addresses it blocks answer pings from
the peer namespace across a veth pair.
"""

from __future__ import annotations

import os
import re
import secrets
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.hostroot import shape_host
from tests.support.knot import KnotServer, make_zone_records
from tests.support.netns import HOST_ADDRESS, NetnsPair, entered, kernel_log_all_netns
from tests.support.tools import require_tool
from tests.support.tsadmin_lab import (
    ALLOW_LIST,
    ALLOWED_IN_NET,
    BLOCK_LIST,
    BLOCKED_HOST,
    BLOCKED_IN_NET,
    FREE_HOST,
    TSADMIN,
    ZONE,
    Lab,
    open_lab,
    policy_zone,
)

pytestmark = pytest.mark.root


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    with open_lab(tmp_path) as opened:
        yield opened


@pytest.fixture
def kernel_log_in_netns() -> Iterator[None]:
    with kernel_log_all_netns():
        yield


def kernel_lines(tag: str) -> list[str]:
    return [
        line
        for line in subprocess.run(["dmesg"], capture_output=True, text=True).stdout.splitlines()
        if tag in line
    ]


def test_add_blocks_logs_allows_and_remove_gives_the_rules_back(lab: Lab, kernel_log_in_netns: None) -> None:
    before = lab.state()
    assert lab.pair.reachable(BLOCKED_HOST) and lab.pair.reachable(FREE_HOST)

    added = lab.add()
    assert added.returncode == 4, added.stdout + added.stderr

    assert not lab.pair.reachable(BLOCKED_HOST)
    assert not lab.pair.reachable(BLOCKED_IN_NET)
    assert lab.pair.reachable(ALLOWED_IN_NET), "an allowed address inside a blocked network stays reachable"
    assert lab.pair.reachable(FREE_HOST)
    tag = f"ThreatSTOP-{lab.prefix}block"
    deadline = time.monotonic() + 10
    while (
        not any(f"DST={BLOCKED_HOST}" in line for line in kernel_lines(tag)) and time.monotonic() < deadline
    ):
        time.sleep(0.1)
    assert any(f"DST={BLOCKED_HOST}" in line for line in kernel_lines(tag))
    shown = lab.tsadmin("show")
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert "Firewall: iptables (auto: keeps the iptables installation): ipset sets" in shown.stdout
    blocked = re.search(r"Blocked since installed: (\d+) blocked packets", shown.stdout)
    assert blocked and int(blocked.group(1)) >= 2, shown.stdout  # the two blocked pings above

    install_dir = lab.root / "opt/threatstop"
    assert (install_dir / "pre-threatstop_iptables").read_text().count("--dport 22") == 1
    assert "hostowned" in (install_dir / "pre-threatstop_ipset").read_text()
    assert (install_dir / "threatstop.conf").stat().st_mode & 0o077 == 0
    assert f"add {lab.prefix}blockaddr {BLOCKED_HOST}" in (install_dir / "threatstop_ipset.save").read_text()
    assert "tsadmin update" in (lab.root / "crontab").read_text()
    assert "restore" in (lab.root / "etc/systemd/system/threatstop.service").read_text()

    installed = lab.state()
    again = lab.add()
    assert again.returncode == 0, again.stdout + again.stderr
    assert lab.state() == installed, "a second add changes nothing"

    removed = lab.tsadmin("remove", "--silent")
    assert removed.returncode == 4, removed.stdout + removed.stderr
    v4, v6, sets = lab.state()
    assert v4 == before[0], "remove gives back exactly the rules iptables-save showed before add"
    assert v6 == before[1]
    assert sets == before[2], "the host's own set stays; ours are gone"
    assert lab.pair.reachable(BLOCKED_HOST)
    assert "tsadmin" not in (lab.root / "crontab").read_text()
    assert not (lab.root / "etc/systemd/system/threatstop.service").exists()
    assert (install_dir / "threatstop.conf").exists(), "the config is left for a re-install"


def test_no_window_during_updates_and_the_jump_goes_back_on_top(lab: Lab) -> None:
    assert lab.add().returncode == 4
    ping = subprocess.Popen(
        ["ip", "netns", "exec", lab.pair.host, "ping", "-n", "-i", "0.01", "-W", "1", BLOCKED_HOST],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        for round_ in range(4):
            extra = tuple(f"10.{round_}.{n}.0/24" for n in range(200)) if round_ % 2 == 0 else ()
            lab.set_zone(policy_zone(extra))
            done = lab.tsadmin("update")
            assert done.returncode == 4, done.stdout + done.stderr
    finally:
        ping.send_signal(signal.SIGINT)
        output, _ = ping.communicate(timeout=30)
    sent, received = map(int, re.search(r"(\d+) packets transmitted, (\d+) received", output).groups())
    assert sent > 20, output
    assert received == 0, "a blocked address got through during an update"

    lab.pair.run(["iptables", "-I", "INPUT", "1", "-s", FREE_HOST, "-j", "ACCEPT"])
    moved = lab.tsadmin("update")
    assert moved.returncode == 4, moved.stdout + moved.stderr
    first_rules = [line for line in lab.state()[0].splitlines() if line.startswith("-A INPUT")]
    assert first_rules[0] == f"-A INPUT -j {lab.prefix}"
    assert lab.tsadmin("update").returncode == 0, "an unchanged policy changes nothing"


def test_refusals_change_nothing(lab: Lab) -> None:
    before = lab.state()
    config = lab.root / "opt/threatstop/threatstop.conf"

    too_long = lab.tsadmin(
        "add", f"--block_list={BLOCK_LIST}", "--tsprefix=ThreatSTOPlong", "--silent", "--skip_checkpolicy"
    )
    assert too_long.returncode == 2
    assert "too long" in too_long.stdout and "29" in too_long.stdout
    assert lab.state() == before and not config.exists()

    lab.knot.stop()
    no_dns = lab.add()
    assert no_dns.returncode == 1
    assert no_dns.stdout.count("[ERROR]") == 1, no_dns.stdout
    assert lab.state() == before and not config.exists()

    not_root = lab.tsadmin("update", user="nobody")
    assert not_root.returncode == 2
    assert "must run as root" in not_root.stdout
    assert lab.state() == before


def test_an_unregistered_ip_is_refused_unless_the_check_is_skipped(lab: Lab) -> None:
    """Knot refuses names outside its zones, as ThreatSTOP refuses hosts it does not know."""
    before = lab.state()
    other = ("--block_list=blk.unknown.threatstop.local", "--skip_checkpolicy")
    refused = lab.add(*other)
    assert refused.returncode == 2 and "refuses this host" in refused.stdout, refused.stdout
    assert lab.state() == before
    offsite = lab.add(*other, "--skip_checkvalidip")
    assert offsite.returncode == 4, offsite.stdout + offsite.stderr
    assert f"{lab.prefix}blockaddr" in lab.pair.run(["ipset", "list", "-n"]).stdout


def test_dns_failure_on_update_keeps_the_installed_policy(lab: Lab) -> None:
    assert lab.add().returncode == 4
    installed = lab.state()
    lab.knot.stop()
    failed = lab.tsadmin("update")
    assert failed.returncode == 1 and "[ERROR]" in failed.stdout
    assert lab.state() == installed
    assert not lab.pair.reachable(BLOCKED_HOST)


def test_boot_restore_puts_sets_and_chain_back_without_dns(lab: Lab) -> None:
    assert lab.add().returncode == 4
    installed = lab.state()
    lab.knot.stop()
    _forget_everything(lab)
    assert lab.pair.reachable(BLOCKED_HOST)
    restored = lab.tsadmin("restore")
    assert restored.returncode == 4, restored.stdout + restored.stderr
    assert not lab.pair.reachable(BLOCKED_HOST)
    assert lab.state()[0] == installed[0]


def test_a_twin_left_by_an_interrupted_run_is_cleaned_up(lab: Lab) -> None:
    assert lab.add().returncode == 4
    twin = f"{lab.prefix}blockaddrnew"
    lab.pair.run(["ipset", "create", twin, "hash:ip", "maxelem", "16"])
    lab.pair.run(["ipset", "add", twin, "198.51.100.99"])
    done = lab.tsadmin("update")
    assert done.returncode == 4, done.stdout + done.stderr
    present = lab.pair.run(["ipset", "list", "-n"]).stdout.split()
    assert twin not in present and f"{lab.prefix}blockaddr" in present
    assert not lab.pair.reachable(BLOCKED_HOST)
    assert lab.tsadmin("update").returncode == 0


def test_the_admins_ssh_address_is_never_blocked(lab: Lab) -> None:
    """An admin whose own address is on the block list keeps the session that ran add, and later updates."""
    done = lab.add(ssh_client=BLOCKED_HOST)
    assert done.returncode == 4, done.stdout + done.stderr
    assert f"keep_reachable = {BLOCKED_HOST}" in (lab.root / "opt/threatstop/threatstop.conf").read_text()
    assert lab.pair.reachable(BLOCKED_HOST)
    assert not lab.pair.reachable(BLOCKED_IN_NET)
    lab.set_zone(policy_zone(("10.9.9.0/24",)))
    assert lab.tsadmin("update").returncode == 4
    assert lab.pair.reachable(BLOCKED_HOST)


def test_an_emptied_block_list_needs_force(lab: Lab) -> None:
    assert lab.add().returncode == 4
    lab.set_zone(make_zone_records(txt={"blk": ["no entries today"]}, a={"alw": [ALLOWED_IN_NET]}))
    refused = lab.tsadmin("update")
    assert refused.returncode == 1 and "--force" in refused.stdout, refused.stdout
    assert not lab.pair.reachable(BLOCKED_HOST)
    forced = lab.tsadmin("update", "--force")
    assert forced.returncode == 4, forced.stdout + forced.stderr
    assert lab.pair.reachable(BLOCKED_HOST)


def test_log_options_render_exactly_as_iptables_saves_them(lab: Lab) -> None:
    """Otherwise every update would rewrite the chain: the second add must find it in place."""
    options = (
        "--logopts=--log-uid --log-level 6 --log-tcp-options",
        "--logopts_direction=out",
        "--allow_action=RETURN",
    )
    assert lab.add(*options).returncode == 4
    rules = [line for line in lab.state()[0].splitlines() if line.startswith(f"-A {lab.prefix} ")]
    dst_logs = [rule for rule in rules if " dst -j LOG" in rule]
    src_logs = [rule for rule in rules if " src -j LOG" in rule]
    assert dst_logs and all(rule.endswith("--log-level 6 --log-tcp-options --log-uid") for rule in dst_logs)
    assert src_logs and all(
        rule.endswith('--log-prefix "ThreatSTOP-' + lab.prefix + 'block "') for rule in src_logs
    )
    assert any(rule.endswith("src -j RETURN") for rule in rules)
    again = lab.add(*options)
    assert again.returncode == 0, again.stdout + again.stderr


def test_ipv6_entries_get_ipv6_sets_and_rules(tmp_path: Path) -> None:
    require_tool("ip6tables")
    v6 = NetnsPair(("2001:db8:bad::5", "2001:db8:900d::5"))
    with v6:
        knot = KnotServer(tmp_path)
        items = [f"1:{BLOCKED_HOST}/32", "2:2001:db8:bad::/48"]
        knot.add_zone(ZONE, make_zone_records(apl={"blk": items}, a={"alw": [ALLOWED_IN_NET]}))
        with entered(v6.host):
            knot.start()
        try:
            assert v6.reachable("2001:db8:bad::5")
            argv = [sys.executable, str(TSADMIN), "add", f"--block_list={BLOCK_LIST}", "--silent"]
            argv.append("--detailed-exitcodes")
            root = shape_host(tmp_path / "root")
            argv += ["--dns_server=127.0.0.1", f"--port={knot.port}", "--root", str(root)]
            done = v6.run(argv)
            assert done.returncode == 4, done.stdout + done.stderr
            assert not v6.reachable("2001:db8:bad::5")
            assert v6.reachable("2001:db8:900d::5")
            sets = v6.run(["ipset", "list", "-n"]).stdout.split()
            assert {"TSblocknet6", "TSallowaddr6"} <= set(sets)
            assert "--match-set TSblocknet6 dst -j DROP" in v6.run(["ip6tables-save"]).stdout
        finally:
            knot.stop()


def test_a_new_prefix_replaces_the_old_chain_and_sets(lab: Lab) -> None:
    assert lab.add().returncode == 4
    old = lab.prefix
    lab.prefix = "N" + secrets.token_hex(2)
    moved = lab.add()
    assert moved.returncode == 4, moved.stdout + moved.stderr
    v4, _, sets = lab.state()
    assert f"-A INPUT -j {lab.prefix}" in v4 and old not in v4
    assert old not in sets and f"{lab.prefix}blockaddr" in sets
    assert not lab.pair.reachable(BLOCKED_HOST)


def test_a_policy_over_maxpolicysize_is_truncated_and_says_so(lab: Lab) -> None:
    done = lab.add("--maxpolicysize=1")
    assert done.returncode == 4, done.stdout + done.stderr
    # The /24 less the allowed host is 8 networks, plus the blocked host: the broadest, a /25, is kept.
    assert "truncated to max_policy_size=1: dropped 8 entries" in done.stdout, done.stdout
    sets = lab.state()[2]
    assert sets.count(f"add {lab.prefix}block") == 1
    assert f"add {lab.prefix}blocknet 203.0.113.128/25" in sets
    assert lab.pair.reachable(BLOCKED_HOST)


def test_a_host_chain_named_like_the_prefix_is_never_emptied_or_deleted(lab: Lab) -> None:
    """Review item 1: the host's chain HOSTCH, jumped to from INPUT, survives add and remove."""
    lab.pair.run(["iptables", "-N", lab.prefix])
    lab.pair.run(["iptables", "-A", lab.prefix, "-s", "10.1.1.1", "-j", "DROP"])
    lab.pair.run(["iptables", "-I", "INPUT", "1", "-j", lab.prefix])
    before = lab.state()
    refused = lab.add()
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "holding rules tsadmin did not write" in refused.stdout and refused.stdout.count("[ERROR]") == 1
    assert lab.state() == before
    assert not (lab.root / "opt/threatstop/threatstop.conf").exists()
    assert not (lab.root / "crontab").exists()
    config = lab.root / "opt/threatstop/threatstop.conf"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(f"block_list={BLOCK_LIST}\ntsprefix={lab.prefix}\n")
    config.chmod(0o600)
    kept = lab.tsadmin("remove", "--silent")
    assert kept.returncode == 1 and "did not write" in kept.stdout, kept.stdout
    assert lab.state() == before


def test_a_host_jump_to_the_chain_makes_remove_refuse_before_emptying_the_sets(lab: Lab) -> None:
    """Review item 10: a host chain jumping to ours would make -X fail after the sets were flushed."""
    assert lab.add().returncode == 4
    lab.pair.run(["iptables", "-N", "HOST-FILTER"])
    lab.pair.run(["iptables", "-A", "HOST-FILTER", "-j", lab.prefix])
    installed = lab.state()
    refused = lab.tsadmin("remove", "--silent")
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert f"-A HOST-FILTER -j {lab.prefix}" in refused.stdout
    assert lab.state() == installed, "the sets keep their entries, the chain its rules"
    assert not lab.pair.reachable(BLOCKED_HOST)
    lab.pair.run(["iptables", "-D", "HOST-FILTER", "-j", lab.prefix])
    removed = lab.tsadmin("remove", "--silent")
    assert removed.returncode == 4, removed.stdout + removed.stderr
    assert lab.prefix not in lab.state()[0]


def test_a_prefix_change_that_fails_once_still_retires_the_old_chain(lab: Lab) -> None:
    """Review item 5: the new prefix is in the config, DNS is down; the next good run retires the old one."""
    assert lab.add().returncode == 4
    old = lab.prefix
    config = lab.root / "opt/threatstop/threatstop.conf"
    new = "N" + secrets.token_hex(2)
    config.write_text(config.read_text().replace(f"tsprefix = {old}", f"tsprefix = {new}"))
    lab.knot.stop()
    failed = lab.tsadmin("update")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    old_port = lab.knot.port
    with entered(lab.pair.host):
        lab.knot.start()
    config.write_text(config.read_text().replace(f"port = {old_port}", f"port = {lab.knot.port}"))
    moved = lab.tsadmin("update")
    assert moved.returncode == 4, moved.stdout + moved.stderr
    v4, _, sets = lab.state()
    assert f"-A INPUT -j {new}" in v4 and old not in v4
    assert old not in sets and f"{new}blockaddr" in sets
    assert lab.tsadmin("remove", "--silent").returncode == 4
    assert new not in lab.pair.run(["ipset", "list", "-n"]).stdout


def test_a_failed_install_leaves_no_config_cron_job_or_unit(lab: Lab) -> None:
    """Review items 11 and 14: a set of our name but another type fails the install before any swap."""
    lab.pair.run(["ipset", "create", f"{lab.prefix}blockaddr", "hash:net"])
    before = lab.state()
    failed = lab.add()
    assert failed.returncode == 1 and "exists as hash:net" in failed.stdout, failed.stdout + failed.stderr
    assert lab.state() == before
    for left in ("opt/threatstop/threatstop.conf", "crontab", "etc/systemd/system/threatstop.service"):
        assert not (lab.root / left).exists(), left


def test_a_boot_state_that_failed_to_save_is_saved_by_the_next_unchanged_run(lab: Lab) -> None:
    """Review item 13: after a failed save, an unchanged update must not leave the stale state."""
    assert lab.add().returncode == 4
    state = lab.root / "opt/threatstop/threatstop_ipset.save"
    stale = state.read_text()
    state.unlink()
    (state / "in-the-way").mkdir(parents=True)  # the save's rename fails: a directory holds the name
    lab.set_zone(policy_zone(("10.7.7.0/24",)))
    failed = lab.tsadmin("update")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    (state / "in-the-way").rmdir()
    state.rmdir()
    state.write_text(stale)
    unchanged = lab.tsadmin("update")
    assert unchanged.returncode == 0, unchanged.stdout + unchanged.stderr
    assert f"add {lab.prefix}blocknet 10.7.7.0/24" in state.read_text()


def test_allow_matches_return_by_default(lab: Lab) -> None:
    """Review item 6: an allowed address is only not blocked; the host's own DROP still applies."""
    lab.pair.run(["iptables", "-A", "OUTPUT", "-d", ALLOWED_IN_NET, "-j", "DROP"])
    assert lab.add().returncode == 4
    assert f"--match-set {lab.prefix}allowaddr dst -j RETURN" in lab.state()[0]
    assert not lab.pair.reachable(ALLOWED_IN_NET), "the host's own DROP still applies to an allowed address"


def test_the_ssh_client_is_found_in_a_parent_process_as_under_sudo(lab: Lab) -> None:
    """Review item 4: sudo drops SSH_CONNECTION; the login shell above tsadmin still has it."""
    argv = [sys.executable, str(TSADMIN), "add", f"--block_list={BLOCK_LIST}", f"--allow_list={ALLOW_LIST}"]
    argv.append("--detailed-exitcodes")
    argv += ["--dns_server=127.0.0.1", f"--port={lab.knot.port}", f"--tsprefix={lab.prefix}", "--silent"]
    argv += ["--root", str(lab.root)]
    env = {name: value for name, value in os.environ.items() if name != "SSH_CONNECTION"}
    env["SSH_CONNECTION"] = f"{BLOCKED_HOST} 50022 {HOST_ADDRESS} 22"
    # The shell keeps SSH_CONNECTION in its environ; `env -u` starts tsadmin without it, as sudo does.
    script = f"env -u SSH_CONNECTION {shlex.join(argv)}; exit $?"
    done = lab.pair.run(["sh", "-c", script], input="", env=env)
    assert done.returncode == 4, done.stdout + done.stderr
    assert f"keep_reachable = {BLOCKED_HOST}" in (lab.root / "opt/threatstop/threatstop.conf").read_text()
    assert lab.pair.reachable(BLOCKED_HOST)
    # A second admin, from another address: added to the list, the first one kept.
    again = lab.add(ssh_client=FREE_HOST)
    assert again.returncode == 4, again.stdout + again.stderr
    config = (lab.root / "opt/threatstop/threatstop.conf").read_text()
    kept = next(line for line in config.splitlines() if line.startswith("keep_reachable = "))
    assert BLOCKED_HOST in kept and FREE_HOST in kept, kept


def test_the_installed_cron_commands_and_boot_unit_run_in_a_bare_environment(lab: Lab) -> None:
    """Review items 2, 3, 17, 19: what cron and systemd run, run as they run it (env -i, no venv).

    The config lives at a path with a space and a '%' (systemd splits and expands ExecStart).
    """
    config = lab.root / "etc/thr eat%stop/ts.conf"
    system_python = "/usr/bin/python3"
    argv = [system_python, str(TSADMIN), "add", f"--block_list={BLOCK_LIST}", f"--allow_list={ALLOW_LIST}"]
    argv.append("--detailed-exitcodes")
    argv += ["--dns_server=127.0.0.1", f"--port={lab.knot.port}", f"--tsprefix={lab.prefix}", "--silent"]
    argv += ["--root", str(lab.root), "--config", str(config)]
    added = lab.pair.run(["env", "-i", "PATH=/usr/bin:/bin", *argv], input="")
    assert added.returncode == 4, added.stdout + added.stderr
    assert config.exists()

    bare = ["env", "-i", "PATH=/usr/bin:/bin", "/bin/sh", "-c"]
    lines = [line for line in (lab.root / "crontab").read_text().splitlines() if "tsadmin" in line]
    assert len(lines) == 2, lines
    for line in lines:
        # Cron runs the command with /bin/sh, "\%" turned back into "%" (a bare % would end the command).
        command = line.split(None, 5)[5].split(" # ")[0].replace("\\%", "%")
        done = lab.pair.run([*bare, command])
        assert done.returncode == 0, f"{command}: {done.stdout}{done.stderr}"

    unit = lab.root / "etc/systemd/system/threatstop.service"
    verified = subprocess.run(
        [require_tool("systemd-analyze"), "verify", str(unit)], capture_output=True, text=True, check=False
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    exec_start = next(line for line in unit.read_text().splitlines() if line.startswith("ExecStart="))
    words = [word.replace("%%", "%") for word in shlex.split(exec_start.removeprefix("ExecStart="))]
    assert str(config) in words
    _forget_everything(lab)
    restored = lab.pair.run(["env", "-i", "PATH=/usr/bin:/bin", *words])
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert not lab.pair.reachable(BLOCKED_HOST)


def _forget_everything(lab: Lab) -> None:
    """A reboot: the kernel forgets every rule and set of ours."""
    chain = lab.prefix
    lab.pair.run(
        [
            "sh",
            "-c",
            f"iptables -D INPUT -j {chain}; iptables -D OUTPUT -j {chain}; "
            f"iptables -D FORWARD -j {chain}; iptables -F {chain}; iptables -X {chain}",
        ]
    )
    for name in lab.pair.run(["ipset", "list", "-n"]).stdout.split():
        if name.startswith(chain):
            lab.pair.run(["ipset", "destroy", name])


def test_the_default_gateway_and_the_resolvers_are_never_blocked(lab: Lab) -> None:
    """Review item 4: a host cut off from its gateway or resolver is as lost as a locked-out admin."""
    lab.pair.run(["ip", "route", "replace", "default", "via", BLOCKED_IN_NET, "dev", "veth0", "onlink"])
    resolv = lab.root / "etc/resolv.conf"
    resolv.parent.mkdir(parents=True)
    resolv.write_text(f"nameserver {BLOCKED_HOST}\n")
    done = lab.add()
    assert done.returncode == 4, done.stdout + done.stderr
    assert lab.pair.reachable(BLOCKED_HOST), "the resolver"
    assert lab.pair.reachable(BLOCKED_IN_NET), "the default gateway"
    assert "lifelines" in done.stdout


def test_a_small_change_is_made_in_place_against_the_last_good_policy(lab: Lab) -> None:
    """The update diffs against the policy its fetch already read, once the boot state's record and the
    kernel's counts vouch for it: no entry is read back."""
    many = tuple(f"10.{2 * n}.7.0/24" for n in range(100))  # apart: aggregation keeps them
    lab.set_zone(policy_zone(many))
    assert lab.add().returncode == 4
    lab.set_zone(policy_zone((*many[1:], "10.201.7.0/24")))
    done = lab.tsadmin("update")
    assert done.returncode == 4, done.stdout + done.stderr
    told = (lab.root / "var/log/threatstop/tsadmin.log").read_text().split("Policy from DNS")[-1]
    assert "(+1 -1) changed in place" in told and "reading them back" not in told, told
    sets = lab.state()[2]
    assert "10.201.7.0/24" in sets and "10.0.7.0/24" not in sets
