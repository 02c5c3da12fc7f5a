"""An installed ts_isr (not a checkout) finds its templates, and every command is a console script.

The wheel goes into a scratch virtualenv of its own: ``pip install --prefix`` run by the project's
own pip first uninstalls ts_isr from the project's environment (its console scripts vanish).
"""

import re
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ("syslog-ng/threatstop.conf", "logrotate/threatstop", "systemd/threatstop.service")
COMMANDS = ("threatstop-setup", "upload_rules", "loguploadclient", "tsadmin")


def environment_state() -> tuple[str, list[str]]:
    """What a test must leave as it found it: the running environment's packages and commands."""
    freeze = subprocess.run(
        [sys.executable, "-m", "pip", "freeze", "--all"], check=True, capture_output=True, text=True
    ).stdout
    scripts = sorted(path.name for path in (Path(sys.prefix) / "bin").iterdir())
    return freeze, scripts


def build_wheel(out: Path) -> Path:
    """Built from the checkout with the setuptools already here: no index is asked."""
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", out, ROOT],
        check=True,
        cwd=out,
    )
    return next(out.glob("ts_isr-*.whl"))


def test_an_installed_wheel_finds_every_template_outside_the_checkout(tmp_path):
    before = environment_state()
    wheel = build_wheel(tmp_path)
    names = zipfile.ZipFile(wheel).namelist()
    entry_points = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt")))
    for command in COMMANDS:
        assert command.encode() in entry_points
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    # The scratch environment's own pip: only that environment changes.
    subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", wheel], check=True)
    probe = (
        "from ts_isr.files import project_file\n"
        f"for name in {TEMPLATES!r}:\n"
        "    path = project_file(name)\n"
        "    assert path.is_file() and 'share/ts_isr' in str(path), path\n"
        "    print(path)\n"
    )
    out = subprocess.run([python, "-c", probe], check=True, capture_output=True, text=True, cwd=tmp_path)
    assert out.stdout.count("share/ts_isr") == len(TEMPLATES)
    for command in COMMANDS:
        assert (env_dir / "bin" / command).is_file()
    assert environment_state() == before, "the test changed the environment it runs in"


def test_the_lab_and_the_test_tools_are_extras_not_runtime_dependencies(tmp_path):
    wheel = zipfile.ZipFile(build_wheel(tmp_path))
    metadata = wheel.read(next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))).decode()
    requires = [
        line.split(":", 1)[1].strip() for line in metadata.splitlines() if line.startswith("Requires-Dist:")
    ]
    runtime = {re.split(r"[<>=;\s]", item)[0].lower() for item in requires if "extra ==" not in item}
    assert runtime == {
        "netmiko",
        "paramiko",
        "dnspython",
        "requests",
        "python-crontab",
        "configobj",
        "prometheus-client",
        "nornir",
    }
    lab = [item for item in requires if "asyncssh" in item]
    assert lab and all("extra ==" in item for item in lab)
