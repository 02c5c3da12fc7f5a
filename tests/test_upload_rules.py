"""upload_rules end to end: real Knot DNS for the policy, the lab ISR/ASA over real SSH with netmiko.

Each test asserts what reached the device from the lab's own command log.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import paramiko
import pytest

from tests.support.asserts import assert_in_order
from tests.support.knot import KnotServer, make_zone_records
from tests.support.lab import lab_device
from tests.support.tools import free_port
from tests.support.upload import ROOT, ZONE, Run, expected_members, odd_hosts
from ts_isr.commands.upload_rules import main
from ts_isr.errors import DeviceError, Exit
from ts_isr.hostkeys import fingerprint
from ts_isr.lock import run_lock
from ts_isr.policy import Policy, parse_token
from ts_isr.targets.base import plan_changes
from ts_isr.targets.cisco import CiscoTarget, Device
from ts_isr.targets.cisco.ios import IosDialect

BLOCK1 = odd_hosts("198.18", 120)
BLOCK2 = odd_hosts("198.18", 120, start=6)  # 6 old ones gone, 6 new ones
BIG = odd_hosts("198.19", 1500)


@pytest.fixture(scope="module")
def knot(tmp_path_factory):
    server = KnotServer(tmp_path_factory.mktemp("knot"))
    records = make_zone_records(
        a={
            "block1": BLOCK1,
            "block2": BLOCK2,
            "small": BLOCK1[:3],
            "big": BIG,
            "onlyallowed": ["203.0.113.5"],
        },
        apl={"allow1": ["1:203.0.113.0/28"]},
    )
    server.add_zone(ZONE, records)
    server.start()
    yield server
    server.stop()


def test_a_run_that_changed_the_device_exits_0_unless_detailed_exit_codes_are_asked_for(
    tmp_path, knot, capsys
):
    with lab_device(tmp_path, platform="ios") as device:
        run = Run(tmp_path, knot, device, capsys)
        assert main(["--config", str(run.config)]) == 0
        assert run.configured() and run.group() == expected_members("ios", BLOCK1)
        run.write(block_list=f"small.{ZONE}", max_shrink="1.0")
        assert main(["--config", str(run.config)]) == 0
        assert run("--force")[0] == Exit.UNCHANGED


@pytest.mark.parametrize("platform", ["ios", "asa"])
def test_first_load_incremental_no_change_and_users_members(tmp_path, knot, capsys, platform):
    mine = [
        "description kept by the user \x1b[2J",  # the terminal escape reaches the log escaped
        "host 10.9.9.9" if platform == "ios" else "network-object host 10.9.9.9",
    ]
    with lab_device(tmp_path, platform=platform, preload={"threatstop-block": mine}) as device:
        run = Run(tmp_path, knot, device, capsys)
        assert run(allow_list=f"allow1.{ZONE}", write_memory="yes")[0] == Exit.CHANGED
        assert run.group() == set(mine) | expected_members(platform, BLOCK1)
        allowed = "203.0.113.0 255.255.255.240"
        assert run.group("threatstop-allow") == {
            allowed if platform == "ios" else f"network-object {allowed}"
        }
        assert device.startup() == device.running()
        log = run.log
        seed_order = [
            "Starting upload_rules",
            "Locking current execution instance.",
            "Previous configuration found ... Loading config data...",
            "Initializing data from configuration file.",
            "Verifying manditory parameters state.",
            "Getting block list block1.ts.test",
            "Initializing remote connection.",
            "Logging into remote device.",
            "Entering Privileged Mode.",
            'Retrieving current members of "threatstop-block" network group.',
            "0 items are still active in the ThreatSTOP block list.",
            "120 items are new in the ThreatSTOP block list.",
            "0 items are old and will be removed.",
            'Retrieving current members of "threatstop-allow" network group.',  # review 28: then its counts
            "0 items are still active in the ThreatSTOP allow list.",
            "1 items are new in the ThreatSTOP allow list.",
            "Adding new block addresses.",
            'Sent 120 configuration lines to "threatstop-block"',
            "Adding new allow addresses.",
            'Sent 1 configuration lines to "threatstop-allow"',
            'Verifying current members of "threatstop-block" network group.',
            "Leaving privileged mode.",
            "Logging off.",
            "Unlocking current execution instance.",
            "Finished on ",
        ]
        assert_in_order(log, seed_order)
        assert re.search(r"Finished on .* after \d\d:\d\d:\d\d$", log, re.MULTILINE), (
            "any duration on a slow box"
        )
        assert run.dir.joinpath("tsoutput.log").stat().st_size and device.password not in log
        assert "\x1b" not in log and "kept by the user \\x1b[2J" in log
        assert oct(run.dir.joinpath("tsoutput.log").stat().st_mode & 0o777) == "0o600"
        assert oct(run.dir.joinpath("state").stat().st_mode & 0o777) == "0o700"
        first = "network-object host 198.18.0.1" if platform == "asa" else "host 198.18.0.1"
        assert device.secret not in log and f"send: {first}" in log

        before = len(device.commands())
        assert run()[0] == Exit.UNCHANGED
        assert "configure terminal" not in device.commands()[before:], "\n".join(device.commands()[before:])

        before = len(device.commands())
        code, _ = run(block_list=f"block2.{ZONE}")
        assert code == Exit.CHANGED
        assert run.group() == set(mine) | expected_members(platform, BLOCK2)
        sent = device.commands()[before:]
        member_lines = [line for line in sent if "198.18." in line and not line.startswith("show")]
        assert len(member_lines) == 12, "only the difference is sent"
        adds = [
            i for i, line in enumerate(sent) if "198.18." in line and not line.startswith(("no ", "show"))
        ]
        removes = [i for i, line in enumerate(sent) if line.startswith("no ")]
        assert max(adds) < min(removes), "additions go before removals"
        log = run.log[len(log) :]
        assert (
            log.index("Adding new block addresses.")
            < log.index("Removing old block addresses...  Please wait.  It can take some time...")
            < log.index('Verifying current members of "threatstop-block"')
        )


def test_dry_run_and_print_policy_touch_nothing(tmp_path, knot, capsys):
    banner = "Authorized access only!\nR1(config)# is not a prompt\n"
    with lab_device(tmp_path, banner=banner) as device:
        run = Run(tmp_path, knot, device, capsys)
        code, out = run("--print-policy")
        assert code == Exit.UNCHANGED and device.commands() == []
        lines = out.splitlines()
        assert (
            lines[0] == "block 198.18.0.1/32" and len(lines) == 120 and lines == sorted(lines, key=_address)
        )
        code, out = run("--dry-run")
        assert code == Exit.CHANGED and "+ block 198.18.0.1/32" in out
        assert not run.configured() and run.group() == set()
        assert not list(run.dir.glob("state/owned-*")), "a dry run records no ownership"
        assert not list(run.dir.glob("state/last_good*")), "nor a last good policy (review item 10)"


def _address(line: str) -> tuple[int, ...]:
    return tuple(int(part) for part in line.split()[1].split("/")[0].split("."))


def test_empty_list_leaves_the_placeholder_and_shrink_guard(tmp_path, knot, capsys):
    with lab_device(tmp_path) as device:
        run = Run(tmp_path, knot, device, capsys)
        assert run(block_list=f"onlyallowed.{ZONE}", allow_list=f"allow1.{ZONE}")[0] == Exit.CHANGED
        assert run.group() == {"host 192.0.2.255"}, "an empty list leaves the documented placeholder"
        assert run(block_list=f"block1.{ZONE}")[0] == Exit.CHANGED
        assert run.group() == expected_members("ios", BLOCK1), "the placeholder goes when members come"

        before = len(device.commands())
        code, out = run(block_list=f"small.{ZONE}")
        assert code == Exit.FAILED and "--force" in out and out.count("\n") == 1
        assert "configure terminal" not in device.commands()[before:]
        assert run("--force")[0] == Exit.CHANGED
        assert run.group() == expected_members("ios", BLOCK1[:3])


def test_configs_of_two_devices_sharing_a_state_dir_keep_apart_policies(tmp_path, knot, capsys):
    """Setup gives every config the same state_dir: each device's last good policy is its own, so one
    device's big list is never the shrink guard of another's small one, nor its search answer."""
    shared = tmp_path / "shared-state"
    with lab_device(tmp_path) as first_device, lab_device(tmp_path) as second_device:
        big, small = Run(tmp_path, knot, first_device, capsys), Run(tmp_path, knot, second_device, capsys)
        assert big(state_dir=shared)[0] == Exit.CHANGED
        code, out = small(state_dir=shared, block_list=f"small.{ZONE}")
        assert code == Exit.CHANGED, out
        assert big("--search", BLOCK1[-1])[1].startswith(f"{BLOCK1[-1]} blocked by ")
        assert small("--search", BLOCK1[-1])[1].startswith(f"{BLOCK1[-1]} not listed")


def test_the_last_good_policy_of_an_earlier_version_keeps_guarding_after_the_upgrade(tmp_path, knot, capsys):
    """Before keyed files it was state/last_good_policy.txt: the device's first run takes it over."""
    with lab_device(tmp_path) as device:
        run = Run(tmp_path, knot, device, capsys)
        assert run()[0] == Exit.CHANGED
        (keyed,) = (run.dir / "state").glob("last_good_policy-*.txt")
        keyed.rename(keyed.with_name("last_good_policy.txt"))  # as the earlier version left it
        code, out = run(block_list=f"small.{ZONE}")
        assert code == Exit.FAILED and "--force" in out, "the shrink guard still compares with it"
        assert keyed.exists() and not keyed.with_name("last_good_policy.txt").exists()


