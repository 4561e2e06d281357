#!/usr/bin/env bash
# The test command: installs what the tests need (Debian packages, the tansu broker, Prometheus, the
# static-check tools), runs the static checks of docker/, terraform/ and the monitoring rules
# (scripts/check-ops.sh), builds the Docker image, then runs every test, unit and end-to-end, in the release
# profile (the same build the quickstart runs, so it is compiled once), and every README command block.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test
scripts/check-ops.sh
# The end-to-end tests run the `playlog` binary as a process; `cargo test` alone does not (re)build it.
cargo build --workspace --release --bins
# With a test filter, only the tests it selects run (tests/tests/image.rs builds the image itself).
(($#)) || scripts/build-image.sh   # docker/Dockerfile as shipped: its size and build time, for the log
cargo test --workspace --release "$@"
# Every command block of the README, as a new user runs it (after cargo test: two blocks build with cargo).
(($#)) || scripts/test-readme.sh
