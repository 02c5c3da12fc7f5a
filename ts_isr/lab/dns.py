"""The demo's policy DNS server: one zone file served over TCP and UDP on loopback, dnspython only.

It stands in for ThreatSTOP's servers where Knot is not installed.  It is
authoritative for its one zone (PTR, APL, A, AAAA, TXT, NS with glue, SOA);
names outside it are REFUSED; there are no delegations, wildcards or CNAMEs.
Over UDP, an answer larger than the client's buffer is truncated (TC) so the
client retries over TCP, as a real server does.  SIGHUP (or :meth:`reload`)
re-reads the zone file, which is how the demo's "incremental change" run
changes the policy without restarting the server.
"""

from __future__ import annotations

import argparse
import signal
import socketserver
import struct
import sys
import threading
from pathlib import Path

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.zone

SAMPLE_ZONE = Path(__file__).resolve().parent.parent / "data" / "sample.zone"
UDP_DEFAULT_PAYLOAD = 512


class ZoneError(Exception):
    """The zone file cannot be served; the message says which file and why."""


def load_zone(zone_file: Path) -> dns.zone.Zone:
    try:
        return dns.zone.from_file(str(zone_file), relativize=False, check_origin=True)
    except (OSError, dns.exception.DNSException) as exc:
        raise ZoneError(f"cannot serve {zone_file}: {exc}") from None


def _soa_authority(zone: dns.zone.Zone) -> dns.rrset.RRset:
    soa = zone.find_rdataset(zone.origin, dns.rdatatype.SOA)
    rrset = dns.rrset.RRset(zone.origin, dns.rdataclass.IN, dns.rdatatype.SOA)
    rrset.update(soa)
    return rrset


def _glue(zone: dns.zone.Zone, rrset: dns.rrset.RRset) -> list[dns.rrset.RRset]:
    """Addresses of in-zone NS targets, so a client learns the servers in one answer."""
    out = []
    for rdata in rrset:
        for rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
            found = zone.get_rdataset(rdata.target, rdtype)
            if found is not None:
                glue = dns.rrset.RRset(rdata.target, dns.rdataclass.IN, rdtype)
                glue.update(found)
                out.append(glue)
    return out


def _has_descendant(zone: dns.zone.Zone, name: dns.name.Name) -> bool:
    """An empty non-terminal (names below it, no records of its own) exists: NODATA, as Knot says."""
    return any(owner != name and owner.is_subdomain(name) for owner in zone.nodes)


def answer(zone: dns.zone.Zone, query: dns.message.Message) -> dns.message.Message:
    """The authoritative answer to one query: pure, so it is tested without sockets."""
    response = dns.message.make_response(query)
    if query.opcode() != dns.opcode.QUERY or len(query.question) != 1:
        response.set_rcode(dns.rcode.NOTIMP)
        return response
    question = query.question[0]
    if question.rdclass != dns.rdataclass.IN or not question.name.is_subdomain(zone.origin):
        response.set_rcode(dns.rcode.REFUSED)
        return response
    response.flags |= dns.flags.AA
    node = zone.get_node(question.name)
    if node is None and not _has_descendant(zone, question.name):
        response.set_rcode(dns.rcode.NXDOMAIN)
        response.authority.append(_soa_authority(zone))
        return response
    rdataset = None if node is None else node.get_rdataset(dns.rdataclass.IN, question.rdtype)
    if rdataset is None:
        response.authority.append(_soa_authority(zone))
        return response
    rrset = dns.rrset.RRset(question.name, dns.rdataclass.IN, question.rdtype)
    rrset.update(rdataset)
    response.answer.append(rrset)
    if question.rdtype == dns.rdatatype.NS:
        response.additional.extend(_glue(zone, rrset))
    return response


def answer_wire(zone: dns.zone.Zone, wire: bytes, max_size: int | None) -> bytes | None:
    """Wire in, wire out; None for garbage that does not even carry a query id."""
    try:
        query = dns.message.from_wire(wire)
    except dns.exception.DNSException:
        if len(wire) < 2:
            return None
        formerr = dns.message.Message(id=struct.unpack(">H", wire[:2])[0])
        formerr.flags = dns.flags.QR
        formerr.set_rcode(dns.rcode.FORMERR)
        return formerr.to_wire()
    response = answer(zone, query)
    if max_size is None:
        return response.to_wire()
    limit = max(UDP_DEFAULT_PAYLOAD, query.payload if query.edns >= 0 else UDP_DEFAULT_PAYLOAD)
    try:
        return response.to_wire(max_size=limit)
    except dns.exception.TooBig:
        response.answer.clear()
        response.authority.clear()
        response.additional.clear()
        response.flags |= dns.flags.TC
        return response.to_wire()