def test_dns_failure_changes_nothing_on_the_device(tmp_path, knot, capsys):
    with lab_device(tmp_path) as device:
        run = Run(tmp_path, knot, device, capsys)
        code, out = run(port=free_port(), dns_timeout=1)
        assert (
            code == Exit.FAILED
            and out.splitlines()[-1].startswith("[ERROR] : ")
            and out.count("[ERROR]") == 1
        )
        assert device.commands() == []


def test_ssh_failures_are_one_clear_line(tmp_path, knot, capsys):
    with lab_device(tmp_path, platform="asa") as device:
        run = Run(tmp_path, knot, device, capsys)
        code, out = run(password="wrong-password")
        assert code == Exit.FAILED and "authentication failed" in out and out.count("\n") == 1
        run.write(password=device.password)

        other = paramiko.RSAKey.generate(1024)
        run.known_hosts.write_text(f"[{device.host}]:{device.port} {other.get_name()} {other.get_base64()}\n")
        code, out = run()
        assert code == Exit.FAILED and "host key changed" in out and out.count("\n") == 1
        changed = run.known_hosts.read_text()
        code, out = run("--trust-host-key")  # review items 3 and 20: cron must not switch checking off
        assert code == Exit.FAILED and out.count("\n") == 2, out
        assert (
            "HOST KEY HAS CHANGED" in out and fingerprint(other) in out and "run setup at a terminal" in out
        )
        assert run.known_hosts.read_text() == changed
        run.known_hosts.write_bytes(b"# caf\xe9\n" + device.known_hosts_line().encode() + b"\n")
        code, out = run()  # review item 13: not an internal error, nor "enable refused"
        assert code == Exit.FAILED and "not UTF-8" in out and out.count("\n") == 1, out
        run.known_hosts.write_text("")
        code, out = run()
        assert code == Exit.FAILED and "unknown" in out and "--trust-host-key" in out
        assert device.commands() == []
        assert run("--trust-host-key")[0] == Exit.CHANGED
        assert "127.0.0.1" in run.known_hosts.read_text()

        # The ASA asks again for a wrong enable password; netmiko waits for the prompt until ssh_timeout.
        code, out = run(enable_pw="not-the-secret", ssh_timeout=3)
        assert code == Exit.FAILED and "enable refused" in out and out.count("\n") == 1
        code, out = run(ssh_port=free_port())
        assert code == Exit.FAILED and "unreachable" in out


