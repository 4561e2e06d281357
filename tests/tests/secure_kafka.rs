//! `playlog produce` and `playlog consume` against secured Kafka: TLS, mTLS and SASL_SSL with SCRAM, and
//! the refusals (untrusted CA, wrong host name, missing client certificate, wrong password), each one
//! clear line and a failure exit. No secret may appear in any log of these runs.
//!
//! What stands in for a secured Kafka here: tansu 0.6 serves no TLS (its `--cert`/`--key` are parsed but
//! unused), so stunnel4 terminates real TLS in front of it, verifying client certificates for mTLS, and
//! tansu advertises stunnel's address. tansu's SCRAM (SHA-256 and SHA-512) works on `sqlite://` storage
//! with `--authentication`; users are created while it runs without the flag. tansu checks no ACLs, so
//! authorization is not tested here (only in the Strimzi configuration). PLAIN and OAUTHBEARER have no
//! server here: they are not tested.

#![allow(clippy::unwrap_used)] // A test: a failed step should stop it loudly.

use std::path::Path;
use std::time::Duration;

use playlog_e2e::tls::{CLIENT_KEY_PASSWORD, Pki, TlsTerminator};
use playlog_e2e::*;

const ALICE_PASSWORD: &str = "alice-scram512-Secret-91c4";
const BOB_PASSWORD: &str = "bob-scram256-Secret-5e0d";

/// A tansu broker behind a TLS terminator; `client_ca` turns on mTLS, `sqlite` the storage SCRAM needs.
struct SecureBroker {
    broker: Broker,
    tls: TlsTerminator,
}

impl SecureBroker {
    fn start(pki: &Pki, dir: &Path, client_ca: Option<&Path>, sqlite: bool) -> SecureBroker {
        let port = free_port();
        let broker = Broker::start_with(BrokerOptions {
            storage: if sqlite {
                "sqlite://broker.db".into()
            } else {
                "memory://tansu/".into()
            },
            advertised: Some(format!("localhost:{port}")),
            authentication: false,
            cluster_id: None,
        });
        let tls = TlsTerminator::start(
            port,
            dir,
            "broker",
            &pki.path("server.pem"),
            &pki.path("server.key"),
            client_ca,
            &broker.address,
        );
        SecureBroker { broker, tls }
    }

    fn address(&self) -> String {
        self.tls.address()
    }
}

/// Produces the day, consumes it with two members, and checks every event landed exactly once. `client`
/// is the connection flags (no --brokers when a properties file carries bootstrap.servers); `envs` the
/// environment of both processes.
fn land_the_day(scratch: &Scratch, client: &[&str], envs: &[(&str, &str)]) {
    let mut produce = vec!["produce", "-q"];
    produce.extend_from_slice(client);
    produce.extend_from_slice(&DAY);
    let output = playlog(&produce, &with_debug_logs(envs));
    std::fs::write(
        scratch.path().join("producer.log"),
        [output.stdout.as_slice(), output.stderr.as_slice()].concat(),
    )
    .unwrap();
    assert_success(&output, "playlog produce over secured Kafka");
    consume_the_day(scratch, client, envs);
}

/// Everything Playlog logs, so that the secret checks see as much as there is.
fn with_debug_logs<'a>(envs: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut envs = envs.to_vec();
    envs.push(("PLAYLOG_LOG", "debug"));
    envs
}

/// Consumes the (already produced) day into the scratch directory's warehouse with two members, and
/// checks every event landed exactly once.
fn consume_the_day(scratch: &Scratch, client: &[&str], envs: &[(&str, &str)]) {
    let expected = produce_to_dir(scratch, "expected", &DAY);
    let metrics = format!("127.0.0.1:{}", free_port());
    let warehouse = format!("duckdb:{}", scratch.path().join("w.duckdb").display());
    let mut consume = vec![
        "consume",
        "--warehouse",
        &warehouse,
        "--metrics-addr",
        &metrics,
        "--members",
        "2",
        "--flush-interval",
        "200ms",
        "-X",
        "session.timeout.ms=6000",
    ];
    consume.extend_from_slice(client);
    let mut consumer = ConsumeProcess {
        process: Background::spawn(
            &consume,
            &with_debug_logs(envs),
            scratch.path().join("consumer.log"),
        ),
        metrics,
    };
    consumer.land_and_stop(total(&expected), Duration::from_secs(120));
    assert_exactly_once(scratch, &expected);
}

