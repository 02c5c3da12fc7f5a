"""Pure member parsing, rendering and the streaming window, with no I/O.

The device's side of the conversation comes from the lab's own interpreter
(ts_isr.lab.cli and show), so the parser is checked against the text the lab prints.
"""

from __future__ import annotations

import pytest

from ts_isr.errors import DeviceError
from ts_isr.lab.cli import Session
from ts_isr.lab.model import ASA, IOS, DeviceState, Mode, Profile
from ts_isr.lab.show import asa_object_group_config, ios_show_object_group
from ts_isr.policy import ipv4_value, parse_token
from ts_isr.targets.cisco import (
    Device,
    Stream,
    login_error,
    mask_prefixlen,
    never_empty,
    parse_member,
    parse_members,
    removal_lines,
)
from ts_isr.targets.cisco import Session as CiscoSession
from ts_isr.targets.cisco.asa import AsaDialect
from ts_isr.targets.cisco.bounds import push_budget, read_budget, resend_limit
from ts_isr.targets.cisco.ios import IosDialect
from ts_isr.targets.cisco.stream import check_bounds


def cidr(text):
    return parse_token(text)


def test_ios_show_output_is_parsed_canonically():
    members = [
        "description ###TEST NETWORK OGR###",
        "any",
        "host 1.1.1.1",
        "range 2.2.2.2 2.2.2.5",
        "group-object NNNN",
        "1.1.3.0 255.255.255.0",
        "9.9.9.9 255.255.255.255",
    ]
    text = "\r\n".join(ios_show_object_group("TS", members))
    contents = IosDialect().parse_group("TS", text)
    assert contents.cidrs == {
        cidr(t) for t in ("1.1.1.1", "2.2.2.2/31", "2.2.2.4/31", "1.1.3.0/24", "9.9.9.9")
    }
    assert [m.text() for m in contents.members[cidr("9.9.9.9")]] == ["9.9.9.9 255.255.255.255"]
    assert [m.text() for m in contents.members[cidr("2.2.2.4/31")]] == ["range 2.2.2.2 2.2.2.5"]
    assert contents.others == ("Description ###TEST NETWORK OGR###", "any", "group-object NNNN")


def test_absent_group_and_other_groups():
    for contents in (
        IosDialect().parse_group("TS", ""),
        AsaDialect().parse_group("TS", "ERROR: object-group TS does not exist"),
        IosDialect().parse_group("TS", "Network object group TS"),
    ):
        assert contents.cidrs == frozenset() and contents.others == ()


def test_ios_group_read_stops_at_the_next_group():
    """Review item 6: older IOS's `show object-group` prints every group; only the asked one counts."""
    text = "\r\n".join(
        ios_show_object_group("TS", ["host 1.1.1.1", "description object group of mine"])
        + ios_show_object_group("OTHER", ["host 2.2.2.2"])
        + ["Service object group WEB", " tcp eq www"]
    )
    contents = IosDialect().parse_group("TS", text)
    assert contents.cidrs == {cidr("1.1.1.1")}
    assert contents.others == ("Description object group of mine",)
    assert IosDialect().parse_group("OTHER", text).cidrs == {cidr("2.2.2.2")}


def test_asa_running_config_is_parsed_canonically():
    members = ["description mine", "network-object host 10.0.0.1", "network-object 10.0.0.1 255.255.255.255"]
    members += ["network-object 10.1.0.0 255.255.0.0", "network-object object WEB", "group-object G"]
    text = "\n".join(
        asa_object_group_config("TS", members) + asa_object_group_config("OTHER", ["host 5.5.5.5"])
    )
    contents = AsaDialect().parse_group("TS", text)
    assert contents.cidrs == {cidr("10.0.0.1"), cidr("10.1.0.0/16")}
    assert [AsaDialect().line(m) for m in contents.members[cidr("10.0.0.1")]] == [
        "network-object host 10.0.0.1",
        "network-object 10.0.0.1 255.255.255.255",
    ]
    assert contents.others == ("description mine", "network-object object WEB", "group-object G")


def test_member_lines():
    ios, asa = IosDialect(), AsaDialect()
    assert ios.member_line(cidr("192.0.2.1")) == "host 192.0.2.1"
    assert ios.member_line(cidr("198.51.100.0/22")) == "198.51.100.0 255.255.252.0"
    assert asa.member_line(cidr("192.0.2.1")) == "network-object host 192.0.2.1"
    assert asa.member_line(cidr("10.0.0.0/8")) == "network-object 10.0.0.0 255.0.0.0"


def test_masks_and_bad_members():
    assert mask_prefixlen("255.255.255.0") == 24 and mask_prefixlen("0.0.0.0") == 0
    assert mask_prefixlen("255.0.255.0") is None and mask_prefixlen("255.255.255.256") is None
    for text in (
        "host 1.2.3",
        "host 01.2.3.4",
        "range 5.5.5.5 1.1.1.1",
        "1.2.3.0 255.0.255.0",
        "any",
        "host",
    ):
        assert parse_member(text) is None, text


