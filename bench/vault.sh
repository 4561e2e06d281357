#!/usr/bin/env bash
# Vault benchmark: build time of the Data Vault core plus marts from 1M and from 10M raw events, then an
# incremental run after adding 1% more. Raw tables are filled the way the consumer writes them (no Kafka).
# Usage: bench/vault.sh [EVENTS ...]   (default: 1000000 10000000)
# PLAYLOG_LOG=playlog_vault=debug shows each statement's time.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh >&2
cargo build --release -p playlog-bench --bin vault-bench --quiet
bin="${CARGO_TARGET_DIR:-target}/release/vault-bench"
work=$(mktemp -d -t playlog-vault-bench-XXXXXX)
trap 'rm -rf "$work"' EXIT
echo "vault benchmark, $(nproc) cores; 3000 simulated users, so more events mean more simulated days"
for events in "${@:-1000000 10000000}"; do
  for n in $events; do
    "$bin" --events "$n" --users 3000 --dir "$work"
  done
done
