#!/usr/bin/env bash
# Fetches DuckDB's prebuilt libduckdb.so for one architecture from the npm registry, with npm, and keeps it
# only if its SHA-256 is the one pinned in scripts/libduckdb.lock. Used by scripts/install-deps.sh and by
# docker/Dockerfile, so that both take the same, verified file.
#   scripts/fetch-libduckdb.sh ARCH DEST_DIR     ARCH: x86_64 or aarch64 (uname -m), amd64 or arm64 (Docker)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
say() { echo "fetch-libduckdb: $*" >&2; }
[ $# = 2 ] || { say "usage: $0 ARCH DEST_DIR"; exit 2; }
arch="$1" dest="$2"
case "$arch" in amd64) arch=x86_64 ;; arm64) arch=aarch64 ;; esac
lock="$here/libduckdb.lock"
line=$(awk -v a="$arch" '$1 == a { print $2, $3 }' "$lock")
if [ -z "$line" ]; then
  say "no libduckdb.so is pinned for architecture $arch ($lock has: $(awk '!/^#/ && NF { printf "%s ", $1 }' "$lock")). DuckDB's npm packages cover Linux x86_64 and aarch64; elsewhere, build the duckdb crate with its bundled feature."
  exit 1
fi
read -r package digest <<<"$line"
command -v npm >/dev/null || { say "npm is needed to fetch $package: apt-get install npm"; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if ! (cd "$tmp" && npm pack --loglevel error "$package" >npm.out 2>npm.err); then
  say "npm pack $package failed; npm said:"
  sed 's/^/  /' "$tmp/npm.err" >&2
  say "is the npm registry reachable? (npm config get registry: $(npm config get registry 2>/dev/null || echo unknown))"
  exit 1
fi
if ! tar xzf "$tmp"/*.tgz -C "$tmp" 2>"$tmp/tar.err"; then
  say "unpacking $package failed: $(cat "$tmp/tar.err")"
  exit 1
fi
[ -f "$tmp/package/libduckdb.so" ] || { say "$package holds no libduckdb.so"; exit 1; }
got=$(sha256sum "$tmp/package/libduckdb.so" | awk '{ print $1 }')
if [ "$got" != "$digest" ]; then
  say "$package's libduckdb.so has SHA-256 $got, not the pinned $digest: refused. If DuckDB republished it, check the new file and update $lock."
  exit 1
fi
mkdir -p "$dest"
mv "$tmp/package/libduckdb.so" "$dest/libduckdb.so"
say "$package: libduckdb.so verified (SHA-256 $digest)"
