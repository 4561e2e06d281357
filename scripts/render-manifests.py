"""Renders terraform/manifests/*.yaml with example values, as Terraform's templatefile() would, so that the
manifests can be validated offline (scripts/check-ops.sh). Only ${name} placeholders are used in them.

    python3 scripts/render-manifests.py OUT_DIR
"""

import pathlib
import re
import sys

EXAMPLE = {
    "namespace": "playlog",
    "image": "europe-west1-docker.pkg.dev/my-project/playlog/playlog@sha256:" + "0" * 64,
    "brokers": "playlog-kafka-bootstrap.kafka.svc:9093",
    "warehouse": "bigquery://my-project/playlog",
    "consumer_gsa": "playlog-consumer-dev@my-project.iam.gserviceaccount.com",
    "vault_gsa": "playlog-vault-dev@my-project.iam.gserviceaccount.com",
    "migrate_gsa": "playlog-migrate-dev@my-project.iam.gserviceaccount.com",
    "bigquery_location": "EU",
    "migrate_job": "migrate-0123456789",
    "producer_replicas": "1",
    "producer_users": "10000",
    "producer_speed": "1",
    "partitions": "6",
    "vault_every": "10m",
    "flush_interval": "5s",
    "lag_threshold": "50000",
}
for workload, (cpu_req, mem_req, cpu_lim, mem_lim) in {
    "producer": ("250m", "256Mi", "1", "512Mi"),
    "consumer": ("500m", "512Mi", "2", "1Gi"),
    "vault": ("100m", "128Mi", "500m", "256Mi"),
}.items():
    EXAMPLE.update({
        f"{workload}_cpu_request": cpu_req,
        f"{workload}_memory_request": mem_req,
        f"{workload}_cpu_limit": cpu_lim,
        f"{workload}_memory_limit": mem_lim,
    })


def render(text: str, source: pathlib.Path) -> str:
    def value(match: re.Match) -> str:
        name = match.group(1)
        if name not in EXAMPLE:
            sys.exit(f"{source}: no example value for ${{{name}}}; add it to {__file__}")
        return EXAMPLE[name]

    return re.sub(r"\$\{([a-z_]+)\}", value, text)


def main() -> None:
    out = pathlib.Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    for source in sorted(pathlib.Path(__file__).parent.parent.joinpath("terraform/manifests").glob("*.yaml")):
        (out / source.name).write_text(render(source.read_text(), source))
        print(f"rendered {source.name}")


if __name__ == "__main__":
    main()
