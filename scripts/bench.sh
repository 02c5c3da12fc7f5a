#!/usr/bin/env bash
# Runs every benchmark in bench/ and prints its ratios against the baseline measured in the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bootstrap.sh
install_debian_packages
make_venv "[test]"
for bench in bench/bench_*.py; do
  echo "== $bench"
  .venv/bin/python "$bench" "$@"
done
