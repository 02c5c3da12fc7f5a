"""The demo's policy DNS server: the same policy as Knot gives for the same zone, over TCP and UDP."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.zone
import pytest

from tests.support.knot import KnotServer
from ts_isr import dnsfetch
from ts_isr.lab import sample_zone
from ts_isr.lab.dns import PolicyDnsServer, ZoneError, answer

LISTS = [sample_zone.ALLOW_LIST, sample_zone.BLOCK_LIST]


def policy_of(fetched: dict[str, dnsfetch.FetchedList]) -> dict[str, list[str]]:
    return {
        name: [str(c) for family in (4, 6) for c in lst.builder.ranges()[family].cidrs()]
        for name, lst in fetched.items()
    }


def test_the_shipped_zones_are_what_the_generator_makes() -> None:
    for variant, path in sample_zone.FILES.items():
        assert path.read_text() == sample_zone.render(variant), (
            f"run python -m ts_isr.lab.sample_zone ({path})"
        )


def test_lab_server_gives_the_same_policy_as_knot_for_the_sample(tmp_path: Path) -> None:
    text = sample_zone.FILES[1].read_text()
    body = "".join(line + "\n" for line in text.splitlines() if re.match(r"(part|block|allow)\d* ", line))
    knot = KnotServer(tmp_path)
    knot.add_zone(sample_zone.ORIGIN, body)
    with PolicyDnsServer(sample_zone.FILES[1]) as lab, knot:
        from_lab = dnsfetch.fetch_lists(LISTS, ["127.0.0.1"], port=lab.port)
        from_knot = dnsfetch.fetch_lists(LISTS, ["127.0.0.1"], port=knot.port)
    assert policy_of(from_lab) == policy_of(from_knot)
    block = from_lab[sample_zone.BLOCK_LIST]
    assert block.parts == 4
    assert block.builder.invalid == 0
    assert block.results > 250
    assert from_lab[sample_zone.ALLOW_LIST].results == 2


def ask(port: int, name: str, rdtype: str, *, udp: bool = False) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype)
    if udp:
        return dns.query.udp(query, "127.0.0.1", port=port, timeout=5)
    return dns.query.tcp(query, "127.0.0.1", port=port, timeout=5)


def test_answers_like_an_authoritative_server() -> None:
    with PolicyDnsServer(sample_zone.FILES[1]) as lab:
        big_udp = ask(lab.port, "part1.lab.threatstop.local", "A", udp=True)
        big_tcp = ask(lab.port, "part1.lab.threatstop.local", "A")
        ns = ask(lab.port, "lab.threatstop.local", "NS")
        nodata = ask(lab.port, "part1.lab.threatstop.local", "TXT")
        missing = ask(lab.port, "nope.lab.threatstop.local", "A")
        outside = ask(lab.port, "example.com", "A")
    assert big_udp.flags & dns.flags.TC and not big_udp.answer
    assert len(big_tcp.answer[0]) == 200 and big_tcp.flags & dns.flags.AA
    assert [str(r.address) for rrset in ns.additional for r in rrset] == ["127.0.0.1"]
    assert nodata.rcode() == dns.rcode.NOERROR and not nodata.answer and nodata.authority
    assert missing.rcode() == dns.rcode.NXDOMAIN
    assert outside.rcode() == dns.rcode.REFUSED


def test_an_empty_non_terminal_is_nodata_as_knot_answers_it(tmp_path: Path) -> None:
    """Review item 23: ``sub`` exists because ``host.sub`` does; only its records are missing."""
    origin = "ent.test."
    records = "host.sub A 192.0.2.1\n"
    knot = KnotServer(tmp_path)
    knot.add_zone(origin, records)
    zone = dns.zone.from_text(
        f"$ORIGIN {origin}\n@ SOA ns1 hostmaster 1 3600 600 86400 300\n@ NS ns1\nns1 A 127.0.0.1\n{records}",
        relativize=False,
    )
    with knot:
        for name in (f"sub.{origin}", f"nope.sub.{origin}"):
            query = dns.message.make_query(name, "A")
            reference = dns.query.tcp(query, "127.0.0.1", port=knot.port, timeout=5)
            ours = answer(zone, query)
            assert (ours.rcode(), ours.answer) == (reference.rcode(), reference.answer), name


def test_a_broken_zone_file_is_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.zone"
    bad.write_text("$ORIGIN x.test.\n@ SOA oops\n")
    with pytest.raises(ZoneError, match=r"cannot serve .*bad\.zone"):
        PolicyDnsServer(bad)


def test_main_serves_reloads_on_sighup_and_stops_on_sigterm(tmp_path: Path) -> None:
    zone = tmp_path / "policy.zone"
    shutil.copy(sample_zone.FILES[1], zone)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    process = subprocess.Popen(
        [sys.executable, "-m", "ts_isr.lab", "dns", "--port", "0", "--zone-file", str(zone)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        ready = process.stdout.readline()
        port = int(re.search(r"port (\d+)", ready).group(1))
        first = policy_of(dnsfetch.fetch_lists(LISTS, ["127.0.0.1"], port=port))
        shutil.copy(sample_zone.FILES[2], zone)
        process.send_signal(signal.SIGHUP)
        assert "reloaded" in process.stdout.readline()
        second = policy_of(dnsfetch.fetch_lists(LISTS, ["127.0.0.1"], port=port))
        assert first != second
        assert "198.19.129.0/24" in first[sample_zone.BLOCK_LIST]
        assert "198.19.129.0/24" not in second[sample_zone.BLOCK_LIST]
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
