"""hostkeys against the lab device's real SSH server, checked by OpenSSH's own tools and by netmiko."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import paramiko
import pytest
from netmiko import ConnectHandler
from netmiko.exceptions import NetmikoTimeoutException

from tests.support.lab import lab_device
from tests.support.tools import free_port, require_tool, wait_for_port
from ts_isr.errors import DeviceError
from ts_isr.hostkeys import (
    device_known_hosts,
    fetch_host_key,
    fingerprint,
    known_host_keys,
    known_hosts_name,
    store_host_key,
    trust,
)

OTHER_ED25519 = "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"


def strict_login(dev, known_hosts: Path) -> str:
    """A netmiko login that trusts only ``known_hosts``, as upload_rules does."""
    params = dev.netmiko_params() | {
        "ssh_strict": True,
        "system_host_keys": False,
        "alt_host_keys": True,
        "alt_key_file": str(known_hosts),
        "conn_timeout": 30,
    }
    with ConnectHandler(**params) as connection:
        return connection.find_prompt()


def test_fetched_key_is_the_devices_and_openssh_agrees_on_fingerprint_and_file(tmp_path: Path) -> None:
    keygen = require_tool("ssh-keygen")
    with lab_device(tmp_path) as dev:
        key = fetch_host_key(dev.host, dev.port, timeout=30)
        known_hosts = tmp_path / "ssh" / "known_hosts"
        store_host_key(known_hosts, dev.host, dev.port, key)

        assert known_hosts.read_text().strip() == dev.known_hosts_line()
        assert oct(known_hosts.stat().st_mode & 0o777) == "0o600"
        public = dev.state_dir / "ssh_host_key.pub"
        printed = subprocess.run([keygen, "-lf", str(public)], capture_output=True, text=True).stdout
        assert fingerprint(key) == printed.split()[1]
        found = subprocess.run(
            [keygen, "-F", f"[{dev.host}]:{dev.port}", "-f", str(known_hosts)], capture_output=True, text=True
        )
        assert found.returncode == 0, "OpenSSH finds the entry under [host]:port"
        assert [fingerprint(k) for k in known_host_keys(known_hosts, dev.host, dev.port)] == [
            fingerprint(key)
        ]
        assert strict_login(dev, known_hosts).strip(), "netmiko logged in with the stored key"


def test_strict_netmiko_refuses_the_device_until_its_key_is_stored(tmp_path: Path) -> None:
    with lab_device(tmp_path) as dev:
        known_hosts = tmp_path / "known_hosts"
        known_hosts.write_text("")
        with pytest.raises(NetmikoTimeoutException, match="not found in known_hosts"):
            strict_login(dev, known_hosts)
        store_host_key(known_hosts, dev.host, dev.port, fetch_host_key(dev.host, dev.port, timeout=30))
        strict_login(dev, known_hosts)


def test_concurrent_trusts_lose_no_line(tmp_path: Path) -> None:
    """A fleet's workers trust their devices at the same time: every key must stay."""
    known_hosts = tmp_path / "known_hosts"
    key = paramiko.ECDSAKey.generate()
    start = threading.Barrier(24)

    def store(port: int) -> None:
        start.wait()
        for round_ in range(5):
            store_host_key(known_hosts, "127.0.0.1", port * 10 + round_, key)

    threads = [threading.Thread(target=store, args=(2000 + n,)) for n in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(known_hosts.read_text().splitlines()) == 24 * 5


def test_storing_replaces_the_old_key_of_that_host_only(tmp_path: Path) -> None:
    known_hosts = tmp_path / "known_hosts"
    old = paramiko.RSAKey.generate(1024)
    neighbour = paramiko.RSAKey.generate(1024)
    hashed = paramiko.HostKeys.hash_host("[127.0.0.1]:2222")
    known_hosts.write_text(
        "# kept comment\n"
        f"[127.0.0.1]:2222 ssh-rsa {old.get_base64()}\n"
        f"{hashed} ssh-rsa {old.get_base64()}\n"
        f"192.0.2.7 ssh-rsa {neighbour.get_base64()}\n"
        "garbage line that paramiko cannot read\n"
    )
    with lab_device(tmp_path) as dev:
        new = fetch_host_key(dev.host, dev.port, timeout=30)
    store_host_key(known_hosts, "127.0.0.1", 2222, new)
    store_host_key(known_hosts, "127.0.0.1", 2222, new)
    lines = known_hosts.read_text().splitlines()
    assert lines[0] == "# kept comment"
    assert f"192.0.2.7 ssh-rsa {neighbour.get_base64()}" in lines
    assert "garbage line that paramiko cannot read" in lines
    assert old.get_base64() not in known_hosts.read_text(), "the plain and the hashed old entry both went"
    assert [line for line in lines if new.get_base64() in line] == [
        f"[127.0.0.1]:2222 {new.get_name()} {new.get_base64()}"
    ]
    assert [fingerprint(k) for k in known_host_keys(known_hosts, "127.0.0.1", 2222)] == [fingerprint(new)]
    assert [fingerprint(k) for k in known_host_keys(known_hosts, "192.0.2.7", 22)] == [fingerprint(neighbour)]
    assert known_host_keys(known_hosts, "127.0.0.1", 22) == []
    assert known_host_keys(tmp_path / "absent", "127.0.0.1", 22) == []


def test_trust_compares_the_key_of_the_same_type_and_never_takes_a_changed_key_unasked(
    tmp_path: Path,
) -> None:
    """Review items 12, 3 and 13: an RSA line from ssh-keyscan before the device's ed25519 line is no
    change; a changed key needs a person (confirm); an undecodable byte is not an internal error."""
    stale_rsa = paramiko.RSAKey.generate(1024)
    with lab_device(tmp_path) as dev:
        known_hosts = tmp_path / "known_hosts"
        name = f"[{dev.host}]:{dev.port}"
        both = f"{name} ssh-rsa {stale_rsa.get_base64()}\n{dev.known_hosts_line()}\n"
        known_hosts.write_text(both)
        trust(known_hosts, dev.host, dev.port, 30, unasked=False)
        assert known_hosts.read_text() == both, "already trusted: nothing written"
        strict_login(dev, known_hosts)
        undecodable = tmp_path / "latin-1"
        undecodable.write_bytes(b"# caf\xe9\n" + both.encode())
        keys = known_host_keys(undecodable, dev.host, dev.port)
        assert [key.get_name() for key in keys] == ["ssh-rsa", "ssh-ed25519"]

        changed = f"{name} ssh-ed25519 {OTHER_ED25519}\n"
        known_hosts.write_text(changed)
        with pytest.raises(DeviceError, match=r"has changed.*run setup at a terminal"):
            trust(known_hosts, dev.host, dev.port, 30, unasked=True)
        assert known_hosts.read_text() == changed
        asked = []
        with pytest.raises(DeviceError, match="was not trusted"):
            trust(
                known_hosts, dev.host, dev.port, 30, unasked=True, confirm=lambda d: asked.append(d) or False
            )
        assert asked == [False] and known_hosts.read_text() == changed, "a changed key is offered with N"
        trust(known_hosts, dev.host, dev.port, 30, unasked=False, confirm=lambda default: True)
        assert known_hosts.read_text().strip() == dev.known_hosts_line()

        known_hosts.write_text("")
        with pytest.raises(DeviceError, match=r"not trusted yet.*--trust-host-key"):
            trust(known_hosts, dev.host, dev.port, 30, unasked=False)
        trust(known_hosts, dev.host, dev.port, 30, unasked=True)
        assert known_hosts.read_text().strip() == dev.known_hosts_line()
        strict_login(dev, known_hosts)


def test_names_follow_openssh() -> None:
    assert known_hosts_name("192.0.2.1", 22) == "192.0.2.1"
    assert known_hosts_name("192.0.2.1", 2222) == "[192.0.2.1]:2222"
    assert known_hosts_name("2001:db8::1", 830) == "[2001:db8::1]:830"


def test_nothing_listening_and_not_ssh_are_one_clear_line_each(tmp_path: Path) -> None:
    with pytest.raises(DeviceError, match=r"cannot reach the device's SSH port 127\.0\.0\.1:\d+"):
        fetch_host_key("127.0.0.1", free_port(), timeout=5)
    port = free_port()
    # A plain HTTP-ish server: accepts, says something that is not SSH, closes.
    server = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import socket;s=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);"
            f"s.bind(('127.0.0.1',{port}));s.listen()\n"
            "while True:\n c,_=s.accept();c.sendall(b'HTTP/1.0 400 no\\r\\n\\r\\n');c.close()",
        ]
    )
    try:
        wait_for_port(port, timeout=30)
        with pytest.raises(DeviceError, match="did not complete an SSH key exchange"):
            fetch_host_key("127.0.0.1", port, timeout=10)
    finally:
        server.kill()
        server.wait()


