"""The fleet (issue 11): upload_rules --inventory over real Nornir, real SSH to lab devices, real Knot."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
import yaml

from tests.support.dnsproxy import SilentServer
from tests.support.knot import KnotServer, make_zone_records
from tests.support.lab import LabDevice, lab_device, lab_fleet
from tests.support.tools import free_port
from tests.support.upload import ZONE, odd_hosts
from ts_isr.commands.upload_rules import main
from ts_isr.errors import Exit
from ts_isr.lock import run_lock

BLOCK = odd_hosts("198.18", 60)
OWN = odd_hosts("198.19", 25)  # the one device on its own block list
DEVICES = 20


@pytest.fixture(scope="module")
def knot(tmp_path_factory) -> Iterator[KnotServer]:
    server = KnotServer(tmp_path_factory.mktemp("knot"))
    server.add_zone(
        ZONE, make_zone_records(a={"block": BLOCK, "own": OWN}, apl={"allow": ["1:203.0.113.0/28"]})
    )
    server.start()
    yield server
    server.stop()


class Fleet:
    """An inventory of lab devices (and odd hosts), its threatstop.conf, and fleet runs against them."""

    def __init__(self, folder: Path, knot: KnotServer, devices: Sequence[LabDevice]) -> None:
        self.folder = folder
        self.devices: dict[str, LabDevice] = {}
        self.groups: dict[str, str] = {}
        self.hosts: dict[str, dict] = {}
        self.known_hosts_extra: list[str] = []
        self.untrusted: set[str] = set()
        for i, device in enumerate(devices):
            block, allow = f"tsb-{device.platform}-{i}", f"tsa-{device.platform}-{i}"
            data = {
                "object_group_block": block,
                "object_group_allow": allow,
                "site": "paris" if i % 2 else "lyon",
            }
            if i == 3:
                data["block_list"] = f"own.{ZONE}".rstrip(".")
            self.add(f"r{i:02}-{device.platform}", device, data)
        self.config = folder / "threatstop.conf"
        self.config.write_text(
            f"block_list=block.{ZONE.rstrip('.')}\nallow_list=allow.{ZONE.rstrip('.')}\ndns_server=127.0.0.1\n"
            f"port={knot.port}\nstate_dir={folder}/state\ntsoutput={folder}/logs/tsoutput.log\n"
            f"known_hosts={folder}/known_hosts\nssh_timeout=10\nmetrics_dir=off\nconnect_rate=50\n"
        )
        self.config.chmod(0o600)
        (folder / "nornir.yaml").write_text(
            "inventory:\n  plugin: SimpleInventory\n  options:\n    host_file: hosts.yaml\n"
            "    group_file: groups.yaml\n    defaults_file: defaults.yaml\n"
        )
        (folder / "groups.yaml").write_text("branches: {}\n")
        (folder / "defaults.yaml").write_text("username: tsadmin\n")

    def add(
        self, name: str, device: LabDevice, data: dict, password: str | None = None, trusted: bool = True
    ) -> None:
        """A host for ``device``; its block group is ``data``'s, else the default threatstop-block;
        ``trusted`` puts its key in known_hosts."""
        self.devices[name] = device
        if not trusted:
            self.untrusted.add(name)
        self.groups[name] = data.get("object_group_block", "threatstop-block")
        self.hosts[name] = {
            "hostname": device.host,
            "port": device.port,
            "password": password or device.password,
            "platform": f"cisco_{device.platform}",
            "groups": ["branches"],
            "connection_options": {"netmiko": {"extras": {"secret": device.secret}}},
            "data": data,
        }

    def write(self) -> None:
        (self.folder / "hosts.yaml").write_text(yaml.safe_dump(self.hosts))
        lines = [
            device.known_hosts_line()
            for name, device in self.devices.items()
            if device.state_dir.is_dir() and name not in self.untrusted
        ]
        (self.folder / "known_hosts").write_text("\n".join([*lines, *self.known_hosts_extra]) + "\n")

    def __call__(self, *flags: str, capsys) -> tuple[int, str]:
        self.write()
        capsys.readouterr()
        code = main(["--config", str(self.config), "--inventory", str(self.folder / "nornir.yaml"), *flags])
        return code, capsys.readouterr().out

    def members(self, name: str) -> set[str]:
        return set(self.devices[name].running().get(self.groups[name], []))

    def expected(self, name: str) -> set[str]:
        device = self.devices[name]
        prefix = "network-object " if device.platform == "asa" else ""
        hosts = OWN if name.startswith("r03-") else BLOCK
        return {f"{prefix}host {host}" for host in hosts}


@contextmanager
def fleet(tmp_path: Path, knot: KnotServer, count: int = DEVICES) -> Iterator[Fleet]:
    with lab_fleet(tmp_path, count) as devices:
        folder = tmp_path / "fleet"
        folder.mkdir()
        yield Fleet(folder, knot, devices)


def failed_lines(out: str) -> tuple[dict[str, str], str]:
    """The summary table's failed rows by host, and its line of totals."""
    lines = out.splitlines()
    table = lines[next(i for i, line in enumerate(lines) if line.startswith("host ")) :]
    return {line.split()[0]: line for line in table[1:-1] if " failed " in line}, table[-1]


