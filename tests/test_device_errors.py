"""A device's failures by kind (as NAPALM's exceptions), against the lab over real SSH."""

from __future__ import annotations

import pytest

from tests.support.dnsproxy import SilentServer
from tests.support.lab import lab_device
from tests.support.tools import free_port
from ts_isr.errors import AuthenticationFailed, ConnectionLost, DeviceTimeout, HostKeyError, Unreachable
from ts_isr.ranges import Cidr
from ts_isr.targets.base import ListChange, Plan
from ts_isr.targets.cisco import CiscoTarget, Device
from ts_isr.targets.cisco.ios import IosDialect


def target(dev, known_hosts, *, port=None, password=None, timeout=5.0) -> CiscoTarget:
    device = Device(
        dev.host, port or dev.port, dev.username, password or dev.password, dev.secret, known_hosts, timeout
    )
    return CiscoTarget(IosDialect(), device, {"block": "TS"})


@pytest.fixture
def known_hosts(tmp_path):
    return tmp_path / "known_hosts"


def test_each_failure_has_its_kind(tmp_path, known_hosts):
    with lab_device(tmp_path, drop_after_lines=3) as dev, lab_device(tmp_path) as stranger:
        known_hosts.write_text(dev.known_hosts_line() + "\n")
        with pytest.raises(AuthenticationFailed, match="authentication failed"):
            target(dev, known_hosts, password="wrong").connect()
        with pytest.raises(Unreachable, match="cannot reach"):
            target(dev, known_hosts, port=free_port()).connect()
        with SilentServer() as silent, pytest.raises(Unreachable, match="timed out or failed"):
            target(dev, known_hosts, port=silent.port, timeout=2).connect()
        known_hosts.write_text(f"[{dev.host}]:{dev.port} {stranger.known_hosts_line().split(' ', 1)[1]}\n")
        with pytest.raises(HostKeyError, match="host key changed"):
            target(dev, known_hosts).connect()
        known_hosts.write_text(dev.known_hosts_line() + "\n")
        dropping = target(dev, known_hosts)
        with dropping:
            dropping.connect()
            dropping.read()
            additions = tuple(Cidr(4, 0xC0000200 + n, 32) for n in range(10))
            with pytest.raises(ConnectionLost, match="lost"):
                dropping.apply(Plan((ListChange("block", frozenset(additions), additions, ()),)))

    with lab_device(tmp_path, hang_on="show object-group name TS") as hung:
        known_hosts.write_text(hung.known_hosts_line() + "\n")
        silent_device = target(hung, known_hosts, timeout=2)
        with silent_device, pytest.raises(DeviceTimeout, match="timed out: no answer for 2 s"):
            silent_device.connect()
            silent_device.read()
