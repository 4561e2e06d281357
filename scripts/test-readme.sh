#!/usr/bin/env bash
# Runs every shell command block of README.md as a new user would, from the repository root, and checks
# what each prints. scripts/test.sh calls it after `cargo test`: two blocks build with cargo, which cannot
# run inside `cargo test` (cargo holds its build-directory lock while tests run).
#
# What differs from typing the blocks by hand, and why:
#   - The broker: a tansu broker this script starts on a free loopback port; `127.0.0.1:9092` in a block
#     becomes that address, and the quickstart gets `--port` and `--serve-port` (9092 or 8080 may be taken).
#   - `target/release/` becomes "$CARGO_TARGET_DIR/release/" when CARGO_TARGET_DIR points elsewhere (as in CI).
#   - `playlog serve` runs in the background (a user runs the curl lines from another terminal) on a free
#     port that replaces 127.0.0.1:8080 in every line, and stops at the end of its block.
#   - Ctrl-C: a `playlog consume` line is sent SIGINT after CONSUME_SECONDS (as a user presses Ctrl-C), and
#     the quickstart runs with `--duration`, which the README gives as its equivalent.
#   - The quickstart's broker state goes to a scratch XDG_STATE_HOME, not ~/.local/state/playlog.
#   - Blocks that need what only other tests have are run there, and named below: `scripts/test.sh` is this
#     run itself; the docker-compose block runs in tests/tests/image.rs (local stand-ins for the images no
#     registry here serves); the secured-cluster block runs in tests/tests/secure_kafka.rs (TLS and SCRAM in
#     front of tansu). A block that no runner claims fails this script.
# Usage: scripts/test-readme.sh
set -euo pipefail
cd "$(dirname "$0")/.."
CONSUME_SECONDS=${CONSUME_SECONDS:-25}
QUICKSTART_SECONDS=${QUICKSTART_SECONDS:-30}

say() { echo "readme: $*" >&2; }
fail() { say "FAIL $*"; exit 1; }

# The README's commands write ./playlog.duckdb and ./out: a user's own (from the quickstart, say) is moved
# aside next to it and put back afterwards.
saved=.readme-test-saved
[ ! -e "$saved" ] || fail "$saved exists: a previous run was killed before putting ./playlog.duckdb back; restore it from there, then remove $saved"
for own in playlog.duckdb playlog.duckdb.wal out; do
  if [ -e "$own" ]; then
    mkdir -p "$saved"
    mv "$own" "$saved/"
    say "moved your ./$own aside to $saved/ for this run"
  fi
