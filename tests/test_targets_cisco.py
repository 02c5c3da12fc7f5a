"""Pure member parsing, rendering and the streaming window, with no I/O.

The device's side of the conversation comes from the lab's own interpreter
(ts_isr.lab.cli), so the parser is checked against the text the lab prints.
"""

from __future__ import annotations

from ts_isr.lab.cli import (
    ASA,
    IOS,
    DeviceState,
    Mode,
    Profile,
    Session,
    asa_object_group_config,
    ios_show_object_group,
)
from ts_isr.policy import parse_token
from ts_isr.targets.asa import AsaDialect
from ts_isr.targets.cisco import (
    GroupContents,
    Stream,
    mask_prefixlen,
    member_cidrs,
    never_empty,
    removal_lines,
)
from ts_isr.targets.ios import IosDialect


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
    assert contents.exists
    assert contents.cidrs == {
        cidr(t) for t in ("1.1.1.1", "2.2.2.2/31", "2.2.2.4/31", "1.1.3.0/24", "9.9.9.9")
    }
    assert contents.members[cidr("9.9.9.9")] == "9.9.9.9 255.255.255.255"
    assert contents.members[cidr("2.2.2.4/31")] == "range 2.2.2.2 2.2.2.5"
    assert contents.others == ("Description ###TEST NETWORK OGR###", "any", "group-object NNNN")


def test_absent_group_and_other_groups():
    assert not IosDialect().parse_group("TS", "").exists
    assert not AsaDialect().parse_group("TS", "ERROR: object-group TS does not exist").exists
    assert IosDialect().parse_group("TS", "Network object group TS").cidrs == frozenset()


def test_asa_running_config_is_parsed_canonically():
    members = ["description mine", "network-object host 10.0.0.1", "network-object 10.0.0.1 255.255.255.255"]
    members += ["network-object 10.1.0.0 255.255.0.0", "network-object object WEB", "group-object G"]
    text = "\n".join(
        asa_object_group_config("TS", members) + asa_object_group_config("OTHER", ["host 5.5.5.5"])
    )
    contents = AsaDialect().parse_group("TS", text)
    assert contents.cidrs == {cidr("10.0.0.1"), cidr("10.1.0.0/16")}
    assert contents.members[cidr("10.0.0.1")] == "network-object host 10.0.0.1"
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
        assert member_cidrs(text) is None, text


def test_removal_quotes_the_device_and_splits_ranges():
    contents = GroupContents(
        True,
        {cidr("2.2.2.2/31"): "range 2.2.2.2 2.2.2.5", cidr("2.2.2.4/31"): "range 2.2.2.2 2.2.2.5"}
        | {cidr("9.9.9.9"): "9.9.9.9 255.255.255.255"},
        (),
    )
    keep = frozenset({cidr("2.2.2.4/31")})
    readd, lines = removal_lines(contents, [cidr("2.2.2.2/31"), cidr("9.9.9.9")], keep)
    assert readd == [cidr("2.2.2.4/31")]
    assert lines == [
        ("no range 2.2.2.2 2.2.2.5", frozenset({cidr("2.2.2.2/31"), cidr("2.2.2.4/31")})),
        ("no 9.9.9.9 255.255.255.255", frozenset({cidr("9.9.9.9")})),
    ]


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
