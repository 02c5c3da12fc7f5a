"""Containers' traffic is covered (issue 15): it is forwarded, never seen by INPUT, and Docker's own FORWARD
rules accept it.  A third namespace stands for a container behind the host; the host's iptables get the
chains Docker makes (DOCKER-USER jumped to first from FORWARD, a FORWARD policy of DROP, accepts for the
bridge), and a Docker restart puts its jumps back on top, above ours.

iptables: tsadmin's chain is jumped to first from DOCKER-USER too, which Docker keeps on top.
nftables: the forward hook at priority filter - 10 runs before every iptables chain.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.netns import HOST_ADDRESS, NetnsPair
from tests.support.tools import require_tool
from tests.support.tsadmin_lab import BLOCKED_HOST, FREE_HOST, Lab, open_lab

pytestmark = pytest.mark.root

BRIDGE_HOST = "172.17.0.1"
CONTAINER = "172.17.0.2"
DOCKER = [
    ["-N", "DOCKER-USER"],
    ["-A", "DOCKER-USER", "-j", "RETURN"],
    ["-N", "DOCKER-FORWARD"],
    ["-A", "DOCKER-FORWARD", "-i", "vethc", "-j", "ACCEPT"],
    [
        "-A",
        "DOCKER-FORWARD",
        "-o",
        "vethc",
        "-m",
        "conntrack",
        "--ctstate",
        "RELATED,ESTABLISHED",
        "-j",
        "ACCEPT",
    ],
    ["-P", "FORWARD", "DROP"],
    ["-A", "FORWARD", "-j", "DOCKER-USER"],
    ["-A", "FORWARD", "-j", "DOCKER-FORWARD"],
]
# What a Docker restart does: its jumps deleted and put back on top, above whatever was first.
RESTART = [
    ["-D", "FORWARD", "-j", "DOCKER-FORWARD"],
    ["-D", "FORWARD", "-j", "DOCKER-USER"],
    ["-I", "FORWARD", "1", "-j", "DOCKER-FORWARD"],
    ["-I", "FORWARD", "1", "-j", "DOCKER-USER"],
]


class Container:
    """A namespace behind the host on 172.17.0.0/16, routed by the host to the peer."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.ns = f"tsc{os.getpid() % 100000}"

    def __enter__(self) -> Container:
        pair, ip = self.lab.pair, NetnsPair.ip
        ip("netns", "add", self.ns)
        try:
            ip(
                "link",
                "add",
                "vethc",
                "netns",
                pair.host,
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                self.ns,
            )
            ip("-n", pair.host, "addr", "add", f"{BRIDGE_HOST}/16", "dev", "vethc")
            ip("-n", self.ns, "addr", "add", f"{CONTAINER}/16", "dev", "eth0")
            for ns, dev in ((pair.host, "vethc"), (self.ns, "eth0"), (self.ns, "lo")):
                ip("-n", ns, "link", "set", dev, "up")
            ip("-n", self.ns, "route", "add", "default", "via", BRIDGE_HOST)
            ip(
                "-n",
                pair.peer,
                "route",
                "add",
                "172.17.0.0/16",
                "via",
                HOST_ADDRESS,
                "dev",
                "veth1",
                "onlink",
            )
            pair.run(["sysctl", "-qw", "net.ipv4.ip_forward=1"])
        except BaseException:
            self.close()
            raise
        return self

    def reachable(self, address: str) -> bool:
        return self.lab.pair.run(["ping", "-n", "-c", "1", "-W", "2", address], ns=self.ns).returncode == 0

    def close(self) -> None:
        NetnsPair.ip("netns", "del", self.ns)

    def __exit__(self, *exc: object) -> None:
        self.close()


@pytest.fixture(params=["iptables", "nftables"])
def docker_host(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Lab, Container, str]]:
    require_tool("nft")
    with open_lab(tmp_path) as lab, Container(lab) as container:
        for rule in DOCKER:
            done = lab.pair.run(["iptables", *rule])
            assert done.returncode == 0, done.stderr
        yield lab, container, request.param


def test_container_traffic_is_blocked_even_after_a_docker_restart(
    docker_host: tuple[Lab, Container, str],
) -> None:
    lab, container, backend = docker_host
    assert container.reachable(BLOCKED_HOST) and container.reachable(FREE_HOST)
    added = lab.add(f"--firewall={backend}")
    assert added.returncode == 4, added.stdout + added.stderr
    assert not container.reachable(BLOCKED_HOST)
    assert container.reachable(FREE_HOST)

    for rule in RESTART:
        assert lab.pair.run(["iptables", *rule]).returncode == 0
    forward = [
        line for line in lab.pair.run(["iptables-save"]).stdout.splitlines() if line.startswith("-A FORWARD")
    ]
    assert forward[:2] == ["-A FORWARD -j DOCKER-USER", "-A FORWARD -j DOCKER-FORWARD"], forward
    assert not container.reachable(BLOCKED_HOST), "Docker's accept now comes before our FORWARD jump"

    removed = lab.tsadmin("remove", "--silent")
    assert removed.returncode == 4, removed.stdout + removed.stderr
    assert container.reachable(BLOCKED_HOST)
    docker_user = [
        line
        for line in lab.pair.run(["iptables-save"]).stdout.splitlines()
        if line.startswith("-A") and "DOCKER-USER" in line
    ]
    assert docker_user == ["-A FORWARD -j DOCKER-USER", "-A DOCKER-USER -j RETURN"], docker_user
