"""Web automation (``tsadmin add --type auto``): the device's settings from the configuration service.

The vendor documents the service (DNS over TLS, TCP port 5353, authenticated
by the device ID and its key) but not its records.  This module is the
project's definition, kept here alone so that a real capture can replace it:

* **Question**: ``TXT <device_id>.<proof>.config.threatstop.local`` where
  ``proof`` is the first 32 hex digits of HMAC-SHA256(key = the device key,
  message = the device ID in lower case).  The key proves access without ever
  travelling, not even inside the TLS session; a wrong key asks for a name
  that does not exist.
* **Transport**: one query over TLS to ``autoconf_server:autoconf_port``; the
  server's certificate must be valid for ``autoconf_hostname`` against the
  system CAs or ``ca_bundle``.  A failed check is a failure, never a fallback.
* **Answer**: TXT records whose character-strings are each one ``key=value``
  pair (printable ASCII).  Only :data:`AUTO_KEYS` are taken; any other key is
  logged and dropped; a key given twice, a malformed pair or an empty answer
  fails the whole answer.  The values are then checked by the tsadmin schema
  like any typed value.  ``NXDOMAIN`` means an unknown device or a wrong key.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import ssl
from typing import Any

import dns.exception
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype

from ts_isr.errors import ConfigError, FetchError
from ts_isr.log import add_secret, escape, log

ZONE = "config.threatstop.local"
PROOF_DIGITS = 32
# The settings the portal manages; everything else stays as the host has it.
AUTO_KEYS = frozenset(
    {
        "block_list",
        "allow_list",
        "dns_server",
        "port",
        "max_policy_size",
        "tsprefix",
        "allow_action",
        "logopts",
        "logopts_direction",
        "load_br_netfilter",
        "external_ip",
        "url",
    }
)
_DEVICE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}")
_PAIR = re.compile(r"([a-z_][a-z0-9_]{0,40})=([\x20-\x7e]{0,255})")


def query_name(device_id: str, key: str) -> dns.name.Name:
    """The name that holds this device's settings: only a holder of the key can compute it."""
    if not _DEVICE_ID.fullmatch(device_id):
        raise ConfigError(f"device_id {escape(device_id, 70)!r} is not a device ID; copy it from the portal")
    if not key:
        raise ConfigError("--type auto needs the device key: set $TS_AUTO_KEY or pass --auto_key_file")
    proof = hmac.new(key.encode(), device_id.lower().encode(), hashlib.sha256).hexdigest()[:PROOF_DIGITS]
    return dns.name.from_text(f"{device_id.lower()}.{proof}.{ZONE}")


def parse_settings(strings: list[bytes]) -> dict[str, str]:
    """The ``key=value`` strings of the answer, strictly; unknown keys are dropped with a warning."""
    if not strings:
        raise FetchError("the configuration service sent no settings; check the device on the portal")
    settings: dict[str, str] = {}
    for raw in strings:
        try:
            text = raw.decode("ascii")
        except UnicodeDecodeError:
            text = ""
        pair = _PAIR.fullmatch(text)
        if pair is None:
            raise FetchError(f"the configuration service sent a malformed setting {escape(repr(raw), 80)}")
        name, value = pair.groups()
        if name in settings:
            raise FetchError(f"the configuration service sent {name} twice; nothing was changed")
        if name not in AUTO_KEYS:
            log.warning(f"the configuration service sent an unknown setting {name!r}; ignored")
            continue
        settings[name] = value.strip()
    return settings


def tls_context(ca_bundle: Any) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca_bundle) if ca_bundle else None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def fetch_settings(config: Any) -> dict[str, str]:
    """Ask the configuration service for this device's settings (a :class:`FetchError` on failure)."""
    device_id = config.get("device_id") or ""
    key = config.get("auto_key") or ""
    add_secret(key)
    name = query_name(device_id, key)
    servers = config.get("autoconf_server") or []
    port = int(config.get("autoconf_port") or 5353)
    timeout = float(config.get("dns_timeout") or 5.0)
    hostname = config.get("autoconf_hostname")
    context = tls_context(config.get("ca_bundle"))
    problems = []
    for server in servers:
        query = dns.message.make_query(name, dns.rdatatype.TXT)
        try:
            answer = dns.query.tls(
                query, str(server), timeout=timeout, port=port, ssl_context=context, server_hostname=hostname
            )
        except ssl.SSLError as exc:
            problems.append(
                f"{server}: TLS failed ({exc.reason or exc}); check ca_bundle and autoconf_hostname"
            )
            continue
        except (OSError, EOFError, dns.exception.DNSException) as exc:
            problems.append(f"{server}: {type(exc).__name__} {escape(str(exc), 80)}")
            continue
        if answer.rcode() == dns.rcode.NXDOMAIN:
            raise ConfigError(
                f"the configuration service does not know device {device_id} with this key; "
                "check the device ID and key on the portal"
            )
        if answer.rcode() != dns.rcode.NOERROR:
            problems.append(f"{server}: answered {dns.rcode.to_text(answer.rcode())}")
            continue
        strings = [
            s
            for rrset in answer.answer
            if rrset.rdtype == dns.rdatatype.TXT
            for r in rrset
            for s in r.strings
        ]
        settings = parse_settings(strings)
        log.info(f"Received {len(settings)} settings for device {device_id} from the configuration service")
        return settings
    raise FetchError(
        "cannot reach the configuration service (" + "; ".join(problems or ["no autoconf_server"]) + "); "
        f"check outbound TCP {port} to it; nothing was changed"
    )
