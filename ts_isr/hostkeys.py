"""Trust on first use for the device's SSH host key, in OpenSSH's known_hosts format.

The seed asked the user to "ssh once and accept the key" by hand.  Setup now
fetches the key itself (a key exchange only, no login), shows the fingerprint
the way OpenSSH prints it, and stores it where netmiko (paramiko) looks it up
with strict checking, so a swapped device or a man in the middle is refused.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import os
import socket
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import paramiko
from paramiko.hostkeys import HostKeyEntry, HostKeys, InvalidHostKey

from ts_isr.errors import DeviceError, HostKeyError, Unreachable
from ts_isr.files import open_nofollow, write_atomic
from ts_isr.log import log


def known_hosts_name(host: str, port: int) -> str:
    """The name OpenSSH and paramiko use for a host: ``[host]:port`` unless the port is 22."""
    return host if port == 22 else f"[{host}]:{port}"


def _preferring(key_types: Sequence[str], key_name: str) -> list[str]:
    """``key_types`` with ``key_name`` first, as paramiko's SSHClient (under netmiko) orders them
    for a host it knows, so that the key fetched here is the one a login will be shown."""
    if key_name == "ssh-rsa":
        key_name = next((name for name in ("rsa-sha2-512", "rsa-sha2-256") if name in key_types), key_name)
    if key_name not in key_types:
        return list(key_types)
    return [key_name, *(name for name in key_types if name != key_name)]


def fetch_host_key(host: str, port: int, timeout: float, prefer: str | None = None) -> paramiko.PKey:
    """The key the SSH server at ``host:port`` presents, from a key exchange alone (no login).

    ``prefer`` (a key type such as ``ssh-ed25519``) asks for that type first.
    """
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        raise Unreachable(
            f"cannot reach the device's SSH port {host}:{port} ({exc.strerror or exc}); "
            "check the address, the port and any firewall between this host and the device"
        ) from None
    # Without TCP_NODELAY each small handshake packet waits for a delayed ACK: 45 ms instead of 2 ms.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    transport = paramiko.Transport(sock)
    transport.banner_timeout = timeout
    transport.handshake_timeout = timeout
    if prefer is not None:
        options = transport.get_security_options()
        options.key_types = _preferring(options.key_types, prefer)
    try:
        transport.start_client(timeout=timeout)
        return transport.get_remote_server_key()
    except (paramiko.SSHException, OSError, EOFError) as exc:
        raise Unreachable(
            f"{host}:{port} did not complete an SSH key exchange ({exc}); is it the device's SSH port?"
        ) from None
    finally:
        transport.close()
        sock.close()


def fingerprint(key: paramiko.PKey) -> str:
    """``SHA256:...`` exactly as ``ssh-keygen -lf`` and the ssh client print it."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


def _matches(entry: HostKeyEntry, name: str) -> bool:
    return _names_match(entry.hostnames, name)


def _names_match(patterns: Sequence[str], name: str) -> bool:
    """One of a known_hosts line's host patterns is ``name``, plainly or hashed (``|1|salt|hash``)."""
    for pattern in patterns:
        if pattern.startswith("|1|"):
            try:
                if HostKeys.hash_host(name, pattern) == pattern:
                    return True
            except (ValueError, AssertionError, IndexError):
                continue
        elif pattern == name:
            return True
    return False


@contextmanager
def device_known_hosts(known_hosts: Path, host: str, port: int) -> Iterator[Path]:
    """A private copy of the lines of ``known_hosts`` that name ``host:port``, for paramiko to load.

    paramiko decodes the key of every line of the file it loads, and a fleet's
    known_hosts holds a line per device: each login would decode them all
    (40,000 keys for 200 devices).  Lines are picked by their host field, keys
    left undecoded; the copy sits in a folder of its own (mode 0700) and goes
    after the login.
    """
    name = known_hosts_name(host, port)
    try:
        text = known_hosts.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = ""
    except OSError as exc:
        raise DeviceError(f"cannot read {known_hosts} ({exc.strerror}); fix it or run setup again") from None
    picked = [
        line
        for line in text.split("\n")
        if len(fields := line.split()) >= 3
        and not fields[0].startswith("#")
        and _names_match(fields[0].split(","), name)
    ]
    with tempfile.TemporaryDirectory(prefix="ts_isr-known_hosts.") as folder:
        copy = Path(folder) / "known_hosts"
        try:
            copy.write_text("".join(line + "\n" for line in picked), encoding="utf-8")
        except OSError as exc:
            raise DeviceError(
                f"cannot copy {known_hosts} for the login ({exc.strerror}); free some disk"
            ) from None
        yield copy