class _TcpHandler(socketserver.BaseRequestHandler):
    server: _TcpServer

    def handle(self) -> None:
        reader = self.request.makefile("rb")
        self.request.settimeout(30)
        try:
            while True:
                head = reader.read(2)
                if len(head) < 2:
                    return
                wire = reader.read(struct.unpack(">H", head)[0])
                reply = answer_wire(self.server.owner.zone, wire, None)
                if reply is not None:
                    self.request.sendall(len(reply).to_bytes(2, "big") + reply)
        except OSError:
            return
        finally:
            reader.close()


class _UdpHandler(socketserver.BaseRequestHandler):
    server: _UdpServer

    def handle(self) -> None:
        wire, sock = self.request
        reply = answer_wire(self.server.owner.zone, wire, UDP_DEFAULT_PAYLOAD)
        if reply is not None:
            sock.sendto(reply, self.client_address)


class _TcpServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: PolicyDnsServer


class _UdpServer(socketserver.ThreadingUDPServer):
    daemon_threads = True
    owner: PolicyDnsServer


class PolicyDnsServer:
    """Serves ``zone_file`` on ``host``:``port`` (0: a free port, the same for TCP and UDP)."""

    def __init__(self, zone_file: Path, host: str = "127.0.0.1", port: int = 0) -> None:
        self.zone_file = Path(zone_file)
        self.host = host
        self.requested_port = port
        self.zone = load_zone(self.zone_file)
        self._servers: list[socketserver.BaseServer] = []

    @property
    def port(self) -> int:
        if not self._servers:
            raise RuntimeError("the server is not started")
        return self._servers[0].server_address[1]

    def _bind(self) -> list[socketserver.BaseServer]:
        tcp = _TcpServer((self.host, self.requested_port), _TcpHandler)
        try:
            udp = _UdpServer((self.host, tcp.server_address[1]), _UdpHandler)
        except OSError:
            tcp.server_close()
            raise
        return [tcp, udp]

    def start(self) -> PolicyDnsServer:
        for attempt in range(5):
            try:
                self._servers = self._bind()
                break
            except OSError:
                # With port 0 the kernel's free TCP port may be taken for UDP: pick again.
                if self.requested_port or attempt == 4:
                    raise
        for server in self._servers:
            server.owner = self  # type: ignore[attr-defined]
            threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()
        return self

    def reload(self) -> None:
        """Serve the zone file's current content; a broken file keeps the old zone and raises."""
        self.zone = load_zone(self.zone_file)

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
        self._servers = []

    def __enter__(self) -> PolicyDnsServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def main(argv: list[str]) -> int:
    """``python -m ts_isr.lab dns --port PORT --zone-file FILE``: serve until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(
        prog="python -m ts_isr.lab dns", description="Serve a policy zone over DNS (TCP and UDP) for the demo"
    )
    parser.add_argument("--port", type=int, default=0, help="port for TCP and UDP (default: a free one)")
    parser.add_argument("--zone-file", type=Path, default=SAMPLE_ZONE, help="zone file (default: the sample)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    args = parser.parse_args(argv)
    try:
        server = PolicyDnsServer(args.zone_file, args.host, args.port).start()
    except ZoneError as exc:
        print(f"lab dns: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"lab dns: cannot listen on {args.host} port {args.port}: {exc.strerror}", file=sys.stderr)
        return 1
    stopping = threading.Event()

    def on_hangup(_signum: int, _frame: object) -> None:
        try:
            server.reload()
            print(f"lab dns: reloaded {args.zone_file}", flush=True)
        except ZoneError as exc:
            print(f"lab dns: {exc}; still serving the previous zone", file=sys.stderr, flush=True)

    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    signal.signal(signal.SIGHUP, on_hangup)
    origin = server.zone.origin.to_text(omit_final_dot=True)
    print(f"lab dns: serving {origin} from {args.zone_file} on {args.host} port {server.port}", flush=True)
    while not stopping.wait(0.5):
        pass
    server.stop()
    return 0
