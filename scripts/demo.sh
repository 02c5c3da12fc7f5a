#!/usr/bin/env bash
# The main job on the embedded default: the lab ISR and the embedded policy server, then upload_rules.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bootstrap.sh
install_debian_packages python3-venv
make_venv ""
exec .venv/bin/python -m ts_isr.demo "$@"
