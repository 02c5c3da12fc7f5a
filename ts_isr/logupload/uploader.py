"""Sending parts over HTTPS: verified TLS, no redirects, one clear line for each failure.

The server is not trusted to behave: each request has a total deadline
(:mod:`.deadline`) derived from the part's size, at most :data:`ANSWER_LIMIT`
bytes of its answer are read, and its words (reason phrase, ``Location``,
exception text) are escaped before they reach a terminal, a log or cron's mail.
"""

from __future__ import annotations

import os
import re
import ssl
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import requests
import urllib3

from ts_isr.errors import ConfigError
from ts_isr.files import check_trusted, trusted_path
from ts_isr.log import add_secret, escape
from ts_isr.logupload.deadline import Deadline, GuardedAdapter
from ts_isr.logupload.packing import (
    Device,
    MultipartBody,
    Packed,
    Part,
    UploadError,
    form_fields,
    part_file_name,
)


@dataclass(frozen=True)
class Destination:
    """Where parts go and how: TLS is always verified, against ``ca_bundle`` when one is given."""

    url: str
    ca_bundle: Path | None = None
    proxy: str | None = None
    connect_timeout: float = 15.0
    read_timeout: float = 120.0
    #: The slowest upload waited for, in bytes a second (25 kB/s: a poor 256 kbit/s uplink).
    min_rate: float = 25_000.0

    def time_limit(self, size: int) -> float:
        """Seconds one request of ``size`` bytes may take in all: connecting, sending, the answer.

        The per-operation timeouts are the floor; the size at ``min_rate`` is
        added, so a 5 MB part may take 200 s more, and a trickling server no more.
        """
        return self.connect_timeout + self.read_timeout + size / self.min_rate


def default_ca_bundle() -> str | bool:
    """$REQUESTS_CA_BUNDLE, else the system's CA file, else requests' own (certifi)."""
    if os.environ.get("REQUESTS_CA_BUNDLE"):
        return os.environ["REQUESTS_CA_BUNDLE"]
    system = ssl.get_default_verify_paths().cafile
    return system if system and os.path.isfile(system) else True


#: Bytes of the server's answer read at most: its status line and headers say what it did; the
#: body is read only so that a small one leaves the connection fit to reuse.
ANSWER_LIMIT = 4096
#: What an answer's words (reason phrase, Location, exception text) are cut to in a message.
SHOWN = 200

#: Seconds a kept-alive connection is trusted after its last answer.  A server may close an idle
#: connection just as the next request goes out on it (Apache does after 5 s); past this the next
#: part goes on a fresh connection, never on one that may be gone.
KEEPALIVE_TRUST = 2.0


