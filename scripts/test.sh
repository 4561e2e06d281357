#!/usr/bin/env bash
# The test command: installs what the tests need (Debian packages, the tansu broker, Prometheus, the
# static-check tools), runs the static checks of docker/, terraform/ and the monitoring rules
# (scripts/check-ops.sh), then every test, unit and end-to-end, in the release profile (the same build the
# quickstart runs, so it is compiled once).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test
scripts/check-ops.sh
# The end-to-end tests run the `playlog` binary as a process; `cargo test` alone does not (re)build it.
cargo build --workspace --release --bins
cargo test --workspace --release "$@"
