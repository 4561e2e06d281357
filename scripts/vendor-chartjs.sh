#!/usr/bin/env bash
# Refreshes the dashboard's bundled charting library (serve/assets/vendor/) from the npm registry's
# tarball, checked against the checksum recorded here. The binary embeds the file, so the dashboard
# works offline and loads nothing from a CDN. Usage: scripts/vendor-chartjs.sh
set -euo pipefail
cd "$(dirname "$0")/.."
version=4.6.1
tarball_sha256=9345dacdf4bb4c5d40321f4b9aafab6fe676d37a534fc0bc2d17c4c4e29c4f00
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "chart.js@$version" >/dev/null)
echo "$tarball_sha256  $work/chart.js-$version.tgz" | sha256sum --check --quiet
tar -xzf "$work/chart.js-$version.tgz" -C "$work"
dest="serve/assets/vendor/chart.js-$version"
mkdir -p "$dest"
cp "$work/package/dist/chart.umd.min.js" "$work/package/LICENSE.md" "$dest/"
echo "chart.js $version in $dest"