/// No log in `dir` (recursively) holds any of `secrets`.
fn assert_no_secret_in_logs(dirs: &[&Path], secrets: &[String]) {
    let mut checked = 0;
    for dir in dirs {
        for entry in walk(dir) {
            if entry.extension().is_some_and(|e| e == "log") {
                let text = String::from_utf8_lossy(&std::fs::read(&entry).unwrap()).into_owned();
                checked += 1;
                for secret in secrets {
                    assert!(
                        !text.contains(secret.as_str()),
                        "{} shows a secret",
                        entry.display()
                    );
                }
            }
        }
    }
    assert!(checked > 0, "no logs found to check");
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn tls_from_a_client_properties_file_lands_the_day() {
    let scratch = Scratch::new("tls");
    let pki = Pki::new(&scratch.path().join("pki"));
    let secure = SecureBroker::start(&pki, scratch.path(), None, false);
    // The Java-style file a cluster hands out: a PEM truststore, and bootstrap.servers (no --brokers).
    let properties = scratch.path().join("client.properties");
    std::fs::write(
        &properties,
        format!(
            "# as a Java client reads it\nbootstrap.servers={}\nsecurity.protocol=SSL\nssl.truststore.type=PEM\nssl.truststore.location={}\n",
            secure.address(),
            pki.file("ca.pem")
        ),
    )
    .unwrap();
    let file = properties.display().to_string();
    land_the_day(&scratch, &["--kafka-config", &file], &[]);
    assert_no_secret_in_logs(&[scratch.path()], &pki.private_key_lines());
    drop(secure);
}

#[test]
fn mtls_with_an_encrypted_client_key_lands_the_day() {
    let scratch = Scratch::new("mtls");
    let pki = Pki::new(&scratch.path().join("pki"));
    let secure = SecureBroker::start(&pki, scratch.path(), Some(&pki.path("ca.pem")), false);
    // Configured through the environment only, the key's password from a file (a mounted secret).
    let password_file = scratch.path().join("key-password");
    std::fs::write(&password_file, format!("{CLIENT_KEY_PASSWORD}\n")).unwrap();
    let (ca, cert, key, pw) = (
        pki.file("ca.pem"),
        pki.file("client.pem"),
        pki.file("client-encrypted.key"),
        password_file.display().to_string(),
    );
    let address = secure.address();
    land_the_day(
        &scratch,
        &[],
        &[
            ("PLAYLOG_BROKERS", address.as_str()),
            ("PLAYLOG_KAFKA_SECURITY_PROTOCOL", "ssl"),
            ("PLAYLOG_KAFKA_SSL_CA_LOCATION", &ca),
            ("PLAYLOG_KAFKA_SSL_CERTIFICATE_LOCATION", &cert),
            ("PLAYLOG_KAFKA_SSL_KEY_LOCATION", &key),
            ("PLAYLOG_KAFKA_SSL_KEY_PASSWORD_FILE", &pw),
        ],
    );
    let mut secrets = pki.private_key_lines();
    secrets.push(CLIENT_KEY_PASSWORD.into());
    assert_no_secret_in_logs(&[scratch.path()], &secrets);
    drop(secure);
}

/// A broker requiring SCRAM, with users alice (SCRAM-SHA-512) and bob (SCRAM-SHA-256).
fn scram_broker(pki: &Pki, dir: &Path) -> SecureBroker {
    let mut secure = SecureBroker::start(pki, dir, None, true);
    secure
        .broker
        .create_scram_user("scram512", "alice", ALICE_PASSWORD);
    secure
        .broker
        .create_scram_user("scram256", "bob", BOB_PASSWORD);
    secure.broker.restart(true);
    secure
}

#[test]
fn sasl_ssl_with_scram_lands_the_day() {
    let scratch = Scratch::new("scram");
    let pki = Pki::new(&scratch.path().join("pki"));
    let secure = scram_broker(&pki, scratch.path());
    // The MSK-style file: a JAAS line with the login, for SCRAM-SHA-512 ...
    let with_jaas = scratch.path().join("alice.properties");
    std::fs::write(
        &with_jaas,
        format!(
            "bootstrap.servers={}\nsecurity.protocol=SASL_SSL\nsasl.mechanism=SCRAM-SHA-512\nsasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required \\\n    username=\"alice\" password=\"{ALICE_PASSWORD}\";\nssl.ca.location={}\n",
            secure.address(),
            pki.file("ca.pem")
        ),
    )
    .unwrap();
    let file = with_jaas.display().to_string();
    land_the_day(&scratch, &["--kafka-config", &file], &[]);

    // ... and SCRAM-SHA-256 with the password from a mounted secret file, the rest from the environment.
    let second = Scratch::new("scram-256");
    let password_file = second.path().join("bob-password");
    std::fs::write(&password_file, BOB_PASSWORD).unwrap();
    let (address, ca, pw) = (
        secure.address(),
        pki.file("ca.pem"),
        password_file.display().to_string(),
    );
    // Bob's group reads the day alice produced into a warehouse of its own.
    let envs = [
        ("PLAYLOG_KAFKA_SECURITY_PROTOCOL", "sasl_ssl"),
        ("PLAYLOG_KAFKA_SASL_MECHANISM", "SCRAM-SHA-256"),
        ("PLAYLOG_KAFKA_SASL_USERNAME", "bob"),
        ("PLAYLOG_KAFKA_SASL_PASSWORD_FILE", pw.as_str()),
        ("PLAYLOG_KAFKA_SSL_CA_LOCATION", ca.as_str()),
    ];
    consume_the_day(
        &second,
        &["--brokers", &address, "--group", "bob-group"],
        &envs,
    );

    let mut secrets = pki.private_key_lines();
    secrets.extend([ALICE_PASSWORD.to_owned(), BOB_PASSWORD.to_owned()]);
    assert_no_secret_in_logs(&[scratch.path(), second.path()], &secrets);
    drop(secure);
}

/// (name, arguments, environment, the cause the error line must name)
type RefusalCase<'a> = (&'a str, Vec<String>, Vec<(&'a str, &'a str)>, &'a str);

/// Runs `playlog ARGS` against a refusing endpoint: it must fail, within the hang guard, with exactly one
/// error line, containing `cause`, and no log lines (the consumer's start banner aside).
fn refused(scratch: &Scratch, name: &str, args: &[&str], envs: &[(&str, &str)], cause: &str) {
    let log = scratch.path().join(format!("{name}.log"));
    let mut process = Background::spawn(args, envs, log);
    let status = process
        .wait(Duration::from_secs(60))
        .unwrap_or_else(|| panic!("{name}: still running after 60 s:\n{}", process.output()));
    let output = process.output();
    assert!(!status.success(), "{name}: exited 0:\n{output}");
    let lines: Vec<&str> = output
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with("consume: group "))
        .collect();
    assert_eq!(lines.len(), 1, "{name}: want one line:\n{output}");
    assert!(
        lines[0].starts_with("error: ") && lines[0].contains(cause),
        "{name}: want an error naming {cause:?}:\n{output}"
    );
}

