"""tsadmin's config and the host's facts every subcommand needs: where the config is, the chain's
shape, the firewall backend in use, and what the block list must never cut off."""

from __future__ import annotations

import argparse
from pathlib import Path

from ts_isr.config import Config, load_config
from ts_isr.errors import ConfigError
from ts_isr.fetch import as_cidr
from ts_isr.linux import host
from ts_isr.linux.backend import Backend, choose, make_backend
from ts_isr.linux.firewall import ChainSpec, parse_logopts
from ts_isr.linux.lifecycle import installed_firewall
from ts_isr.linux.settings import LINUX_KEYS, Paths
from ts_isr.log import add_secret
from ts_isr.ranges import Cidr
from ts_isr.tools import find_tool


def config_path(args: argparse.Namespace, paths: Paths) -> Path:
    return Path(args.config) if args.config else paths.config


def load(args: argparse.Namespace, paths: Paths) -> Config:
    path = config_path(args, paths)
    if not path.exists():
        raise ConfigError(f"{path} does not exist: ThreatSTOP is not configured here; run: tsadmin add")
    config = load_config(path, LINUX_KEYS)
    for secret in config.secrets(LINUX_KEYS):
        add_secret(secret)
    return config


def chain_spec(config: Config) -> ChainSpec:
    return ChainSpec(
        allow_action=config.allow_action,
        logopts=parse_logopts(config.logopts or ""),
        logopts_direction=config.logopts_direction,
    )


def configured_backend(config: Config, paths: Paths) -> tuple[Backend, str]:
    """The firewall backend for this config and host, and why it is the one."""
    kind, why = choose(str(config.firewall), installed_firewall(paths), find_tool("iptables") is not None)
    return make_backend(kind, config.tsprefix), why


def host_logfile(config: Config, paths: Paths) -> Path:
    return paths.under(str(config.logfile))


def kept_reachable(config: Config, paths: Paths) -> list[tuple[Cidr, str]]:
    """Addresses the block list must never cut off, each with what it is: the admin's own (recorded
    by ``add``), and the host's default gateways and resolvers, without which nobody reaches or
    names it any more."""
    kept = [(as_cidr(address), "keep_reachable") for address in config.get("keep_reachable") or []]
    kept += [(as_cidr(address), "gateway_or_resolver") for address in host.gateways_and_resolvers(paths)]
    return kept
