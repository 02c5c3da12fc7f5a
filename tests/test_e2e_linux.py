"""The Linux host end to end: tsadmin in a network namespace, the kernel's block log through syslog-ng
to ThreatSTOP over HTTPS, and an uninstall that leaves the firewall as it found it.

The namespace is the host: tsadmin, the policy server (Knot) and the HTTPS
log server all live on its loopback.  A real syslog-ng runs the host's
main configuration under the test's root (its kernel source reads
/dev/kmsg, as Debian's ``system()`` does) with the snippet tsadmin wrote.
The upload is the hourly ``tsadmin logs`` line tsadmin put in the crontab,
run as cron runs it.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.e2e import cron_command, cron_env
from tests.support.hostroot import shape_host, write_config
from tests.support.https_server import LogServer
from tests.support.knot import KnotServer, make_zone_records
from tests.support.netns import NetnsPair, entered, kernel_log_all_netns
from tests.support.syslog_ng import SyslogNg, check_in_distribution_config, wait_until
from tests.support.tools import require_tool

pytestmark = pytest.mark.root

TSADMIN = Path(__file__).resolve().parents[1] / "bin" / "tsadmin"
ZONE = "e2e-host.threatstop.local"
BLOCKED_HOST = "192.0.2.10"
BLOCKED_NET = "203.0.113.0/24"
ALLOWED_IN_NET = "203.0.113.5"
FREE_HOST = "198.51.100.20"
# The kernel part of Debian's s_src (system() would also take over /dev/log, which belongs to the box).
KERNEL_SOURCE = (
    'source s_src { file("/dev/kmsg" program-override("kernel") flags(kernel) format("linux-kmsg")); '
    "internal(); };\n"
)


def firewall_state(pair: NetnsPair) -> tuple[str, ...]:
    """Rules of both families and every set, without the dump's comment lines (dates, counters)."""
    dumps = [pair.run([tool]).stdout for tool in ("iptables-save", "ip6tables-save")]
    dumps.append(pair.run(["ipset", "save"]).stdout)
    return tuple("\n".join(line for line in dump.splitlines() if not line.startswith("#")) for dump in dumps)


def test_a_linux_host_blocks_logs_uploads_and_is_given_back(tmp_path: Path) -> None:
    for tool in ("ipset", "iptables", "ip6tables", "ping", "syslog-ng"):
        require_tool(tool)
    root = shape_host(tmp_path / "root")
    prefix = "E" + secrets.token_hex(2)
    knot = KnotServer(tmp_path)
    policy = make_zone_records(
        apl={"blk": [f"1:{BLOCKED_HOST}/32", f"1:{BLOCKED_NET}"]}, a={"alw": [ALLOWED_IN_NET]}
    )
    knot.add_zone(ZONE, policy)
    daemon_dir = tmp_path / "syslog-ng"
    daemon_dir.mkdir()
    daemon = SyslogNg(
        daemon_dir,
        root / "etc/syslog-ng/conf.d/threatstop-kernel.conf",
        head=KERNEL_SOURCE,
        cfgfile=root / "etc/syslog-ng/syslog-ng.conf",
    )
    with kernel_log_all_netns(), NetnsPair((BLOCKED_HOST, ALLOWED_IN_NET, FREE_HOST)) as pair:
        with entered(pair.host):
            knot.start()
            server = LogServer(tmp_path / "https")  # its socket is made here: the namespace's loopback
        env = {name: value for name, value in os.environ.items() if name != "SSH_CONNECTION"}

        def tsadmin(*args: str) -> subprocess.CompletedProcess[str]:
            argv = [sys.executable, str(TSADMIN), *args, "--root", str(root), "--detailed-exitcodes"]
            return pair.run(argv, input="", env=env)

        try:
            server.start()
            # The host's own firewall, which tsadmin must leave alone.
            pair.run(["iptables", "-A", "INPUT", "-p", "tcp", "--dport", "22", "-j", "ACCEPT"])
            pair.run(["ipset", "create", "hostowned", "hash:ip"])
            before = firewall_state(pair)
            write_config(
                root,
                f"url = {server.url}\nca_bundle = {server.ca_file}\n"
                f"log_reopen_command = syslog-ng-ctl reopen --control {daemon.control}\n",
            )

            added = tsadmin(
                "add",
                f"--block_list=blk.{ZONE}",
                f"--allow_list=alw.{ZONE}",
                "--dns_server=127.0.0.1",
                f"--port={knot.port}",
                f"--tsprefix={prefix}",
                "--silent",
            )
            assert added.returncode == 4, added.stdout + added.stderr
            check_in_distribution_config(root / "etc/syslog-ng/conf.d", tmp_path)
            cron = {
                tag: cron_command(root / "crontab", f"threatstop tsadmin {tag}") for tag in ("update", "logs")
            }
            update = pair.run(cron["update"], env=cron_env(tmp_path))
            assert update.returncode == 0, update.stdout + update.stderr  # the policy is unchanged
            daemon.start()
            try:
                # Blocked traffic is dropped and the kernel logs it; syslog-ng files it where tsadmin said.
                block_log = root / "var/log/threatstop/threatstop.log"
                logged = f"ThreatSTOP-{prefix}block"

                def blocked_and_filed() -> bool:
                    assert not pair.reachable(BLOCKED_HOST, timeout=1), "the blocked host answered"
                    return block_log.exists() and any(
                        logged in line and f"DST={BLOCKED_HOST}" in line
                        for line in block_log.read_text(errors="replace").splitlines()
                    )

                wait_until(blocked_and_filed, what=f"the kernel's {logged} line in {block_log}")
                assert pair.reachable(FREE_HOST) and pair.reachable(ALLOWED_IN_NET)

                hourly = pair.run(cron["logs"], env=cron_env(tmp_path))
                assert hourly.returncode == 0, hourly.stdout + hourly.stderr
            finally:
                daemon.stop()
            uploaded = server.received().decode(errors="replace")
            assert any(logged in line and f"DST={BLOCKED_HOST}" in line for line in uploaded.splitlines())

            removed = tsadmin("remove", "--silent")
            assert removed.returncode == 4, removed.stdout + removed.stderr
            assert firewall_state(pair) == before, "remove leaves the namespace's rules and sets as they were"
            assert pair.reachable(BLOCKED_HOST)
            assert not (root / "etc/syslog-ng/conf.d/threatstop-kernel.conf").exists()
        finally:
            server.stop()
            knot.stop()
