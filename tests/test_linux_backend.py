"""The Linux firewall behind one interface: the factory, and the counters read from iptables-save -c."""

from __future__ import annotations

import pytest

from ts_isr.errors import ConfigError, DeviceError
from ts_isr.linux.backend import choose, make_backend
from ts_isr.linux.iptables_backend import LIMITS, blocked_counters
from ts_isr.linux.nft_backend import counted, nft_log_options, table_text
from ts_isr.linux.nft_memory import available_bytes, check_fits

SAVED = """*filter
:INPUT ACCEPT [10:600]
:TS - [0:0]
[7:588] -A INPUT -j TS
[0:0] -A TS -m set --match-set TSallowaddr src -j RETURN
[3:252] -A TS -m set --match-set TSblockaddr src -j LOG --log-prefix "ThreatSTOP-TSblock "
[3:252] -A TS -m set --match-set TSblockaddr src -j DROP
[2:168] -A TS -m set --match-set TSblocknet dst -j DROP
[9:999] -A OTHER -m set --match-set TSblocknet dst -j DROP
COMMIT
"""


def test_counters_sum_the_chains_drop_rules_only() -> None:
    assert blocked_counters(SAVED, "TS") == {"in": (3, 252), "out": (2, 168)}


def test_the_factory_makes_the_backend_and_refuses_what_it_cannot() -> None:
    backend = make_backend("iptables", "TS")
    assert backend.kind == "iptables" and backend.names.chain == "TS"
    assert make_backend("nftables", "TS").kind == "nftables"
    with pytest.raises(ConfigError, match="not supported"):
        make_backend("pf", "TS")
    with pytest.raises(ConfigError, match=f"allows {LIMITS.log_prefix}"):
        make_backend("iptables", "P" * 13)


NFT_TABLE = """table inet TS {
\tchain filter {
\t\tip saddr @allow4 return
\t\tip saddr @block4 counter packets 3 bytes 252 log prefix "ThreatSTOP-TSblock "
\t\tip saddr @block4 counter packets 3 bytes 252 drop
\t\tip6 daddr @block6 counter packets 1 bytes 104 drop
\t}
}
"""


def test_nft_counters_and_our_table_in_a_ruleset() -> None:
    ruleset = "table ip filter {\n\tchain INPUT {\n\t}\n}\n" + NFT_TABLE
    assert table_text(ruleset, "TS") == NFT_TABLE
    assert table_text(ruleset, "OTHER") is None
    assert counted(NFT_TABLE) == {"in": (3, 252), "out": (1, 104)}


def test_nft_log_options_follow_the_iptables_ones() -> None:
    assert nft_log_options(("--log-level", "6", "--log-tcp-sequence", "--log-tcp-options", "--log-uid")) == (
        "level info flags tcp sequence,options flags skuid"
    )
    assert nft_log_options(()) == ""


def test_nft_memory_refuses_a_load_that_cannot_fit_in_one_line() -> None:
    check_fits(250_000, 4 << 30)
    with pytest.raises(DeviceError) as refused:
        check_fits(1_000_000, 1 << 30)
    message = str(refused.value)
    assert "max_policy_size" in message and "firewall = iptables" in message and "\n" not in message
    assert available_bytes("MemTotal: 1000 kB\nMemAvailable:  2048 kB\n") == 2048 * 1024


def test_auto_keeps_the_installed_backend_and_prefers_iptables_where_it_exists() -> None:
    assert choose("auto", None, iptables_present=True)[0] == "iptables"
    assert choose("auto", None, iptables_present=False) == ("nftables", "auto: no iptables here")
    assert choose("auto", "nftables", iptables_present=True)[0] == "nftables"
    assert choose("iptables", "nftables", iptables_present=True) == (
        "iptables",
        "firewall = iptables in the config",
    )
