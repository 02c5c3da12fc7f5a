"""The Linux firewall behind one interface: the factory, and the counters read from iptables-save -c."""

from __future__ import annotations

import pytest

from ts_isr.errors import ConfigError
from ts_isr.linux.backend import make_backend
from ts_isr.linux.iptables_backend import LIMITS, blocked_counters

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
    assert blocked_counters(SAVED, "TS") == (5, 420)


def test_the_factory_makes_the_backend_and_refuses_what_it_cannot() -> None:
    backend = make_backend("iptables", "TS")
    assert backend.kind == "iptables" and backend.names.chain == "TS"
    with pytest.raises(ConfigError, match="not supported"):
        make_backend("pf", "TS")
    with pytest.raises(ConfigError, match=f"allows {LIMITS.log_prefix}"):
        make_backend("iptables", "P" * 13)
