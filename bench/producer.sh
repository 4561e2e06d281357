#!/usr/bin/env bash
# Producer benchmark: starts a local tansu broker (in-memory) on a free port, runs producer-bench against it,
# stops the broker. Prints a table of events/s. Usage: bench/producer.sh [--events N]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh >&2
cargo build --release -p playlog-bench --bin producer-bench >&2
target_dir="${CARGO_TARGET_DIR:-target}"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
log=$(mktemp -t playlog-bench-broker.XXXXXX.log)
tansu broker --listener-url "tcp://127.0.0.1:$port" --advertised-listener-url "tcp://127.0.0.1:$port" \
  --storage-engine memory://tansu/ >"$log" 2>&1 &
broker=$!
trap 'kill $broker 2>/dev/null || true' EXIT
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
"$target_dir/release/producer-bench" --brokers "127.0.0.1:$port" "$@"
