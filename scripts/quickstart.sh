#!/usr/bin/env bash
# One command from a fresh clone to the whole pipeline running locally:
#   installs what is missing (Debian packages, the tansu broker, DuckDB's library), builds Playlog in release
#   mode, starts a local broker on loopback (durable: a second run continues the same log and warehouse),
#   runs the producer continuously (3,000 users at 600x simulated speed), a consumer group of two members
#   into ./playlog.duckdb with the Data Vault and marts rebuilt every 5 seconds in the same process, and shows
#   one live status line, with the dashboard and API served from the consumer's process on
#   http://127.0.0.1:8080/ (the URL is printed). On Ctrl-C (or after --duration SECONDS) everything stops cleanly and a short report
#   from the marts is printed.
#   scripts/quickstart.sh [--duration SECONDS] [--port PORT] [--serve-port PORT] [--speed X] [--users N]
set -euo pipefail
cd "$(dirname "$0")/.."
duration=""
port="${PLAYLOG_PORT:-9092}"
serve_port=8080
speed=600
users=3000
while (($#)); do
  case "$1" in
    --duration) duration="$2"; shift 2 ;;
    --port) port="$2"; shift 2 ;;
    --serve-port) serve_port="$2"; shift 2 ;;
    --speed) speed="$2"; shift 2 ;;
    --users) users="$2"; shift 2 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "quickstart: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

started=$(date +%s)
state="${XDG_STATE_HOME:-$HOME/.local/state}/playlog"
mkdir -p "$state"
# DuckDB only, and only this package (-p: the BigQuery tests' features must not join in): without the
# BigQuery client (Google's authentication and an HTTPS stack) a cold build is about 70 s shorter.
# scripts/test.sh builds the full binary.
build=(cargo build --release -p playlog --bin playlog --no-default-features)
scripts/install-deps.sh --no-broker   # Debian packages and DuckDB's library, which the build needs
if scripts/install-deps.sh --broker-ready; then
  echo "quickstart: building playlog (release; a first run compiles for about 6 minutes on 2 cores)" >&2
  "${build[@]}"
else
  # The broker's build (8 to 9 minutes) compiles its own crates one after another, leaving a core idle for
  # minutes, so Playlog's build runs alongside at the lowest priority and fills it: measured 12 min 44 s for
  # both, against 13 min 55 s one after the other. `set -m` gives it a process group of its own, for
  # stopping it with the quickstart, in this session: a new session (setsid) would be a scheduler autogroup
  # of its own, sharing the CPU equally whatever its nice value.
  build_log="$state/build.log"
  echo "quickstart: building playlog alongside the broker, at low priority (log: $build_log)" >&2
  set -m
  nice -n 19 "${build[@]}" >"$build_log" 2>&1 &
  builder=$!
  set +m
  trap 'kill -- -"$builder" 2>/dev/null' EXIT
  trap 'exit 130' INT TERM
  scripts/install-deps.sh
  echo "quickstart: broker installed; finishing playlog's build" >&2
  tail -n 0 -f --pid="$builder" "$build_log" >&2 &
  follower=$!
  built=true
  wait "$builder" || built=false
  wait "$follower" || true
  trap - EXIT INT TERM
  if ! $built; then
    echo "quickstart: building playlog failed; the end of $build_log:" >&2
    tail -25 "$build_log" >&2
    exit 1
  fi