class Uploader:
    """Sends parts over one HTTPS session; each ``send`` returns only once the server confirmed."""

    def __init__(self, destination: Destination, device: Device, *, level: int = 6) -> None:
        if urlsplit(destination.url).scheme != "https":
            raise ConfigError(f"{destination.url} is not https://; logs are never sent unencrypted")
        if destination.ca_bundle is not None and not os.access(destination.ca_bundle, os.R_OK):
            raise ConfigError(
                f"CA bundle {destination.ca_bundle} cannot be read; fix ca_bundle (TLS is always verified)"
            )
        if destination.ca_bundle is not None:  # whoever could change it could read every upload
            check_trusted(
                trusted_path(destination.ca_bundle, "ca_bundle", kind=ConfigError),
                "ca_bundle",
                kind=ConfigError,
            )
        self.destination = destination
        self.device = device
        self.level = level
        self.host = urlsplit(destination.url).hostname or destination.url
        self.verify = str(destination.ca_bundle) if destination.ca_bundle else default_ca_bundle()
        self.session = requests.Session()
        self.session.mount("https://", GuardedAdapter())
        self._answered_at: float | None = None
        # Per request, so that the config's proxy wins over https_proxy (requests lets the
        # environment override a session's proxies); without one, the environment's applies.
        self.proxies = {"https": destination.proxy} if destination.proxy else {}
        if destination.proxy:
            add_secret(urlsplit(destination.proxy).password)

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> Uploader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def send(self, packed: Packed) -> None:
        """Post one packed part; returns only once the server confirmed it with a 2xx."""
        part = packed.part
        packed.data.seek(0)
        if self._answered_at is not None and time.monotonic() - self._answered_at > KEEPALIVE_TRUST:
            self.session.close()  # drops idle pooled connections; the session opens a new one
        body = MultipartBody(
            form_fields(self.device, part, packed.sha256), part_file_name(part), packed.data, packed.size
        )
        limit = self.destination.time_limit(len(body))
        with Deadline(limit) as deadline:
            response = None
            try:
                response = self._post(body)
                # A part counts as sent only once its whole answer (up to ANSWER_LIMIT) is in.
                response.raw.read(ANSWER_LIMIT, decode_content=False)
                if deadline.expired:  # the cut connection ended the answer early, maybe without an error
                    raise UploadError(self._overdue(body, response, part, limit))
            except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
                if deadline.expired:
                    raise UploadError(self._overdue(body, response, part, limit)) from None
                raise UploadError(self._failure(exc, part)) from None
            finally:
                if response is not None:
                    response.close()  # a small answer read whole leaves the connection to reuse
        self._answered_at = time.monotonic()
        if not 200 <= response.status_code < 300:
            raise UploadError(self._refusal(response, part))

    def _post(self, body: MultipartBody) -> requests.Response:
        """The request, its answer's status and headers in; the body is left to read (``stream``)."""
        return self.session.post(
            self.destination.url,
            data=body,
            headers={"Content-Type": body.content_type, "Accept-Encoding": "identity"},
            timeout=(self.destination.connect_timeout, self.destination.read_timeout),
            allow_redirects=False,
            verify=self.verify,
            proxies=self.proxies,
            stream=True,
        )

    def _overdue(
        self, body: MultipartBody, response: requests.Response | None, part: Part, limit: float
    ) -> str:
        """What the server did with a request that outlived its deadline."""
        what = f"part {part.number} of {part.file_name}"
        if response is not None:
            did = f"answered {what} ({self._status(response)}) but its answer had not ended"
        elif body.taken < len(body):
            did = f"was still taking in {what} ({body.taken} of {len(body)} bytes sent)"
        else:
            did = f"had not answered {what}"
        return (
            f"{self.host} {did} after {limit:.0f} s, the most a part of this size may take; "
            "it is kept and sent again on the next run"
        )

    def _failure(self, exc: BaseException, part: Part) -> str:
        """One line for a request that failed before the server answered."""
        what = f"part {part.number} of {part.file_name}"
        again = "it is kept and sent again on the next run"
        if isinstance(exc, requests.exceptions.SSLError):
            return (
                f"TLS check of {self.host} failed ({_reason(exc)}); if the server's CA is private, "
                f"set ca_bundle to its certificate (verification is never turned off); {again}"
            )
        if isinstance(exc, requests.exceptions.ProxyError):
            return f"proxy refused {what} ({_reason(exc)}); check proxy or https_proxy"
        if isinstance(exc, requests.exceptions.ConnectTimeout):
            return (
                f"cannot connect to {self.host} within {self.destination.connect_timeout:g} s; "
                f"check that TCP 443 is open (or set proxy); {again}"
            )
        if isinstance(exc, (requests.exceptions.Timeout, urllib3.exceptions.TimeoutError, TimeoutError)):
            return f"{self.host} did not answer {what} within {self.destination.read_timeout:g} s; {again}"
        return f"sending {what} to {self.host} failed ({_reason(exc)}); {again}"

    @staticmethod
    def _status(response: requests.Response) -> str:
        """The status code and reason phrase, escaped: the server chose the words."""
        return f"{response.status_code} {escape(response.reason or '', SHOWN)}".strip()

    def _refusal(self, response: requests.Response, part: Part) -> str:
        what = f"{self.host} refused part {part.number} of {part.file_name} ({self._status(response)})"
        if response.status_code == 413:
            return f"{what}: the part is too large; lower log_part_size; it is sent again on the next run"
        if 300 <= response.status_code < 400:
            where = escape(response.headers.get("Location", "elsewhere"), SHOWN)
            return f"{what}: it redirects to {where}; set url to the final address"
        return f"{what}; it is kept and sent again on the next run"


_REASONS = (
    (r"certificate verify failed: ([^(')\]]+)", None),
    (r"Remote end closed", "the server closed the connection without an answer"),
    (r"reset by peer", "the connection was reset"),
    (r"Broken pipe", "the connection broke"),
    (r"Connection refused", "the connection was refused"),
    (r"Name or service not known|name resolution", "the host name is not known"),
)


def _reason(exc: BaseException) -> str:
    """What went wrong, in a few plain words, from a requests/urllib3 exception chain (escaped: it
    may quote the server)."""
    text = str(exc)
    for pattern, words in _REASONS:
        match = re.search(pattern, text)
        if match:
            return words or escape(match.group(1).strip(), SHOWN)
    return escape(text.splitlines()[0] if text else type(exc).__name__, SHOWN)
