#!/usr/bin/env bash
# Makes sure a Docker engine answers, for the image tests: uses the one running, else starts Debian's
# dockerd (docker.io; scripts/install-deps.sh --test installs it) in the background, as root, keeping its
# images and build cache in ~/.cache/playlog/docker so that a later run on this machine rebuilds little.
# Prints the docker client to use: Debian's, whose `docker build` has BuildKit built in (a newer client
# without the buildx plug-in cannot build the Dockerfile's cache mounts).
set -euo pipefail
say() { echo "docker-engine: $*" >&2; }
client=docker
[ -x /usr/bin/docker ] && client=/usr/bin/docker
command -v "$client" >/dev/null || { say "no docker client: run scripts/install-deps.sh --test (Debian's docker.io)"; exit 1; }
if "$client" info >/dev/null 2>&1; then echo "$client"; exit 0; fi
command -v dockerd >/dev/null || { say "no Docker engine answers and dockerd is not installed: run scripts/install-deps.sh --test"; exit 1; }
if [ "$(id -u)" != 0 ]; then
  if [ -S /var/run/docker.sock ] && [ ! -w /var/run/docker.sock ]; then
    say "Docker runs, but $(id -un) may not use it (/var/run/docker.sock): sudo usermod -aG docker $(id -un), then log in again"
  else
    say "no Docker engine answers; start it (sudo systemctl start docker), or run this as root to start dockerd"
  fi
  exit 1
fi
state="${XDG_CACHE_HOME:-$HOME/.cache}/playlog/docker"
mkdir -p "$state"
say "starting dockerd (data in $state, log in $state/dockerd.log)"
# setsid: the engine outlives this script and the test run that started it, like a system service.
setsid dockerd --data-root "$state/data" --exec-root /run/playlog-docker --pidfile /run/playlog-dockerd.pid \
  >"$state/dockerd.log" 2>&1 </dev/null &
for _ in $(seq 60); do
  if "$client" info >/dev/null 2>&1; then echo "$client"; exit 0; fi
  sleep 0.5
done
say "dockerd did not answer within 30 s; the end of its log:"
tail -20 "$state/dockerd.log" >&2
exit 1
