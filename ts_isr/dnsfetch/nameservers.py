"""Name server upkeep: the policy zone, its NS set and their addresses, and whether a new one answers."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Sequence

import dns.exception
import dns.message
import dns.name
import dns.rcode

from ts_isr.dnsfetch.connection import Deadline, DnsConnection, with_failover
from ts_isr.dnsfetch.wire import AAAA, NS, SOA, A, Malformed, Response, ServerError, answer_rdata, check_rcode
from ts_isr.errors import FetchError
from ts_isr.log import escape, log

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
# The name server addresses learnt and tried: a zone's NS set is a handful; one
# listing hundreds would otherwise have each tried in turn, a timeout or so apiece.
MAX_NAME_SERVERS = 8
PROBE_TIMEOUTS = 2


def full_message(response: Response) -> dns.message.Message:
    """dnspython's reading of a small answer (SOA, NS, addresses); a bad one fails this server only."""
    try:
        return dns.message.from_wire(response.wire)
    except dns.exception.DNSException as exc:
        raise Malformed(f"unreadable answer ({type(exc).__name__}: {exc})") from None


def zone_of(connection: DnsConnection, name: dns.name.Name) -> dns.name.Name:
    """The zone holding ``name``: the owner of the SOA that answers (apex) or is in authority (below)."""
    (response,) = connection.exchange([(name, SOA)])
    check_rcode(response, name, SOA)
    message = full_message(response)
    for rrset in (*message.answer, *message.authority):
        if rrset.rdtype == SOA:
            return rrset.name
    raise ServerError(f"no SOA for {name.to_text(omit_final_dot=True)}: cannot tell its zone")


def _usable(address: Address) -> bool:
    return not (address.is_unspecified or address.is_multicast or address.is_reserved)


def name_servers_from(connection: DnsConnection, list_name: str) -> tuple[dns.name.Name, list[Address]]:
    """The policy zone and the addresses of its NS set, glue first, then asked for by name."""
    zone = zone_of(connection, dns.name.from_text(list_name))
    (response,) = connection.exchange([(zone, NS)])
    check_rcode(response, zone, NS)
    message = full_message(response)
    targets = [rdata.target for rrset in message.answer if rrset.rdtype == NS for rdata in rrset]
    if not targets:
        raise ServerError(f"no NS records for {zone.to_text(omit_final_dot=True)}")
    glue: dict[dns.name.Name, list[Address]] = {}
    for rrset in message.additional:
        if rrset.rdtype in (A, AAAA):
            glue.setdefault(rrset.name, []).extend(ipaddress.ip_address(r.address) for r in rrset)
    targets = sorted(set(targets))[:MAX_NAME_SERVERS]
    missing = [(target, rtype) for target in targets if target not in glue for rtype in (A, AAAA)]
    for (target, _), answer in zip(missing, connection.exchange(missing) if missing else []):
        if answer.rcode != dns.rcode.NOERROR:
            continue
        glue.setdefault(target, []).extend(ipaddress.ip_address(r.address) for r in _address_rdatas(answer))
    addresses = list(dict.fromkeys(a for target in targets for a in glue.get(target, []) if _usable(a)))
    if len(addresses) > MAX_NAME_SERVERS:
        log.warning(
            f"the policy zone {escape(zone.to_text(omit_final_dot=True))} gives {len(addresses)} name server "
            f"addresses; only the first {MAX_NAME_SERVERS} are used"
        )
    return zone, addresses[:MAX_NAME_SERVERS]


def _address_rdatas(response: Response) -> Iterator[object]:
    message = full_message(response)
    for rrset in message.answer:
        if rrset.rdtype in (A, AAAA):
            yield from rrset


def learn_name_servers(
    servers: Sequence[str],
    list_name: str,
    *,
    port: int = 53,
    timeout: float = 5.0,
    deadline: Deadline | None = None,
) -> tuple[dns.name.Name, list[Address]]:
    """The policy zone's current name servers, asked of the configured ones in order."""
    return with_failover(
        servers,
        port,
        timeout,
        lambda c: name_servers_from(c, list_name),
        f"the name servers of {list_name}",
        deadline=deadline,
    )


def answers_for_zone(
    server: str, zone: dns.name.Name, *, port: int, timeout: float, deadline: Deadline | None = None
) -> bool:
    """Whether ``server`` answers the zone's SOA: a learned server is only adopted if it does.

    One question: the server gets :data:`PROBE_TIMEOUTS` timeouts (to connect, to answer), not a fetch's time.
    """

    def ask(connection: DnsConnection) -> bool:
        (response,) = connection.exchange([(zone, SOA)])
        check_rcode(response, zone, SOA)
        return bool(answer_rdata(response, SOA))

    try:
        return with_failover(
            [server],
            port,
            timeout,
            ask,
            f"the SOA of {zone}",
            deadline=deadline,
            per_server=PROBE_TIMEOUTS * timeout,
        )
    except FetchError:
        return False
