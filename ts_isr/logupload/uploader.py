"""Sending parts over HTTPS: verified TLS, no redirects, one clear line for each failure."""

from __future__ import annotations

import contextlib
import os
import re
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import requests

from ts_isr.errors import ConfigError
from ts_isr.log import add_secret
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


def default_ca_bundle() -> str | bool:
    """$REQUESTS_CA_BUNDLE, else the system's CA file, else requests' own (certifi)."""
    if os.environ.get("REQUESTS_CA_BUNDLE"):
        return os.environ["REQUESTS_CA_BUNDLE"]
    system = ssl.get_default_verify_paths().cafile
    return system if system and os.path.isfile(system) else True


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
        self.destination = destination
        self.device = device
        self.level = level
        self.host = urlsplit(destination.url).hostname or destination.url
        self.verify = str(destination.ca_bundle) if destination.ca_bundle else default_ca_bundle()
        self.session = requests.Session()
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
        with self._post(body, part) as response:
            self._answered_at = time.monotonic()
            if not 200 <= response.status_code < 300:
                raise UploadError(self._refusal(response, part))

    @contextlib.contextmanager
    def _post(self, body: MultipartBody, part: Part) -> Iterator[requests.Response]:
        what = f"part {part.number} of {part.file_name}"
        again = "it is kept and sent again on the next run"
        try:
            response = self.session.post(
                self.destination.url,
                data=body,
                headers={"Content-Type": body.content_type},
                timeout=(self.destination.connect_timeout, self.destination.read_timeout),
                allow_redirects=False,
                verify=self.verify,
                proxies=self.proxies,
            )
        except requests.exceptions.SSLError as exc:
            raise UploadError(
                f"TLS check of {self.host} failed ({_reason(exc)}); if the server's CA is private, "
                f"set ca_bundle to its certificate (verification is never turned off); {again}"
            ) from None
        except requests.exceptions.ProxyError as exc:
            raise UploadError(f"proxy refused {what} ({_reason(exc)}); check proxy or https_proxy") from None
        except requests.exceptions.ConnectTimeout:
            raise UploadError(
                f"cannot connect to {self.host} within {self.destination.connect_timeout:g} s; "
                f"check that TCP 443 is open (or set proxy); {again}"
            ) from None
        except requests.exceptions.Timeout:
            raise UploadError(
                f"{self.host} did not answer {what} within {self.destination.read_timeout:g} s; {again}"
            ) from None
        except requests.exceptions.RequestException as exc:
            raise UploadError(f"sending {what} to {self.host} failed ({_reason(exc)}); {again}") from None
        try:
            yield response
        finally:
            response.close()

    def _refusal(self, response: requests.Response, part: Part) -> str:
        status = f"{response.status_code} {response.reason or ''}".strip()
        what = f"{self.host} refused part {part.number} of {part.file_name} ({status})"
        if response.status_code == 413:
            return f"{what}: the part is too large; lower log_part_size; it is sent again on the next run"
        if 300 <= response.status_code < 400:
            where = response.headers.get("Location", "elsewhere")
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
    """What went wrong, in a few plain words, from a requests/urllib3 exception chain."""
    text = str(exc)
    for pattern, words in _REASONS:
        match = re.search(pattern, text)
        if match:
            return words or match.group(1).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:200]
