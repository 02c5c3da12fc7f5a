"""Finding a system tool and the environment it runs in: the one lookup, and the one environment,
every part of ts_isr (and its tests) uses."""

from __future__ import annotations

import os
import shutil

# cron's PATH (/usr/bin:/bin) lacks the sbin directories, where ipset, iptables and syslog-ng live.
SBIN_PATH = "/usr/sbin:/sbin:/usr/bin:/bin"
# What a child may need from ours: where programs are (and, for setup's first upload_rules, the
# same ts_isr), the language and time zone of its messages, whose home and terminal it is.  Nothing
# else passes: the environment of setup holds TS_PASSWORD and TS_ENABLE_PW, and a caller's may hold
# any other secret (tokens, proxies with passwords).
CHILD_VARIABLES = frozenset(
    {"PATH", "PYTHONPATH", "HOME", "LANG", "LANGUAGE", "TZ", "TERM", "USER", "LOGNAME", "TMPDIR"}
)


def find_tool(name: str) -> str | None:
    """The tool's path from PATH, else from the sbin directories; None when it is not installed."""
    return shutil.which(name) or shutil.which(name, path=SBIN_PATH)


def child_env() -> dict[str, str]:
    """The environment for every program the suite starts: the few variables a tool needs
    (:data:`CHILD_VARIABLES`, ``LC_*``), never a secret; ``PATH`` at least :data:`SBIN_PATH`."""
    env = {
        name: value for name, value in os.environ.items() if name in CHILD_VARIABLES or name.startswith("LC_")
    }
    env.setdefault("PATH", SBIN_PATH)
    return env
