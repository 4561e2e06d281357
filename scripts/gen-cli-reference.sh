#!/usr/bin/env bash
# Regenerates the README's CLI reference (between the cli-reference markers) from `playlog … --help`.
# tests/tests/readme.rs fails when the README and the binary disagree; run this to bring them in line.
#   scripts/gen-cli-reference.sh [PATH/TO/playlog]
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:-${CARGO_TARGET_DIR:-target}/release/playlog}"
export COLUMNS=100
{
  for cmd in "produce" "consume" "vault build" "vault run" "vault plan" "check" "report" "migrate" "serve" "docs" "offers"; do
    echo "<details><summary><code>playlog $cmd --help</code></summary>"
    echo
    echo '```text'
    # shellcheck disable=SC2086
    "$bin" $cmd --help
    echo '```'
    echo
    echo "</details>"
    echo
  done
} > /tmp/playlog-cli-reference.md
python3 - /tmp/playlog-cli-reference.md <<'PY'
import sys, re
body = open(sys.argv[1]).read()
readme = open("README.md").read()
begin, end = "<!-- cli-reference:begin -->\n", "<!-- cli-reference:end -->"
i, j = readme.index(begin) + len(begin), readme.index(end)
open("README.md", "w").write(readme[:i] + body + readme[j:])
PY
echo "README.md: CLI reference regenerated from $bin"
