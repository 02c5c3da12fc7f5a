"""Syslog as an ISR (or ASA) with ``logging host`` sends it: firewall drop/pass and ACL log lines over UDP.

The log path (syslog-ng -> log files -> upload) is tested end to end with these lines, so their
shape follows what the devices print: ``<PRI>SEQ: TIMESTAMP: %FACILITY-SEVERITY-MNEMONIC: text`` with
``service sequence-numbers`` and ``service timestamps log datetime msec`` on IOS, and the ASA's
``<PRI>TIMESTAMP: %ASA-n-NNNNNN: text``.  Rendering is pure; only ``send`` touches a socket.

    python -m ts_isr.lab syslog --port 5514 --count 1000 [--host 127.0.0.1] [--kind mixed] [--rate 500]
"""

from __future__ import annotations

import argparse
import socket
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

FACILITY_LOCAL7 = 23  # IOS default for `logging host`
FACILITY_LOCAL4 = 20  # ASA default (`logging facility 20`)
KINDS = ("zbf-drop", "zbf-pass", "acl-deny", "acl-permit", "asa-deny")
# Documentation ranges only (RFC 5737): the lab never names a real outside address.
OUTSIDE_NETS = ("192.0.2", "198.51.100", "203.0.113")


@dataclass(frozen=True)
class Event:
    """One packet the device logs: who talked to whom, and what the firewall did."""

    kind: str
    protocol: str
    source: str
    source_port: int
    destination: str
    destination_port: int


def numbered_events(count: int, kinds: Iterable[str] = ("zbf-drop",)) -> Iterator[Event]:
    """``count`` distinct, deterministic events cycling through ``kinds`` (line n is recognisable)."""
    kinds = tuple(kinds)
    for n in range(count):
        outside = f"{OUTSIDE_NETS[n % 3]}.{1 + n // 3 % 254}"
        inside = f"10.0.{n // 254 % 256}.{1 + n % 254}"
        protocol = "udp" if n % 5 == 4 else "tcp"
        yield Event(
            kinds[n % len(kinds)], protocol, outside, 1024 + n % 64000, inside, (443, 22, 53, 80)[n % 4]
        )


def _ios_stamp(when: datetime) -> str:
    return (
        when.strftime("%b ")
        + f"{when.day:>2} "
        + when.strftime("%H:%M:%S.")
        + f"{when.microsecond // 1000:03d}"
    )


def render(event: Event, sequence: int, when: datetime, hostname: str = "ISR4331") -> str:
    """The syslog datagram text for one event, as the device would send it."""
    src, dst = f"{event.source}:{event.source_port}", f"{event.destination}:{event.destination_port}"
    if event.kind == "asa-deny":
        stamp = when.strftime("%b %d %Y %H:%M:%S")
        text = (
            f"Deny {event.protocol} src outside:{event.source}/{event.source_port} "
            f'dst inside:{event.destination}/{event.destination_port} by access-group "outside_in" [0x0, 0x0]'
        )
        return f"<{FACILITY_LOCAL4 * 8 + 4}>{stamp}: %ASA-4-106023: {text}"
    if event.kind == "zbf-drop":
        message = (
            f"%FW-6-DROP_PKT: Dropping {event.protocol} session {src} {dst} on zone-pair out-in "
            "class TS-BLOCK with ip ident 0 due to  Policy drop:classify result"
        )
    elif event.kind == "zbf-pass":
        message = (
            f"%FW-6-PASS_PKT: (target:class)-(out-in:TS-ALLOW):Passing {event.protocol} pkt {src} => {dst} "
            "with ip ident 0"
        )
    else:
        action = "denied" if event.kind == "acl-deny" else "permitted"
        message = (
            f"%SEC-6-IPACCESSLOGP: list TS-IN {action} {event.protocol} "
            f"{event.source}({event.source_port}) -> {event.destination}({event.destination_port}), 1 packet"
        )
    return ios_line(message, sequence, when, hostname)


def ios_line(
    message: str, sequence: int, when: datetime, hostname: str = "ISR4331", severity: int = 6
) -> str:
    """``<PRI>SEQ: HOST: TIMESTAMP: %MSG`` as IOS sends to a ``logging host`` (facility local7)."""
    return f"<{FACILITY_LOCAL7 * 8 + severity}>{sequence}: {hostname}: {_ios_stamp(when)}: {message}"


def send(lines: Iterable[str], host: str, port: int, rate: float | None = None) -> int:
    """Send each line as one UDP datagram (paced to ``rate`` lines a second if given); count sent."""
    sent = 0
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        started = time.monotonic()
        for line in lines:
            if rate:
                ahead = started + sent / rate - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)
            sock.sendto(line.encode(), (host, port))
            sent += 1
    return sent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ts_isr.lab syslog", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--count", type=int, default=10)
    parser.add_argument("--kind", choices=(*KINDS, "mixed"), default="zbf-drop")
    parser.add_argument("--rate", type=float, help="lines a second (default: as fast as possible)")
    parser.add_argument("--hostname", default="ISR4331")
    parser.add_argument("--first-sequence", type=int, default=1)
    args = parser.parse_args(argv)
    kinds = KINDS if args.kind == "mixed" else (args.kind,)
    lines = (
        render(event, args.first_sequence + n, datetime.now(UTC), args.hostname)
        for n, event in enumerate(numbered_events(args.count, kinds))
    )
    sent = send(lines, args.host, args.port, args.rate)
    print(f"sent {sent} syslog lines to {args.host}:{args.port}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
