"""What every command in bin/ shares: run from a checkout with the checkout's own virtualenv.

Cron and systemd never activate a virtualenv, so the command switches to
``.venv``'s interpreter itself when there is one (``pip install`` gives the
same commands as console scripts instead).
"""

import os
import sys
from importlib import import_module
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent.parent
VENV_PYTHON = CHECKOUT / ".venv" / "bin" / "python"


def run(module: str, script: str) -> None:
    """Run ``module``'s ``main`` as the command ``script``, under the checkout's venv when it has one."""
    # os.path.exists is False (not an error) when the venv's interpreter is out of this user's reach.
    if Path(sys.prefix).resolve() != VENV_PYTHON.parent.parent.resolve() and os.path.exists(VENV_PYTHON):
        os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), script, *sys.argv[1:]])
    sys.path.insert(0, str(CHECKOUT))
    try:
        command = import_module(module)
    except ModuleNotFoundError as exc:
        sys.exit(
            f"[ERROR] : {Path(script).name} cannot load its library {exc.name!r} with {sys.executable}: "
            f"install the project for it ('pip install .') or make {VENV_PYTHON.parent.parent} "
            "usable by this user ('bash scripts/demo.sh' creates it)"
        )
    sys.exit(command.main())
