#!/usr/bin/env bash
# Makes sure the system packages the test suite needs are present:
#   - PostgreSQL server binaries (initdb + pg_ctl, version >= 15, under /usr/lib/postgresql/*/bin)
#   - redis-server
#   - chromium (/usr/bin/chromium, used with Playwright; never `playwright install`) + fonts-liberation
# As root, missing ones are installed with apt-get (one `apt-get update` first). Otherwise the
# exact command to run is printed and the script exits 1. Installed ones are left alone.
set -euo pipefail

MIN_PG=15
missing=()

# PostgreSQL: newest /usr/lib/postgresql/N/bin with both initdb and pg_ctl, N >= MIN_PG.
pg_bindir=""
for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5,5 -n -r); do
  ver=$(basename "$(dirname "$dir")")
  ver=${ver%%.*}
  if [[ "$ver" =~ ^[0-9]+$ ]] && (( ver >= MIN_PG )) && [[ -x "$dir/initdb" && -x "$dir/pg_ctl" ]]; then
    pg_bindir=$dir
    break
  fi
done
[[ -n "$pg_bindir" ]] || missing+=(postgresql)

command -v redis-server >/dev/null 2>&1 || [[ -x /usr/bin/redis-server ]] || missing+=(redis-server)

[[ -x /usr/bin/chromium ]] || missing+=(chromium)
if command -v dpkg-query >/dev/null 2>&1; then
  dpkg-query -W -f='${Status}' fonts-liberation 2>/dev/null | grep -q "install ok installed" \
    || missing+=(fonts-liberation)
fi

if (( ${#missing[@]} == 0 )); then
  echo "ensure_system_deps: ok (PostgreSQL in $pg_bindir, $(command -v redis-server || echo /usr/bin/redis-server), /usr/bin/chromium)"
  exit 0
fi

if [[ "$(id -u)" -ne 0 ]]; then
  echo "ensure_system_deps: missing system packages: ${missing[*]}" >&2
  echo "Install them with:" >&2
  echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
  exit 1
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure_system_deps: missing ${missing[*]} and no apt-get here; install PostgreSQL >= $MIN_PG server," \
       "redis-server and chromium with this system's package manager." >&2
  exit 1
fi

echo "ensure_system_deps: installing ${missing[*]} with apt-get"
export DEBIAN_FRONTEND=noninteractive
apt_opts=(-o DPkg::Lock::Timeout=600 -o Acquire::Retries=3)
apt-get "${apt_opts[@]}" update -q
apt-get "${apt_opts[@]}" install -y -q --no-install-recommends "${missing[@]}"

# Re-check: fail loudly if apt-get did not give us what we need.
ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || { echo "ensure_system_deps: still no pg_ctl" >&2; exit 1; }
command -v redis-server >/dev/null 2>&1 || { echo "ensure_system_deps: still no redis-server" >&2; exit 1; }
[[ -x /usr/bin/chromium ]] || { echo "ensure_system_deps: still no /usr/bin/chromium" >&2; exit 1; }
echo "ensure_system_deps: ok"
