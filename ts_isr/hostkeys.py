"""Trust on first use for the device's SSH host key, in OpenSSH's known_hosts format.

The seed asked the user to "ssh once and accept the key" by hand.  Setup now
fetches the key itself (a key exchange only, no login), shows the fingerprint
the way OpenSSH prints it, and stores it where netmiko (paramiko) looks it up
with strict checking, so a swapped device or a man in the middle is refused.
"""

from __future__ import annotations

import base64
import hashlib
import socket
from pathlib import Path

import paramiko
from paramiko.hostkeys import HostKeyEntry, HostKeys, InvalidHostKey

from ts_isr.errors import DeviceError
from ts_isr.files import write_atomic


def known_hosts_name(host: str, port: int) -> str:
    """The name OpenSSH and paramiko use for a host: ``[host]:port`` unless the port is 22."""
    return host if port == 22 else f"[{host}]:{port}"


def fetch_host_key(host: str, port: int, timeout: float) -> paramiko.PKey:
    """The key the SSH server at ``host:port`` presents, from a key exchange alone (no login)."""
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        raise DeviceError(
            f"cannot reach the device's SSH port {host}:{port} ({exc.strerror or exc}); "
            "check the address, the port and any firewall between this host and the device"
        ) from None
    # Without TCP_NODELAY each small handshake packet waits for a delayed ACK: 45 ms instead of 2 ms.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    transport = paramiko.Transport(sock)
    transport.banner_timeout = timeout
    transport.handshake_timeout = timeout
    try:
        transport.start_client(timeout=timeout)
        return transport.get_remote_server_key()
    except (paramiko.SSHException, OSError, EOFError) as exc:
        raise DeviceError(
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
    for pattern in entry.hostnames:
        if pattern.startswith("|1|"):
            try:
                if HostKeys.hash_host(name, pattern) == pattern:
                    return True
            except (ValueError, AssertionError, IndexError):
                continue
        elif pattern == name:
            return True
    return False


def _entries(known_hosts: Path) -> list[tuple[str, HostKeyEntry | None]]:
    """Every line with its parsed entry (``None`` for comments and lines paramiko cannot read)."""
    try:
        text = known_hosts.read_text(encoding="utf-8")
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


def store_host_key(known_hosts: Path, host: str, port: int, key: paramiko.PKey) -> None:
    """Trust ``key`` for ``host:port``: older keys for that name go, other hosts' lines stay.

    Written atomically with mode 0600, so a crash never leaves a file without
    any key and no other user can swap the key.
    """
    name = known_hosts_name(host, port)
    kept = [line for line, entry in _entries(known_hosts) if entry is None or not _matches(entry, name)]
    kept.append(f"{name} {key.get_name()} {key.get_base64()}")
    write_atomic(known_hosts, "\n".join(kept) + "\n", 0o600)


def known_host_key(known_hosts: Path, host: str, port: int) -> paramiko.PKey | None:
    """The key trusted for ``host:port``, or ``None`` when there is none yet."""
    name = known_hosts_name(host, port)
    for _line, entry in _entries(known_hosts):
        if entry is not None and entry.key is not None and _matches(entry, name):
            return entry.key
    return None
