#!/usr/bin/env bash
# Consumer benchmark. Starts tansu (in-memory) on a free port, pre-fills the four topics with EVENTS events
# (default 2,000,000), then measures, printing a table:
#   1. ingest rate of `playlog consume` (default settings) into DuckDB, and its peak RSS, beside a bare
#      librdkafka consumer's rate on the same broker (the ceiling) and the targets (>= 250k rows/s or
#      >= 0.8x the ceiling, whichever is lower; peak RSS < 256 MiB);
#   2. the same for the baseline (bench/baseline_consumer.py: confluent-kafka + fastavro + duckdb), and the ratio;
#   3. the same two for eventsim's JSON (`produce --format json`), beside a plain Python JSON consumer
#      (bench/baseline_consumer.py --json: confluent-kafka + json + pyarrow + duckdb), and the ratio;
#   4. freshness (p50, p99 from the Kafka timestamp to the row visible after its commit) at a steady ~10k
#      events/s with the vault running every 5 s in the same process.
# Usage: bench/consumer.sh [EVENTS]   (FLUSH_INTERVAL=... overrides the freshness run's flush interval)
set -euo pipefail
cd "$(dirname "$0")/.."
events="${1:-2000000}"
scripts/install-deps.sh >&2
cargo build --release --bin playlog --bin consumer-ceiling --quiet
bin="${CARGO_TARGET_DIR:-target}/release/playlog"
venv="$HOME/.cache/playlog/bench-venv-1"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet confluent-kafka==2.12.0 fastavro==1.12.1 duckdb==2.0.0 pyarrow==21.0.0
fi
work=$(mktemp -d -t playlog-bench-XXXXXX)
# shellcheck source=bench/broker.sh
source bench/broker.sh
trap '[ -n "$broker" ] && kill $broker 2>/dev/null; rm -rf "$work"' EXIT
start_broker

echo "pre-filling $events events ..." >&2
"$bin" produce -q --brokers "$brokers" --users 50000 --from 2026-01-01 --to 2027-01-01 --seed 3 --max-events "$events" --partitions 6

# Times `playlog consume` with its default settings from start to the last of the $events rows committed,
# into the warehouse file NAME.duckdb, and prints a table row labelled LABEL with the targets' verdicts;
# sets $rate (rows/s).
measure_consume() {
  local name=$1 label=$2 metrics_port start end consumer rows=0 rss
  metrics_port=$(free_port)
  start=$(date +%s.%N)
  "$bin" consume --brokers "$brokers" --warehouse "duckdb:$work/$name.duckdb" \
    --metrics-addr "127.0.0.1:$metrics_port" >"$work/consume-$name.log" 2>&1 &
  consumer=$!
  while [ "$rows" -lt "$events" ]; do
    sleep 0.2
    rows=$( (curl -s "http://127.0.0.1:$metrics_port/metrics" || true) | awk '/^playlog_rows_ingested_total/ {s+=$2} END {printf "%d", s}')
    kill -0 $consumer 2>/dev/null || { cat "$work/consume-$name.log"; exit 1; }
  done
  end=$(date +%s.%N)
  rss=$(awk '/VmHWM/ {print int($2/1024)}' "/proc/$consumer/status")
  kill -TERM $consumer; wait $consumer || true
  rate=$(python3 -c "print(round($events/($end-$start)))")
  python3 - "$label" "$events" "$start" "$end" "$rate" "$ceiling_rate" "$rss" <<'PY'
import sys
label, events, start, end, rate, ceiling, rss = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])
target = min(250_000, round(0.8 * ceiling))
ok = lambda b: "met" if b else "MISSED"
print(f"| {label} | {events} rows | {end-start:.2f} s | {rate} rows/s = {rate/ceiling:.2f}x the ceiling (target >= {target}: {ok(rate >= target)}) | peak RSS {rss} MiB (target < 256: {ok(rss < 256)}) |")
PY
}

# The broker's ceiling first: the ingest targets are relative to it.
ceiling=$("${CARGO_TARGET_DIR:-target}/release/consumer-ceiling" --brokers "$brokers" --events "$events")
echo "$ceiling"
ceiling_rate=$(echo "$ceiling" | sed -E 's/.* ([0-9]+) records\/s.*/\1/')

measure_consume playlog "playlog consume (defaults) -> DuckDB"
playlog_rate=$rate