def test_removal_rebuilds_each_line_and_splits_ranges_only_in_exclusive_groups():
    contents = parse_members(["range 2.2.2.2 2.2.2.5", "9.9.9.9 255.255.255.255"], prefix="")
    keep = frozenset({cidr("2.2.2.4/31")})
    remove = [cidr("2.2.2.2/31"), cidr("9.9.9.9")]
    readd, taken = removal_lines(contents, remove, keep, users_lines=True)
    assert readd == [cidr("2.2.2.4/31")]
    assert [(IosDialect().line(member), cidrs) for member, cidrs in taken] == [
        ("range 2.2.2.2 2.2.2.5", frozenset({cidr("2.2.2.2/31"), cidr("2.2.2.4/31")})),
        ("9.9.9.9 255.255.255.255", frozenset({cidr("9.9.9.9")})),
    ]
    readd, taken = removal_lines(contents, remove, keep, users_lines=False)
    assert readd == [] and taken == [], "a range and an X 255.255.255.255 are both the user's forms"


def test_a_users_range_is_never_removed_with_the_tools_host():
    """Review item 1: the user's range came first; the tool's host line for the same address after."""
    contents = parse_members(["range 10.0.0.1 10.0.0.2", "host 10.0.0.1"], prefix="")
    assert [m.text() for m in contents.members[cidr("10.0.0.1")]] == [
        "range 10.0.0.1 10.0.0.2",
        "host 10.0.0.1",
    ]
    assert contents.held_by_user == {cidr("10.0.0.1"), cidr("10.0.0.2")}
    keep = contents.cidrs - {cidr("10.0.0.1")}
    readd, taken = removal_lines(contents, [cidr("10.0.0.1")], keep, users_lines=False)
    assert readd == [] and [m.text() for m, _ in taken] == ["host 10.0.0.1"]
    # Exclusive: every line holding the address goes in one pass, and only what nothing else holds comes back.
    readd, taken = removal_lines(contents, [cidr("10.0.0.1")], keep, users_lines=True)
    assert readd == [cidr("10.0.0.2")]
    assert [m.text() for m, _ in taken] == ["range 10.0.0.1 10.0.0.2", "host 10.0.0.1"]
    # The ASA keeps `X 255.255.255.255` apart from `host X`; the tool only ever writes the second.
    asa = AsaDialect().parse_group(
        "TS",
        "object-group network TS\n network-object 10.0.0.1 255.255.255.255\n network-object host 10.0.0.1",
    )
    assert asa.held_by_user == {cidr("10.0.0.1")}
    _, taken = removal_lines(asa, [cidr("10.0.0.1")], frozenset(), users_lines=False)
    assert [AsaDialect().line(m) for m, _ in taken] == ["network-object host 10.0.0.1"]
    assert parse_members(["10.0.0.0 255.255.255.0", "host 10.0.1.1"], prefix="").held_by_user == frozenset()


def test_only_exact_device_text_is_a_member():
    """Review item 2: what goes back to the device is rebuilt from strictly parsed values."""
    for text in (
        "host 1:1.2.3.4",
        "host 1.2.3.4/32",
        "host\t10.0.0.9",
        "host  10.0.0.9",
        "10.0.0.1 255.255.255.0",
        "HOST 10.0.0.9",
        "host 1.2.3.４",
        "range 10.0.0.1 10.0.0.2 x",
    ):
        assert parse_member(text) is None, text
    assert ipv4_value("0.0.0.0") == 0 and ipv4_value("1.2.3.04") is None and ipv4_value("1.2.3") is None
    lines = ["host 10.0.0.9", "10.1.0.0 255.255.0.0", "range 10.0.0.1 10.0.0.3", "host\t10.0.0.8"]
    contents = parse_members(lines, prefix="")
    assert contents.others == ("host\t10.0.0.8",)
    _, taken = removal_lines(contents, contents.cidrs, frozenset(), users_lines=True)
    assert sorted(member.text() for member, _ in taken) == sorted(lines[:3])


def test_never_empty_holds_back_the_last_removal():
    a, b = cidr("192.0.2.1"), cidr("192.0.2.2")
    removals = [("no host 192.0.2.1", frozenset({a})), ("no host 192.0.2.2", frozenset({b}))]
    assert never_empty(frozenset({a, b}), removals, other_members=False) == (
        ["no host 192.0.2.1"],
        ["no host 192.0.2.2"],
    )
    assert never_empty(frozenset({a, b, cidr("10.0.0.0/8")}), removals, False) == (
        ["no host 192.0.2.1", "no host 192.0.2.2"],
        [],
    )
    assert never_empty(frozenset({a, b}), removals, other_members=True)[1] == []


