"""How each threatstop.conf value is read: one parser a kind of value, each saying what it expects,
and the :class:`Key` that ties a name to its parser, default and help (the schema's building block)."""

from __future__ import annotations

import ipaddress
import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

Parser = Callable[[str], Any]

_DNS_LABEL = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)")
_GROUP_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_PLAIN = re.compile(r"[^\s\x00-\x1f\x7f]+")


class Invalid(ValueError):
    """A value that does not fit its key; the text says what is expected."""


def int_range(low: int, high: int) -> Parser:
    def parse(text: str) -> int:
        if not re.fullmatch(r"[0-9]+", text) or not low <= int(text) <= high:
            raise Invalid(f"must be a whole number from {low} to {high}")
        return int(text)

    return parse


def float_range(low: float, high: float) -> Parser:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise Invalid(f"must be a number from {low} to {high}") from None
        if not low <= value <= high:
            raise Invalid(f"must be a number from {low} to {high}")
        return value

    return parse


def choice(*choices: str) -> Parser:
    def parse(text: str) -> str:
        if text.lower() not in choices:
            raise Invalid(f"must be one of: {', '.join(choices)}")
        return text.lower()

    return parse


def parse_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("yes", "y", "true", "on", "1"):
        return True
    if lowered in ("no", "n", "false", "off", "0"):
        return False
    raise Invalid("must be yes or no")


def parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise Invalid("must be an IP address such as 192.0.2.1") from None


def parse_ip_list(text: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    items = [item for item in re.split(r"[\s,]+", text) if item]
    if not items:
        raise Invalid("must list at least one IP address")
    return [parse_ip(item) for item in items]


def parse_dns_name(text: str) -> str:
    name = text.rstrip(".")
    if len(name) > 253 or not all(_DNS_LABEL.fullmatch(label) for label in name.split(".")):
        raise Invalid("must be a DNS name such as mylist.threatstop.local")
    return name


def parse_group_name(text: str) -> str:
    if not _GROUP_NAME.fullmatch(text):
        raise Invalid("must be 1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit")
    return text


def parse_plain(text: str) -> str:
    """One word with no spaces or control characters: it goes to a device's login."""
    if not _PLAIN.fullmatch(text):
        raise Invalid("must not be empty or contain spaces or control characters")
    return text


def parse_secret(text: str) -> str:
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in text):
        raise Invalid("must not contain control characters")
    return text


def parse_command(text: str) -> tuple[str, ...]:
    """A command line split as a shell would, but run without one: no shell text reaches a shell."""
    try:
        words = tuple(shlex.split(parse_secret(text)))
    except ValueError:
        raise Invalid("must be a command line with balanced quotes") from None
    if not words:
        raise Invalid("must name a command")
    return words


def parse_path(text: str) -> Path:
    if "\x00" in text:
        raise Invalid("must be a file path")
    return Path(text).expanduser()


def parse_path_or_off(text: str) -> Path | bool:
    """A folder, or ``off`` (False): an empty value (None) means the default."""
    return False if text.strip().lower() == "off" else parse_path(text)


def parse_url(text: str) -> str:
    try:
        parts = urlsplit(text)
        usable = parts.scheme in ("https", "http") and bool(parts.hostname) and parts.port != 0
    except ValueError:  # a broken [IPv6] host or a port that is not a number
        usable = False
    if not usable:
        raise Invalid("must be a URL such as https://logs.threatstop.com/upload")
    return text


# To the last "@": a password may hold "/" or "@" (then the URL is refused, and shown masked).
_USERINFO_PASSWORD = re.compile(r"(?<=//)([^/@\s:]*):\S*@")


def without_password(text: str) -> str:
    """A URL as it may be shown: a password in it (``http://user:pass@proxy``) masked."""
    return _USERINFO_PASSWORD.sub(r"\1:******@", text)


def url_password(text: object) -> str | None:
    """The password a URL value holds (a proxy's), to be masked wherever the run writes."""
    if not isinstance(text, str):
        return None
    try:
        return urlsplit(text).password or None
    except ValueError:
        return None


def parse_https_url(text: str) -> str:
    if urlsplit(parse_url(text)).scheme != "https":
        raise Invalid("must be an https:// URL: logs are never sent unencrypted")
    return text


@dataclass(frozen=True)
class Key:
    """One configuration key: how to parse it, its default, and the comment that explains it."""

    name: str
    parse: Parser
    help: str
    default: str | None = None
    required: bool = False
    secret: bool = False
    relative_to_config: bool = False


Schema = Mapping[str, Key]


def schema(*keys: Key) -> dict[str, Key]:
    return {key.name: key for key in keys}


# Defaults of the relative_to_config keys: beside the config (a checkout, a test, a private config),
# except for the configs the Debian packages use, whose state goes to /var/lib and logs to /var/log.
