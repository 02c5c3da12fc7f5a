"""Packaging: ``pip install .`` gives a console script for every command.

The runtime dependencies are what a production install runs; the lab devices (``lab``) and the
test tools (``test``) are extras.  The Debian packages pin them in ``debian/requirements-*.txt``.
"""

import re
from pathlib import Path

from setuptools import find_packages, setup

# One version: ts_isr/__init__.py's, which tsadmin version also falls back to.
INIT = (Path(__file__).parent / "ts_isr" / "__init__.py").read_text(encoding="utf-8")
VERSION = re.search(r'__version__ = "([^"]+)"', INIT).group(1)

setup(
    name="ts_isr",
    version=VERSION,
    description="Keep Cisco ISR/ASA object-groups and Linux ipsets in step with ThreatSTOP IP Defense",
    python_requires=">=3.11",
    packages=find_packages(include=["ts_isr", "ts_isr.*"]),
    package_data={"ts_isr": ["data/*"]},
    # Templates stay at the top of the checkout; an install puts them in share/ts_isr (files.project_file).
    data_files=[
        ("share/ts_isr/syslog-ng", ["syslog-ng/threatstop.conf"]),
        ("share/ts_isr/logrotate", ["logrotate/threatstop"]),
        ("share/ts_isr/systemd", ["systemd/threatstop.service"]),
        ("share/ts_isr", ["threatstop.conf.example"]),
    ],
    install_requires=[
        "netmiko>=4.3",
        "dnspython>=2.6",
        "requests>=2.31",
        "python-crontab>=3.0",
        "configobj>=5.0.8",
        "paramiko>=3.4",
        "prometheus-client>=0.16",
        "nornir>=3.4",
    ],
    extras_require={
        # The simulated ISR/ASA of the demo and the tests.
        "lab": ["asyncssh>=2.14"],
        "test": [
            "asyncssh>=2.14",
            "pexpect>=4.8",
            "pytest>=8",
            "hypothesis>=6",
            "trustme>=1.1",
            "ntc-templates>=4",
            "ruff>=0.6",
            "wheel",
            "pytest-timeout>=2",
        ],
    },
    entry_points={
        "console_scripts": [
            "threatstop-setup=ts_isr.commands.setup:main",
            "upload_rules=ts_isr.commands.upload_rules:main",
            "loguploadclient=ts_isr.commands.loguploadclient:main",
            "tsadmin=ts_isr.commands.tsadmin:main",
        ]
    },
)
