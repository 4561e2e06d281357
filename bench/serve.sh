#!/usr/bin/env bash
# API benchmark. Starts tansu (in-memory) on a free port and measures, printing a table:
#   1. p50 and p99 latency of a 100-row page of the API (`playlog consume --serve`), at 20 concurrent
#      clients (wrk, Debian's package), while the same process ingests a live stream of about 10k events/s
#      with the vault every 5 s: target p99 < 50 ms;
#   2. the catch-up ingest rate from a backlog of EVENTS events (default 1,000,000) with the API serving,
#      idle and then under that load, in the same run: target slowed by less than 10%.
# Usage: bench/serve.sh [EVENTS]
set -euo pipefail
cd "$(dirname "$0")/.."
events="${1:-1000000}"
scripts/install-deps.sh >&2
if ! command -v wrk >/dev/null; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "bench/serve: installing wrk (Debian), the load generator" >&2
  $sudo apt-get install -y -qq wrk >/dev/null
fi
cargo build --release --bin playlog --quiet
bin="${CARGO_TARGET_DIR:-target}/release/playlog"
work=$(mktemp -d -t playlog-bench-serve-XXXXXX)
pids=()
# shellcheck source=bench/broker.sh
source bench/broker.sh
trap 'kill ${pids[*]:-} $broker 2>/dev/null; rm -rf "$work"' EXIT
wait_listening() { for _ in $(seq 300); do (exec 3<>"/dev/tcp/${1/://}") 2>/dev/null && return; sleep 0.1; done; echo "nothing listens on $1" >&2; exit 1; }
rows_ingested() { (curl -s "http://$1/metrics" || true) | awk '/^playlog_rows_ingested_total/ {s+=$2} END {printf "%d", s}'; }
page="/api/v1/marts.song_hourly_metrics.json?_size=100&_sort_desc=plays"

# 1. Latency while ingesting live events.
start_broker
"$bin" produce -q --brokers "$brokers" --users 1000 --from 2026-05-01 --to 2026-05-02 --seed 7 --partitions 6
api=127.0.0.1:$(free_port); metrics=127.0.0.1:$(free_port)
"$bin" consume -q --brokers "$brokers" --warehouse "duckdb:$work/live.duckdb" --vault-every 5s --serve "$api" \
  --metrics-addr "$metrics" >"$work/live.log" 2>&1 &
consumer=$!; pids+=("$consumer")
wait_listening "$api"
for _ in $(seq 600); do curl -sf "http://$api$page" | grep -q '"total":[1-9]' && break; sleep 0.1; done
"$bin" produce -q --brokers "$brokers" --users 8000 --continuous --speed 3600 --seed 9 --instance-id 1 \
  --from 2026-06-01 --to 2026-06-10 >"$work/producer.log" 2>&1 &
producer=$!; pids+=("$producer")
sleep 10  # steady state
before=$(rows_ingested "$metrics"); start=$(date +%s.%N)
wrk -t2 -c20 -d20s --latency "http://$api$page" >"$work/wrk-live.txt"
after=$(rows_ingested "$metrics"); end=$(date +%s.%N)
kill -INT "$producer" 2>/dev/null || true; wait "$producer" 2>/dev/null || true
kill -TERM "$consumer"; wait "$consumer" 2>/dev/null || true
python3 - "$work/wrk-live.txt" "$before" "$after" "$start" "$end" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
def ms(label):
    m = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)\b", text, re.M)
    value, unit = float(m.group(1)), m.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value
rps = re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)
errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
ingest = (int(sys.argv[3]) - int(sys.argv[2])) / (float(sys.argv[5]) - float(sys.argv[4]))
p99 = ms("99%")
verdict = "met" if p99 < 50 and not errors else "MISSED"
print(f"| API, 100-row page, 20 clients (wrk -t2 -c20 -d20s), while ingesting {ingest:.0f} events/s with the vault every 5 s | "
      f"{float(rps):.0f} requests/s | p50 {ms('50%'):.1f} ms | p99 {p99:.1f} ms (target < 50 ms: {verdict}) | non-2xx {errors.group(1) if errors else 0} |")
PY

# 2. Catch-up from a backlog, with the API idle and under load.
start_broker
"$bin" produce -q --brokers "$brokers" --users 50000 --from 2026-01-01 --to 2027-01-01 --seed 3 --max-events "$events" --partitions 6
catch_up() {
  local name=$1 load=$2 api metrics consumer start end rows=0 wrk_pid=""
  api=127.0.0.1:$(free_port); metrics=127.0.0.1:$(free_port)
  cp "$work/live.duckdb" "$work/$name.duckdb"  # marts to serve from the start
  start=$(date +%s.%N)
  "$bin" consume -q --brokers "$brokers" --group "catch-up-$name" --warehouse "duckdb:$work/$name.duckdb" \
    --serve "$api" --metrics-addr "$metrics" >"$work/$name.log" 2>&1 &
  consumer=$!; pids+=("$consumer")
  wait_listening "$api"
  if [ "$load" = yes ]; then wrk -t2 -c20 -d600s "http://$api$page" >"$work/wrk-$name.txt" 2>&1 & wrk_pid=$!; pids+=("$wrk_pid"); fi
  while [ "$rows" -lt "$events" ]; do
    sleep 0.2; rows=$(rows_ingested "$metrics")
    kill -0 "$consumer" 2>/dev/null || { cat "$work/$name.log"; exit 1; }
  done
  end=$(date +%s.%N)
  [ -z "$wrk_pid" ] || kill "$wrk_pid" 2>/dev/null || true
  kill -TERM "$consumer"; wait "$consumer" 2>/dev/null || true
  python3 -c "print(round($events/($end-$start)))"
}
idle=$(catch_up idle no)
loaded=$(catch_up loaded yes)
python3 - "$events" "$idle" "$loaded" <<'PY'
import sys
events, idle, loaded = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
slowdown = 1 - loaded / idle
verdict = "met" if slowdown < 0.10 else "MISSED"
print(f"| catch-up of {events} events, API serving: idle {idle} rows/s, under 20 clients {loaded} rows/s | slowed by {slowdown*100:.0f}% (target < 10%: {verdict}) |")
PY
