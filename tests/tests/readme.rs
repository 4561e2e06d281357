//! The README's CLI reference is the binary's own `--help`, word for word (regenerate it with
//! `scripts/gen-cli-reference.sh`), and its `client.properties` examples are what Playlog accepts.

use playlog_e2e::playlog_bin;

#[test]
fn the_readme_cli_reference_matches_help() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README.md");
    for command in [
        "produce",
        "consume",
        "vault build",
        "vault run",
        "check",
        "report",
        "serve",
        "docs",
        "offers",
    ] {
        let output = std::process::Command::new(playlog_bin())
            .args(command.split(' '))
            .arg("--help")
            .env("COLUMNS", "100")
            .output()
            .expect("playlog runs");
        assert!(output.status.success());
        let help = String::from_utf8(output.stdout).expect("UTF-8 help");
        assert!(
            readme.contains(&format!("```text\n{help}```")),
            "README's CLI reference for `playlog {command}` differs from --help: run scripts/gen-cli-reference.sh"
        );
    }
}

/// Every ```properties block of the README resolves into a client configuration (Java keys translated),
/// with a stand-in for secret files.
#[test]
fn the_readme_client_properties_examples_resolve() {
    use playlog_kafka::client_config::{KafkaClientConfig, Sources, parse_properties};
    let blocks = playlog_e2e::readme_blocks("properties");
    assert!(blocks.len() >= 4, "the provider examples are gone");
    // Real files where the examples name certificate files, so that librdkafka can load them.
    let scratch = playlog_e2e::Scratch::new("readme-properties");
    let pki = playlog_e2e::tls::Pki::new(scratch.path());
    for block in blocks {
        let entries = parse_properties(block.as_bytes())
            .expect("a properties file")
            .into_iter()
            .map(|(line, key, value)| {
                let value = match key.as_str() {
                    "ssl.ca.location" => pki.file("ca.pem"),
                    "ssl.certificate.location" => pki.file("client.pem"),
                    "ssl.key.location" => pki.file("client.key"),
                    _ => value,
                };
                (line, key, value)
            })
            .collect();
        let config = KafkaClientConfig::resolve(
            Sources {
                file: Some(("README example".into(), entries)),
                ..Sources::default()
            },
            |_| Ok("a-secret-from-a-file".into()),
        )
        .unwrap_or_else(|e| panic!("{e}\n{block}"));
        assert!(config.is_secured(), "{block}");
        assert!(!config.brokers().starts_with("localhost"), "{block}");
        // librdkafka itself accepts every key.
        config
            .client_config()
            .create::<rdkafka::producer::BaseProducer>()
            .unwrap_or_else(|e| panic!("{e}\n{block}"));
    }
}
