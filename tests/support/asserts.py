"""Assertions several test files share."""

from __future__ import annotations

from collections.abc import Sequence


def assert_in_order(text: str, lines: Sequence[str]) -> None:
    """Every one of ``lines`` is in ``text``, in this order (the seed's log sequence)."""
    positions = [text.find(line) for line in lines]
    assert -1 not in positions and positions == sorted(positions), list(zip(lines, positions))