done
scratch=$(mktemp -d)
broker_pid=""
serve_pid=""
cleanup() {
  [ -z "$serve_pid" ] || kill "$serve_pid" 2>/dev/null || true
  [ -z "$broker_pid" ] || kill "$broker_pid" 2>/dev/null || true
  rm -rf playlog.duckdb playlog.duckdb.wal out "$scratch"
  if [ -d "$saved" ]; then
    mv "$saved"/* . 2>/dev/null || true
    rmdir "$saved" 2>/dev/null || true
  fi
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port)
serve_port=$(free_port)

# The README's ```sh blocks, one file each, with continuation lines joined.
awk -v dir="$scratch" '
  /^```sh$/ { n++; inside = 1; next }
  /^```$/ && inside { inside = 0; next }
  inside {
    if (sub(/\\$/, "")) { pending = pending $0; next }
    print pending $0 > (dir "/block-" n ".sh"); pending = ""
  }' README.md
blocks=("$scratch"/block-*.sh)
[ -e "${blocks[0]}" ] || fail "no \`\`\`sh blocks found in README.md"

out="$scratch/out.txt"
# Runs one README line; its output is in $out. Exits the script, showing the output, if it fails.
run() {
  local line=$1 status=0
  line=${line//127.0.0.1:9092/127.0.0.1:$port}
  line=${line//127.0.0.1:8080/127.0.0.1:$serve_port}
  [ -z "${CARGO_TARGET_DIR:-}" ] || line=${line//target\/release\//$CARGO_TARGET_DIR/release/}
  case "$line" in
    *"playlog serve "*)
      say "\$ $line   (in the background)"
      bash -c "$line" >"$scratch/serve.log" 2>&1 &
      serve_pid=$!
      for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$serve_port") 2>/dev/null && return; sleep 0.1; done
      cat "$scratch/serve.log" >&2
      fail "playlog serve did not listen on 127.0.0.1:$serve_port" ;;
    *" consume "*)
      say "\$ $line   (Ctrl-C after ${CONSUME_SECONDS} s)"
      # One SIGINT to the process itself (timeout(1) would signal its process group too: a second
      # Ctrl-C, which aborts).
      bash -c "$line" >"$out" 2>&1 &
      local pid=$!
      sleep "$CONSUME_SECONDS"
      kill -INT "$pid" 2>/dev/null || true
      wait "$pid" || status=$? ;;
    *)
      say "\$ $line"
      bash -c "$line" >"$out" 2>&1 || status=$? ;;
  esac
  if [ "$status" != 0 ]; then
    tail -40 "$out" | sed 's/^/  | /' >&2
    fail "exit $status from: $line"
  fi
}
# expect WHAT COMMAND...: the last line's output must satisfy COMMAND (given the output file).
expect() {
  local what=$1; shift
  "$@" "$out" || { tail -40 "$out" | sed 's/^/  | /' >&2; fail "$what"; }
}
# The data rows of a DuckDB box table: lines that start with │ and hold a digit after it.
table_numbers() { grep -E '^│ +[0-9]' "$1" | grep -oE '[0-9]+' || true; }
# The listen events the producer's summary says it sent to Kafka ("listen_events N sent …").
sent_listens=""
counted_once() {
  local n
  n=($(table_numbers "$1"))
  [ "${#n[@]}" = 2 ] && [ "${n[0]}" -gt 0 ] && [ "${n[0]}" = "${n[1]}" ] \
    && { [ -z "$sent_listens" ] || [ "${n[0]}" = "$sent_listens" ]; }
}
ten_json_lines() { [ "$(grep -c "^{" "$1")" = 10 ]; }
files_per_stream() { [ "$(find out -type f | wc -l)" -ge 4 ]; }
has() { grep -q "$1" "$2"; }

quickstart_block() {
  local line
  while IFS= read -r line; do
    case "$line" in
      ""|"#"*) ;;
      scripts/quickstart.sh*)
        XDG_STATE_HOME="$scratch/state" run "${line%%#*} --port $(free_port) --serve-port $(free_port) --duration $QUICKSTART_SECONDS"
        expect "the quickstart printed no report from the marts" has "Top songs"
        expect "the quickstart printed no dashboard URL" has "dashboard on http://127.0.0.1:"
        rm -f playlog.duckdb playlog.duckdb.wal ;;  # its broker's log is gone with it
      scripts/test.sh*) say "(scripts/test.sh: this run is part of it)" ;;
      *) fail "the quickstart block has a line this script does not know: $line" ;;
    esac
  done <"$1"
}

try_block() {
  local line
  say "starting a broker: PORT=$port scripts/broker.sh"
  PORT=$port scripts/broker.sh >"$scratch/broker.log" 2>&1 &
  broker_pid=$!
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
  while IFS= read -r line; do
    case "$line" in ""|"#"*) continue ;; esac
    run "$line"
    case "$line" in
      *"produce --brokers"*) sent_listens=$(awk '$1 == "listen_events" && $3 == "sent" { print $2 }' "$out") ;;
      *"--output - "*) expect "produce --output - did not print 10 JSON lines" ten_json_lines ;;
      *"--output out/"*) expect "produce --output out/ wrote no file per stream" files_per_stream ;;
      *"count(DISTINCT event_id)"*) expect "raw.listen_events does not hold each of the $sent_listens listen events sent exactly once" counted_once ;;
      *top_songs_daily*) expect "marts.top_songs_daily has no top songs of 2026-01-01" has "2026-01-01" ;;
      *aggregates/top_songs.json*) expect "the API's top songs aggregate answered no rows" has '"aggregate":"top_songs".*"listeners"' ;;
      *song_hourly_metrics.csv*) expect "the API's CSV of marts.song_hourly_metrics has no header" has "^date,hour,song_hk" ;;
    esac
  done <"$1"
  [ -z "$serve_pid" ] || { kill "$serve_pid" 2>/dev/null || true; wait "$serve_pid" 2>/dev/null || true; serve_pid=""; }
}

for block in "${blocks[@]}"; do
  first=$(grep -vE '^(#|$)' "$block" | head -1)
  case "$first" in
    scripts/quickstart.sh*) quickstart_block "$block" ;;
    "cargo build --release") try_block "$block" ;;
    "docker compose "*) say "(the docker-compose block: run by tests/tests/image.rs)" ;;
    "playlog produce --kafka-config "*) say "(the secured-cluster block: run by tests/tests/secure_kafka.rs)" ;;
    *) fail "README block $(basename "$block" .sh) starts with \`$first\`, which no runner here claims: add one" ;;
  esac
done
say "every README command block ran"