def test_dropped_connection_is_repaired_by_the_next_run(tmp_path, knot, capsys):
    with lab_device(tmp_path, drop_after_lines=40, line_cost_ms=0.2) as device:
        run = Run(tmp_path, knot, device, capsys)
        code, out = run()
        assert code == Exit.FAILED and "lost" in out and "next run" in out
        assert 0 < len(run.group()) < 120
        assert run()[0] == Exit.CHANGED
        assert run.group() == expected_members("ios", BLOCK1)


def test_small_input_buffer_loses_no_line(tmp_path, knot, capsys):
    with lab_device(tmp_path, input_buffer=600, line_cost_ms=0.3) as device:
        run = Run(tmp_path, knot, device, capsys)
        assert run(block_list=f"big.{ZONE}", max_policy_size=2000)[0] == Exit.CHANGED
        assert run.group() == expected_members("ios", BIG)
        assert "lines sent again" in run.log, "the buffer overflowed and the stream resent what was dropped"
        assert "sending the remainder" not in run.log


def test_device_errors_fail_loudly_after_one_retry(tmp_path, knot, capsys):
    with lab_device(tmp_path, max_members=50, old_ios=True) as device:
        run = Run(tmp_path, knot, device, capsys)
        code, out = run()
        assert code == Exit.FAILED
        assert "maximum of 50" in out and "70 missing" in out
        assert len(run.group()) == 50


