"""The Linux host module (ts-iptables): names, firewall chain, host files, settings."""
