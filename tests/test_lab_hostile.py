"""The lab device's hostile modes over real SSH, seen through the unmodified netmiko (issue 16)."""

from __future__ import annotations

import time

from netmiko import ConnectHandler

from tests.support.lab import lab_device
from ts_isr.lab.hostile import Hostile, generated_members, show_pieces
from ts_isr.lab.model import ASA, IOS

MEMBERS = ["host 192.0.2.1", "host 192.0.2.2", "host 192.0.2.3", "host 192.0.2.4"]
SHOW = "show object-group name G"


def connect(device):
    conn = ConnectHandler(**device.netmiko_params(), conn_timeout=20, auth_timeout=20)
    conn.enable()
    return conn


def read_for(conn, seconds: float, limit: int = 1 << 22) -> str:
    """Everything the device prints in ``seconds`` (at most ``limit`` characters are kept)."""
    text, until = "", time.monotonic() + seconds
    while time.monotonic() < until:
        text = (text + conn.read_channel())[-limit:]
        time.sleep(0.02)
    return text


def test_trickle_prints_show_output_one_line_at_a_time(tmp_path):
    with lab_device(tmp_path, preload={"G": MEMBERS}, trickle_ms=300) as device:
        conn = connect(device)
        conn.write_channel(SHOW + "\n")
        early = read_for(conn, 0.8)
        assert "host 192.0.2.4" not in early and "Network object group G" in early
        assert read_for(conn, 2.5).rstrip().endswith("host 192.0.2.4\nISR4331#")
        started = time.monotonic()
        assert "Configuration register" not in conn.send_command("terminal length 0")
        assert time.monotonic() - started < 2, "only show output trickles"


def test_flood_never_ends_and_extra_members_are_generated_not_stored(tmp_path):
    with lab_device(tmp_path, preload={"G": MEMBERS}, flood=True) as device:
        conn = connect(device)
        conn.write_channel(SHOW + "\n")
        seen = read_for(conn, 2.0, limit=4096)
        assert " host 100." in seen and not seen.rstrip().endswith("#"), "still listing members"
        conn.disconnect()
    with lab_device(tmp_path, preload={"G": MEMBERS}, extra_members=100_000) as device:
        conn = connect(device)
        shown = conn.send_command(SHOW, read_timeout=120)
        lines = shown.splitlines()
        assert len(lines) == 1 + len(MEMBERS) + 100_000 and lines[-1] == " host 100.65.134.159"
        assert device.running() == {"G": MEMBERS}, "the generated members are only printed"


def test_babble_answers_a_pushed_line_without_end(tmp_path):
    with lab_device(tmp_path, preload={"G": []}, babble=True) as device:
        conn = connect(device)
        conn.config_mode()
        conn.write_channel("object-group network G\nhost 192.0.2.9\n")
        seen = read_for(conn, 1.5, limit=8192)
        assert "%LAB-7-BABBLE" in seen and not seen.rstrip().endswith("#")


def test_black_hole_swallows_members_but_answers_an_empty_line(tmp_path):
    with lab_device(tmp_path, preload={"G": []}, black_hole=True) as device:
        conn = connect(device)
        conn.config_mode()
        conn.write_channel("object-group network G\n")
        assert read_for(conn, 0.5).rstrip().endswith("(config-network-group)#")
        conn.write_channel("host 192.0.2.9\n")
        assert read_for(conn, 0.5) == ""
        conn.write_channel("\n")
        assert read_for(conn, 0.5).strip() == "ISR4331(config-network-group)#"
        assert device.running() == {"G": []} and "host 192.0.2.9" in device.commands()


def test_fake_prompt_comes_before_the_last_two_members_then_a_pause(tmp_path):
    with lab_device(tmp_path, preload={"G": MEMBERS}, fake_prompt=True) as device:
        conn = connect(device)
        conn.write_channel(SHOW + "\n")
        first = read_for(conn, 0.3)
        assert first.endswith("host 192.0.2.2\nISR4331#")
        rest = read_for(conn, 1.0)
        assert rest == "\n host 192.0.2.3\n host 192.0.2.4\nISR4331#"


def test_hostile_plans_are_pure():
    assert list(generated_members(ASA, 2)) == [
        " network-object host 100.64.0.0",
        " network-object host 100.64.0.1",
    ]
    lines = ["Network object group G", " host 192.0.2.1"]
    assert list(show_pieces(Hostile(trickle_ms=5), IOS, lines, "R#")) == [
        ("Network object group G\r\n", 0.005),
        (" host 192.0.2.1\r\n", 0.005),
        ("R#", 0.005),
    ]
    assert list(show_pieces(Hostile(fake_prompt=True), IOS, ["Version 1"], "R#")) == [
        ("Version 1\r\n", 0.0),
        ("R#", 0.0),
    ], "only a group's answer is faked"
