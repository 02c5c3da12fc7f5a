"""The lab: a simulated Cisco ISR/ASA over real SSH, a policy DNS server and a syslog source, for tests,
the demo and benchmarks (no real device or ThreatSTOP server is reachable from here)."""