def test_concurrent_run_exits_at_once_and_kill_9_never_blocks(tmp_path, knot, capsys):
    with lab_device(tmp_path, line_cost_ms=2) as device:
        run = Run(tmp_path, knot, device, capsys)
        with run_lock(run.dir / "state" / f"upload_rules-{device.host}-{device.port}.lock", "test"):
            started = time.monotonic()
            code, out = run()
            assert code == Exit.LOCKED and "holds the lock" in out and time.monotonic() - started < 10
        assert device.commands() == []

        run.write(block_list=f"big.{ZONE}", max_policy_size=2000)
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        child = subprocess.Popen(
            [sys.executable, "-m", "ts_isr.commands.upload_rules", "--config", str(run.config)],
            env=env,
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while sum("198.19." in line for line in device.commands()) < 50:
            assert time.monotonic() < deadline and child.poll() is None, "the push never started"
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
        child.wait()
        assert run()[0] == Exit.CHANGED
        assert run.group() == expected_members("ios", BIG)


def test_a_device_that_stops_answering_times_out_with_one_line(tmp_path, knot, capsys):
    with lab_device(tmp_path, hang_on="host 198.18.0.41") as device:
        run = Run(tmp_path, knot, device, capsys)
        code, out = run(ssh_timeout=3)
        assert code == Exit.FAILED and "timed out" in out and "next run repairs" in out
        assert out.count("\n") == 1


def test_exclusive_groups_remove_other_addresses_but_keep_the_rest(tmp_path, knot, capsys):
    mine = ["description kept by the user", "host 10.9.9.9", "group-object OTHER"]
    with lab_device(tmp_path, preload={"threatstop-block": mine}) as device:
        run = Run(tmp_path, knot, device, capsys)
        assert run(block_list=f"small.{ZONE}")[0] == Exit.CHANGED
        assert '1 addresses in "threatstop-block" were not put there by this tool and stay' in run.log
        assert "host 10.9.9.9" in run.group()
        assert run(exclusive_groups="yes", max_shrink="1.0")[0] == Exit.CHANGED
        assert run.group() == {mine[0], mine[2]} | expected_members("ios", BLOCK1[:3])


def test_ios_enable_refused_is_one_line(tmp_path, knot, capsys):
    with lab_device(tmp_path) as device:
        run = Run(tmp_path, knot, device, capsys)
        code, out = run(enable_pw="not-the-secret", ssh_timeout=5)
        assert code == Exit.FAILED and "enable refused" in out and out.count("\n") == 1
        assert "configure terminal" not in device.commands()


def test_a_full_group_is_never_emptied_and_the_retry_completes(tmp_path, knot, capsys):
    full = [f"host 192.0.2.{n}" for n in range(1, 51)]
    with lab_device(tmp_path, max_members=50, preload={"threatstop-block": full}) as device:
        run = Run(tmp_path, knot, device, capsys)
        code, out = run(block_list=f"small.{ZONE}", exclusive_groups="yes", max_shrink="1.0")
        assert code == Exit.CHANGED, out
        assert "so that it is never empty" in out and "sending the remainder once more" in out
        assert run.group() == expected_members("ios", BLOCK1[:3])


def test_unusable_state_dir_is_one_line(tmp_path, knot, capsys):
    with lab_device(tmp_path) as device:
        run = Run(tmp_path, knot, device, capsys)
        (run.dir / "blocker").write_text("")
        code, out = run(state_dir=str(run.dir / "blocker" / "state"))
        assert code == Exit.FAILED and "cannot use state_dir" in out and out.count("\n") == 1
        assert device.commands() == []


def test_a_users_range_survives_when_the_tool_drops_its_own_host(tmp_path, knot, capsys):
    """Review item 1: the user's range and the tool's host hold 10.0.0.1; the policy drops it."""
    mine = ["range 10.0.0.1 10.0.0.2", "host 10.0.0.1"]
    with lab_device(tmp_path, preload={"threatstop-block": mine}) as device:
        run = Run(tmp_path, knot, device, capsys)
        record = run.dir / "state" / f"owned-{device.host}-{device.port}-threatstop-block.txt"
        record.parent.mkdir()
        record.write_text("10.0.0.1/32\n")
        code, out = run(block_list=f"small.{ZONE}")
        assert code == Exit.CHANGED, out
        assert not [line for line in device.commands() if line.startswith("no ")], device.commands()
        assert run.group() == set(mine) | expected_members("ios", BLOCK1[:3])
        assert "10.0.0.1/32" in record.read_text(), "the tool still knows its own host line"
        assert run()[0] == Exit.UNCHANGED


def test_removing_allow_list_from_the_config_empties_the_allow_group(tmp_path, knot, capsys):
    """Review item 7: the old allowed addresses must not stay allowed for good."""
    with lab_device(tmp_path) as device:
        run = Run(tmp_path, knot, device, capsys)
        assert run(allow_list=f"allow1.{ZONE}")[0] == Exit.CHANGED
        assert run.group("threatstop-allow") == {"203.0.113.0 255.255.255.240"}
        assert run(allow_list=None)[0] == Exit.CHANGED
        assert run.group("threatstop-allow") == {"host 192.0.2.255"}, "only the placeholder is left"
        assert run.group() == expected_members("ios", BLOCK1)
        before = len(device.commands())
        assert run()[0] == Exit.UNCHANGED
        assert not any("threatstop-allow" in line for line in device.commands()[before:]), "no longer read"


def test_a_failure_in_configuration_mode_logs_off_at_once(tmp_path, capsys):
    """Review item 9: `end` before `disable`, not a wait of ssh_timeout for a prompt that never comes."""
    with lab_device(tmp_path) as device:
        known_hosts = tmp_path / "known_hosts"
        known_hosts.write_text(device.known_hosts_line() + "\n")
        login = Device(
            device.host, device.port, device.username, device.password, device.secret, known_hosts, 30
        )
        target = CiscoTarget(IosDialect(), login, {"block": "g" * 70})  # longer than the device allows
        target.connect()
        target.read()
        plan = plan_changes({"block": frozenset()}, Policy((parse_token("192.0.2.1"),), ()), frozenset({4}))
        with pytest.raises(DeviceError, match="refused"):
            target.apply(plan)
        started = time.monotonic()
        target.close()
        assert time.monotonic() - started < 15, "logged off without waiting for ssh_timeout"
        assert [line for line in device.commands() if line][-2:] == ["end", "disable"]


def test_a_known_hosts_another_user_can_change_is_refused_before_any_login(tmp_path, knot, capsys):
    """Whoever could write the trusted key could stand a fake device in between and collect the
    passwords: the file is trusted like the config."""
    with lab_device(tmp_path, platform="ios") as device:
        run = Run(tmp_path, knot, device, capsys)
        os.chown(run.known_hosts, 65534, 65534)
        code, out = run()
        assert code == Exit.FAILED
        assert f"[ERROR] : known_hosts {run.known_hosts} is refused: it is owned by uid 65534" in out
        assert device.commands() == [] and not run.group()
