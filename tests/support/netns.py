"""Network namespaces joined by a veth pair, for firewall tests that must not touch the host.

``host`` is the namespace tsadmin runs in (``ip netns exec``); ``peer`` holds
the addresses the tests try to reach.  Names are unique per process and
object; everything is deleted on exit, even after a failed test.
"""

from __future__ import annotations

import ctypes
import itertools
import os
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

from tests.support.tools import require_root, require_tool

_counter = itertools.count()
HOST_ADDRESS = "198.51.100.1"
HOST_ADDRESS6 = "2001:db8:ffff::1"
PREFIXLEN = 24


def _host_route(address: str) -> str:
    return f"{address}/128" if ":" in address else f"{address}/32"


def _run(argv: Sequence[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=60, check=False, **kwargs)


class NetnsPair:
    """Two namespaces, ``host`` and ``peer``, linked by veth; the peer answers on ``addresses``."""

    def __init__(self, addresses: Sequence[str] = ("198.51.100.2",)) -> None:
        require_root()
        require_tool("ip")
        tag = f"{os.getpid() % 100000}x{next(_counter)}"
        self.host = f"tsh{tag}"
        self.peer = f"tsp{tag}"
        self.addresses = tuple(addresses)

    def __enter__(self) -> NetnsPair:
        try:
            self._create()
        except BaseException:
            self.close()
            raise
        return self

    def _create(self) -> None:
        for ns in (self.host, self.peer):
            self.ip("netns", "add", ns)
            self.ip("-n", ns, "link", "set", "lo", "up")
        veth = ("type", "veth", "peer", "name", "veth1", "netns", self.peer)
        self.ip("link", "add", "veth0", "netns", self.host, *veth)
        self.ip("-n", self.host, "addr", "add", f"{HOST_ADDRESS}/{PREFIXLEN}", "dev", "veth0")
        # nodad: an IPv6 address is usable at once, not after duplicate detection.
        self.ip("-n", self.host, "addr", "add", f"{HOST_ADDRESS6}/128", "dev", "veth0", "nodad")
        for address in self.addresses:
            nodad = ("nodad",) if ":" in address else ()
            self.ip("-n", self.peer, "addr", "add", _host_route(address), "dev", "veth1", *nodad)
        for ns, dev in ((self.host, "veth0"), (self.peer, "veth1")):
            self.ip("-n", ns, "link", "set", dev, "up")
        # Every test address is one hop away: a route on each side, whatever its network.
        for address in self.addresses:
            self.ip("-n", self.host, "route", "replace", _host_route(address), "dev", "veth0")
        for address in (HOST_ADDRESS, HOST_ADDRESS6):
            self.ip("-n", self.peer, "route", "replace", _host_route(address), "dev", "veth1")

    @staticmethod
    def ip(*args: str) -> None:
        done = _run(["ip", *args])
        if done.returncode != 0:
            raise RuntimeError(f"ip {' '.join(args)} failed: {done.stderr.strip()}")

    def run(
        self, argv: Sequence[str], *, ns: str | None = None, **kwargs: object
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` inside a namespace (``host`` by default)."""
        return _run(["ip", "netns", "exec", ns or self.host, *argv], **kwargs)

    def reachable(self, address: str, timeout: int = 2) -> bool:
        """One ping from the host namespace: True when it is answered."""
        return self.run(["ping", "-n", "-c", "1", "-W", str(timeout), address]).returncode == 0

    def close(self) -> None:
        for ns in (self.host, self.peer):
            _run(["ip", "netns", "del", ns])

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


CLONE_NEWNET = 0x40000000


@contextmanager
def entered(ns: str) -> Iterator[None]:
    """Run this thread inside ``ns`` for a while: servers started here (Knot) listen in its loopback."""
    libc = ctypes.CDLL(None, use_errno=True)
    original = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{ns}", os.O_RDONLY)
    try:
        if libc.setns(target, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns into {ns} failed")
        yield
    finally:
        libc.setns(original, CLONE_NEWNET)
        os.close(target)
        os.close(original)


@contextmanager
def kernel_log_all_netns() -> Iterator[None]:
    """The LOG target logs from a non-init namespace only with nf_log_all_netns; restored after."""
    knob = Path("/proc/sys/net/netfilter/nf_log_all_netns")
    if not knob.exists():
        subprocess.run(["modprobe", "nf_log_syslog"], check=False, capture_output=True)
    before = knob.read_text()
    knob.write_text("1")
    try:
        yield
    finally:
        knob.write_text(before)
