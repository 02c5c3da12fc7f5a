"""Names derived from the prefix, and the kernel's length limits enforced before anything changes."""

from __future__ import annotations

import pytest

from ts_isr.errors import ConfigError
from ts_isr.linux.iptables_backend import LIMITS
from ts_isr.linux.names import derive_names, max_prefix_length


def test_default_prefix_gives_the_seeds_names():
    names = derive_names("TS", LIMITS)
    assert names.chain == "TS"
    assert names.log_prefix == "ThreatSTOP-TSblock "
    v4 = {s.name: (s.hash_type, s.kind, s.new) for s in names.family_sets(4)}
    assert v4 == {
        "TSallowaddr": ("hash:ip", "allow", "TSallowaddrnew"),
        "TSallownet": ("hash:net", "allow", "TSallownetnew"),
        "TSblockaddr": ("hash:ip", "block", "TSblockaddrnew"),
        "TSblocknet": ("hash:net", "block", "TSblocknetnew"),
    }
    assert {s.name for s in names.family_sets(6)} == {
        "TSallowaddr6",
        "TSallownet6",
        "TSblockaddr6",
        "TSblocknet6",
    }
    assert all(s.ipset_family == "inet6" for s in names.family_sets(6))


def test_longest_allowed_prefix_fits_every_kernel_limit():
    longest = "P" * max_prefix_length(LIMITS)
    names = derive_names(longest, LIMITS)
    assert len(names.log_prefix) <= LIMITS.log_prefix
    assert len(names.chain) <= LIMITS.chain_name
    assert all(len(n) <= LIMITS.set_name for n in names.all_set_names())
    # The LOG prefix is exactly full: one more character would not fit.
    assert len(names.log_prefix) == LIMITS.log_prefix


def test_one_character_too_long_is_refused_naming_the_limit():
    with pytest.raises(ConfigError) as error:
        derive_names("P" * (max_prefix_length(LIMITS) + 1), LIMITS)
    message = str(error.value)
    assert "LOG prefix" in message and "29" in message and f"at most {max_prefix_length(LIMITS)}" in message


@pytest.mark.parametrize("prefix", ["", "1TS", "T S", "TS;rm", "TS\n", "Ts$", "ÄTS"])
def test_unusable_characters_are_refused(prefix):
    with pytest.raises(ConfigError, match="not usable"):
        derive_names(prefix, LIMITS)


@pytest.mark.parametrize("prefix", ["INPUT", "drop", "Accept", "LOG"])
def test_builtin_names_are_refused(prefix):
    with pytest.raises(ConfigError, match="built-in"):
        derive_names(prefix, LIMITS)
