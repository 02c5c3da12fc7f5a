"""One interface for the Linux firewall's whole lifecycle, and the one factory that makes a backend.

The shape of the CrowdSec firewall bouncer's ``pkg/types.Backend`` and
``pkg/backend.NewBackend``: ``tsadmin`` and its lifecycle steps only see
:class:`Backend`; which tools, kernel objects and name limits sit behind it is
the backend's own business.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from ts_isr.errors import ConfigError
from ts_isr.linux.firewall import ChainSpec, LastApplied
from ts_isr.linux.iptables_backend import IptablesBackend
from ts_isr.linux.names import Names
from ts_isr.linux.nft_backend import NftablesBackend
from ts_isr.policy import Policy


class Backend(Protocol):
    """The policy in one Linux firewall: installed, applied, saved for boot, restored, shown, removed."""

    kind: str
    why: str  # what it is made of, for `tsadmin show`
    names: Names

    def check_host(self) -> None:
        """Its tools and kernel support, before anything changes: else one line saying what to install."""

    def check_owned(self, *, removing: bool = False) -> None:
        """Refuse when an object of our names holds things tsadmin did not write."""

    def present(self) -> bool:
        """Anything of this installation exists on the host."""

    def backup(self) -> dict[str, str]:
        """The host's rulesets before the first install, by name."""

    def read_policy(self) -> Policy:
        """What the installed sets hold."""

    def apply(
        self,
        spec: ChainSpec,
        policy: Policy | None,
        before_sets: Callable[[], None],
        last: LastApplied | None = None,
    ) -> bool:
        """Sets, then the rules on top; ``None`` keeps the sets' content; True when anything changed.

        ``last``, when the caller knows it, spares a backend that changes sets
        in place the read of every installed entry."""

    def save(self, path: Path) -> None:
        """The installed state, for the boot-time restore."""

    def load(self, path: Path) -> Policy | None:
        """The policy :meth:`save` wrote (None: nothing was saved)."""

    def remove(self) -> bool:
        """Everything of this installation, and nothing else."""

    def show(self) -> list[str]:
        """Lines for `tsadmin show`: what is installed."""

    def counters(self) -> dict[str, tuple[int, int]]:
        """Packets and bytes the block rules dropped since they were installed, by direction
        (``in``: from a blocked address, ``out``: to one)."""


BACKENDS: dict[str, Callable[[str], Backend]] = {
    IptablesBackend.kind: IptablesBackend,
    NftablesBackend.kind: NftablesBackend,
}


def make_backend(kind: str, prefix: str) -> Backend:
    """The backend ``kind`` for ``prefix`` (a prefix its names cannot carry is refused here)."""
    try:
        return BACKENDS[kind](prefix)
    except KeyError:
        raise ConfigError(f"firewall {kind!r} is not supported; use one of: {', '.join(BACKENDS)}") from None


def choose(wanted: str, installed: str | None, iptables_present: bool) -> tuple[str, str]:
    """The backend's kind, and why (for ``tsadmin show``): ``auto`` keeps what is installed; a new
    install takes ipset + iptables wherever iptables exists (its ``-m set`` works on iptables-nft too,
    and ipset loads big lists far cheaper), nftables elsewhere."""
    if wanted != "auto":
        return wanted, f"firewall = {wanted} in the config"
    if installed:
        return installed, f"auto: keeps the {installed} installation"
    if iptables_present:
        return "iptables", "auto: iptables is installed"
    return "nftables", "auto: no iptables here"