#[test]
fn refused_connections_are_one_clear_line_and_a_failure_exit() {
    let scratch = Scratch::new("refused");
    let pki = Pki::new(&scratch.path().join("pki"));
    let tls = SecureBroker::start(&pki, scratch.path(), None, false);
    let mtls = SecureBroker::start(&pki, scratch.path(), Some(&pki.path("ca.pem")), false);
    let scram = scram_broker(&pki, scratch.path());
    let wrong_host = TlsTerminator::start(
        free_port(),
        scratch.path(),
        "wrong-host",
        &pki.path("wrong-host.pem"),
        &pki.path("wrong-host.key"),
        None,
        &tls.broker.address,
    );
    let window = [
        "--users",
        "5",
        "--from",
        "2026-01-01",
        "--to",
        "2026-01-01T01:00:00Z",
    ];
    let produce = |brokers: &str, flags: &[&str]| -> Vec<String> {
        let mut args = vec!["produce", "-q", "--brokers", brokers];
        args.extend_from_slice(flags);
        args.extend_from_slice(&window);
        args.into_iter().map(str::to_owned).collect()
    };
    let (ca, other_ca) = (pki.file("ca.pem"), pki.file("other-ca.pem"));
    let warehouse = format!("duckdb:{}", scratch.path().join("w.duckdb").display());
    let cases: Vec<RefusalCase<'_>> = vec![
        (
            "untrusted-ca",
            produce(
                &tls.address(),
                &[
                    "-X",
                    "security.protocol=ssl",
                    "-X",
                    &format!("ssl.ca.location={other_ca}"),
                ],
            ),
            vec![],
            "is not signed by a CA this client trusts",
        ),
        (
            "host-mismatch",
            produce(
                &format!("localhost:{}", wrong_host.port),
                &[
                    "-X",
                    "security.protocol=ssl",
                    "-X",
                    &format!("ssl.ca.location={ca}"),
                ],
            ),
            vec![],
            "does not match the host name localhost: it names kafka.elsewhere.example",
        ),
        (
            "no-client-certificate",
            produce(
                &mtls.address(),
                &[
                    "-X",
                    "security.protocol=ssl",
                    "-X",
                    &format!("ssl.ca.location={ca}"),
                ],
            ),
            vec![],
            "requires a client certificate (mTLS) and none is configured",
        ),
        (
            "wrong-password",
            produce(
                &scram.address(),
                &[
                    "-X",
                    "security.protocol=sasl_ssl",
                    "-X",
                    &format!("ssl.ca.location={ca}"),
                    "-X",
                    "sasl.mechanism=SCRAM-SHA-512",
                    "-X",
                    "sasl.username=alice",
                ],
            ),
            vec![("PLAYLOG_KAFKA_SASL_PASSWORD", "not-alices-password-1234")],
            "refused the SASL SCRAM-SHA-512 login of user alice",
        ),
        (
            "consumer-wrong-password",
            vec![
                "consume".to_owned(),
                "--brokers".to_owned(),
                scram.address(),
                "--warehouse".to_owned(),
                warehouse.clone(),
                "--metrics-addr".to_owned(),
                "off".to_owned(),
                "-X".to_owned(),
                "security.protocol=sasl_ssl".to_owned(),
                "-X".to_owned(),
                format!("ssl.ca.location={ca}"),
                "-X".to_owned(),
                "sasl.mechanism=SCRAM-SHA-256".to_owned(),
                "-X".to_owned(),
                "sasl.username=bob".to_owned(),
            ],
            vec![("PLAYLOG_KAFKA_SASL_PASSWORD", "not-bobs-password-5678")],
            "refused the SASL SCRAM-SHA-256 login of user bob",
        ),
        (
            "plaintext-client-at-tls-listener",
            produce(&tls.address(), &[]),
            vec![],
            "is a TLS listener, and this client speaks plaintext",
        ),
    ];
    for (name, args, envs, cause) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        refused(&scratch, name, &args, envs, cause);
    }
    // What tansu itself does with a wrong password: it refuses the SCRAM proof (librdkafka reports the
    // broker's invalid-proof), and our client ends there. A broker that did not refuse would still be
    // caught by librdkafka's check of the server's signature.
    let mut secrets = pki.private_key_lines();
    secrets.extend(
        [
            ALICE_PASSWORD,
            BOB_PASSWORD,
            "not-alices-password-1234",
            "not-bobs-password-5678",
        ]
        .map(str::to_owned),
    );
    assert_no_secret_in_logs(&[scratch.path()], &secrets);
    drop((tls, mtls, scram, wrong_host));
}

