"""How long a device may take and how much it may send: every command, read and push is bounded.

A broken or hostile device must not hold a run (and so its lock, and so every
later cron run) forever, nor fill the host's memory.  The bounds follow from
what the work should take:

- A group read may show the tool's own entries (``max_policy_size`` for the
  block group, a fifth of it for the allow group), as many lines again of the
  user's, and ``USER_LINES`` more; each line ``LINE_BYTES`` on average at most
  (`` network-object 255.255.255.255 255.255.255.255`` is 48 characters), plus
  ``SLACK_BYTES`` for the header, a description and the prompt.  It may take
  ``ssh_timeout`` plus ``READ_LINE_SECONDS`` a line (500 lines a second; by
  default 61,000 lines, 4 MB, 152 s).  IOS and the ASA set no lower limit of
  their own on a group's size that the tool could rely on.
- A push of N lines may take ``ssh_timeout`` plus ``PUSH_LINE_SECONDS`` a line
  (real devices take 40 to 120 ms a line one by one, round trip included, far
  less streamed; 30,000 lines: about 2 hours at the most), and
  read ``PUSH_LINE_BYTES`` a line (echo, prompt, an error, resends); a line
  the device drops more than ``MAX_RESENDS`` times, or more resends in all
  than lines (plus ``SLACK_RESENDS``), mean it swallows input.
- Any other command may take twice ``ssh_timeout`` and print ``SLACK_BYTES``.

Past a bound the run fails with one line naming the device and what it did;
nothing is recorded as the tool's, and the next run repairs the group.
"""

from __future__ import annotations

from dataclasses import dataclass

USER_LINES = 1000
LINE_BYTES = 64
SLACK_BYTES = 65536
READ_LINE_SECONDS = 0.002
PUSH_LINE_SECONDS = 0.25
PUSH_LINE_BYTES = 1024
LOG_LINE_BYTES = 128  # what tsoutput.log keeps of a push's replies, a line (echoes are ~60 bytes)
MAX_RESENDS = 3
SLACK_RESENDS = 100


@dataclass(frozen=True)
class Budget:
    """At most ``seconds`` in all and ``size`` bytes read; ``why`` says where the figures come from."""

    seconds: float
    size: int
    why: str = ""


def group_lines(entries: int) -> int:
    """The most lines a group read may show when the tool puts at most ``entries`` in it."""
    return 2 * entries + USER_LINES


def read_budget(entries: int, timeout: float) -> Budget:
    lines = group_lines(entries)
    return Budget(
        timeout + lines * READ_LINE_SECONDS,
        lines * LINE_BYTES + SLACK_BYTES,
        f"the group may show {lines} lines: {entries} of the tool's, as many of the user's and "
        f"{USER_LINES} more",
    )


def command_budget(timeout: float) -> Budget:
    return Budget(2 * timeout, SLACK_BYTES)


def push_budget(lines: int, timeout: float) -> Budget:
    return Budget(timeout + lines * PUSH_LINE_SECONDS, SLACK_BYTES + lines * PUSH_LINE_BYTES)


def resend_limit(lines: int) -> int:
    """The most resends a push of ``lines`` may need in all before the device counts as swallowing input."""
    return lines + SLACK_RESENDS
