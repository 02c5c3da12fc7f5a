"""The ThreatSTOP policy over DNS: the project's reading of the vendor's format, kept in this one package.

The vendor does not publish its client, so this is the project's assumption
(from ../shared/notes/threatstop-protocol.md), to be changed here alone when a
real capture shows otherwise:

1. ``PTR <list>``: each target is a part of the list; no PTR answer means the
   list is its own only part.  Parts may point further (at most
   :data:`MAX_DEPTH` levels); a name already seen is not fetched again, so a
   loop ends.  A name with PTR records is an index only: its other records are not used.
2. Each part: ``APL`` items give networks (``1:`` IPv4, ``2:`` IPv6) and a
   negated item is an exclusion inside that list, never a block.  No APL:
   ``A`` and ``AAAA`` records, each one host.  Neither: ``TXT`` strings holding
   space-separated ``a.b.c.d[/len]`` or ``1:a.b.c.d/len`` tokens.
3. Every entry goes through :class:`ts_isr.policy.ListBuilder` as integers;
   anything else is counted, logged (escaped) and dropped.
4. A list is fetched whole from one server.  Any part that fails (timeout,
   SERVFAIL, NXDOMAIN, REFUSED, a referral, a malformed answer, no data at
   all) fails the list at that server; the next server is tried; when all
   fail, :class:`FetchError`.
5. Every wait is bounded, and every list's size: one server gets
   :func:`server_deadline` (30 s, or 6 x ``dns_timeout``) for both ports and
   all its answers, however it trickles them; the whole fetch
   :func:`fetch_deadline` (that, times the servers it may ask).  A list whose
   index is wider than :data:`MAX_WIDTH` names at a level or holds more than
   :data:`MAX_NAMES`, or whose answers pass :data:`MAX_ANSWER_RECORDS` records
   or :data:`MAX_ANSWER_BYTES`, is refused (:class:`TooLarge`), charged as
   its answers arrive; at most :data:`MAX_NAME_SERVERS` learnt name server
   addresses are used.

Transport: TCP only (answers are up to 64 KiB).  All questions of one level
of the index go down one connection at once, as RFC 7766 allows, so a distant
server costs about one round trip per level rather than one per part; a
server that resets connections gets fewer questions at once.  Bulk
answers are decoded straight from the wire: dnspython's message parser builds
an object per record and takes about six times dig's time on 4,000-record
answers; the decoders (:mod:`.decode`) are checked against it by the tests.
"""

from ts_isr.dnsfetch.connection import (
    FALLBACK_PORT,
    MIN_SERVER_DEADLINE,
    WINDOW,
    Deadline,
    DnsConnection,
    fetch_deadline,
    server_deadline,
    with_failover,
)
from ts_isr.dnsfetch.decode import (
    a_addresses,
    aaaa_addresses,
    apl_rdatas,
    cut_apl_items,
    ptr_targets,
    txt_strings,
    txt_tokens,
    v4_column_groups,
)
from ts_isr.dnsfetch.lists import (
    MAX_ANSWER_BYTES,
    MAX_ANSWER_RECORDS,
    MAX_DEPTH,
    MAX_NAMES,
    MAX_PARTS,
    MAX_WIDTH,
    PART_TYPES,
    FetchedList,
    TooLarge,
    add_apl_items,
    add_apl_v4,
    fetch_from,
    fetch_lists,
    read_part,
)
from ts_isr.dnsfetch.nameservers import (
    MAX_NAME_SERVERS,
    answers_for_zone,
    learn_name_servers,
    name_servers_from,
    zone_of,
)
from ts_isr.dnsfetch.wire import (
    AAAA,
    APL,
    IN,
    NS,
    PTR,
    SOA,
    TXT,
    A,
    Malformed,
    Response,
    ServerError,
    check_rcode,
    parse_response,
)

__all__ = [
    "AAAA",
    "APL",
    "FALLBACK_PORT",
    "IN",
    "MAX_ANSWER_BYTES",
    "MAX_ANSWER_RECORDS",
    "MAX_DEPTH",
    "MAX_NAMES",
    "MAX_NAME_SERVERS",
    "MAX_PARTS",
    "MAX_WIDTH",
    "MIN_SERVER_DEADLINE",
    "NS",
    "PART_TYPES",
    "PTR",
    "SOA",
    "TXT",
    "WINDOW",
    "A",
    "Deadline",
    "DnsConnection",
    "FetchedList",
    "Malformed",
    "Response",
    "ServerError",
    "TooLarge",
    "a_addresses",
    "aaaa_addresses",
    "add_apl_items",
    "add_apl_v4",
    "answers_for_zone",
    "apl_rdatas",
    "check_rcode",
    "cut_apl_items",
    "fetch_deadline",
    "fetch_from",
    "fetch_lists",
    "learn_name_servers",
    "name_servers_from",
    "parse_response",
    "ptr_targets",
    "read_part",
    "server_deadline",
    "txt_strings",
    "txt_tokens",
    "v4_column_groups",
    "with_failover",
    "zone_of",
]