def test_a_login_loads_only_the_devices_own_lines_from_a_fleets_known_hosts(tmp_path: Path) -> None:
    """paramiko decodes every key of the file it loads: a login is given the device's lines alone."""
    hashed = paramiko.HostKeys.hash_host("[192.0.2.7]:2222")
    lines = [
        f"[192.0.2.7]:2222 ssh-ed25519 {OTHER_ED25519}",
        f"[192.0.2.7]:2223 ssh-ed25519 {OTHER_ED25519}",
        f"192.0.2.7 ssh-ed25519 {OTHER_ED25519}",
        "other,[192.0.2.7]:2222 ssh-rsa AAAAB3NzaC1yc2E=",
        f"{hashed} ssh-ed25519 {OTHER_ED25519}",
        f"# [192.0.2.7]:2222 ssh-ed25519 {OTHER_ED25519}",
        "[192.0.2.7]:2222",
    ]
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("\n".join(lines) + "\n")
    with device_known_hosts(known_hosts, "192.0.2.7", 2222) as copy:
        assert copy.read_text().splitlines() == [lines[0], lines[3], lines[4]]
        assert copy.parent.stat().st_mode & 0o077 == 0, "in a folder of its own"
    assert not copy.exists()
    with device_known_hosts(tmp_path / "absent", "192.0.2.7", 2222) as copy:
        assert copy.read_text() == ""
