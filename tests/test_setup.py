"""setup end to end: pexpect drives the real bin/setup in a pseudo-terminal against the lab device, a real
Knot DNS server holds the policy, and a real syslog-ng loads the syslog-ng file that setup wrote."""

from __future__ import annotations

import io
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pexpect
import pytest
from crontab import CronTab

from tests.support.asserts import assert_in_order
from tests.support.knot import KnotServer, make_zone_records
from tests.support.lab import LabDevice, lab_device
from tests.support.syslog_ng import SyslogNg, device_says
from tests.support.tools import free_port, require_tool
from ts_isr.config import read_values

SETUP = Path(__file__).resolve().parents[1] / "bin" / "setup"
ZONE = "ts-setup.test."
BLOCK = ["192.0.2.10", "192.0.2.20", "198.51.100.77"]  # no two aggregate into one network
TIMEOUT = 120


@dataclass
class World:
    """A lab device, a policy server and a scratch directory: everything setup talks to."""

    tmp: Path
    dev: LabDevice
    knot: KnotServer
    syslog_port: int

    @property
    def config(self) -> Path:
        return self.tmp / "conf" / "threatstop.conf"

    @property
    def root(self) -> Path:
        return self.tmp / "destdir"

    @property
    def logfile(self) -> Path:
        return self.tmp / "logs" / "device.log"

    def args(self, *extra: str) -> list[str]:
        """Flags that keep every system file and all traffic inside the test."""
        return [
            "--config",
            str(self.config),
            "--root",
            str(self.root),
            "--dns-server",
            "127.0.0.1",
            "--logfile",
            str(self.logfile),
            "--syslog-port",
            str(self.syslog_port),
            *extra,
        ]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    knot = KnotServer(tmp_path)
    knot.add_zone(ZONE, make_zone_records(a={"blk": BLOCK, "alw": ["203.0.113.9"]}))
    knot.start()
    try:
        with lab_device(tmp_path) as dev:
            yield World(tmp_path, dev, knot, free_port(socket.SOCK_DGRAM))
    finally:
        knot.stop()


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("TS_PASSWORD", "TS_ENABLE_PW", "TS_ISR_CONFIG")}


