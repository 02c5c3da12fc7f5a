#!/usr/bin/env bash
# Builds the Debian packages ts-iptables and ts-isr from this checkout into dist/ (as root: it installs
# its own build tools first, like the other scripts).  The Python libraries are pinned in
# debian/requirements-*.txt and bundled in virtualenvs under /opt/venvs; pip may download them.
#
#   bash scripts/build-deb.sh [--version VERSION] [--out DIR]
#
# --version builds the packages as VERSION (an entry on top of a copy of debian/changelog), as the
# upgrade test does; the checkout itself is never changed: the build runs in a copy of it.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bootstrap.sh

version="" out="$PWD/dist"
while [ $# -gt 0 ]; do
  case "$1" in
    --version) version="$2"; shift 2 ;;
    --out) out="$(realpath -m "$2")"; shift 2 ;;
    *) echo "build-deb.sh: unknown argument $1; use --version VERSION or --out DIR" >&2; exit 2 ;;
  esac
done

install_debian_packages "${DEB_BUILD_PACKAGES[@]}"
work="$(mktemp -d /tmp/ts-isr-deb.XXXXXX)"
trap 'rm -rf "$work"' EXIT
src="$work/ts-isr"
mkdir -p "$src" "$out"
tar --exclude-vcs --exclude=./.venv --exclude=./dist --exclude=./build --exclude='*.egg-info' \
  --exclude=__pycache__ --exclude=.pytest_cache --exclude=.ruff_cache --exclude=.hypothesis \
  --exclude=./bench/results -cf - . | tar -xf - -C "$src"
if [ -n "$version" ]; then
  { printf 'ts-isr (%s) unstable; urgency=medium\n\n  * Built as %s by scripts/build-deb.sh --version.\n\n' \
      "$version" "$version"
    printf ' -- %s  %s\n\n' "$(sed -n 's/^ -- \(.*>\)  .*/\1/p' debian/changelog | head -1)" "$(date -R)"
    cat debian/changelog; } > "$src/debian/changelog"
fi
# The system's python3 builds the virtualenvs: the packages depend on it, not on this shell's.
(cd "$src" && PATH="/usr/sbin:/usr/bin:/sbin:/bin" dpkg-buildpackage -b -us -uc --no-sign >"$work/build.log" 2>&1) || {
  tail -n 40 "$work/build.log" >&2
  echo "build-deb.sh: dpkg-buildpackage failed; the lines above are the end of its log" >&2
  exit 1
}
mv "$work"/*.deb "$out"/
ls "$out"/*.deb
