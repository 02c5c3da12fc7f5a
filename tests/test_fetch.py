"""fetch_policy end to end against Knot: the seed's log lines, NS upkeep, lifelines, last good, refusals."""

from __future__ import annotations

import logging
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.support.dnsproxy import DnsTcpProxy
from tests.support.hostile_dns import RuleServer, fanning, measured_fetch
from tests.support.knot import KnotServer, make_zone_records
from ts_isr.config import Config, load_config
from ts_isr.errors import FetchError
from ts_isr.fetch import fetch_policy
from ts_isr.linux.settings import LINUX_KEYS
from ts_isr.log import log
from ts_isr.policy import Policy, parse_token
from ts_isr.policystore import FILE_NAME, load_last_good, save_last_good
from ts_isr.ranges import Cidr

ZONE = "acct.threatstop.local."
BLOCK = "blk.acct.threatstop.local"
ALLOW = "alw.acct.threatstop.local"


def policy_zone(block_hosts: list[str]) -> str:
    return make_zone_records(
        ptr={"blk": ["b1.acct.threatstop.local", "b2.acct.threatstop.local"]},
        a={"b1": block_hosts, "alw": ["198.51.100.7", "198.51.100.9"]},
        apl={"b2": ["1:198.51.100.0/24", "!1:198.51.100.128/25"]},
    )


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def at(self, level: int) -> list[str]:
        return [r.getMessage() for r in self.records if r.levelno == level]


@pytest.fixture
def lines() -> Iterator[Lines]:
    handler = Lines()
    log.addHandler(handler)
    old_level = log.level
    log.setLevel(logging.DEBUG)
    yield handler
    log.removeHandler(handler)
    log.setLevel(old_level)


@pytest.fixture
def knot(tmp_path: Path) -> Iterator[KnotServer]:
    server = KnotServer(tmp_path, addresses=("127.0.0.1", "127.0.0.2"))
    server.add_zone(ZONE, policy_zone(["192.0.2.1", "192.0.2.2", "192.0.2.10", "203.0.113.9"]))
    with server:
        yield server


def write_config(tmp_path: Path, knot: KnotServer, **extra: str) -> Path:
    values = {
        "dns_server": "127.0.0.1",
        "port": str(knot.port),
        "device": "192.0.2.10",
        "external_ip": "203.0.113.9",
        "block_list": BLOCK,
        "allow_list": ALLOW,
        "username": "admin",
        "dns_timeout": "10",
        **extra,
    }
    path = tmp_path / "threatstop.conf"
    path.write_text("# my own comment\n" + "".join(f"{k}={v}\n" for k, v in values.items()))
    path.chmod(0o600)
    return path


def test_fetch_logs_the_seed_lines_spares_lifelines_and_keeps_the_last_good(
    tmp_path: Path, knot: KnotServer, lines: Lines
) -> None:
    path = write_config(tmp_path, knot)
    built = fetch_policy(load_config(path))
    policy = built.policy
    assert list(policy.lines()) == [
        "block 192.0.2.1/32",
        "block 192.0.2.2/32",
        "block 198.51.100.0/30",
        "block 198.51.100.4/31",
        "block 198.51.100.6/32",
        "allow 198.51.100.7/32",
        "block 198.51.100.8/32",
        "allow 198.51.100.9/32",
        "block 198.51.100.10/31",
        "block 198.51.100.12/30",
        "block 198.51.100.16/28",
        "block 198.51.100.32/27",
        "block 198.51.100.64/26",
    ]
    assert lines.at(logging.INFO) == [
        "Updating DNS lists.",
        "Testing [127.0.0.1] servers.",
        "Comparing DNS lists.",
        "Building allow/deny lists.",
        f"Getting allow list {ALLOW}",
        "Received 1 allow lists to process.",
        "Received 2 allow results.",
        f"Getting block list {BLOCK}",
        "Received 2 block lists to process.",
        "Received 5 block results.",  # 4 hosts and a /24; its !/25 is an exclusion, not a result
    ]
    assert any("lifelines" in w and "2 of" in w for w in lines.at(logging.WARNING))
    stored = load_last_good(tmp_path / "state")
    assert stored is not None and stored.policy == policy
    # What --search and the metrics are told: each spared lifeline by name, each dropped entry by reason.
    assert sorted((str(s.lifeline), str(s.listed_by), s.what) for s in stored.spared) == sorted(
        (str(s.lifeline), str(s.listed_by), s.what) for s in built.spared
    )
    assert [(str(s.lifeline), s.what) for s in built.spared] == [
        ("192.0.2.10/32", "device"),
        ("203.0.113.9/32", "external_ip"),
    ]
    assert built.dropped["block"]["lifeline"] == 2 and built.entries()["block"]["4"] == 11
    assert stat.S_IMODE((tmp_path / "state" / FILE_NAME).stat().st_mode) == 0o600


