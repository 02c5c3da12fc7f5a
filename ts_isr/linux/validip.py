"""The seed's "check valid IP": does the ThreatSTOP DNS service accept questions from this host?

ThreatSTOP grants access by the asking host's public address; a host that is
not registered is refused (rcode REFUSED).  One question for the block list
tells the two apart without fetching the policy, for ``--skip_checkpolicy``
installs; any other answer (even NXDOMAIN) means this host may ask.
"""

from __future__ import annotations

from typing import Any

import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype

from ts_isr.errors import ConfigError, FetchError
from ts_isr.fetch import dns_settings


def check_valid_ip(config: Any) -> None:
    """ConfigError when every server refuses this host; FetchError when none can be reached."""
    servers, port, timeout = dns_settings(config)
    query = dns.message.make_query(config.get("block_list"), dns.rdatatype.PTR)
    refused = []
    for server in servers:
        try:
            answer = dns.query.tcp(query, str(server), timeout=timeout, port=port)
        except (OSError, EOFError, dns.exception.DNSException):
            continue
        if answer.rcode() != dns.rcode.REFUSED:
            return
        refused.append(str(server))
    if refused:
        raise ConfigError(
            f"the ThreatSTOP DNS service ({', '.join(refused)}) refuses this host: its public IP is not "
            "registered; set it on the portal's device page, or pass --skip_checkvalidip for offsite installs"
        )
    raise FetchError(
        f"cannot reach the ThreatSTOP DNS service on TCP port {port}; check the firewall "
        "(or pass --skip_checkvalidip); nothing was changed"
    )