def interruptible() -> None:
    """Ctrl-C must reach setup even when the suite itself ignores SIGINT (a background job of a
    non-interactive shell does, and Python then never raises KeyboardInterrupt in the child)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def spawn(world: World, *extra: str) -> pexpect.spawn:
    child = pexpect.spawn(
        str(SETUP),
        world.args(*extra),
        cwd=str(world.tmp),
        env=clean_env(),
        encoding="utf-8",
        timeout=TIMEOUT,
        dimensions=(60, 250),
        preexec_fn=interruptible,
    )
    child.logfile_read = io.StringIO()
    return child


def answer(child: pexpect.spawn, question: str, offered: str, value: str) -> None:
    """Wait for ``question`` and its ``[offered] ==>`` line, then type ``value`` and Enter."""
    child.expect_exact(question)
    child.expect_exact(f"[{offered}] ==> ")
    child.sendline(value)


def finish(child: pexpect.spawn) -> tuple[int, str]:
    child.expect(pexpect.EOF)
    child.close()
    return child.exitstatus, child.logfile_read.getvalue()


def first_dialogue(child: pexpect.spawn, world: World) -> None:
    dev = world.dev
    child.expect_exact("Welcome to the ThreatSTOP setup for CISCO Controllers v3.")
    answer(child, "Please enter the block_list to use:", "", f"blk.{ZONE}")
    answer(child, "Please enter the allow_list to use:", "", f"alw.{ZONE}")
    answer(child, "Please enter the external IP address of the ISR device:", "", "198.51.100.9")
    answer(child, "Please enter port to use for DNS queries:", "53", str(world.knot.port))
    answer(child, "Please enter the Maximum Policy size of the ISR device:", "30000", "")
    answer(child, "Please enter the internal IP address of the ISR device:", "", dev.host)
    answer(child, "Please enter the SSH port of the ISR device:", "22", str(dev.port))
    answer(child, "Please enter the type of Cisco device", "ios", "")
    answer(child, "Please enter the IPv6 object group for the block list", "", "")
    answer(child, "Please enter the IPv6 object group for the allow list", "", "")
    answer(child, "Please enter the username used to SSH to the ISR:", "", dev.username)
    answer(child, "Please enter the SSH password (text is hidden):", "", dev.password)
    answer(child, "Please enter the ISR enable password (text is hidden):", "", dev.secret)


def test_first_setup_then_a_rerun_that_keeps_every_value(world: World) -> None:
    dev = world.dev
    control = world.tmp / "syslog-ng.ctl"  # where the test's own syslog-ng listens for reopen
    world.config.parent.mkdir(parents=True)
    world.config.write_text(f"log_reopen_command = syslog-ng-ctl reopen --control {control}\n")
    child = spawn(world)
    first_dialogue(child, world)
    child.expect_exact("Chosen configuration parameters")
    child.expect(r"SSH password +: \*{7}")
    child.expect(r"ISR enable password +: \*{7}")
    child.expect_exact("Apply settings Y/N?: [Y] ")
    child.sendline("")
    child.expect_exact("presents this SSH host key: ssh-ed25519 SHA256:")
    child.expect_exact("Trust this host key Y/N?: [Y] ")
    child.sendline("")
    child.expect_exact("Login and enable OK.")
    child.expect_exact("Running upload rules script for the first time...")
    child.expect_exact("execution output will be saved into tsoutput.log")
    status, transcript = finish(child)
    assert status == 0, transcript
    assert "Upload rules process completed..." in transcript
    assert dev.password not in transcript and dev.secret not in transcript, "passwords are never echoed"

    # The config: every answer, private.
    values = read_values(world.config)
    assert values["block_list"] == f"blk.{ZONE}" and values["port"] == str(world.knot.port)
    assert values["password"] == dev.password and values["ssh_port"] == str(dev.port)
    assert oct(world.config.stat().st_mode & 0o777) == "0o600"
    # The host key, as OpenSSH writes it; the first run used it (strict) and filled the group.
    assert (world.config.parent / "known_hosts").read_text().strip() == dev.known_hosts_line()
    members = dev.running()["threatstop-block"]
    assert {f"host {address}" for address in BLOCK} <= set(members)
    tsoutput = (world.config.parent / "tsoutput.log").read_text()
    assert "Starting upload_rules" in tsoutput and dev.password not in tsoutput
    # cron, read back with python-crontab.
    cron = CronTab(tabfile=str(world.root / "crontab"))
    upload = list(cron.find_comment(f"ts_isr upload_rules {world.config}"))
    logs = list(cron.find_comment(f"ts_isr loguploadclient {world.config}"))
    assert [str(job.slices) for job in upload] == ["23 */2 * * *"]
    assert len(logs) == 1 and logs[0].slices.is_valid()
    assert f"--config {world.config}" in upload[0].command

    before = {p: p.read_text() for p in (world.root / "etc").rglob("*") if p.is_file()}
    crontab_before = (world.root / "crontab").read_text()

    # Re-run: every previous value offered, passwords as [******]; Enter everywhere.
    child = spawn(world)
    answer(child, "Please enter the block_list to use:", f"blk.{ZONE}", "")
    answer(child, "Please enter the allow_list to use:", f"alw.{ZONE}", "")
    answer(child, "Please enter the external IP address of the ISR device:", "198.51.100.9", "")
    answer(child, "Please enter port to use for DNS queries:", str(world.knot.port), "")
    answer(child, "Please enter the Maximum Policy size of the ISR device:", "30000", "")
    answer(child, "Please enter the internal IP address of the ISR device:", dev.host, "")
    answer(child, "Please enter the SSH port of the ISR device:", str(dev.port), "")
    answer(child, "Please enter the type of Cisco device", "ios", "")
    answer(child, "Please enter the IPv6 object group for the block list", "", "")
    answer(child, "Please enter the IPv6 object group for the allow list", "", "")
    answer(child, "Please enter the username used to SSH to the ISR:", dev.username, "")
    answer(child, "Please enter the SSH password (text is hidden):", "******", "")
    answer(child, "Please enter the ISR enable password (text is hidden):", "******", "")
    child.expect_exact("Apply settings Y/N?: [Y] ")
    child.sendline("y")
    child.expect_exact("is already trusted")
    status, transcript = finish(child)
    assert status == 0, transcript
    assert "Trust this host key" not in transcript
    assert read_values(world.config) == values, "Enter kept every previous value"
    after = {p: p.read_text() for p in (world.root / "etc").rglob("*") if p.is_file()}
    assert after == before, "the same system files, no second syslog-ng block"
    assert (world.root / "crontab").read_text() == crontab_before, "no second cron line"
    snippet = world.root / "etc/syslog-ng/conf.d/threatstop.conf"
    assert snippet.read_text().count("source s_ts_isr_device") == 1

    # The syslog-ng file setup wrote, loaded by a real syslog-ng, files the device's syslog;
    # the logrotate file setup wrote rotates it and makes that syslog-ng reopen.
    daemon = SyslogNg(world.tmp, snippet)
    assert daemon.control == control
    daemon.start()
    try:
        marker = f"%SEC-6-IPACCESSLOGP: list threatstop-block denied udp {time.monotonic_ns()}"
        device_says(world.syslog_port, marker, world.logfile)
        rotated = subprocess.run(
            [
                require_tool("logrotate"),
                "-f",
                "-s",
                str(world.tmp / "logrotate.state"),
                str(world.root / "etc/logrotate.d/threatstop"),
            ],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
        assert rotated.returncode == 0, rotated.stderr
        assert marker in world.logfile.with_name("device.log.1").read_text()
        assert (world.config.parent / "tsoutput.log.1").exists()
        device_says(world.syslog_port, f"{marker} after rotation", world.logfile)
    finally:
        daemon.stop()


def test_bad_values_are_refused_with_the_reason_and_asked_again_then_ctrl_c_saves_nothing(
    world: World,
) -> None:
    child = spawn(world)
    answer(child, "Please enter the block_list to use:", "", "not a list!")
    child.expect_exact("Invalid block_list: must be a DNS name")
    answer(child, "Please enter the block_list to use:", "", f"blk.{ZONE}")
    answer(child, "Please enter the allow_list to use:", "", "")
    answer(child, "Please enter the external IP address of the ISR device:", "", "300.1.1.1")
    child.expect_exact("Invalid external_ip: must be an IP address")
    answer(child, "Please enter the external IP address of the ISR device:", "", "")
    answer(child, "Please enter port to use for DNS queries:", "53", "70000")
    child.expect_exact("Invalid port: must be a whole number from 1 to 65535")
    answer(child, "Please enter port to use for DNS queries:", "53", "")
    answer(child, "Please enter the Maximum Policy size of the ISR device:", "30000", "lots")
    child.expect_exact("Invalid max_policy_size")
    answer(child, "Please enter the Maximum Policy size of the ISR device:", "30000", "")
    answer(child, "Please enter the internal IP address of the ISR device:", "", "")
    child.expect_exact("Invalid device: a value is required")
    answer(child, "Please enter the internal IP address of the ISR device:", "", world.dev.host)
    answer(child, "Please enter the SSH port of the ISR device:", "22", "")
    answer(child, "Please enter the type of Cisco device", "ios", "pix")
    child.expect_exact("Invalid personality: must be one of: ios, asa")
    answer(child, "Please enter the type of Cisco device", "ios", "asa")
    answer(child, "Please enter the username used to SSH to the ISR:", "", "two words")
    child.expect_exact("Invalid username")
    answer(child, "Please enter the username used to SSH to the ISR:", "", "admin")
    child.expect_exact("Please enter the SSH password (text is hidden):")
    child.expect_exact("[] ==> ")
    child.send("half-typed-secret")
    child.sendintr()
    status, transcript = finish(child)
    assert status == 1
    assert "setup interrupted; nothing was saved or changed" in transcript
    assert "half-typed-secret" not in transcript
    assert not world.config.exists() and not world.root.exists()
    assert not world.config.parent.exists() or not any(world.config.parent.iterdir()), "no temporary file"


def test_no_or_ctrl_c_at_apply_leaves_the_previous_config_byte_for_byte(world: World) -> None:
    world.config.parent.mkdir(parents=True)
    world.config.write_text(f"# mine\nblock_list = old.{ZONE}\ndevice = 192.0.2.1\nusername = u\n")
    original = world.config.read_bytes()
    for last_word in ("n", None):
        child = spawn(world)
        answer(child, "Please enter the block_list to use:", f"old.{ZONE}", f"new.{ZONE}")
        for _ in range(12):  # the other questions, IOS IPv6 groups included
            child.expect_exact("==> ")
            child.sendline("")
        child.expect_exact("Apply settings Y/N?: [Y] ")
        if last_word is None:
            child.sendintr()
        else:
            child.sendline(last_word)
        status, transcript = finish(child)
        if last_word is None:
            assert status == 1 and "setup interrupted; nothing was saved or changed" in transcript
        else:
            assert status == 0 and "Settings not applied; nothing was changed." in transcript
        assert world.config.read_bytes() == original
    assert sorted(p.name for p in world.config.parent.iterdir()) == ["threatstop.conf"]


def run_silent(world: World, *extra: str, stdin: str = "", env: dict[str, str] | None = None):
    return subprocess.run(
        [str(SETUP), *world.args(*extra)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        cwd=world.tmp,
        env=env or clean_env(),
    )


def silent_flags(world: World) -> list[str]:
    return [
        "--block-list",
        f"blk.{ZONE}",
        "--port",
        str(world.knot.port),
        "--device",
        world.dev.host,
        "--ssh-port",
        str(world.dev.port),
        "--username",
        world.dev.username,
    ]


def test_silent_setup_takes_passwords_from_stdin_never_argv_and_says_nothing(world: World) -> None:
    dev = world.dev
    refused = run_silent(
        world,
        "--silent",
        "--no-first-run",
        *silent_flags(world),
        "--password-file",
        "-",
        stdin=f"{dev.password}\n{dev.secret}\n",
    )
    assert refused.returncode == 1
    assert refused.stdout.strip().splitlines()[-1].startswith("[ERROR] : the device's SSH host key SHA256:")
    assert "--trust-host-key" in refused.stdout and not (world.config.parent / "known_hosts").exists()

    done = run_silent(
        world,
        "--silent",
        "--trust-host-key",
        *silent_flags(world),
        "--password-file",
        "-",
        stdin=f"{dev.password}\n{dev.secret}\n",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout == "" and done.stderr == "", "--silent says nothing when all is well"
    said = (world.config.parent / "tsoutput.log").read_text()
    seed_order = [  # review item 29: the seed's access lines, in the seed's order
        f"Verifying network access to CISCO device {dev.host}",
        "Establishing ssh connection",
        "Trusted the device's SSH host key",
        "Login and enable OK.",
        "Network access OK.",
        "Prepare logrotation configuration.",
        "Setting up cron entries for automatic execution.",
        "Run metrics for monitoring: ",  # where node_exporter finds them, or off
        "Running upload rules script for the first time...",
    ]
    assert_in_order(said, seed_order)
    assert read_values(world.config)["enable_pw"] == dev.secret
    assert "host 192.0.2.10" in dev.running()["threatstop-block"]

    # --take-defaults: no questions, the summary, a countdown; the values come from the config.
    env = clean_env() | {"TS_PASSWORD": dev.password}
    again = run_silent(world, "--take-defaults", "--countdown", "1", "--no-first-run", env=env)
    assert again.returncode == 0, again.stdout
    assert (
        "Chosen configuration parameters" in again.stdout and "Applying these settings in 1 s" in again.stdout
    )
    assert dev.password not in again.stdout + again.stderr
    assert len(re.findall("ts_isr upload_rules", (world.root / "crontab").read_text())) == 1


def test_without_a_terminal_or_required_values_it_stops_with_one_line(world: World) -> None:
    no_tty = run_silent(world)
    assert no_tty.returncode == 2
    assert no_tty.stdout.strip() == (
        "[ERROR] : setup asks questions and needs a terminal; without one pass --silent or --take-defaults"
    )
    missing = run_silent(world, "--silent", "--block-list", f"blk.{ZONE}")
    assert missing.returncode == 2
    [line] = missing.stdout.strip().splitlines()
    assert "device '': a value is required (set it with --device)" in line
    assert "username '': a value is required (set it with --username)" in line
    assert not world.config.exists()
    closed = free_port()
    unreachable = run_silent(
        world,
        "--silent",
        "--block-list",
        f"blk.{ZONE}",
        "--device",
        "127.0.0.1",
        "--ssh-port",
        str(closed),
        "--username",
        "u",
    )
    assert unreachable.returncode == 1
    assert (
        unreachable.stdout.strip()
        .splitlines()[-1]
        .startswith(f"[ERROR] : cannot reach the device's SSH port 127.0.0.1:{closed}")
    )
    assert read_values(world.config)["ssh_port"] == str(closed), "saved: the re-run offers the values again"
    bad_flag = run_silent(world, "--silent", "--port", "0")
    assert (
        bad_flag.returncode == 2
        and "argument --port: must be a whole number from 1 to 65535" in bad_flag.stderr
    )


def test_wrong_password_wrong_enable_and_changed_host_key_each_say_what_to_do(world: World) -> None:
    dev = world.dev
    base = ["--silent", "--trust-host-key", "--no-first-run", *silent_flags(world), "--password-file", "-"]
    wrong_login = run_silent(world, *base, stdin=f"not-{dev.password}\n{dev.secret}\n")
    assert wrong_login.returncode == 1
    assert wrong_login.stdout.strip().splitlines()[-1] == (
        f"[ERROR] : authentication failed for user {dev.username} on {dev.host}:{dev.port}; "
        "check username and password in the config (or run setup again)"
    )
    wrong_enable = run_silent(world, *base, stdin=f"{dev.password}\nnot-{dev.secret}\n")
    assert wrong_enable.returncode == 1
    [enable_line] = [line for line in wrong_enable.stdout.splitlines() if line.startswith("[ERROR]")]
    assert enable_line.startswith(f"[ERROR] : enable refused on {dev.host}")
    assert "check enable_pw" in enable_line
    assert not (world.root / "crontab").exists(), "nothing installed after a failed check"

    known_hosts = world.config.parent / "known_hosts"
    other = dev.known_hosts_line().split()
    other[2] = "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
    known_hosts.write_text(" ".join(other) + "\n")
    child = spawn(world)
    for _ in range(13):  # every question, IOS IPv6 groups included
        child.expect_exact("==> ")
        child.sendline("")
    child.expect_exact("Apply settings Y/N?: [Y] ")
    child.sendline("")
    child.expect_exact("THE DEVICE'S SSH HOST KEY HAS CHANGED")
    child.expect_exact("Trust this host key Y/N?: [N] ")
    child.sendline("")
    status, transcript = finish(child)
    assert status == 1
    assert "[ERROR] : the device's SSH host key was not trusted; nothing was installed" in transcript
    assert known_hosts.read_text() == " ".join(other) + "\n"


def test_an_asa_is_set_up_silently_with_passwords_from_the_environment(tmp_path: Path) -> None:
    knot = KnotServer(tmp_path)
    knot.add_zone(ZONE, make_zone_records(a={"blk": BLOCK}))
    knot.start()
    try:
        with lab_device(tmp_path, platform="asa") as dev:
            world = World(tmp_path, dev, knot, free_port(socket.SOCK_DGRAM))
            world.config.parent.mkdir(parents=True)
            world.config.write_text("# edited by hand\nssh_timeout = 10\nmax_shrink = 0.4\n")
            env = clean_env() | {"TS_PASSWORD": dev.password, "TS_ENABLE_PW": dev.secret}
            done = run_silent(
                world, "--silent", "--trust-host-key", "--personality", "asa", *silent_flags(world), env=env
            )
            assert done.returncode == 0, done.stdout + done.stderr
            assert "network-object host 198.51.100.77" in dev.running()["threatstop-block"]
            values = read_values(world.config)
            assert values["personality"] == "asa"
            assert (values["ssh_timeout"], values["max_shrink"]) == ("10", "0.4"), "unasked keys stay"
            assert "# edited by hand" in world.config.read_text()
    finally:
        knot.stop()


def probe(folder: Path, tool: str, records: Path) -> None:
    """``tool`` first on PATH: records the environment it was given, then runs the real one."""
    real = require_tool(tool)
    folder.mkdir(exist_ok=True)
    script = folder / tool
    script.write_text(f'#!/bin/sh\nenv > "{records}/{tool}.$$"\nexec {real} "$@"\n')
    script.chmod(0o755)


def test_no_child_of_setup_gets_a_password_or_any_other_secret(world: World) -> None:
    """Issue 16: setup passed TS_PASSWORD and TS_ENABLE_PW on to logrotate and syslog-ng."""
    dev = world.dev
    probes, records = world.tmp / "probes", world.tmp / "records"
    records.mkdir()
    for tool in ("logrotate", "syslog-ng"):
        probe(probes, tool, records)
    token = "tok-" + os.urandom(8).hex()
    env = clean_env() | {
        "TS_PASSWORD": dev.password,
        "TS_ENABLE_PW": dev.secret,
        "DEPLOY_API_TOKEN": token,  # any other secret of the caller's
        "PATH": f"{probes}:{os.environ['PATH']}",
    }
    done = run_silent(world, "--silent", "--trust-host-key", *silent_flags(world), env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    seen = {path.name.split(".")[0]: path.read_text() for path in records.iterdir()}
    assert set(seen) == {"logrotate", "syslog-ng"}, "each tool ran through its probe"
    for tool, environment in seen.items():
        for secret in (dev.password, dev.secret, token):
            assert secret not in environment, f"{tool} received a secret"
        names = {line.split("=", 1)[0] for line in environment.splitlines() if "=" in line}
        assert "TS_PASSWORD" not in names and "PATH" in names, names
    assert "host 192.0.2.10" in dev.running()["threatstop-block"], "the first run still worked"