def test_twenty_devices_converge_then_change_nothing_each_keeping_its_own_records(tmp_path, knot, capsys):
    with fleet(tmp_path, knot) as run:
        code, out = run("--workers", "8", "--detailed-exitcodes", capsys=capsys)
        assert code == Exit.CHANGED, out
        for name in run.devices:
            assert run.members(name) == run.expected(name), name
        assert "r03-asa" in run.devices and run.members("r03-asa") != run.members("r05-asa")
        state = run.folder / "state"
        records = sorted(path.name for path in state.glob("owned-*-tsb-*.txt"))
        assert len(records) == DEVICES, "one ownership record per device and group"
        own = (state / f"owned-127.0.0.1-{run.devices['r03-asa'].port}-tsb-asa-3.txt").read_text().split()
        assert sorted(own) == sorted(f"{host}/32" for host in OWN)
        for name in ("r00-ios", "r03-asa"):
            log = (run.folder / "logs" / "fleet" / f"{name}.log").read_text()
            assert (
                "Retrieving current members of" in log and "items are new in the ThreatSTOP block list" in log
            )
        fleet_log = (run.folder / "logs" / "tsoutput.log").read_text()
        assert re.search(r"\[INFO \] : r07-asa: Logging into remote device\.", fleet_log)

        seen = {name: len(device.commands()) for name, device in run.devices.items()}
        code, out = run("--workers", "8", "--detailed-exitcodes", capsys=capsys)
        assert code == Exit.UNCHANGED and out == "", "cron output stays quiet when nothing failed"
        for name, device in run.devices.items():
            assert "configure terminal" not in device.commands()[seen[name] :], name


def test_faults_fail_only_their_device_each_named_with_its_reason(tmp_path, knot, capsys):
    with ExitStack() as stack:
        run = stack.enter_context(fleet(tmp_path, knot, count=6))
        silent = stack.enter_context(SilentServer())
        dropping = stack.enter_context(lab_device(tmp_path, platform="ios", drop_after_lines=20))
        locked_out = stack.enter_context(lab_device(tmp_path, platform="asa"))
        rekeyed = stack.enter_context(lab_device(tmp_path, platform="ios"))
        with lab_device(tmp_path, platform="ios") as stranger:  # the trusted key is another device's
            run.known_hosts_extra.append(
                f"[127.0.0.1]:{rekeyed.port} {stranger.known_hosts_line().split(' ', 1)[1]}"
            )
        run.add("z-drops", dropping, {"object_group_block": "tsb-z"})
        run.add("z-locked-out", locked_out, {}, password="wrong-password")
        run.add(
            "z-silent",
            LabDevice("127.0.0.1", silent.port, "u", "silent-pw", "silent-en", "ios", tmp_path / "none"),
            {},
        )
        run.add("z-rekeyed", rekeyed, {}, trusted=False)
        code, out = run("--workers", "5", "--detailed-exitcodes", capsys=capsys)
        assert code == Exit.FAILED
        reasons, totals = failed_lines(out)
        assert set(reasons) == {"z-drops", "z-silent", "z-locked-out", "z-rekeyed"}, out
        assert (
            "failed (connection_lost)" in reasons["z-drops"] and "failed (unreachable)" in reasons["z-silent"]
        )
        assert (
            "failed (authentication)" in reasons["z-locked-out"]
            and "failed (host_key)" in reasons["z-rekeyed"]
        )
        assert "connection to 127.0.0.1 lost" in reasons["z-drops"]
        assert "timed out" in reasons["z-silent"], reasons["z-silent"]
        assert "authentication failed" in reasons["z-locked-out"]
        assert "host key changed" in reasons["z-rekeyed"]
        assert (
            totals
            == "10 devices: 6 changed, 0 unchanged, 4 failed (z-drops, z-locked-out, z-rekeyed, z-silent)"
        )
        for name in list(run.devices)[:6]:
            assert run.members(name) == run.expected(name), name

        code, out = run("--limit", "z-drops", "--detailed-exitcodes", capsys=capsys)
        assert code == Exit.CHANGED, out
        assert run.members("z-drops") == run.expected("z-drops"), "the next run repairs the dropped one"


