"""The secret mask: secrets never reach a log line, and no other text is altered."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from ts_isr.log import MASK, SecretMask, log, setup_logging

ORDINARY = [
    "Building configuration... current configuration : 1234 bytes",
    "Entering Privileged Mode.",
    'Retrieving current members of "threatstop-block" network group.',
    "paste the policy: 228 items are still active, cisco_ios device type",
    "open pipe, pop up, upload complete",
]


@pytest.mark.parametrize("secret", ["p", "en", "cisco"])
def test_short_common_secrets_leave_other_text_alone(secret: str) -> None:
    mask = SecretMask()
    mask.add(secret)
    for line in ORDINARY:
        assert mask.mask(line) == line
    assert mask.mask(f"enable {secret}") == f"enable {MASK}"
    assert mask.mask(f"password={secret}") == f"password={MASK}"
    assert mask.mask(f"https://admin:{secret}@proxy") == f"https://admin:{MASK}@proxy"
    assert mask.mask(secret) == MASK


def test_the_longest_secret_wins_and_special_characters_are_literal() -> None:
    mask = SecretMask()
    mask.add("a.b", "a.b$c")
    assert mask.mask("x a.b$c y") == f"x {MASK} y"
    assert mask.mask("x aXb y") == "x aXb y"


def test_a_secret_with_punctuation_at_its_edge_is_masked_even_inside_a_word() -> None:
    mask = SecretMask()
    mask.add("!pw", "pw#")
    assert mask.mask("x!pw and a pw#z") == f"x{MASK} and a {MASK}z"
    assert mask.mask("current apw#") == "current apw#"


def test_a_child_loggers_record_is_masked_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ts_isr.log import add_secret

    logfile = tmp_path / "out.log"
    setup_logging(logfile, quiet=False)
    add_secret("Sw0rdfish")
    logging.getLogger("ts_isr.fleet").warning("logging in with Sw0rdfish")
    log.warning("and again Sw0rdfish on the main logger")
    for handler in log.handlers:
        handler.flush()
    for text in (logfile.read_text(), capsys.readouterr().out):
        assert "Sw0rdfish" not in text
        assert text.count(MASK) == 2


def test_hundreds_of_secrets_still_mask_each_one_present() -> None:
    """A fleet registers two secrets a device: only those present in a line are matched."""
    mask = SecretMask()
    mask.add(*(f"pw-{n:03d}" for n in range(400)))
    assert mask.mask("send pw-007 then pw-399, not pw-4000 nor xpw-001") == (
        f"send {MASK} then {MASK}, not pw-4000 nor xpw-001"
    )
    assert mask.mask("nothing secret here") == "nothing secret here"
