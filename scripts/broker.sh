#!/usr/bin/env bash
# Runs a local Kafka-protocol broker (tansu) on loopback, in the foreground.
#   scripts/broker.sh                 # in-memory, port 9092
#   PORT=19092 scripts/broker.sh      # another port
#   STORAGE=sqlite://broker.db scripts/broker.sh   # durable across restarts (about 8x slower)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
port="${PORT:-9092}"
storage="${STORAGE:-memory://tansu/}"
if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
  echo "broker.sh: port $port is already in use; set PORT=... to use another" >&2
  exit 1
fi
echo "broker.sh: tansu on 127.0.0.1:$port ($storage); Ctrl-C stops it" >&2
exec tansu broker --listener-url "tcp://127.0.0.1:$port" --advertised-listener-url "tcp://127.0.0.1:$port" --storage-engine "$storage"