baseline=$("$venv/bin/python" bench/baseline_consumer.py "$brokers" "$work/baseline.duckdb" "$events")
echo "| $baseline |"
baseline_rate=$(echo "$baseline" | sed -E 's/.*= ([0-9]+) rows\/s.*/\1/')
echo "| ratio playlog / baseline: $(python3 -c "print(round($playlog_rate/$baseline_rate, 1))")x |"

# The same events as eventsim JSON, on a fresh broker: Playlog and the plain Python JSON consumer.
start_broker
"$bin" produce -q --brokers "$brokers" --format json --users 50000 --from 2026-01-01 --to 2027-01-01 --seed 3 --max-events "$events" --partitions 6
ceiling=$("${CARGO_TARGET_DIR:-target}/release/consumer-ceiling" --brokers "$brokers" --events "$events")
echo "${ceiling/bare librdkafka consumer/bare librdkafka consumer, eventsim JSON}"
ceiling_rate=$(echo "$ceiling" | sed -E 's/.* ([0-9]+) records\/s.*/\1/')
measure_consume json "playlog consume (defaults), eventsim JSON -> DuckDB"
json_rate=$rate
json_baseline=$("$venv/bin/python" bench/baseline_consumer.py "$brokers" "$work/baseline-json.duckdb" "$events" --json)
echo "| $json_baseline |"
json_baseline_rate=$(echo "$json_baseline" | sed -E 's/.*= ([0-9]+) rows\/s.*/\1/')
echo "| ratio playlog / Python JSON baseline: $(python3 -c "print(round($json_rate/$json_baseline_rate, 1))")x (target 5x) |"

# Freshness at a steady ~10k events/s, on a fresh broker: 8,000 users at 3,600x simulated speed, 60 seconds,
# with the default settings and the vault running every 5 s in the same process. Measured by the consumer's
# own histogram: from each record's Kafka timestamp to the moment its row is visible (after the commit).
start_broker
# Topics first (one event from another day), so that the members find them at once.
"$bin" produce -q --brokers "$brokers" --users 10 --max-events 1 --partitions 6 --from 2026-05-01 --to 2026-05-02
metrics_port=$(free_port)
"$bin" consume --brokers "$brokers" --group freshness --warehouse "duckdb:$work/fresh.duckdb" \
  ${FLUSH_INTERVAL:+--flush-interval "$FLUSH_INTERVAL"} --vault-every 5s \
  --topics listen_events,page_view_events,auth_events,status_change_events \
  --metrics-addr "127.0.0.1:$metrics_port" >"$work/fresh.log" 2>&1 &
consumer=$!
sleep 12  # let the members join and the group settle: steady state
"$bin" produce -q --brokers "$brokers" --users 8000 --continuous --speed 3600 --seed 9 --instance-id 1 \
  --from 2026-06-01 --to 2026-06-10 >"$work/fresh-producer.log" 2>&1 &
producer=$!
sleep 60
kill -INT $producer 2>/dev/null || true; wait $producer || true
sleep 3
curl -s "http://127.0.0.1:$metrics_port/metrics" >"$work/fresh.metrics"
vault_runs=$(awk '/^playlog_vault_runs_total/ {s+=$2} END {printf "%d", s}' "$work/fresh.metrics")
rss=$(awk '/VmHWM/ {print int($2/1024)}' "/proc/$consumer/status")
kill -TERM $consumer; wait $consumer || true
python3 - "$work/fresh.metrics" "$vault_runs" "$rss" <<'PY'
import re, sys
buckets = []
for line in open(sys.argv[1]):
    m = re.match(r'playlog_publish_freshness_seconds_bucket\{le="([^"]+)"\} (\S+)', line)
    if m:
        buckets.append((float("inf") if m.group(1) == "+Inf" else float(m.group(1)), float(m.group(2))))
buckets.sort()
n = buckets[-1][1]
def quantile(q):
    # As Prometheus's histogram_quantile: linear within the bucket that holds the rank.
    rank, lo, below = q * n, 0.0, 0.0
    for le, count in buckets:
        if count >= rank:
            if le == float("inf"):
                return lo
            return lo + (le - lo) * (rank - below) / max(count - below, 1)
        lo, below = le, count
    return lo
p50, p99 = quantile(0.5), quantile(0.99)
verdict = "met" if p99 < 1.0 else "MISSED"
print(f"| freshness (Kafka timestamp -> row visible after commit), default settings, --vault-every 5s ({sys.argv[2]} vault runs): {n:.0f} events over 60 s ({n/60:.0f}/s): p50 {p50*1000:.0f} ms, p99 {p99*1000:.0f} ms (target < 1000 ms: {verdict}); peak RSS {sys.argv[3]} MiB |")
PY
