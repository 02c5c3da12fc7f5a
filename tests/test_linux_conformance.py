"""One conformance suite every Linux firewall backend passes (issue 15): ipset + iptables with
iptables-legacy and with iptables-nft, and native nftables.

Each case runs ``tsadmin`` in a network namespace with real tools and Knot:
block, allow inside a blocked network, IPv6, updates under pings every 100 ms
that none of the blocked addresses answers, and a remove that leaves every
ruleset (legacy, nf_tables, ipsets) as it was before ``add``.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.netns import kernel_log_all_netns
from tests.support.tools import require_tool
from tests.support.tsadmin_lab import (
    ALLOWED_IN_NET,
    BLOCKED_HOST,
    BLOCKED_IN_NET,
    FREE_HOST,
    PEER_ADDRESSES,
    Lab,
    open_lab,
    policy_zone,
)

pytestmark = pytest.mark.root

BLOCKED6 = "2001:db8:bad::5"
FREE6 = "2001:db8:900d::5"
V6_BLOCK = ("2:2001:db8:bad::/48",)
IPTABLES_TOOLS = ("iptables", "ip6tables", "iptables-save", "ip6tables-save", "iptables-restore")
IPTABLES_TOOLS += ("ip6tables-restore",)
# backend, iptables variant the host's `iptables` command is
VARIANTS = {
    "ipset+iptables-legacy": ("iptables", "legacy"),
    "ipset+iptables-nft": ("iptables", "nft"),
    "nftables": ("nftables", None),
}


def iptables_links(directory: Path, variant: str) -> Path:
    """A directory whose iptables* commands are the ``variant`` (legacy or nft) ones."""
    directory.mkdir()
    for tool in IPTABLES_TOOLS:
        base, _, rest = tool.partition("-")
        real = require_tool(f"{base}-{variant}{'-' + rest if rest else ''}")
        (directory / tool).symlink_to(real)
    return directory


@pytest.fixture(params=list(VARIANTS))
def lab(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Lab, str]]:
    require_tool("nft")
    backend, variant = VARIANTS[request.param]
    zone = policy_zone(V6_BLOCK)
    with open_lab(tmp_path, (*PEER_ADDRESSES, BLOCKED6, FREE6), zone) as opened:
        if variant is not None:
            opened.tools = iptables_links(tmp_path / "tools", variant)
        yield opened, backend


def kernel_state(lab: Lab) -> tuple[str, ...]:
    """Every ruleset the namespace holds (iptables-legacy's, the ipsets, nf_tables' which shows
    iptables-nft's too), without counters.  A legacy table left empty by remove (its module stays
    loaded) equals none: only rules and non-built-in chains count there."""
    legacy = []
    for tool in ("iptables-legacy-save", "ip6tables-legacy-save"):
        for line in lab.pair.run([require_tool(tool)]).stdout.splitlines():
            builtin = re.fullmatch(r":(INPUT|FORWARD|OUTPUT) ACCEPT \[\d+:\d+\]", line)
            if line.startswith(("-A", ":")) and not builtin:
                legacy.append(re.sub(r" \[\d+:\d+\]$", "", line))
    # Random per create, and members in hash order: compared as sorted lines without initval.
    saved = re.sub(r" initval 0x[0-9a-f]+", "", lab.pair.run(["ipset", "save"]).stdout)
    sets = "\n".join(sorted(saved.splitlines()))
    return "\n".join(legacy), sets, nft_ruleset(lab)


def kernel_entries(lab: Lab, kind: str) -> int:
    """Entries of list ``kind`` as the kernel holds them: ipset's members, or nft set elements."""
    added = [line for line in lab.pair.run(["ipset", "save"]).stdout.splitlines() if line.startswith("add ")]
    in_ipsets = sum(1 for line in added if line.split()[1].startswith(f"{lab.prefix}{kind}"))
    items = json.loads(lab.pair.run(["nft", "-j", "list", "ruleset"]).stdout)["nftables"]
    in_nft = sum(
        len(item["set"].get("elem", ()))
        for item in items
        if "set" in item and item["set"]["family"] == "inet" and item["set"]["name"].startswith(kind)
    )
    return in_ipsets + in_nft


