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
echo "targets: full build of 1M events < 10 s; incremental run after +1% <= 2% of the full build; no-op run < 50 ms"
for events in "${@:-1000000 10000000}"; do
  for n in $events; do
    # Three rounds up to 1M (this shared machine's runs vary by up to 20%), one for larger sizes.
    repeat=1
    if [ "$n" -le 1000000 ]; then repeat=3; fi
    "$bin" --events "$n" --users 3000 --dir "$work" --repeat "$repeat"
  done
done