def test_a_changed_ns_set_is_tested_and_written_to_the_config(
    tmp_path: Path, knot: KnotServer, lines: Lines
) -> None:
    knot.add_zone(ZONE, policy_zone(["192.0.2.1"]), ns=("127.0.0.2", "127.0.0.1"))
    knot.reload()
    path = write_config(tmp_path, knot)
    fetch_policy(load_config(path))
    assert "Updating configuration file with new DNS servers list." in lines.at(logging.INFO)
    text = path.read_text()
    assert "# my own comment" in text
    assert [str(a) for a in load_config(path).dns_server] == ["127.0.0.1", "127.0.0.2"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_new_name_servers_that_do_not_answer_are_not_adopted(
    tmp_path: Path, knot: KnotServer, lines: Lines
) -> None:
    knot.add_zone(ZONE, policy_zone(["192.0.2.1"]), ns=("127.0.0.3",))
    knot.reload()
    path = write_config(tmp_path, knot)
    before = path.read_text()
    fetch_policy(load_config(path))
    assert path.read_text() == before
    assert any("none of them answers" in w for w in lines.at(logging.WARNING))


def test_an_emptied_block_list_is_refused_unless_forced(tmp_path: Path, knot: KnotServer) -> None:
    path = write_config(tmp_path, knot)
    first = fetch_policy(load_config(path)).policy
    knot.add_zone(ZONE, make_zone_records(a={"blk": ["192.0.2.10"], "alw": ["198.51.100.7"]}))
    knot.reload()
    with pytest.raises(FetchError, match=r"came back empty.*run again with --force"):
        fetch_policy(load_config(path))
    assert load_last_good(tmp_path / "state").policy == first
    forced = fetch_policy(load_config(path), force=True).policy
    assert forced.block == ()
    assert load_last_good(tmp_path / "state").policy == forced


def test_a_failed_fetch_raises_and_keeps_the_last_good(tmp_path: Path, knot: KnotServer) -> None:
    path = write_config(tmp_path, knot)
    first = fetch_policy(load_config(path)).policy
    knot.add_zone(
        ZONE, make_zone_records(ptr={"blk": ["gone.acct.threatstop.local"]}, a={"alw": ["198.51.100.7"]})
    )
    knot.reload()
    with pytest.raises(FetchError, match=r"gone\.acct\.threatstop\.local does not exist"):
        fetch_policy(load_config(path))
    assert load_last_good(tmp_path / "state").policy == first


def test_the_block_list_is_truncated_to_max_policy_size_with_a_warning(
    tmp_path: Path, knot: KnotServer, lines: Lines
) -> None:
    path = write_config(tmp_path, knot, max_policy_size="1", allow_list="")
    policy = fetch_policy(load_config(path), lifelines_extra=[(Cidr(4, 0xC0000201, 32), "test")]).policy
    assert [str(c) for c in policy.block] == ["198.51.100.0/25"]  # the broadest is kept
    assert "192.0.2.1/32" not in {str(c) for c in policy.block}  # the extra lifeline
    assert any("truncated to max_policy_size=1: dropped 1" in w for w in lines.at(logging.WARNING))


def tsadmin_config(tmp_path: Path, knot: KnotServer, **values: object) -> Config:
    """A real tsadmin config file (its own schema, LINUX_KEYS), read the way tsadmin reads it."""
    values = {"dns_server": "127.0.0.1", "port": knot.port, "block_list": BLOCK, **values}
    path = tmp_path / "tsadmin.conf"
    path.write_text("".join(f"{name}={value}\n" for name, value in values.items()))
    path.chmod(0o600)
    return load_config(path, LINUX_KEYS)


def test_a_tsadmin_config_works_through_get(tmp_path: Path, knot: KnotServer) -> None:
    config = tsadmin_config(
        tmp_path,
        knot,
        allow_list=ALLOW,
        max_policy_size=30000,
        state_dir=tmp_path / "tsstate",
        min_prefix=8,
    )
    policy = fetch_policy(config).policy
    assert "block 192.0.2.10/32" in set(policy.lines())  # no device key: not a lifeline here
    assert load_last_good(tmp_path / "tsstate") is not None


def test_the_store_round_trips_and_refuses_damage(tmp_path: Path) -> None:
    policy = Policy(
        (Cidr(4, 0xC0000200, 24), *(c for c in [parse_token("2001:db8::/32")] if c)),
        (Cidr(4, 0xC6336407, 32),),
    )
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    path = save_last_good(tmp_path / "s", policy, when)
    stored = load_last_good(tmp_path / "s")
    assert stored is not None and stored.policy == policy and stored.fetched_at == when
    assert load_last_good(tmp_path / "none") is None
    path.write_text(path.read_text() + "block 1.2.3.4;reboot\n")
    with pytest.raises(FetchError, match=r"damaged.*line 5"):
        load_last_good(tmp_path / "s")


def test_min_prefix_zero_is_honoured_not_replaced_by_the_default(tmp_path: Path, knot: KnotServer) -> None:
    knot.add_zone(ZONE, make_zone_records(apl={"blk": ["1:128.0.0.0/2"]}))
    knot.reload()
    assert fetch_policy(tsadmin_config(tmp_path, knot, min_prefix=0)).policy.block == (
        Cidr(4, 0x80000000, 2),
    )
    assert (
        fetch_policy(tsadmin_config(tmp_path, knot), force=True).policy.block == ()
    )  # /2 is broader than /8


def test_without_record_nothing_on_disk_changes(tmp_path: Path, knot: KnotServer, lines: Lines) -> None:
    """Review item 10: --dry-run and --print-policy neither keep a last good policy nor rewrite dns_server."""
    knot.add_zone(ZONE, policy_zone(["192.0.2.1"]), ns=("127.0.0.2", "127.0.0.1"))
    knot.reload()
    path = write_config(tmp_path, knot)
    before = path.read_text()
    policy = fetch_policy(load_config(path), record=False).policy
    assert "block 192.0.2.1/32" in policy.lines()
    assert path.read_text() == before
    assert not (tmp_path / "state").exists() or load_last_good(tmp_path / "state") is None
    assert "Updating configuration file with new DNS servers list." not in lines.at(logging.INFO)


def test_the_configuration_service_and_an_address_log_host_are_lifelines(
    tmp_path: Path, knot: KnotServer, lines: Lines
) -> None:
    """Review item 7b: the block list covers the log host and the configuration service; both are spared."""
    values = {"min_prefix": 8, "autoconf_server": "192.0.2.2", "url": "https://192.0.2.1:8443/logupload"}
    blocked = set(fetch_policy(tsadmin_config(tmp_path, knot, **values), record=False).policy.lines())
    assert "block 192.0.2.10/32" in blocked
    assert "block 192.0.2.1/32" not in blocked and "block 192.0.2.2/32" not in blocked
    assert any("configuration service, log host" in w for w in lines.at(logging.WARNING))
    by_name = fetch_policy(
        tsadmin_config(tmp_path, knot, **values | {"url": "https://logs.threatstop.com/x"}), record=False
    ).policy
    assert "block 192.0.2.1/32" in set(by_name.lines()), "a name is not looked up"


def test_a_damaged_last_good_policy_does_not_let_an_empty_list_through(
    tmp_path: Path, knot: KnotServer
) -> None:
    """Review item 1: a last good file that cannot be read counts as a non-empty one."""
    path = write_config(tmp_path, knot)
    fetch_policy(load_config(path))
    stored = tmp_path / "state" / FILE_NAME
    damaged = stored.read_text() + "block garbage\n"
    stored.write_text(damaged)
    knot.add_zone(ZONE, make_zone_records(a={"blk": ["192.0.2.10"], "alw": ["198.51.100.7"]}))
    knot.reload()
    with pytest.raises(FetchError, match=r"came back empty and the last good policy cannot be read.*--force"):
        fetch_policy(load_config(path))
    assert stored.read_text() == damaged, "nothing is overwritten"
    assert fetch_policy(load_config(path), force=True).policy.block == ()
    assert load_last_good(tmp_path / "state").policy.block == ()


def test_a_block_list_that_shrinks_past_max_shrink_is_refused_on_tsadmin_too(
    tmp_path: Path, knot: KnotServer
) -> None:
    """Review item 7: max_shrink guards every target at the fetch, not only the Cisco group."""
    first = fetch_policy(tsadmin_config(tmp_path, knot)).policy
    assert len(first.block) == 5  # no allow list, no device: 4 hosts and the /25
    knot.add_zone(ZONE, make_zone_records(a={"blk": ["192.0.2.1", "192.0.2.2", "192.0.2.99"]}))
    knot.reload()
    with pytest.raises(
        FetchError, match=r"lost 3 of the last good one's 5 entries \(60%, more than max_shrink=50%\)"
    ):
        fetch_policy(tsadmin_config(tmp_path, knot))
    assert load_last_good(tmp_path / "state").policy == first
    shrunk = fetch_policy(tsadmin_config(tmp_path, knot, max_shrink="0.6")).policy
    assert [str(c) for c in shrunk.block] == ["192.0.2.1/32", "192.0.2.2/32", "192.0.2.99/32"]


def test_the_same_addresses_aggregated_differently_are_no_shrink(tmp_path: Path, knot: KnotServer) -> None:
    hosts = [f"192.0.2.{n}" for n in range(64, 128)]
    knot.add_zone(ZONE, make_zone_records(a={"blk": hosts[::2]}))
    knot.reload()
    assert len(fetch_policy(tsadmin_config(tmp_path, knot)).policy.block) == 32
    knot.add_zone(ZONE, make_zone_records(a={"blk": hosts}))
    knot.reload()
    assert [str(c) for c in fetch_policy(tsadmin_config(tmp_path, knot)).policy.block] == ["192.0.2.64/26"]


def test_new_name_servers_that_fail_the_fetch_leave_the_old_ones(
    tmp_path: Path, knot: KnotServer, lines: Lines
) -> None:
    """Review item 4: the new set is tried first, the old one behind it; saved only if it served."""
    knot.add_zone(ZONE, policy_zone(["192.0.2.1"]), ns=("127.0.0.3",))
    knot.reload()
    path = write_config(tmp_path, knot, dns_timeout="2")
    before = path.read_text()
    # 127.0.0.3 answers the zone's SOA, so it is adopted, but never gives a list part.
    with DnsTcpProxy(
        ("127.0.0.1", knot.port), host="127.0.0.3", port=knot.port, stall_names=["b1.acct.threatstop.local"]
    ):
        policy = fetch_policy(load_config(path)).policy
    assert "block 192.0.2.1/32" in set(policy.lines())
    assert path.read_text() == before
    assert any("lists came from 127.0.0.1; dns_server is kept" in w for w in lines.at(logging.WARNING))


def test_a_policy_past_its_bounds_fails_whole_and_records_nothing(tmp_path: Path, knot: KnotServer) -> None:
    """Issue 16: a fanning index fails the fetch at its bound, in bounded time and memory, and the
    last good policy and the config stay byte for byte as they were."""
    path = write_config(tmp_path, knot)
    fetch_policy(load_config(path))
    stored = tmp_path / "state" / FILE_NAME
    before = stored.read_bytes()
    with RuleServer(fanning(BLOCK, (1000, 400))) as server:
        path = write_config(tmp_path, knot, port=str(server.port), dns_timeout="5")
        config_before = path.read_bytes()
        measured = measured_fetch(
            "from pathlib import Path\n"
            "from ts_isr.config import load_config\n"
            "from ts_isr.fetch import fetch_policy",
            f"len(fetch_policy(load_config(Path({str(path)!r}))).block)",
            timeout=120,
        )
    print(
        f"\nfetch_policy, index fanning 1000 x 400: {measured.seconds:.1f}s, peak {measured.peak_mib:.0f} MiB"
    )
    assert (
        f"list {BLOCK}: one level of its index has more than 5,000 names (MAX_WIDTH)"
        in measured.output["error"]
    )
    assert "nothing was applied" in measured.output["error"]
    assert measured.seconds < 60 and measured.peak_mib < 400
    assert stored.read_bytes() == before
    assert path.read_bytes() == config_before
