#!/usr/bin/env bash
# One command from a fresh clone to a running Playlog: installs what is missing, builds in release mode,
# starts a local broker on loopback, and runs the producer continuously (a few thousand users, at 60x speed)
# until Ctrl-C or --duration SECONDS. Then it stops the broker and prints the producer's summary.
#   scripts/quickstart.sh [--duration SECONDS] [--port PORT]
set -euo pipefail
cd "$(dirname "$0")/.."
duration=""
port="${PLAYLOG_PORT:-9092}"
while (($#)); do
  case "$1" in
    --duration) duration="$2"; shift 2 ;;
    --port) port="$2"; shift 2 ;;
    -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
    *) echo "quickstart: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

scripts/install-deps.sh
echo "quickstart: building playlog (release)" >&2
cargo build --release --bin playlog --quiet
bin="${CARGO_TARGET_DIR:-target}/release/playlog"

if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
  echo "quickstart: port $port is in use (another broker?). Stop it, or run with --port PORT." >&2
  exit 1
fi
state="${XDG_STATE_HOME:-$HOME/.local/state}/playlog"
mkdir -p "$state"
tansu broker --listener-url "tcp://127.0.0.1:$port" --advertised-listener-url "tcp://127.0.0.1:$port" \
  --storage-engine memory://tansu/ >"$state/broker.log" 2>&1 &
broker=$!
trap 'kill $broker 2>/dev/null || true; wait $broker 2>/dev/null || true' EXIT
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
echo "quickstart: broker on 127.0.0.1:$port (log: $state/broker.log)" >&2

args=(produce --brokers "127.0.0.1:$port" --continuous --speed 60 --users 3000 --growth-rate 0.5)
if [ -n "$duration" ]; then
  # Run for a fixed wall-clock time, then stop as Ctrl-C would.
  "$bin" "${args[@]}" &
  producer=$!
  sleep "$duration"
  kill -INT $producer
  wait $producer
else
  "$bin" "${args[@]}"
fi
