//! The Docker image, built from `docker/Dockerfile` as shipped (scripts/build-image.sh) and run for real:
//! `playlog --version`, then produce → consume → vault build → check against a tansu broker on the
//! loopback interface, in containers with host networking (all traffic stays on 127.0.0.1). The consumer
//! writes a named volume as the image's non-root user, and its healthcheck must pass. Then the compose
//! file's own `producer` and `consumer` services run the same way.
//!
//! What stands in for what: no image registry is reachable here, so scripts/build-image.sh makes local
//! stand-ins for the base images (debian:bookworm-slim, node:20-bookworm-slim, rust:1.95-bookworm) from
//! Debian's packages with mmdebstrap. The compose smoke test starts only Playlog's services
//! (`up --no-deps`), with an override file for host networking and the test broker: apache/kafka,
//! prom/prometheus and grafana/grafana cannot be had here, so the stack's Kafka, topic init, Prometheus and
//! Grafana containers are not run.

#![allow(clippy::unwrap_used)] // A test: a failed step should stop it loudly.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use playlog_e2e::*;

const TAG: &str = "playlog:local";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The docker client scripts/docker-engine.sh picks (starting the engine if none runs).
fn docker_client() -> String {
    let output = Command::new(repo().join("scripts/docker-engine.sh"))
        .output()
        .unwrap();
    assert_success(&output, "scripts/docker-engine.sh");
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

fn docker(client: &str, args: &[&str]) -> Output {
    Command::new(client).args(args).output().unwrap()
}

fn text(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// Removes a container and a volume when the test ends, passed or failed.
struct Cleanup {
    client: String,
    containers: Vec<String>,
    volumes: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for c in &self.containers {
            let _ = docker(&self.client, &["rm", "-f", c]);
        }
        for v in &self.volumes {
            let _ = docker(&self.client, &["volume", "rm", "-f", v]);
        }
    }
}

/// Builds the image once for this test binary's tests (they run in parallel), and returns the client.
fn build_image() -> String {
    static BUILT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BUILT.get_or_init(build_image_now).clone()
}

fn build_image_now() -> String {
    let client = docker_client();
    let output = Command::new(repo().join("scripts/build-image.sh"))
        .arg(TAG)
        .output()
        .unwrap();
    assert_success(&output, "scripts/build-image.sh");
    // The size and build time, for the test's log (`--nocapture` shows it).
    eprintln!("{}", String::from_utf8_lossy(&output.stderr).trim());
    client
}

fn wait_healthy(client: &str, container: &str) -> String {
    let mut status = String::new();
    wait_for(Duration::from_secs(90), || {
        status = text(&docker(
            client,
            &["inspect", "-f", "{{ .State.Health.Status }}", container],
        ));
        status == "healthy" || status == "unhealthy"
    });
    status
}

#[test]
fn the_image_runs_the_pipeline_as_a_non_root_user() {
    let client = build_image();
    let scratch = Scratch::new("image");
    let id = std::process::id();
    let volume = format!("playlog-image-test-{id}");
    let consumer = format!("playlog-image-consumer-{id}");
    let _cleanup = Cleanup {
        client: client.clone(),
        containers: vec![consumer.clone()],
        volumes: vec![volume.clone()],
    };
    let run = |args: &[&str]| {
        let mut all = vec!["run", "--rm", "--network", "host"];
        all.extend_from_slice(args);
        docker(&client, &all)
    };

    let version = run(&[TAG, "--version"]);
    assert_success(&version, "playlog --version in the image");
    assert!(text(&version).starts_with("playlog "), "{}", text(&version));
    let user = run(&["--entrypoint", "id", TAG, "-u"]);
    assert_eq!(text(&user), "10001", "the image's user");

    let broker = Broker::start();
    let expected = produce_to_dir(&scratch, "expected", &DAY);
    let mut produce = vec![TAG, "produce", "-q", "--brokers", &broker.address];
    produce.extend_from_slice(&DAY);
    assert_success(&run(&produce), "playlog produce in the image");

    let metrics = format!("127.0.0.1:{}", free_port());
    let volume_mount = format!("{volume}:/data");
    let metrics_env = format!("PLAYLOG_METRICS_ADDR={metrics}");
    let started = docker(
        &client,
        &[
            "run",
            "-d",
            "--name",
            &consumer,
            "--network",
            "host",
            "-v",
            &volume_mount,
            "-e",
            &metrics_env,
            TAG,
            "consume",
            "--brokers",
            &broker.address,
            "--members",
            "2",
            "-X",
            "session.timeout.ms=6000",
        ],
    );
    assert_success(&started, "docker run -d … consume");
    let logs = || {
        let output = docker(&client, &["logs", &consumer]);
        text(&output) + "\n" + &String::from_utf8_lossy(&output.stderr)
    };
    let want = total(&expected) as f64;
    let landed = || rows_ingested_at(&metrics);
    assert!(
        wait_for(Duration::from_secs(120), || landed() >= want),
        "rows landed: {} of {want}\n{}",
        landed(),
        logs()
    );
    assert_eq!(
        wait_healthy(&client, &consumer),
        "healthy",
        "the image's healthcheck\n{}",
        logs()
    );
    // SIGTERM: flush, commit, leave the group, exit 0.
    assert_success(
        &docker(&client, &["stop", "-t", "60", &consumer]),
        "docker stop",
    );
    let exit = text(&docker(
        &client,
        &["inspect", "-f", "{{ .State.ExitCode }}", &consumer],
    ));
    assert_eq!(exit, "0", "the consumer's exit code\n{}", logs());

    // The vault and its data tests, in the same volume, as the non-root user.
    assert_success(
        &run(&["-v", &volume_mount, TAG, "vault", "build"]),
        "vault build in the image",
    );
    assert_success(
        &run(&["-v", &volume_mount, TAG, "check", "--max-age", "24h"]),
        "check in the image",
    );
    // Every event exactly once: the warehouse, copied out of the stopped container's volume.
    let copy = format!("{consumer}:/data/playlog.duckdb");
    let dest = scratch.path().join("w.duckdb");
    assert_success(
        &docker(&client, &["cp", &copy, &dest.display().to_string()]),
        "docker cp the warehouse",
    );
    assert_exactly_once(&scratch, &expected);
}

/// The README's docker-compose block, as far as it can run here: the compose file's own `producer` and
/// `consumer` services (their commands, environment, volume and healthcheck as shipped), with an override
/// for host networking and the test broker, started with `up --no-deps`.
#[test]
fn the_compose_files_playlog_services_run() {
    let client = build_image();
    let readme_block = readme_blocks("sh")
        .into_iter()
        .find(|b| b.contains("docker compose -f docker/docker-compose.yml up"))
        .expect("the README's docker-compose block");
    assert!(
        readme_block.contains("docker/docker-compose.yml"),
        "{readme_block}"
    );
    let scratch = Scratch::new("compose");
    let broker = Broker::start();
    let producer_metrics = free_port();
    let consumer_metrics = free_port();
    let override_file = scratch.path().join("host-network.yml");
    let service = |metrics: u16| {
        format!(
            "    network_mode: host\n    environment:\n      PLAYLOG_BROKERS: {}\n      PLAYLOG_METRICS_ADDR: 127.0.0.1:{metrics}\n",
            broker.address
        )
    };
    std::fs::write(
        &override_file,
        format!(
            "services:\n  producer:\n{}  consumer:\n{}",
            service(producer_metrics),
            service(consumer_metrics)
        ),
    )
    .unwrap();
    let project = format!("playlog-compose-test-{}", std::process::id());
    let compose = |args: &[&str]| {
        let mut command = Command::new("docker-compose");
        command
            .args(["-p", &project, "-f"])
            .arg(repo().join("docker/docker-compose.yml"))
            .arg("-f")
            .arg(&override_file)
            .args(args)
            .env("COMPOSE_PROFILES", "duckdb");
        command.output().unwrap()
    };
    struct Down<'a>(&'a dyn Fn(&[&str]) -> Output);
    impl Drop for Down<'_> {
        fn drop(&mut self) {
            let _ = (self.0)(&["down", "-v", "--timeout", "60"]);
        }
    }
    let _down = Down(&compose);
    assert_success(
        &compose(&[
            "up",
            "-d",
            "--no-deps",
            "--no-build",
            "producer",
            "consumer",
        ]),
        "docker-compose up producer consumer",
    );
    let consumer_addr = format!("127.0.0.1:{consumer_metrics}");
    let landed = || rows_ingested_at(&consumer_addr);
    let logs = || {
        let output = compose(&["logs", "--no-color"]);
        text(&output) + &String::from_utf8_lossy(&output.stderr)
    };
    assert!(
        wait_for(Duration::from_secs(120), || landed() > 0.0),
        "the compose consumer landed nothing\n{}",
        logs()
    );
    let container = text(&compose(&["ps", "-q", "consumer"]));
    assert_eq!(
        wait_healthy(&client, &container),
        "healthy",
        "the consumer service's healthcheck\n{}",
        logs()
    );
    assert_success(
        &compose(&["stop", "--timeout", "60"]),
        "docker-compose stop",
    );
    let exit = text(&docker(
        &client,
        &["inspect", "-f", "{{ .State.ExitCode }}", &container],
    ));
    assert_eq!(exit, "0", "the consumer service's exit code\n{}", logs());
}