def _entries(known_hosts: Path) -> list[tuple[str, HostKeyEntry | None]]:
    """Every line with its parsed entry (``None`` for comments and lines paramiko cannot read)."""
    try:
        text = known_hosts.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    rows = []
    for line in text.splitlines():
        stripped = line.strip()
        entry = None
        if stripped and not stripped.startswith("#"):
            try:
                entry = HostKeyEntry.from_line(stripped)
            except (InvalidHostKey, paramiko.SSHException, ValueError):
                entry = None
        rows.append((line, entry))
    return rows


@contextmanager
def _rewriting(known_hosts: Path) -> Iterator[None]:
    """One rewrite of ``known_hosts`` at a time (a fleet's workers trust devices at once): each
    reads the file after the previous one wrote it, so no trust loses another's line."""
    known_hosts.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = open_nofollow(known_hosts.with_name(known_hosts.name + ".lock"), os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # held only for one read and one atomic write
        yield
    finally:
        os.close(fd)


def store_host_key(known_hosts: Path, host: str, port: int, key: paramiko.PKey) -> None:
    """Trust ``key`` for ``host:port``: older keys for that name go, other hosts' lines stay.

    Written atomically with mode 0600, so a crash never leaves a file without
    any key and no other user can swap the key.
    """
    name = known_hosts_name(host, port)
    with _rewriting(known_hosts):
        kept = [line for line, entry in _entries(known_hosts) if entry is None or not _matches(entry, name)]
        kept.append(f"{name} {key.get_name()} {key.get_base64()}")
        write_atomic(known_hosts, "\n".join(kept) + "\n", 0o600)


def known_host_keys(known_hosts: Path, host: str, port: int) -> list[paramiko.PKey]:
    """Every key trusted for ``host:port``, in file order (a login asks for the first one's type)."""
    name = known_hosts_name(host, port)
    return [
        entry.key
        for _line, entry in _entries(known_hosts)
        if entry is not None and entry.key is not None and _matches(entry, name)
    ]


def trust(
    known_hosts: Path,
    host: str,
    port: int,
    timeout: float,
    *,
    unasked: bool,
    confirm: Callable[[bool], bool] | None = None,
) -> None:
    """Trust on first use: make sure ``known_hosts`` trusts the key the device presents.

    A key already trusted (compared with the trusted key of the same type)
    passes.  A first key is trusted with ``unasked`` (``--trust-host-key``) or
    when ``confirm(default)`` says yes.  A changed key is trusted only by
    ``confirm``, a person at a terminal who was shown both fingerprints:
    never by a flag, which in cron would switch host-key checking off.
    """
    trusted = known_host_keys(known_hosts, host, port)
    key = fetch_host_key(host, port, timeout, prefer=trusted[0].get_name() if trusted else None)
    shown = fingerprint(key)
    same_type = [old for old in trusted if old.get_name() == key.get_name()]
    if any(old.asbytes() == key.asbytes() for old in same_type):
        log.info(f"The device's SSH host key {shown} is already trusted.")
        return
    if trusted:
        old = (same_type or trusted)[0]
        was = f"{old.get_name()} {fingerprint(old)}"
        log.warning(
            f"THE DEVICE'S SSH HOST KEY HAS CHANGED: it was {was}, it is now {key.get_name()} {shown}. "
            "Trust the new key only if the device was replaced or re-keyed: someone may be in between."
        )
        if confirm is None:
            raise HostKeyError(
                f"the SSH host key of {host}:{port} has changed (trusted: {was}; presented: "
                f"{key.get_name()} {shown}); nothing was changed. If the device was replaced or re-keyed, "
                "run setup at a terminal: it shows both fingerprints and asks"
            )
    log.info(f"The device {host} port {port} presents this SSH host key: {key.get_name()} {shown}")
    log.info("Compare it with the fingerprint the device itself shows before you trust it.")
    if not (unasked and not trusted):
        if confirm is None:
            raise HostKeyError(
                f"the device's SSH host key {shown} is not trusted yet; check it on the device and "
                "run again with --trust-host-key"
            )
        if not confirm(not trusted):
            raise HostKeyError("the device's SSH host key was not trusted; nothing was installed")
    store_host_key(known_hosts, host, port, key)
    log.info(f"Trusted the device's SSH host key {shown} of {host}:{port} in {known_hosts}.")
