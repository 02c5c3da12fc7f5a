# Sourced by the scripts: installs what the project needs on a fresh Debian machine.
# Debian packages (as root, only those missing), then a virtualenv in .venv with the project in it.

# The Debian packages' build tools (scripts/build-deb.sh); the tests build the packages too.
DEB_BUILD_PACKAGES=(debhelper dh-virtualenv dpkg-dev fakeroot lintian binutils python3-venv)

DEBIAN_PACKAGES=(
  python3-venv knot knot-dnsutils bind9-dnsutils ipset iptables iproute2 iputils-ping
  syslog-ng-core logrotate cron stunnel4 prometheus-node-exporter procps curl gzip openssh-client git systemd
  util-linux kmod nftables systemd-journal-remote
  "${DEB_BUILD_PACKAGES[@]}"
)

# install_debian_packages [PACKAGE...]: the named packages, or all the tests use.
install_debian_packages() {
  local wanted=("$@") missing=()
  [ ${#wanted[@]} -eq 0 ] && wanted=("${DEBIAN_PACKAGES[@]}")
  for pkg in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing Debian packages: ${missing[*]}; run this script as root once to install them" >&2
    return 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# make_venv EXTRAS: .venv with the project and EXTRAS ("[test]" or ""); a checkout always has the lab
# (the demo and the tests run it).
make_venv() {
  local extras="${1#[}"
  extras="${extras%]}"
  if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
  fi
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q -e ".[lab${extras:+,$extras}]"
}
