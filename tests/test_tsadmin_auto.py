"""--type auto: settings over DNS over TLS from a real endpoint (stunnel4 in front of Knot, trustme CA)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dns.name
import pytest
import trustme

from tests.support.hostroot import shape_host
from tests.support.knot import KnotServer, make_zone_records
from tests.support.netns import NetnsPair, entered
from tests.support.tools import free_port, require_tool, wait_for_port
from tests.support.users import NOBODY
from ts_isr.autoconf import ZONE, parse_settings, query_name
from ts_isr.autoconf import fetch_settings as fetch
from ts_isr.errors import ConfigError, FetchError
from ts_isr.linux.addsettings import KEY_FILE_LIMIT, auto_key
from ts_isr.lock import run_lock

TSADMIN = Path(__file__).resolve().parent.parent / "bin" / "tsadmin"
DEVICE = "tdid-4f2a"
KEY = "k3y-0f-the-device"
HOSTNAME = "config.threatstop.test"
POLICY_ZONE = "test.threatstop.local"


class Settings(dict):
    """A stand-in for a loaded config: fetch_settings only calls ``get``."""


def settings_zone(device: str, key: str, pairs: list[str]) -> str:
    owner = query_name(device, key).relativize(dns.name.from_text(ZONE)).to_text()
    return make_zone_records(txt={owner: pairs})


@contextmanager
def stunnel(tmp_path: Path, ca: trustme.CA, backend_port: int) -> Iterator[int]:
    """TLS on a free loopback port, passed on to ``backend_port`` (Knot) in clear."""
    binary = require_tool("stunnel4")
    pem = tmp_path / "server.pem"
    ca.issue_cert(HOSTNAME).private_key_and_cert_chain_pem.write_to_path(str(pem))
    port = free_port()
    conf = tmp_path / "stunnel.conf"
    conf.write_text(
        f"foreground = yes\npid =\n[dot]\naccept = 127.0.0.1:{port}\nconnect = 127.0.0.1:{backend_port}\n"
        f"cert = {pem}\n"
    )
    process = subprocess.Popen([binary, str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, timeout=30)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture
def service(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    pairs = ["block_list=blk.test.threatstop.local", "tsprefix=TA", "colour=blue"]
    with KnotServer(tmp_path) as knot:
        knot.add_zone(ZONE, settings_zone(DEVICE, KEY, pairs))
        knot.reload()
        with stunnel(tmp_path, ca, knot.port) as port:
            yield port, ca_file


def config_for(port: int, ca_file: Path, key: str = KEY) -> Settings:
    return Settings(
        device_id=DEVICE,
        auto_key=key,
        autoconf_server=["127.0.0.1"],
        autoconf_port=port,
        autoconf_hostname=HOSTNAME,
        ca_bundle=ca_file,
        dns_timeout=10,
    )


def test_the_key_proves_access_without_travelling():
    name = query_name(DEVICE, KEY).to_text()
    assert name.startswith(f"{DEVICE}.") and name.endswith(f".{ZONE}.")
    assert KEY not in name
    assert query_name(DEVICE, KEY) == query_name(DEVICE.upper(), KEY)
    assert query_name(DEVICE, KEY) != query_name(DEVICE, KEY + "x")
    with pytest.raises(ConfigError, match="device ID"):
        query_name("bad.id", KEY)
    with pytest.raises(ConfigError, match="TS_AUTO_KEY"):
        query_name(DEVICE, "")


def test_settings_are_parsed_strictly():
    assert parse_settings([b"block_list=a.threatstop.local", b"colour=blue", b"port=5353"]) == {
        "block_list": "a.threatstop.local",
        "port": "5353",
    }
    for bad in ([], [b"port"], [b"port=53\n"], [b"port=53", b"port=5353"], [b"PORT=53"], ["é=1".encode()]):
        with pytest.raises(FetchError):
            parse_settings(bad)


def test_settings_come_over_tls_from_a_real_endpoint(service):
    port, ca_file = service
    assert fetch(config_for(port, ca_file)) == {"block_list": "blk.test.threatstop.local", "tsprefix": "TA"}


def test_a_wrong_key_is_told_apart_from_an_outage(service):
    port, ca_file = service
    with pytest.raises(ConfigError, match="does not know device"):
        fetch(config_for(port, ca_file, key="wrong"))


def test_a_certificate_from_another_ca_is_refused(service, tmp_path: Path):
    port, _ = service
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    with pytest.raises(FetchError, match="TLS failed"):
        fetch(config_for(port, other))


def test_add_type_auto_installs_the_portals_policy(tmp_path: Path):
    """Whole path in a namespace: settings over TLS, then the policy they name, then the firewall."""
    require_tool("ipset")
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    root = shape_host(tmp_path / "root")
    with NetnsPair(("192.0.2.10",)) as pair:
        knot = KnotServer(tmp_path)
        knot.add_zone(POLICY_ZONE, make_zone_records(a={"blk": ["192.0.2.10"]}))
        knot.add_zone(ZONE, "")
        with entered(pair.host):
            knot.start()
        try:
            pairs = [
                "block_list=blk.test.threatstop.local",
                "dns_server=127.0.0.1",
                f"port={knot.port}",
                "tsprefix=TA",
            ]
            knot.add_zone(ZONE, settings_zone(DEVICE, KEY, pairs))
            with entered(pair.host):
                knot.reload()
                tls = stunnel(tmp_path, ca, knot.port)
                port = tls.__enter__()
            try:
                config = root / "opt/threatstop/threatstop.conf"
                config.parent.mkdir(parents=True)
                config.write_text(
                    f"autoconf_server=127.0.0.1\nautoconf_port={port}\nautoconf_hostname={HOSTNAME}\n"
                    f"ca_bundle={ca_file}\n"
                )
                env = {**os.environ, "TS_AUTO_KEY": KEY}
                argv = [
                    sys.executable,
                    str(TSADMIN),
                    "add",
                    "--type",
                    "auto",
                    f"--device_id={DEVICE}",
                    "--detailed-exitcodes",
                ]
                done = pair.run([*argv, "--root", str(root)], env=env)
                assert done.returncode == 4, done.stdout + done.stderr
                assert not pair.reachable("192.0.2.10")
                text = config.read_text()
                assert "blk.test.threatstop.local" in text and "tsprefix = TA" in text
                assert config.stat().st_mode & 0o077 == 0
                assert "TAblockaddr" in pair.run(["ipset", "list", "-n"]).stdout

                # The portal changes a setting: the next update takes it before the policy.
                # (RETURN is the default since review item 6: the portal asks for ACCEPT.)
                knot.add_zone(ZONE, settings_zone(DEVICE, KEY, [*pairs, "allow_action=ACCEPT"]))
                with entered(pair.host):
                    knot.reload()
                # Review item 12: while another run holds the lock, the settings are not rewritten either.
                before = config.read_text()
                with run_lock(root / "opt/threatstop/tsadmin.lock", "test"):
                    locked = pair.run(
                        [sys.executable, str(TSADMIN), "update", "--root", str(root), "--detailed-exitcodes"]
                    )
                assert locked.returncode == 3, locked.stdout + locked.stderr
                assert config.read_text() == before
                updated = pair.run(
                    [sys.executable, str(TSADMIN), "update", "--root", str(root), "--detailed-exitcodes"]
                )
                assert updated.returncode == 4, updated.stdout + updated.stderr
                assert "allow_action = ACCEPT" in config.read_text()
                assert "--match-set TAallowaddr src -j ACCEPT" in pair.run(["iptables-save"]).stdout

                # The portal out of reach: the policy is still updated with the settings in hand.
                tls.__exit__(None, None, None)
                tls = None
                offline = pair.run([sys.executable, str(TSADMIN), "update", "--root", str(root), "--verbose"])
                assert offline.returncode == 0, offline.stdout + offline.stderr
                assert "keeping the current settings" in offline.stdout
            finally:
                if tls is not None:
                    tls.__exit__(None, None, None)
        finally:
            knot.stop()


def test_the_key_file_is_one_short_regular_file(tmp_path: Path) -> None:
    """--auto_key_file: the admin's own file (sudo from a home folder) is read; a device, a link or a
    huge file is refused in one line, never read whole."""

    def read(path: Path | str) -> str | None:
        return auto_key(argparse.Namespace(auto_key_file=str(path), auto_key=None))

    key = tmp_path / "key"
    key.write_text("ab12-cd34\n")
    key.chmod(0o600)
    os.chown(key, NOBODY.pw_uid, NOBODY.pw_gid)
    assert read(key) == "ab12-cd34", "an admin's own file, whoever owns it"
    with pytest.raises(ConfigError, match="is not a regular file"):
        read("/dev/zero")
    (tmp_path / "link").symlink_to(key)
    with pytest.raises(ConfigError, match=r"cannot read --auto_key_file .*symbolic links"):
        read(tmp_path / "link")
    key.write_text("x" * (KEY_FILE_LIMIT + 1))
    with pytest.raises(ConfigError, match=f"holds more than {KEY_FILE_LIMIT} bytes"):
        read(key)
