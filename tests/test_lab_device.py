"""The lab device over real SSH, driven by the unmodified netmiko: sessions, configuration, knobs, faults."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime

import asyncssh
import paramiko
import pytest
from netmiko import ConnectHandler
from netmiko.exceptions import NetmikoAuthenticationException, NetmikoTimeoutException, ReadTimeout
from ntc_templates.parse import parse_output

from tests.support.lab import lab_device
from ts_isr.lab.syslog import KINDS, numbered_events, render

IOS_LINES = [
    "object-group network TS_BLOCK",
    "description ThreatSTOP block list",
    "host 192.0.2.1",
    "198.51.100.0 255.255.255.0",
    "range 203.0.113.10 203.0.113.20",
]
ASA_LINES = [
    "object-group network TS_BLOCK",
    "network-object host 192.0.2.1",
    "network-object 198.51.100.0 255.255.255.0",
    "network-object 192.0.2.9 255.255.255.255",
]


def connect(device, **extra):
    return ConnectHandler(**device.netmiko_params(), conn_timeout=20, auth_timeout=20, **extra)


@pytest.mark.parametrize("cmd_verify", [True, False])
def test_ios_session_configures_reads_back_and_saves(tmp_path, cmd_verify):
    with lab_device(tmp_path, "ios") as device:
        conn = connect(device)
        assert conn.find_prompt() == "ISR4331>"
        conn.enable()
        assert conn.find_prompt() == "ISR4331#"
        output = conn.send_config_set(IOS_LINES, cmd_verify=cmd_verify)
        assert "Invalid" not in output
        assert conn.check_config_mode() is False
        shown = conn.send_command("show object-group name TS_BLOCK")
        assert shown.splitlines() == [
            "Network object group TS_BLOCK",
            " Description ThreatSTOP block list",
            " host 192.0.2.1",
            " 198.51.100.0 255.255.255.0",
            " range 203.0.113.10 203.0.113.20",
        ]
        parsed = parse_output(platform="cisco_ios", command="show object-group", data=shown)
        assert [row["host"] for row in parsed if row["host"]] == ["192.0.2.1"]
        assert [(row["network"], row["netmask"]) for row in parsed if row["network"]] == [
            ("198.51.100.0", "255.255.255.0")
        ]
        assert device.startup() == {}
        conn.save_config()
        conn.disconnect()
        members = IOS_LINES[1:]
        assert device.running() == {"TS_BLOCK": members}
        assert device.startup() == {"TS_BLOCK": members}
        commands = [line for line in device.commands() if line]  # netmiko sends bare returns for prompts
        assert "********" in commands and device.secret not in commands
        assert commands[commands.index("configure terminal") + 1 :][: len(IOS_LINES)] == IOS_LINES


@pytest.mark.parametrize("cmd_verify", [True, False])
def test_asa_session_configures_reads_back_and_saves(tmp_path, cmd_verify):
    with lab_device(tmp_path, "asa") as device:
        conn = connect(device)
        assert conn.find_prompt() == "ASA5506#"  # the cisco_asa driver enables by itself
        output = conn.send_config_set([*ASA_LINES, "network-object host 192.0.2.1"], cmd_verify=cmd_verify)
        assert "object already exists" in output
        shown = conn.send_command("show running-config object-group id TS_BLOCK")
        parsed = parse_output(
            platform="cisco_asa", command="show running-config object-group network", data=shown
        )
        assert [(row["name"], row["host"], row["network"], row["netmask"]) for row in parsed] == [
            ("TS_BLOCK", "192.0.2.1", "", ""),
            ("TS_BLOCK", "", "198.51.100.0", "255.255.255.0"),
            ("TS_BLOCK", "", "192.0.2.9", "255.255.255.255"),
        ]
        removed = conn.send_config_set(
            [
                "object-group network TS_BLOCK",
                "no network-object host 192.0.2.1",
                "no network-object host 192.0.2.1",
            ]
        )
        assert "does not exist in this group" in removed
        conn.save_config()
        conn.disconnect()
        assert device.running() == {"TS_BLOCK": ASA_LINES[2:]}
        assert device.startup() == device.running()
        assert "show curpriv" in device.commands() and "terminal pager 0" in device.commands()


def test_section_output_and_version(tmp_path):
    with lab_device(tmp_path, "ios", preload={"A": ["host 192.0.2.1"], "B": ["any"]}) as device:
        conn = connect(device)
        conn.enable()
        section = conn.send_command("show running-config | section object-group")
        assert section.splitlines() == [
            "object-group network A",
            " host 192.0.2.1",
            "object-group network B",
            " any",
        ]
        assert "Cisco IOS XE Software" in conn.send_command("show version")
        conn.disconnect()


def test_old_ios_answers_name_keyword_with_invalid_input(tmp_path):
    with lab_device(tmp_path, "ios", old_ios=True, preload={"TS": ["host 192.0.2.1"]}) as device:
        conn = connect(device)
        conn.enable()
        assert "% Invalid input detected at '^' marker." in conn.send_command("show object-group name TS")
        assert conn.send_command("show object-group TS").splitlines() == [
            "Network object group TS",
            " host 192.0.2.1",
        ]
        conn.disconnect()


def test_wrong_enable_secret_is_refused(tmp_path):
    with lab_device(tmp_path, "ios") as device:
        conn = ConnectHandler(**{**device.netmiko_params(), "secret": "wrong"}, conn_timeout=20)
        with pytest.raises(ValueError, match="enable mode"):
            conn.enable()
        assert conn.find_prompt() == "ISR4331>"
        conn.disconnect()


def test_wrong_password_and_refused_login(tmp_path):
    with lab_device(tmp_path, "ios") as device, pytest.raises(NetmikoAuthenticationException):
        ConnectHandler(**{**device.netmiko_params(), "password": "wrong"}, conn_timeout=20)
    with (
        lab_device(tmp_path, "ios", refuse_login=True) as device,
        pytest.raises(NetmikoAuthenticationException),
    ):
        connect(device)


def test_public_key_login(tmp_path):
    private = asyncssh.generate_private_key("ssh-ed25519")
    key_file = tmp_path / "id_ed25519"
    key_file.write_bytes(private.export_private_key())
    key_file.chmod(0o600)
    (tmp_path / "authorized_keys").write_bytes(private.export_public_key())
    with lab_device(tmp_path, "ios", authorized_keys=tmp_path / "authorized_keys") as device:
        params = {**device.netmiko_params(), "password": None, "use_keys": True, "key_file": str(key_file)}
        conn = ConnectHandler(**params, allow_agent=False, conn_timeout=20)
        assert conn.find_prompt() == "ISR4331>"
        conn.disconnect()


def test_host_key_is_pinned_and_a_different_key_is_refused(tmp_path):
    known = tmp_path / "known_hosts"
    strict = {
        "ssh_strict": True,
        "system_host_keys": False,
        "alt_host_keys": True,
        "alt_key_file": str(known),
    }
    with lab_device(tmp_path, "ios") as device, lab_device(tmp_path, "ios") as impostor:
        assert device.known_hosts_line() != impostor.known_hosts_line()
        known.write_text(device.known_hosts_line() + "\n")
        connect(device, **strict).disconnect()
        # the impostor answers on a port whose pinned key is the first device's
        pinned = device.known_hosts_line().split(maxsplit=1)[1]
        known.write_text(f"[{impostor.host}]:{impostor.port} {pinned}\n")
        with pytest.raises((NetmikoAuthenticationException, NetmikoTimeoutException, paramiko.SSHException)):
            connect(impostor, **strict)


def test_state_and_host_key_survive_a_restart_on_the_same_state_dir(tmp_path):
    with lab_device(tmp_path, "ios") as device:
        conn = connect(device)
        conn.enable()
        conn.send_config_set(["object-group network KEEP", "host 192.0.2.7"])
        conn.disconnect()
    assert device.running() == {"KEEP": ["host 192.0.2.7"]}
    with lab_device(tmp_path, "ios", state_dir=device.state_dir) as again:
        assert again.known_hosts_line().split()[1:] == device.known_hosts_line().split()[1:]
        conn = connect(again)
        conn.enable()
        assert conn.send_command("show object-group name KEEP").splitlines()[1] == " host 192.0.2.7"
        conn.disconnect()
    assert again.commands().count("configure terminal") == 1  # commands.log is appended, never rewritten


def test_drop_after_lines_cuts_the_connection_mid_push(tmp_path):
    with lab_device(tmp_path, "ios", drop_after_lines=3) as device:
        conn = connect(device)
        conn.enable()
        lines = ["object-group network CUT", *(f"host 192.0.2.{i}" for i in range(1, 10))]
        with pytest.raises((OSError, EOFError, NetmikoTimeoutException, ReadTimeout, ValueError)):
            conn.send_config_set(lines, read_timeout=10)
        # only the lines before the cut reached the running configuration
        deadline = time.monotonic() + 10
        while (
            device.running() != {"CUT": ["host 192.0.2.1", "host 192.0.2.2"]} and time.monotonic() < deadline
        ):
            time.sleep(0.05)
        assert device.running() == {"CUT": ["host 192.0.2.1", "host 192.0.2.2"]}


def test_hang_on_command_never_answers(tmp_path):
    with lab_device(tmp_path, "ios", hang_on="show object-group") as device:
        shell = Shell(device)
        shell.send("show version\n")
        assert b"Cisco IOS XE Software" in shell.read_until(b"ISR4331>")
        shell.send("show object-group name X\n")
        assert shell.read_until(b"\r\n") == b"show object-group name X\r\n"  # echoed, then nothing
        shell.send("\n")
        assert shell.read_quiet(1.0) == b""
        shell.close()


def test_banner_and_odd_prompt(tmp_path):
    banner = "*** Authorized access only ***"
    with lab_device(tmp_path, "ios", banner=banner) as device:
        log = tmp_path / "session.log"
        conn = connect(device, session_log=str(log))
        assert conn.find_prompt() == "ISR4331>"
        conn.disconnect()
        assert banner in log.read_text()
    with lab_device(tmp_path, "ios", odd_prompt=True) as device:
        conn = connect(device)
        assert conn.find_prompt() == "rommon 1 >"
        with pytest.raises(ValueError):
            conn.enable()
        conn.disconnect()


class Shell:
    """A bare interactive channel, for what netmiko hides: timing, echo and dropped input."""

    def __init__(self, device):
        self.client = paramiko.SSHClient()
        self.client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        self.client.connect(device.host, device.port, device.username, device.password, look_for_keys=False)
        self.channel = self.client.invoke_shell()
        self.channel.settimeout(30)
        self.read_until(b">")

    def read_until(self, marker: bytes) -> bytes:
        data = b""
        while marker not in data:
            data += self.channel.recv(65536)
        return data

    def read_quiet(self, silence: float) -> bytes:
        """Everything until the device has said nothing for ``silence`` seconds."""
        data = b""
        self.channel.settimeout(silence)
        try:
            while chunk := self.channel.recv(65536):
                data += chunk
        except TimeoutError:
            pass
        self.channel.settimeout(30)
        return data

    def send(self, text: str) -> None:
        self.channel.sendall(text.encode())

    def close(self) -> None:
        self.client.close()


def test_line_cost_delays_echo_and_prompt(tmp_path):
    with lab_device(tmp_path, "ios", line_cost_ms=100) as device:
        shell = Shell(device)
        started = time.monotonic()
        shell.send("terminal length 0\n")
        echoed = shell.read_until(b"ISR4331>")
        assert b"terminal length 0\r\n" in echoed
        assert time.monotonic() - started >= 0.1
        started = time.monotonic()
        shell.send("\n" * 5)
        for _ in range(5):
            shell.read_until(b"ISR4331>")
        assert time.monotonic() - started >= 0.5
        shell.close()


def test_rtt_delays_every_answer(tmp_path):
    with lab_device(tmp_path, "ios", rtt_ms=300) as device:
        shell = Shell(device)
        started = time.monotonic()
        shell.send("\n")
        shell.read_until(b"ISR4331>")
        assert time.monotonic() - started >= 0.3
        shell.close()


def test_input_buffer_drops_lines_sent_faster_than_parsed(tmp_path):
    lines = [f"host 192.0.2.{i}" for i in range(1, 101)]
    with lab_device(tmp_path, "ios", line_cost_ms=2, input_buffer=256) as device:
        shell = Shell(device)
        shell.send(f"enable\n{device.secret}\nconfigure terminal\nobject-group network FAST\n")
        shell.read_until(b"(config-network-group)#")
        shell.send("".join(line + "\n" for line in lines) + "end\n")
        assert shell.read_quiet(0.5)
        shell.close()
        blind = device.running()["FAST"]
        assert 0 < len(blind) < len(lines)
        assert set(blind) <= set(lines)
        # netmiko with cmd_verify waits for each echo: nothing is lost
        conn = connect(device)
        conn.enable()
        conn.send_config_set(["object-group network SAFE", *lines])
        conn.disconnect()
        assert device.running()["SAFE"] == lines


def test_max_members_is_enforced_with_a_device_error(tmp_path):
    with lab_device(tmp_path, "ios", max_members=3) as device:
        conn = connect(device)
        conn.enable()
        output = conn.send_config_set(
            ["object-group network SMALL", *(f"host 192.0.2.{i}" for i in range(1, 6))]
        )
        assert output.count("has reached the maximum of 3 entries") == 2
        conn.disconnect()
        assert device.running()["SMALL"] == ["host 192.0.2.1", "host 192.0.2.2", "host 192.0.2.3"]


def test_copy_running_config_startup_config_and_exit(tmp_path):
    with lab_device(tmp_path, "asa", preload={"G": []}) as device:
        conn = connect(device)
        conn.send_config_set(["object-group network G", "network-object host 192.0.2.1"])
        output = conn.send_command("copy running-config startup-config", expect_string=r"\]\?")
        assert "Source filename [running-config]?" in output
        assert "bytes copied" in conn.send_command("", expect_string=r"#")
        conn.disconnect()
        assert device.startup() == {"G": ["network-object host 192.0.2.1"]}


def test_syslog_sender_sends_numbered_device_lines_over_udp(tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver:
        receiver.bind(("127.0.0.1", 0))
        receiver.settimeout(30)
        port = receiver.getsockname()[1]
        argv = [
            sys.executable,
            "-m",
            "ts_isr.lab",
            "syslog",
            "--port",
            str(port),
            "--count",
            "50",
            "--kind",
            "mixed",
        ]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True)
        assert done.stdout.strip() == f"sent 50 syslog lines to 127.0.0.1:{port}"
        lines = [receiver.recv(4096).decode() for _ in range(50)]
    ios = [line for line in lines if line.startswith("<190>")]
    assert [int(re.match(r"<190>(\d+): ", line).group(1)) for line in ios] == [
        n + 1 for n in range(50) if n % len(KINDS) != KINDS.index("asa-deny")
    ]
    assert sum("%FW-6-DROP_PKT: Dropping tcp session" in line for line in lines) == 10
    assert sum("%SEC-6-IPACCESSLOGP: list TS-IN denied" in line for line in lines) == 10
    assert (
        sum(
            re.match(r"<164>\w{3} \d\d \d{4} [\d:]{8}: %ASA-4-106023: Deny", line) is not None
            for line in lines
        )
        == 10
    )


def test_syslog_lines_have_the_device_shape():
    when = datetime(2026, 3, 1, 0, 12, 34, 567000, tzinfo=UTC)
    drop, _, acl, _, asa = (render(event, 42, when) for event in numbered_events(5, KINDS))
    assert drop == (
        "<190>42: ISR4331: Mar  1 00:12:34.567: %FW-6-DROP_PKT: Dropping tcp session 192.0.2.1:1024 "
        "10.0.0.1:443 on zone-pair out-in class TS-BLOCK with ip ident 0 due to  Policy drop:classify result"
    )
    assert acl == (
        "<190>42: ISR4331: Mar  1 00:12:34.567: %SEC-6-IPACCESSLOGP: list TS-IN denied tcp "
        "203.0.113.1(1026) -> 10.0.0.3(53), 1 packet"
    )
    assert asa.startswith("<164>Mar 01 2026 00:12:34: %ASA-4-106023: Deny udp src outside:198.51.100.2/1028 ")


def test_device_logs_configuration_changes_to_its_logging_host(tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver:
        receiver.bind(("127.0.0.1", 0))
        receiver.settimeout(30)
        with lab_device(tmp_path, "ios", syslog=f"127.0.0.1:{receiver.getsockname()[1]}") as device:
            conn = connect(device)
            conn.enable()
            conn.send_config_set(["object-group network LOGGED", "host 192.0.2.1"])
            conn.send_config_set(["object-group network LOGGED", "host 192.0.2.2"])
            conn.disconnect()
            first, second = (receiver.recv(4096).decode() for _ in range(2))
    assert re.fullmatch(
        r"<189>1: ISR4331: \w{3} [ \d]\d [\d:]{8}\.\d{3}: "
        r"%SYS-5-CONFIG_I: Configured from console by tsadmin on vty0 \(127\.0\.0\.1\)",
        first,
    )
    assert second.startswith("<189>2: ISR4331: ")


def test_netmiko_copes_with_a_long_hostname(tmp_path):
    with lab_device(tmp_path, "ios", hostname="branch-office-router-01") as device:
        conn = connect(device)
        conn.enable()
        conn.send_config_set(["object-group network LONG", "host 192.0.2.1"])
        assert conn.send_command("show object-group name LONG").splitlines()[1] == " host 192.0.2.1"
        conn.disconnect()