/// The README's commands for a secured cluster ("Then, for any of them"), run as written in a directory
/// holding `client.properties`: the README's Strimzi example (the GKE deployment's form, SASL_SSL with
/// SCRAM-SHA-512 and the password in a file), with this broker's address, CA and user put in. The
/// continuous producer and the consumer are stopped with Ctrl-C, as a user would; every event the
/// producer sent lands once.
#[test]
fn the_readmes_secured_cluster_commands_run_as_written() {
    let scratch = Scratch::new("readme-secure");
    let pki = Pki::new(&scratch.path().join("pki"));
    let secure = scram_broker(&pki, scratch.path());
    let password_file = scratch.path().join("kafka-password");
    std::fs::write(&password_file, format!("{ALICE_PASSWORD}\n")).unwrap();
    let strimzi = readme_blocks("properties")
        .into_iter()
        .find(|b| b.contains("my-cluster-kafka-bootstrap"))
        .expect("the README's Strimzi example");
    let properties: String = strimzi
        .lines()
        .map(|line| match line.split_once('=').map(|(k, _)| k) {
            Some("bootstrap.servers") => format!("bootstrap.servers={}", secure.address()),
            Some("sasl.username") => "sasl.username=alice".into(),
            Some("sasl.password.file") => format!("sasl.password.file={}", password_file.display()),
            Some("ssl.ca.location") => format!("ssl.ca.location={}", pki.file("ca.pem")),
            _ => line.to_owned(),
        })
        .map(|line| line + "\n")
        .collect();
    std::fs::write(scratch.path().join("client.properties"), properties).unwrap();
    let commands = readme_blocks("sh")
        .into_iter()
        .find(|b| b.contains("--kafka-config client.properties"))
        .expect("the README's commands for a secured cluster");
    let lines: Vec<String> = commands
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            l.replace(
                "/run/secrets/kafka-password",
                &password_file.display().to_string(),
            )
        })
        .collect();
    assert_eq!(
        lines.len(),
        2,
        "a producer and a consumer line:\n{commands}"
    );
    assert!(lines[0].starts_with("playlog produce"), "{}", lines[0]);
    assert!(lines[1].contains("playlog consume"), "{}", lines[1]);

    let mut producer = spawn_shell_line(&lines[0], scratch.path(), scratch.path().join("p.log"));
    // At 60x, 100 users send their first events within a minute or so: Ctrl-C once the progress line
    // (every 5 s) counts some.
    let sent = |output: &str| {
        output
            .lines()
            .filter_map(|l| l.strip_prefix("produce: ")?.split_once(" events, "))
            .filter_map(|(n, _)| n.parse::<u64>().ok())
            .next_back()
            .unwrap_or(0)
    };
    assert!(
        wait_for(Duration::from_secs(180), || sent(&producer.output()) > 0),
        "{}",
        producer.output()
    );
    assert!(
        producer.interrupt(Duration::from_secs(30)),
        "{}",
        producer.output()
    );
    let mut consumer = spawn_shell_line(&lines[1], scratch.path(), scratch.path().join("c.log"));
    // No metrics address in the README's line: give the group time to join and drain, then Ctrl-C.
    std::thread::sleep(Duration::from_secs(20));
    assert!(
        consumer.interrupt(Duration::from_secs(60)),
        "{}",
        consumer.output()
    );
    let produced = produced_count(&producer.output());
    let conn = open_warehouse(&scratch.path().join("playlog.duckdb"));
    let (mut rows, mut distinct) = (0, 0);
    for stream in playlog_model::Stream::EVENTS {
        let (r, d) = raw_counts(&conn, stream.topic());
        rows += r;
        distinct += d;
    }
    assert!(produced > 0, "{}", producer.output());
    assert_eq!(
        (rows, distinct),
        (produced, produced),
        "landed (rows, distinct) vs produced\n{}",
        consumer.output()
    );
    assert_no_secret_in_logs(&[scratch.path()], &[ALICE_PASSWORD.to_owned()]);
    drop(secure);
}

/// The event count in the producer's closing summary (`N events in S s: …`).
fn produced_count(output: &str) -> i64 {
    output
        .lines()
        .rev()
        .find_map(|l| {
            let (count, rest) = l.trim().split_once(' ')?;
            rest.starts_with("events in ").then(|| count.parse().ok())?
        })
        .unwrap_or_else(|| panic!("no `N events in …` summary:\n{output}"))
}
