"""--search from the stored policy: allowed wins, blocked, covered lifelines, not listed; no network."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from ts_isr.commands.answers import search_lines, show_status
from ts_isr.errors import ConfigError, Exit, TsError
from ts_isr.policy import ListBuilder, build_policy, parse_token
from ts_isr.policystore import SparedLifeline, load_last_good, save_last_good
from ts_isr.search import parse_address, search


def stored(tmp_path: Path):
    block, allow = ListBuilder(), ListBuilder()
    for token in ("198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32"):
        block.add_token(token)
    allow.add_token("198.51.100.128/25")
    dns = parse_token("203.0.113.53")
    policy, report = build_policy(block.ranges(), allow.ranges(), lifelines=[dns])
    spared = [SparedLifeline(life, listed_by, "dns_server") for life, listed_by in report.spared]
    save_last_good(tmp_path, policy, datetime(2026, 11, 30, tzinfo=UTC), spared)
    return load_last_good(tmp_path)


@pytest.mark.parametrize(
    ("address", "line"),
    [
        ("198.51.100.200", "198.51.100.200 allowed by 198.51.100.128/25"),
        ("198.51.100.7", "198.51.100.7 blocked by 198.51.100.0/25"),
        ("203.0.113.53", "203.0.113.53 listed by 203.0.113.0/24 but kept reachable (lifeline: dns_server)"),
        ("203.0.113.54", "203.0.113.54 blocked by 203.0.113.54/31"),
        ("2001:DB8::1", "2001:db8::1 blocked by 2001:db8::/32"),
        ("192.0.2.1", "192.0.2.1 not listed"),
        ("::1", "::1 not listed"),
    ],
)
def test_each_kind_of_answer(tmp_path: Path, address: str, line: str) -> None:
    assert search(stored(tmp_path), parse_address(address)).line() == line


def test_the_spared_lifelines_survive_the_store(tmp_path: Path) -> None:
    again = stored(tmp_path)
    assert [s.what for s in again.spared] == ["dns_server"]
    (tmp_path / "last_good_policy.txt").write_text(
        (tmp_path / "last_good_policy.txt").read_text() + "lifeline 10.0.0.1/32 10.0.0.0/8 Bad What\n"
    )
    with pytest.raises(Exception, match="damaged"):
        load_last_good(tmp_path)


@pytest.mark.parametrize("text", ["192.0.2", "example.com", "192.0.2.1/24", "\x1b[2J"])
def test_a_bad_address_is_one_clear_line(text: str) -> None:
    with pytest.raises(ConfigError, match="is not an IP address") as raised:
        parse_address(text)
    assert "\x1b" not in str(raised.value)


def test_before_the_first_run_search_and_status_say_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The state folder is made by the first run: until then, one line each, no traceback."""
    never_ran = tmp_path / "state"
    with pytest.raises(TsError, match=f"no policy has been fetched yet into {never_ran}"):
        search_lines(["192.0.2.1"], never_ran)
    assert show_status(never_ran, "upload_rules", ["192.0.2.1"]) == Exit.FAILED
    assert capsys.readouterr().out == "192.0.2.1: no run recorded yet\n"
    assert not never_ran.exists(), "asking changes nothing"
