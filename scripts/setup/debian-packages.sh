#!/usr/bin/env bash
# Installs the Debian packages that tests and benchmarks drive, when they are
# missing: Chromium (the dashboard's browser tests), faketime (libfaketime: the
# cluster tests whose nodes run with wrong or jumping wall clocks), Redis (the
# benchmarks' Redis-backed limiters) and the Python SDK's dependencies, test
# runner and type checker (for Debian's /usr/bin/python3). All come from the
# machine's Debian release, by name.
#
#   scripts/setup/debian-packages.sh chromium faketime python # what `pnpm test` needs
#   scripts/setup/debian-packages.sh redis-server    # what `pnpm bench` needs
set -euo pipefail

missing=()
for pkg in "$@"; do
  case "$pkg" in
    chromium) [ -x /usr/bin/chromium ] || missing+=(chromium) ;;
    faketime) [ -x /usr/bin/faketime ] || missing+=(faketime) ;;
    redis-server) command -v redis-server >/dev/null 2>&1 || missing+=(redis-server) ;;
    python)
      /usr/bin/python3 -c 'import websockets, msgpack, pytest, pytest_asyncio, httpx, mypy' >/dev/null 2>&1 ||
        missing+=(python3-websockets python3-msgpack python3-pytest python3-pytest-asyncio python3-httpx mypy) ;;
    *) echo "debian-packages.sh: unknown package $pkg" >&2; exit 2 ;;
  esac
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "debian-packages.sh: ${missing[*]} missing; install as root: apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=600 update -qq
apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
for pkg in "${missing[@]}"; do dpkg-query -W -f='installed ${Package} ${Version}' "$pkg"; echo; done
