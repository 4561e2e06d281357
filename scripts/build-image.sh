#!/usr/bin/env bash
# Builds docker/Dockerfile as shipped, with BuildKit, and prints the image's size and the build's time:
#   scripts/build-image.sh [TAG]          (default playlog:local, the tag docker-compose.yml uses)
# Where the Dockerfile's base images cannot be pulled (no registry reachable, as on CI here), local
# stand-ins of the same names are made first (scripts/docker-standins.sh). The build runs with host
# networking, so that it reaches crates.io and npm the way this machine does.
set -euo pipefail
cd "$(dirname "$0")/.."
tag=${1:-playlog:local}
say() { echo "build-image: $*" >&2; }
docker=$(scripts/docker-engine.sh)
# A base image is used as it is if present; else pulled; else (no registry) a stand-in is made. Stand-ins
# already here are remade if scripts/docker-standins.sh has changed them since.
standins=false
for base in $(awk '/^FROM / { print $2 }' docker/Dockerfile | sort -u); do
  if ! "$docker" image inspect "$base" >/dev/null 2>&1; then
    $standins || "$docker" pull "$base" >/dev/null 2>&1 || standins=true
  elif [ -n "$("$docker" image inspect -f '{{ index .Config.Labels "playlog.standin" }}' "$base" 2>/dev/null | grep -v 'no value')" ]; then
    standins=true
  fi
done
if $standins; then
  say "using local stand-ins for base images no registry here serves (scripts/docker-standins.sh)"
  DOCKER="$docker" scripts/docker-standins.sh
fi
started=$(date +%s)
log=$(mktemp)
if ! DOCKER_BUILDKIT=1 "$docker" build --network host --progress plain -f docker/Dockerfile -t "$tag" . >"$log" 2>&1; then
  say "docker build failed; the end of its output:"
  tail -40 "$log" >&2
  rm -f "$log"
  exit 1
fi
rm -f "$log"
size=$("$docker" image inspect -f '{{ .Size }}' "$tag")
say "$tag built in $(( $(date +%s) - started )) s; image size $(( size / 1000000 )) MB"
