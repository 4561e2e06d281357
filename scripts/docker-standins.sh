#!/usr/bin/env bash
# Local stand-ins for the base images docker/Dockerfile names, for machines that reach Debian's package
# mirror but no image registry (CI here). Each is made with mmdebstrap from Debian bookworm's packages and
# `docker import`ed under the official name, so that the Dockerfile builds as shipped:
#   debian:bookworm-slim   Debian bookworm, minbase (the official slim image is minbase too);
#   node:20-bookworm-slim  that, plus this machine's Node.js 20 and npm (or Debian's, if it has none);
#   rust:1.95-bookworm     that, plus a C toolchain, git, curl and this machine's Rust 1.95 toolchain, laid out
#                          as the official image does (CARGO_HOME=/usr/local/cargo on PATH).
# Each trusts the certificate authorities this machine adds (/usr/local/share/ca-certificates), since a
# build here reaches crates.io and npm only through this machine's TLS-inspecting egress; Node.js is told to
# use the system store as well (NODE_EXTRA_CA_CERTS). An official image of the same name, if present, is
# left alone; a stand-in is labelled
# playlog.standin=<version of this script> and made again when that changes.
# Usage: scripts/docker-standins.sh [--force]
set -euo pipefail
STANDIN_VERSION=5
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
DOCKER=${DOCKER:-docker}
force=false
[ "${1:-}" = "--force" ] && force=true

say() { echo "docker-standins: $*" >&2; }
command -v mmdebstrap >/dev/null || { say "mmdebstrap is missing: run scripts/install-deps.sh --test"; exit 1; }

# Whether NAME needs making: absent, or a stand-in of another version.
needed() {
  local label
  $force && return 0
  label=$("$DOCKER" image inspect -f '{{ index .Config.Labels "playlog.standin" }}' "$1" 2>/dev/null) || return 0
  [ -n "$label" ] && [ "$label" != "<no value>" ] && [ "$label" != "$STANDIN_VERSION" ]
}

# make NAME "ENV lines" mmdebstrap-arguments...: builds a rootfs tarball and imports it as NAME.
make_image() {
  local name=$1 env=$2
  shift 2
  local tar started
  tar=$(mktemp --suffix=.tar)
  # As Debian's official images: apt keeps no package caches in a layer (their /etc/apt/apt.conf.d/docker-clean).
  set -- "$@" --customize-hook='cat >"$1/etc/apt/apt.conf.d/docker-clean" <<"CONF"
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
CONF' --customize-hook='rm -f "$1"/var/cache/apt/*.bin'
  local local_cas=(/usr/local/share/ca-certificates/*.crt)
  if [ -e "${local_cas[0]}" ]; then
    set -- "$@" --customize-hook="copy-in ${local_cas[*]} /usr/local/share/ca-certificates" \
      --customize-hook='chroot "$1" update-ca-certificates >/dev/null'
  fi
  started=$(date +%s)
  say "making $name from Debian bookworm (mmdebstrap) ..."
  if ! mmdebstrap --quiet --variant=minbase "$@" bookworm "$tar" "$MIRROR" >"$tar.log" 2>&1; then
    say "mmdebstrap failed for $name; its log:"; cat "$tar.log" >&2; rm -f "$tar" "$tar.log"; exit 1
  fi
  local changes=(--change "LABEL playlog.standin=$STANDIN_VERSION" --change 'CMD ["bash"]')
  local line
  while IFS= read -r line; do
    [ -n "$line" ] && changes+=(--change "ENV $line")
  done <<<"$env"
  "$DOCKER" import "${changes[@]}" "$tar" "$name" >/dev/null
  rm -f "$tar" "$tar.log"
  say "made $name in $(( $(date +%s) - started )) s"
}

# What Debian's official slim images leave out (debuerreotype's slimify): documentation, manuals, locales.
SLIM=(--dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright'
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*'
  --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/locale/locale.alias')
SYSTEM_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
NODE_CAS=NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt

if needed debian:bookworm-slim; then
  make_image debian:bookworm-slim "PATH=$SYSTEM_PATH" "${SLIM[@]}" --include=ca-certificates
fi

if needed node:20-bookworm-slim; then
  if command -v node >/dev/null && [[ "$(node --version)" == v20.* ]] && [ -d /usr/lib/node_modules/npm ]; then
    node_bin=$(command -v node)
    make_image node:20-bookworm-slim "$(printf '%s\n' "PATH=$SYSTEM_PATH" "$NODE_CAS")" "${SLIM[@]}" --include=ca-certificates,libstdc++6 \
      --customize-hook="copy-in $node_bin /usr/local/bin" \
      --customize-hook='mkdir -p "$1/usr/local/lib/node_modules"' \
      --customize-hook='copy-in /usr/lib/node_modules/npm /usr/local/lib/node_modules' \
      --customize-hook='ln -s ../lib/node_modules/npm/bin/npm-cli.js "$1/usr/local/bin/npm"'
  else
    say "no Node.js 20 on this machine: the stand-in for node:20-bookworm-slim gets Debian's nodejs and npm"
    make_image node:20-bookworm-slim "$(printf '%s\n' "PATH=$SYSTEM_PATH" "$NODE_CAS")" "${SLIM[@]}" --include=ca-certificates,nodejs,npm
  fi
fi

if needed rust:1.95-bookworm; then
  command -v rustc >/dev/null || { say "rustc not found: the rust:1.95-bookworm stand-in copies this machine's toolchain"; exit 1; }
  sysroot=$(rustc --print sysroot)
  version=$(rustc --version | awk '{print $2}')
  [[ "$version" == 1.95.* ]] || say "warning: this machine's rustc is $version, standing in for rust:1.95"
  # The toolchain's programs and libraries only (its 800 MB of HTML docs stay behind).
  make_image rust:1.95-bookworm "$(printf '%s\n' RUSTUP_HOME=/usr/local/rustup CARGO_HOME=/usr/local/cargo \
      "PATH=/usr/local/cargo/bin:/usr/local/rust/bin:$SYSTEM_PATH" RUST_VERSION="$version")" \
    --include=ca-certificates,curl,git,gcc,g++,make,libc6-dev,pkg-config,procps,netbase \
    --customize-hook='mkdir -p "$1/usr/local/rust" "$1/usr/local/cargo/bin"' \
    --customize-hook="copy-in $sysroot/bin $sysroot/lib /usr/local/rust"
fi
