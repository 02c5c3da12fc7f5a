"""An installed ts_isr (not a checkout) finds its templates, and every command is a console script."""

import subprocess
import sys
import venv
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ("syslog-ng/threatstop.conf", "logrotate/threatstop", "systemd/threatstop.service")


def test_an_installed_wheel_finds_every_template_outside_the_checkout(tmp_path):
    # Built from the checkout with the setuptools already here: no index is asked.
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            tmp_path,
            ROOT,
        ],
        check=True,
        cwd=tmp_path,
    )
    wheel = next(tmp_path.glob("ts_isr-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    entry_points = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt")))
    for command in (b"threatstop-setup", b"upload_rules", b"loguploadclient", b"tsadmin"):
        assert command in entry_points
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--prefix", env_dir, wheel],
        check=True,
    )
    probe = (
        "from ts_isr.files import project_file\n"
        f"for name in {TEMPLATES!r}:\n"
        "    path = project_file(name)\n"
        "    assert path.is_file() and 'share/ts_isr' in str(path), path\n"
        "    print(path)\n"
    )
    out = subprocess.run([python, "-c", probe], check=True, capture_output=True, text=True, cwd=tmp_path)
    assert out.stdout.count("share/ts_isr") == len(TEMPLATES)
