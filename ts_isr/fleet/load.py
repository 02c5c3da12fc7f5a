"""Open the fleet's Nornir configuration as Nornir does, with two of the tool's own rules.

Relative inventory paths are read from the configuration file's folder (not
from wherever cron starts), and Nornir's own log file is off: this tool's
logs are its own, and a ``nornir.log`` in cron's working directory helps nobody.
Nor do its log records reach Python's last-resort handler on stderr: a task
that raised would mail cron a whole traceback, where the run logs its one line.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ts_isr.errors import ConfigError
from ts_isr.files import read_trusted
from ts_isr.log import escape

# SimpleInventory's files when nornir.yaml names none; it reads the groups and defaults only if present.
SIMPLE_FILES = {"host_file": "hosts.yaml", "group_file": "groups.yaml", "defaults_file": "defaults.yaml"}


def _resolved(options: dict[str, Any], base: Path, plugin: str) -> dict[str, Any]:
    """Every ``*_file`` option that is a relative path, made absolute against ``base``; for
    SimpleInventory, its default files too (else Nornir would read them from cron's folder)."""
    if plugin == "SimpleInventory":
        options = SIMPLE_FILES | options
    return {
        key: str(base / value) if key.endswith("_file") and isinstance(value, str) and value else value
        for key, value in options.items()
    }


def open_inventory(config_file: Path, workers: int) -> Any:
    """``InitNornir(config_file=...)`` with the threaded runner of ``workers`` threads."""
    import ruamel.yaml
    from nornir import InitNornir

    nornir_log = logging.getLogger("nornir")
    if not nornir_log.handlers:
        nornir_log.addHandler(logging.NullHandler())
    try:
        data = (
            ruamel.yaml.YAML(typ="safe").load(read_trusted(config_file, "inventory", kind=ConfigError)) or {}
        )
        if not isinstance(data, dict):
            raise ValueError("the file is not a YAML mapping")
        inventory = data.get("inventory") or {}
        options = _resolved(
            dict(inventory.get("options") or {}),
            config_file.parent.resolve(),
            inventory.get("plugin", "SimpleInventory"),
        )
        for key, value in options.items():  # they hold the devices' passwords: trusted as the config is
            optional = key in SIMPLE_FILES and key != "host_file"
            if (
                key.endswith("_file")
                and isinstance(value, str)
                and not (optional and not Path(value).exists())
            ):
                read_trusted(Path(value), f"inventory {key}", kind=ConfigError)
        return InitNornir(
            config_file=str(config_file),
            inventory={"options": options},
            runner={"plugin": "threaded", "options": {"num_workers": workers}},
            logging={"enabled": False},
        )
    except ConfigError:
        raise
    except OSError as exc:
        raise ConfigError(
            f"cannot read the inventory {escape(str(exc.filename or config_file))}: {exc.strerror}; "
            "check --inventory and the files nornir.yaml names"
        ) from None
    except Exception as exc:  # a YAML, schema or plugin error: whatever Nornir says, in one line
        detail = escape(str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__)
        raise ConfigError(
            f"the Nornir inventory {config_file} cannot be loaded ({type(exc).__name__}: {detail}); "
            "fix the file it names"
        ) from None