def nft_ruleset(lab: Lab) -> str:
    """``nft list ruleset`` as JSON, counters and handles left out, and without what iptables-nft leaves
    once its last rule is gone and which filters nothing: empty base chains with policy accept, and
    tables left empty."""
    listing = lab.pair.run(["nft", "-j", "list", "ruleset"]).stdout
    items = json.loads(re.sub(r'"(handle|packets|bytes)": \d+', r'"\1": 0', listing))["nftables"]
    ruled = {
        (item["rule"]["family"], item["rule"]["table"], item["rule"]["chain"])
        for item in items
        if "rule" in item
    }
    kept = []
    for item in items:
        chain = item.get("chain")
        if (
            chain
            and chain.get("policy", "accept") == "accept"
            and (chain["family"], chain["table"], chain["name"]) not in ruled
        ):
            continue
        if "metainfo" not in item:
            kept.append(item)
    used = {
        (value["family"], value.get("table")) for item in kept for value in item.values() if "table" in value
    }
    kept = [
        item
        for item in kept
        if "table" not in item or (item["table"]["family"], item["table"]["name"]) in used
    ]
    # Declarations in any order (iptables-nft creates chains as it needs them), rules in order per chain.
    declared = sorted(json.dumps(item, sort_keys=True) for item in kept if "rule" not in item)
    rules: dict[str, list[str]] = {}
    for item in kept:
        if "rule" in item:
            rule = item["rule"]
            key = f"{rule['family']} {rule['table']} {rule['chain']}"
            rules.setdefault(key, []).append(json.dumps(item, sort_keys=True))
    return json.dumps([declared, sorted(rules.items())])


def add(lab: Lab, backend: str) -> None:
    done = lab.add(f"--firewall={backend}")
    assert done.returncode == 4, done.stdout + done.stderr


def test_blocks_allows_inside_a_blocked_network_and_ipv6(lab: tuple[Lab, str]) -> None:
    lab_, backend = lab
    add(lab_, backend)
    assert not lab_.pair.reachable(BLOCKED_HOST)
    assert not lab_.pair.reachable(BLOCKED_IN_NET)
    assert lab_.pair.reachable(ALLOWED_IN_NET), "an allowed address inside a blocked network stays reachable"
    assert lab_.pair.reachable(FREE_HOST)
    assert not lab_.pair.reachable(BLOCKED6)
    assert lab_.pair.reachable(FREE6)
    shown = lab_.tsadmin("show")
    assert shown.returncode == 0 and f"Firewall: {backend} (" in shown.stdout, shown.stdout + shown.stderr
    counts = re.search(r"Block list: (\d+) entries, allow list: (\d+) entries", shown.stdout)
    assert counts, shown.stdout
    assert (int(counts.group(1)), int(counts.group(2))) == (
        kernel_entries(lab_, "block"),
        kernel_entries(lab_, "allow"),
    )
    assert int(counts.group(1)) >= 3, "a host, the blocked network around the allowed address, IPv6"
    again = lab_.add(f"--firewall={backend}")
    assert again.returncode == 0, again.stdout + again.stderr


def test_block_lines_reach_the_kernel_log(lab: tuple[Lab, str]) -> None:
    lab_, backend = lab
    add(lab_, backend)
    tag = f"ThreatSTOP-{lab_.prefix}block"
    with kernel_log_all_netns():
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            assert not lab_.pair.reachable(BLOCKED_HOST, timeout=1)
            dmesg = subprocess.run(["dmesg"], capture_output=True, text=True).stdout
            if any(tag in line and f"DST={BLOCKED_HOST}" in line for line in dmesg.splitlines()):
                break
        else:
            raise AssertionError(f"no {tag} line for {BLOCKED_HOST} in the kernel log")
    shown = lab_.tsadmin("show")
    blocked = re.search(r"Blocked since installed: (\d+) blocked packets", shown.stdout)
    assert blocked and int(blocked.group(1)) >= 1, shown.stdout


