#!/usr/bin/env bash
# Installs what building and testing Playlog needs, skipping whatever is already there:
#   - Debian packages for librdkafka's bundled build (cmake, libcurl, OpenSSL, SASL);
#   - the tansu broker, a Kafka-protocol broker from crates.io, at a pinned version.
# Safe to run repeatedly; a warm machine passes through in about a second.
set -euo pipefail

TANSU_VERSION=0.6.0
APT_PACKAGES=(cmake pkg-config libcurl4-openssl-dev libssl-dev libsasl2-dev python3)

say() { echo "install-deps: $*" >&2; }

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=""
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || { say "need root (or sudo) to install: ${missing[*]}"; exit 1; }
    sudo="sudo"
  fi
  say "installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

command -v cargo >/dev/null || { say "cargo not found: install Rust from rustup first"; exit 1; }
if [ "$(tansu --version 2>/dev/null | awk '{print $2}')" != "$TANSU_VERSION" ]; then
  say "installing the tansu broker $TANSU_VERSION with cargo (about 10 minutes, once; cached in ~/.cargo/bin)"
  cargo install tansu --locked --version "$TANSU_VERSION" --features dynostore,libsql --quiet
fi
