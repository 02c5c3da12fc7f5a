#!/usr/bin/env bash
# Runs every benchmark in bench/ and prints its ratios against the baseline measured in the same run.
# One failing benchmark (a missed target, a missing tool, no root) does not stop the others; the exit
# status is non-zero if any failed. Arguments go to every benchmark; each ignores those it does not know.
set -uo pipefail
cd "$(dirname "$0")/.."
set -e
source scripts/bootstrap.sh
install_debian_packages
make_venv "[test]"
set +e
rc=0
failed=()
for bench in bench/bench_*.py; do
  echo "== $bench"
  if ! .venv/bin/python "$bench" "$@"; then
    rc=1
    failed+=("$bench")
  fi
done
if ((rc)); then
  echo "benchmarks that failed or missed a target: ${failed[*]}"
fi
exit "$rc"