fi
target_dir="${CARGO_TARGET_DIR:-target}"
case "$target_dir" in /*) ;; *) target_dir="$(pwd)/$target_dir" ;; esac
bin="$target_dir/release/playlog"

if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
  echo "quickstart: port $port is in use (another broker, or a quickstart still running?). Stop it, or run with --port PORT." >&2
  exit 1
fi
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
metrics_port=$(free_port)
producer_metrics_port=$(free_port)
offers_metrics_port=$(free_port)
if (exec 3<>"/dev/tcp/127.0.0.1/$serve_port") 2>/dev/null; then
  taken=$serve_port serve_port=$(free_port)
  echo "quickstart: port $taken is in use; the dashboard goes on port $serve_port instead (--serve-port chooses)" >&2
fi
warehouse="duckdb:$(pwd)/playlog.duckdb"
# The warehouse records Kafka offsets of this broker's log. Fed by a new, empty log the consumer would stop
# after a few seconds (the log ends below its stored offsets); say so up front, with the quickstart's remedy.
if [ -e playlog.duckdb ] && [ ! -e "$state/broker.db" ]; then
  echo "quickstart: playlog.duckdb holds offsets of a broker log that is gone ($state/broker.db is missing)." >&2
  echo "quickstart: move playlog.duckdb away (or delete it) to start afresh; see README, Troubleshooting." >&2
  exit 1
fi
brokers="127.0.0.1:$port"

broker="" producer="" offers="" consumer=""
stop_all() {
  trap - INT TERM EXIT
  printf '\n' >&2
  # The producer first (it flushes what it has), then offers (flush, checkpoint), then the consumer (flush,
  # commit, leave the group, a last vault run), then the broker.
  [ -n "$producer" ] && { kill -INT "$producer" 2>/dev/null || true; wait "$producer" 2>/dev/null || true; }
  [ -n "$offers" ] && { kill -TERM "$offers" 2>/dev/null || true; wait "$offers" 2>/dev/null || true; }
  [ -n "$consumer" ] && { kill -TERM "$consumer" 2>/dev/null || true; wait "$consumer" 2>/dev/null || true; }
  [ -n "$broker" ] && { kill "$broker" 2>/dev/null || true; wait "$broker" 2>/dev/null || true; }
}
trap 'stop_all; exit 130' INT TERM
trap 'stop_all' EXIT

# Durable storage (SQLite, in the state directory): the warehouse stores Kafka offsets, which only mean
# something against the same log, so a second run must find the same log.
(cd "$state" && exec tansu broker --listener-url "tcp://$brokers" --advertised-listener-url "tcp://$brokers" \
  --storage-engine sqlite://broker.db) >"$state/broker.log" 2>&1 &
broker=$!
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
echo "quickstart: broker on $brokers (log and data: $state)" >&2

"$bin" produce -q --brokers "$brokers" --continuous --speed "$speed" --users "$users" --growth-rate 0.5 \
  --partitions 3 --metrics-addr "127.0.0.1:$producer_metrics_port" \
  --offers-topic offer_events --offer-response 0.5 >"$state/producer.log" 2>&1 &
producer=$!
sleep 2  # the producer creates the topics (offer_events too); offers and the members then find them at once
"$bin" offers --brokers "$brokers" --metrics-addr "127.0.0.1:$offers_metrics_port" >"$state/offers.log" 2>&1 &
offers=$!
"$bin" consume --brokers "$brokers" --members 2 --warehouse "$warehouse" --vault-every 5s \
  --metrics-addr "127.0.0.1:$metrics_port" --serve "127.0.0.1:$serve_port" >"$state/consumer.log" 2>&1 &
consumer=$!
echo "quickstart: producer ($users users, ${speed}x) → consumer group (2 members) → $warehouse, vault every 5 s" >&2
echo "quickstart: offers (schemas/offers/rules.toml) → offer_events → raw.offer_events and marts.offer_performance; users offered an upgrade take it more often (--offer-response 0.5)" >&2
echo "quickstart: logs in $state; metrics on http://127.0.0.1:$metrics_port/metrics; Ctrl-C stops" >&2
echo "quickstart: dashboard on http://127.0.0.1:$serve_port/ (it fills with the first vault run; pipeline: /pipeline, data catalog: /catalog, API: /api/v1)" >&2

# The status line: rates from successive scrapes, p99 publish-to-table freshness over the last interval.
prev=""
status() {
  local now scrape
  now=$(date +%s.%N)
  scrape=$(curl -s --max-time 1 "http://127.0.0.1:$metrics_port/metrics" || true)
  [ -n "$scrape" ] || { printf '\rquickstart: waiting for the consumer to start ...' >&2; return; }
  scrape+=$'\n'$(curl -s --max-time 1 "http://127.0.0.1:$producer_metrics_port/metrics" || true)
  local line
  line=$(printf '%s\n' "$scrape" | awk -v now="$now" -v prev="$prev" '
    /^playlog_rows_ingested_total/ { ingested += $2 }
    /^kafka_consumergroup_group_lag\{/ { lag += $2 }
    /^playlog_dead_letters_total/ { dead += $2 }
    /^playlog_producer_events_delivered_total/ { produced += $2; producer_seen = 1 }
    /^playlog_publish_freshness_seconds_bucket/ {
      match($0, /le="[^"]*"/); le = substr($0, RSTART + 4, RLENGTH - 5); n++; les[n] = le; counts[n] = $2 }
    END {
      split(prev, p, " ")   # prev: time ingested produced then the bucket counts
      if (!producer_seen) produced = p[3]   # a missed scrape of the producer: no rate rather than a negative one
      dt = now - p[1]; in_rate = (p[1] > 0 && dt > 0) ? (ingested - p[2]) / dt : 0
      out_rate = (p[1] > 0 && dt > 0) ? (produced - p[3]) / dt : 0
      total = counts[n] - (p[1] > 0 ? p[3 + n] : 0); q = "-"
      if (total > 0) {
        for (i = 1; i <= n; i++) {
          c = counts[i] - (p[1] > 0 ? p[3 + i] : 0)
          if (c >= 0.99 * total) { q = (les[i] == "+Inf") ? "> 82 s" : sprintf("<= %g s", les[i]); break }
        }
      }
      state = now " " ingested " " produced; for (i = 1; i <= n; i++) state = state " " counts[i]
      printf "%s|produced %.0f/s  ingested %.0f/s (%d rows)  lag %d  freshness p99 %s  dead letters %d", state, out_rate, in_rate, ingested, lag, q, dead
    }')
  prev="${line%%|*}"
  printf '\r\033[K%s' "${line#*|}" >&2
}

deadline=""
[ -n "$duration" ] && deadline=$(( $(date +%s) + duration ))
echo "quickstart: running after $(( $(date +%s) - started )) s" >&2
while kill -0 "$producer" 2>/dev/null && kill -0 "$consumer" 2>/dev/null && kill -0 "$offers" 2>/dev/null; do
  status
  [ -n "$deadline" ] && [ "$(date +%s)" -ge "$deadline" ] && break
  sleep 2
done
kill -0 "$consumer" 2>/dev/null || { echo; echo "quickstart: the consumer stopped; its log:" >&2; tail -20 "$state/consumer.log" >&2; exit 1; }
kill -0 "$producer" 2>/dev/null || { echo; echo "quickstart: the producer stopped; its log:" >&2; tail -20 "$state/producer.log" >&2; exit 1; }
kill -0 "$offers" 2>/dev/null || { echo; echo "quickstart: playlog offers stopped; its log:" >&2; tail -20 "$state/offers.log" >&2; exit 1; }
echo "quickstart: stopping (producer, then offers, then consumer: flush, commit, leave the group, a last vault run; then the broker)" >&2
stop_all
grep -E "^consume summary|raw\.|batches|vault: " "$state/consumer.log" | tail -9 >&2 || true
grep -E "^offers: resumed" "$state/offers.log" | tail -1 >&2 || true
"$bin" report --warehouse "$warehouse"
cat >&2 <<EOF

Query it yourself (DuckDB allows one writer per file; nothing is writing now):
  duckdb playlog.duckdb "SELECT * FROM marts.top_songs_daily ORDER BY date DESC, rank LIMIT 10"
  python3 -c "import duckdb; print(duckdb.connect('playlog.duckdb', read_only=True).sql('SELECT count(*) FROM marts.listens'))"
  $bin check --warehouse $warehouse
Run scripts/quickstart.sh again to continue the same broker log and warehouse.
EOF
