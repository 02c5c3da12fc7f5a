"""Where a packaged install keeps things, and what a checkout reports as its version (no build needed).

A config in /etc/threatstop (ts-isr) keeps its state under /var/lib/ts-isr and its log under
/var/log/threatstop; tsadmin's in /opt/threatstop keeps its upload state under /var/lib/ts-iptables;
any other config (a checkout, a test, a private one) keeps them beside itself, as before.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ts_isr import __version__
from ts_isr.config import CISCO_KEYS, validate
from ts_isr.linux.settings import LINUX_KEYS
from ts_isr.version import installed_version, package_of

CISCO = {"device": "192.0.2.1", "block_list": "blk.example.threatstop.local", "username": "u"}


def paths(keys, raw: dict[str, str], folder: str) -> dict[str, Path]:
    values, problems = validate(raw, keys, Path(folder))
    assert problems == []
    return {name: values[name] for name in ("known_hosts", "tsoutput", "state_dir") if name in values}


def test_the_ts_isr_packages_config_keeps_state_and_logs_where_debian_does():
    assert paths(CISCO_KEYS, CISCO, "/etc/threatstop") == {
        "known_hosts": Path("/var/lib/ts-isr/known_hosts"),
        "tsoutput": Path("/var/log/threatstop/tsoutput.log"),
        "state_dir": Path("/var/lib/ts-isr"),
    }


def test_tsadmins_config_keeps_its_upload_state_under_var_lib():
    assert paths(LINUX_KEYS, {"block_list": CISCO["block_list"]}, "/opt/threatstop") == {
        "state_dir": Path("/var/lib/ts-iptables")
    }


@pytest.mark.parametrize("folder", ["/tmp/ts-demo", "/srv/checkout", "/root/opt/threatstop"])
def test_any_other_config_keeps_them_beside_itself(folder: str):
    assert paths(CISCO_KEYS, CISCO, folder) == {
        "known_hosts": Path(folder) / "known_hosts",
        "tsoutput": Path(folder) / "tsoutput.log",
        "state_dir": Path(folder) / "state",
    }


def test_a_value_in_the_file_wins_over_the_packages_layout():
    raw = {**CISCO, "state_dir": "state", "tsoutput": "/var/log/other.log"}
    found = paths(CISCO_KEYS, raw, "/etc/threatstop")
    assert found["state_dir"] == Path("/etc/threatstop/state")
    assert found["tsoutput"] == Path("/var/log/other.log")


def test_outside_a_package_the_version_is_the_python_packages():
    assert package_of(Path(__file__).resolve()) is None
    assert installed_version() == __version__


def test_a_file_a_package_installed_names_its_package():
    assert package_of(Path("/usr/bin/dpkg-query")) == "dpkg"
