"""ts_isr: keep Cisco ISR/ASA object-groups and Linux ipsets in step with ThreatSTOP IP Defense."""

__version__ = "3.1.0"