class SimulatedLink:
    """The lab's interpreter behind an input buffer that drops what overflows, one line per step."""

    def __init__(self, platform: str, buffer: int) -> None:
        self.session = Session(Profile(platform=platform), DeviceState())
        self.session.mode = Mode.EXEC
        self.session.handle("configure terminal")
        self.session.handle("object-group network TS")
        self.buffer = buffer
        self.pending = b""

    def receive(self, data: bytes) -> None:
        self.pending += data[: max(self.buffer - len(self.pending), 0)]

    def step(self) -> str:
        if b"\n" not in self.pending:
            return ""
        raw, self.pending = self.pending.split(b"\n", 1)
        line = raw.decode()
        reply = self.session.handle(line)
        return line + "\r\n" + "".join(text + "\r\n" for text in reply.lines) + self.session.prompt()


def run_stream(link: SimulatedLink, lines: list[str]) -> Stream:
    stream = Stream.of(lines, window=1024)
    clock = 0.0
    idle = 0
    while not stream.finished:
        clock += 0.001
        batch = stream.take(clock)
        link.receive("".join(line + "\n" for line in batch).encode())
        output = link.step()
        if output:
            idle = 0
            stream.feed(output, clock)
        else:
            idle += 1
            if idle == 50:
                idle = 0
                stream.probe(clock)
                link.receive(b"\n")
        assert clock < 60, "the stream never finished"
    return stream


def test_stream_loses_no_line_through_a_small_buffer():
    link = SimulatedLink(IOS, buffer=300)
    lines = [f"host 10.0.{i // 250}.{i % 250}" for i in range(3000)]
    stream = run_stream(link, lines)
    members = link.session.state.running["TS"]
    assert members.keys() == set(lines)
    assert stream.drops > 0 and stream.resent > 0
    assert stream.window <= 300, "the window learned the device's buffer"
    assert not stream.errors


def test_stream_reports_device_errors_per_line():
    link = SimulatedLink(ASA, buffer=100_000)
    lines = [
        "network-object host 10.0.0.1",
        "network-object 10.0.0.1 255.0.255.0",
        "network-object host 10.0.0.1",
    ]
    stream = run_stream(link, lines)
    assert [error.line for error in stream.errors] == ["network-object 10.0.0.1 255.0.255.0"]
    assert stream.done == 3 and stream.drops == 0


def test_login_errors_are_named_by_what_failed(tmp_path):
    """Review item 11: on IOS netmiko's ValueError at login is the prompt, not the enable password."""
    device = Device("192.0.2.1", 22, "u", "pw", "en", tmp_path / "known_hosts", 5)
    prompt = login_error("Router prompt not found: 'rommon 1 %'", device, IosDialect(), timed_out=False)
    assert "enable refused" not in str(prompt)
    assert "no prompt netmiko recognises (Router prompt not found: 'rommon 1 %')" in str(prompt)
    assert "personality=ios" in str(prompt)
    enable = "Failed to enter enable mode. Please ensure you pass the 'secret' argument to ConnectHandler."
    for dialect in (IosDialect(), AsaDialect()):
        assert "enable refused" in str(login_error(enable, device, dialect, timed_out=False))
    assert "enable refused" in str(login_error("", device, AsaDialect(), timed_out=True))
    assert "enable refused" not in str(login_error("", device, IosDialect(), timed_out=True))


def test_device_repr_shows_no_secret(tmp_path):
    """Review item 17: a traceback or a debug print of the device never shows its passwords."""
    shown = repr(Device("192.0.2.1", 22, "u", "pw-S3cret", "en-S3cret", tmp_path / "known_hosts", 5))
    assert "192.0.2.1" in shown and "S3cret" not in shown


def test_bounds_follow_from_the_group_size_and_ssh_timeout():
    budget = read_budget(30000, 30.0)
    assert budget.size == 61000 * 64 + 65536 and budget.seconds == 30.0 + 122.0
    assert "61000 lines: 30000 of the tool's" in budget.why
    assert push_budget(100, 5.0).seconds == 30.0 and resend_limit(100) == 200


def test_a_push_past_its_bounds_fails_in_one_line_and_gives_the_session_up(tmp_path):
    device = Device("192.0.2.7", 22, "u", None, None, tmp_path / "known_hosts", 5.0)
    session = CiscoSession(IosDialect(), device)
    stream, budget = Stream.of(["host 192.0.2.1", "host 192.0.2.2"]), push_budget(2, 5.0)
    check_bounds(session, stream, budget, 5.4, 2, "pushing 2 lines")
    with pytest.raises(DeviceError, match=r"^192.0.2.7 took more than 6 s pushing 2 lines \(0 done\);"):
        check_bounds(session, stream, budget, 5.6, 2, "pushing 2 lines")
    assert session.broken
    for _ in range(4):  # the device swallows both lines; each probe comes back alone
        stream.take(0.0)
        stream.probe(0.0)
        stream.feed("\r\nR(config-network-group)#", 0.0)
    with pytest.raises(DeviceError, match=r"'host 192.0.2.2' sent 5 times, 8 lines sent again in all"):
        check_bounds(session, stream, budget, 1.0, 2, "pushing 2 lines")
