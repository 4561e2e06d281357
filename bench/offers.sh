#!/usr/bin/env bash
# Offers latency benchmark. Starts tansu (in-memory) on a free port, `playlog offers` (the shipped rules),
# then a continuous producer at about 10k events/s for SECONDS (default 60), and measures, from the
# brokers' records, the page view that made an offer due published → offer published (Kafka timestamps,
# bench/src/offers_latency.rs; for a timer rule, the page view past its deadline): p50, p99 (target
# < 250 ms) and max, for all offers and each kind, beside the rate actually produced. Then the
# same at a quarter of the rate, on a fresh broker: on 2 cores tansu itself takes more than one core at
# 10k events/s, and the second row shows how much of the latency is the broker's.
# Usage: bench/offers.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
scripts/install-deps.sh >&2
cargo build --release --bin playlog --bin offers-latency --quiet
target="${CARGO_TARGET_DIR:-target}/release"
work=$(mktemp -d -t playlog-bench-offers-XXXXXX)
pids=()
# shellcheck source=bench/broker.sh
source bench/broker.sh
trap 'kill ${pids[*]:-} $broker 2>/dev/null; rm -rf "$work"' EXIT
# One measurement: USERS simulated users at 3600x (8,000 make about 10k events/s).
measure() {
  local users=$1
  start_broker
  # The topics first (a moment of simulation), so that offers finds page_view_events.
  "$target/playlog" produce -q --brokers "$brokers" --users 10 --max-events 1 --partitions 6 --seed 1
  "$target/playlog" offers --brokers "$brokers" >"$work/offers-$users.log" 2>&1 &
  offers=$!; pids+=("$offers")
  sleep 2
  "$target/playlog" produce --brokers "$brokers" --users "$users" --continuous --speed 3600 --seed 9 \
    --from 2026-06-01 >"$work/producer-$users.log" 2>&1 &
  producer=$!; pids+=("$producer")
  sleep "$seconds"
  kill -INT "$producer"; wait "$producer" 2>/dev/null || true
  sleep 3  # the last offers
  kill -TERM "$offers"; wait "$offers" 2>/dev/null || true
  rate=$(grep -E "events in .* s:" "$work/producer-$users.log" | tail -1 | sed -E 's/.*: ([0-9]+) events\/s.*/\1/')
  while read -r row; do
    rows+=("$row producer ${rate:-?} events/s (all four topics) |")
  done < <("$target/offers-latency" "$brokers")
}
rows=()
measure 8000
measure 2000
echo "| what | p50 | p99 | max | load |"
echo "|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