def test_updates_leave_no_unprotected_moment(lab: tuple[Lab, str]) -> None:
    lab_, backend = lab
    add(lab_, backend)
    pings = [
        subprocess.Popen(
            ["ip", "netns", "exec", lab_.pair.host, "ping", "-n", "-i", "0.1", "-W", "1", address],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for address in (BLOCKED_HOST, BLOCKED_IN_NET, BLOCKED6)
    ]
    try:
        for round_ in range(4):
            extra = tuple(f"10.{round_}.{n}.0/24" for n in range(200)) if round_ % 2 == 0 else ()
            lab_.set_zone(policy_zone(V6_BLOCK + extra))
            done = lab_.tsadmin("update")
            assert done.returncode == 4, done.stdout + done.stderr
    finally:
        outputs = []
        for ping in pings:
            ping.send_signal(signal.SIGINT)
            outputs.append(ping.communicate(timeout=30)[0])
    for output in outputs:
        sent, received = map(int, re.search(r"(\d+) packets transmitted, (\d+) received", output).groups())
        assert sent >= 5, output
        assert received == 0, f"a blocked address answered during an update: {output}"
    assert lab_.tsadmin("update").returncode == 0, "an unchanged policy changes nothing"


def forget(lab: Lab, backend: str) -> None:
    """A reboot: the kernel forgets our rules and sets (the files under the root stay)."""
    if backend == "nftables":
        lab.pair.run(["nft", "delete", "table", "inet", lab.prefix])
        return
    chain = lab.prefix
    path = f"PATH={lab.tools}:/usr/sbin:/usr/bin:/sbin:/bin"
    for tool in ("iptables", "ip6tables"):
        script = f"{tool} -D INPUT -j {chain}; {tool} -D OUTPUT -j {chain}; {tool} -D FORWARD -j {chain}; "
        lab.pair.run(["env", path, "sh", "-c", script + f"{tool} -F {chain}; {tool} -X {chain}"])
    for name in lab.pair.run(["ipset", "list", "-n"]).stdout.split():
        if name.startswith(chain):
            lab.pair.run(["ipset", "destroy", name])


def test_boot_restore_and_remove_exactly(lab: tuple[Lab, str]) -> None:
    lab_, backend = lab
    before = kernel_state(lab_)
    add(lab_, backend)
    installed = kernel_state(lab_)
    lab_.knot.stop()
    forget(lab_, backend)
    assert kernel_state(lab_) == before and lab_.pair.reachable(BLOCKED_HOST)
    restored = lab_.tsadmin("restore")
    assert restored.returncode == 4, restored.stdout + restored.stderr
    assert kernel_state(lab_) == installed, "the saved state puts back exactly what update installed"
    assert not lab_.pair.reachable(BLOCKED_HOST) and not lab_.pair.reachable(BLOCKED6)

    removed = lab_.tsadmin("remove", "--silent")
    assert removed.returncode == 4, removed.stdout + removed.stderr
    assert kernel_state(lab_) == before, "remove leaves every ruleset as it was before add"
    assert lab_.pair.reachable(BLOCKED_HOST)


def test_a_change_of_backend_retires_the_other_once_the_new_one_is_in_place(tmp_path: Path) -> None:
    require_tool("nft")
    with open_lab(tmp_path) as lab:
        before = kernel_state(lab)
        add(lab, "iptables")
        add(lab, "nftables")
        assert lab.prefix not in lab.pair.run(["iptables-save"]).stdout
        assert lab.prefix not in lab.pair.run(["ipset", "list", "-n"]).stdout
        assert f"table inet {lab.prefix}" in lab.pair.run(["nft", "-t", "list", "ruleset"]).stdout
        assert not lab.pair.reachable(BLOCKED_HOST) and lab.pair.reachable(ALLOWED_IN_NET)
        kept = lab.tsadmin("update")
        assert kept.returncode == 0, "an update keeps the nftables installation: " + kept.stdout + kept.stderr
        assert lab.tsadmin("remove", "--silent").returncode == 4
        assert kernel_state(lab) == before