def test_a_device_whose_log_cannot_be_opened_fails_alone_and_the_summary_stays(tmp_path, knot, capsys):
    """A link planted at a device's log, or a host name too long for a file name: that device fails
    in one line, untouched, and the table still names every device."""
    with ExitStack() as stack:
        run = stack.enter_context(fleet(tmp_path, knot, count=2))
        other = stack.enter_context(lab_device(tmp_path, platform="ios"))
        long_name = "r" * 260  # a file name holds 255 bytes at most
        run.add(long_name, other, {})
        logs = run.folder / "logs" / "fleet"
        logs.mkdir(parents=True, mode=0o700)
        elsewhere = tmp_path / "elsewhere.txt"
        (logs / "r01-asa.log").symlink_to(elsewhere)
        code, out = run("--detailed-exitcodes", capsys=capsys)
        assert code == Exit.FAILED, out
        assert "Traceback" not in out and "AttributeError" not in out, out
        reasons, totals = failed_lines(out)
        assert set(reasons) == {"r01-asa", long_name}, out
        assert "failed (log)" in reasons["r01-asa"] and "is a symbolic link" in reasons["r01-asa"]
        assert "failed (log)" in reasons[long_name] and "File name too long" in reasons[long_name]
        assert "shorter name" in reasons[long_name] and "not touched" in reasons[long_name]
        assert totals == f"3 devices: 1 changed, 0 unchanged, 2 failed (r01-asa, {long_name})"
        assert run.members("r00-ios") == run.expected("r00-ios")
        assert (logs / "r00-ios.log").is_file() and not elsewhere.exists()
        for name in ("r01-asa", long_name):
            assert "configure terminal" not in run.devices[name].commands(), name


def test_two_hosts_for_one_device_are_refused_and_the_others_run(tmp_path, knot, capsys):
    """Which of two hosts for one device is right is the admin's call: both are refused, each in
    one line naming the other; the rest of the fleet runs."""
    with ExitStack() as stack:
        run = stack.enter_context(fleet(tmp_path, knot, count=2))
        shared = stack.enter_context(lab_device(tmp_path, platform="ios"))
        run.add("dup-a", shared, {})
        run.add("dup-b", shared, {"object_group_block": "tsb-other"})
        code, out = run("--detailed-exitcodes", capsys=capsys)
        assert code == Exit.FAILED, out
        reasons, totals = failed_lines(out)
        assert set(reasons) == {"dup-a", "dup-b"}, out
        where = f"127.0.0.1:{shared.port}"
        assert "failed (inventory)" in reasons["dup-a"]
        assert f"host dup-a: is the same device {where} as host dup-b; keep one" in reasons["dup-a"]
        assert f"host dup-b: is the same device {where} as host dup-a; keep one" in reasons["dup-b"]
        assert totals == "4 devices: 2 changed, 0 unchanged, 2 failed (dup-a, dup-b)"
        for name in ("r00-ios", "r01-asa"):
            assert run.members(name) == run.expected(name), name
        assert "configure terminal" not in shared.commands()


def test_limit_filter_and_shards_select_what_they_say(tmp_path, knot, capsys):
    with fleet(tmp_path, knot, count=9) as run:
        code, out = run("--limit", "r00-ios,r04-ios", "--dry-run", capsys=capsys)
        assert code == Exit.UNCHANGED
        assert {line.split(":")[0] for line in out.splitlines() if ": + " in line} == {"r00-ios", "r04-ios"}
        code, out = run("--filter", "site=paris", "--dry-run", capsys=capsys)
        paris = {name for i, name in enumerate(run.devices) if i % 2}
        assert {line.split(":")[0] for line in out.splitlines() if ": + " in line} == paris
        code, out = run("--limit", "nosuch", capsys=capsys)
        assert code == Exit.CONFIG and "nosuch" in out
        assert all("configure terminal" not in device.commands() for device in run.devices.values())
        for shard in ("1/3", "2/3", "3/3"):
            code, out = run("--shard", shard, capsys=capsys)
            assert code == Exit.UNCHANGED, out
        sessions = {
            name: device.commands().count("configure terminal") for name, device in run.devices.items()
        }
        assert set(sessions.values()) == {1}, sessions
        for name in run.devices:
            assert run.members(name) == run.expected(name), name


def test_a_failed_fetch_changes_no_device_and_a_dry_run_only_prints(tmp_path, knot, capsys):
    with fleet(tmp_path, knot, count=4) as run:
        code, out = run("--dry-run", capsys=capsys)
        assert code == Exit.UNCHANGED
        for name in run.devices:
            first = OWN[0] if name.startswith("r03-") else BLOCK[0]
            assert f"{name}: + block {first}/32" in out
            assert run.members(name) == set() and "configure terminal" not in run.devices[name].commands()
        run.config.write_text(run.config.read_text().replace(f"port={knot.port}", f"port={free_port()}"))
        code, out = run(capsys=capsys)
        assert code == Exit.FAILED
        assert all(run.members(name) == set() for name in run.devices)
        assert "could not be fetched" in out and "the device was not touched" in out
        assert "failed (fetch)" in out, out


def test_a_second_fleet_run_exits_at_once_while_one_holds_the_fleet_lock(tmp_path, knot, capsys):
    with fleet(tmp_path, knot, count=2) as run:
        (run.folder / "state").mkdir(mode=0o700)
        with run_lock(run.folder / "state" / "upload_rules-fleet.lock", "test"):
            code, out = run(capsys=capsys)
        assert code == Exit.LOCKED and "another upload_rules fleet run" in out
        assert all("configure terminal" not in device.commands() for device in run.devices.values())
