#!/usr/bin/env bash
# Installs everything the tests use (Debian packages as root, a virtualenv), then lints and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bootstrap.sh
install_debian_packages
make_venv "[test]"
.venv/bin/ruff check ts_isr tests bench bin/_checkout.py
.venv/bin/ruff format --check ts_isr tests bench bin/_checkout.py
exec .venv/bin/python -m pytest "$@"
