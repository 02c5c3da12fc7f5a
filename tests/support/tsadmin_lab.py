"""The tsadmin lab shared by the netns test files: two namespaces, Knot serving the policy on the host
namespace's loopback, a host rule and a host set tsadmin must leave alone, a test root shaped like a host."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.hostroot import shape_host
from tests.support.knot import KnotServer, make_zone_records
from tests.support.netns import HOST_ADDRESS, NetnsPair, entered
from tests.support.tools import require_tool

TSADMIN = Path(__file__).resolve().parent.parent.parent / "bin" / "tsadmin"
ZONE = "test.threatstop.local"
BLOCK_LIST = f"blk.{ZONE}"
ALLOW_LIST = f"alw.{ZONE}"
BLOCKED_HOST = "192.0.2.10"
BLOCKED_NET = "203.0.113.0/24"
BLOCKED_IN_NET = "203.0.113.9"
ALLOWED_IN_NET = "203.0.113.5"
FREE_HOST = "198.51.100.20"
PEER_ADDRESSES = (BLOCKED_HOST, BLOCKED_IN_NET, ALLOWED_IN_NET, FREE_HOST)
HOST_RULE = ["-A", "INPUT", "-p", "tcp", "--dport", "22", "-j", "ACCEPT"]


def policy_zone(extra_block: tuple[str, ...] = ()) -> str:
    """The block list (APL items ``1:`` IPv4, ``2:`` IPv6; ``extra_block`` IPv4) and the allowed host."""
    items = [f"1:{BLOCKED_HOST}/32", f"1:{BLOCKED_NET}"]
    items += [item if item[:2] in ("1:", "2:") else f"1:{item}" for item in extra_block]
    return make_zone_records(apl={"blk": items}, a={"alw": [ALLOWED_IN_NET]})


@dataclass
class Lab:
    pair: NetnsPair
    knot: KnotServer
    root: Path
    prefix: str
    tools: Path | None = None  # a directory put first on tsadmin's PATH (iptables-legacy links)

    def tsadmin(
        self,
        *args: str,
        user: str | None = None,
        ssh_client: str | None = None,
        script: Path = TSADMIN,
        pythonpath: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, str(script), *args, "--root", str(self.root), "--detailed-exitcodes"]
        if user is not None:
            argv = ["setpriv", "--reuid", user, "--regid", "nogroup", "--clear-groups", *argv]
        # Whoever runs the tests over SSH must not leak their address into tsadmin's lifelines.
        env = {name: value for name, value in os.environ.items() if name != "SSH_CONNECTION"}
        if ssh_client is not None:
            env["SSH_CONNECTION"] = f"{ssh_client} 50022 {HOST_ADDRESS} 22"
        if self.tools is not None:
            env["PATH"] = f"{self.tools}:{env.get('PATH', '/usr/bin:/bin')}"
        if pythonpath is not None:
            env["PYTHONPATH"] = str(pythonpath)
        return self.pair.run(argv, input="", env=env)

    def add(
        self,
        *extra: str,
        ssh_client: str | None = None,
        script: Path = TSADMIN,
        pythonpath: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        return self.tsadmin(
            "add",
            f"--block_list={BLOCK_LIST}",
            f"--allow_list={ALLOW_LIST}",
            "--dns_server=127.0.0.1",
            f"--port={self.knot.port}",
            f"--tsprefix={self.prefix}",
            "--silent",
            *extra,
            ssh_client=ssh_client,
            script=script,
            pythonpath=pythonpath,
        )

    def state(self) -> tuple[str, str, str]:
        """What the kernel holds: rules of both families and every set, counters and comments left out."""
        v4 = self.pair.run(["iptables-save"]).stdout
        v6 = self.pair.run(["ip6tables-save"]).stdout
        sets = self.pair.run(["ipset", "save"]).stdout
        return tuple(_without_comments(text) for text in (v4, v6, sets))

    def set_zone(self, text: str) -> None:
        self.knot.add_zone(ZONE, text)
        with entered(self.pair.host):
            self.knot.reload()


def _without_comments(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.startswith("#"))


@contextmanager
def open_lab(
    tmp_path: Path, addresses: tuple[str, ...] = PEER_ADDRESSES, zone: str | None = None
) -> Iterator[Lab]:
    for tool in ("ipset", "iptables", "ip6tables", "ping", "setpriv"):
        require_tool(tool)
    with NetnsPair(addresses) as pair:
        knot = KnotServer(tmp_path)
        knot.add_zone(ZONE, zone or policy_zone())
        with entered(pair.host):
            knot.start()
        try:
            pair.run(["iptables", *HOST_RULE])
            pair.run(["ipset", "create", "hostowned", "hash:ip"])
            yield Lab(pair, knot, shape_host(tmp_path / "root"), "T" + secrets.token_hex(2))
        finally:
            knot.stop()
