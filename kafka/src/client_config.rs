//! The connection configuration every Kafka client of Playlog shares (producer, consumer members, the
//! dead-letter producer, admin clients), resolved from layers, lowest first:
//!
//! 1. `--kafka-config FILE`, a Java-style `client.properties` (translated by [`crate::java_client`]);
//! 2. `PLAYLOG_KAFKA_<KEY>` environment variables (`PLAYLOG_KAFKA_SASL_USERNAME` → `sasl.username`);
//! 3. `-X key=value` flags.
//!
//! `bootstrap.servers` comes from `--brokers` (or `PLAYLOG_BROKERS`) when that is given, else from the
//! layers, else `localhost:9092`. A secret may come from a file: `sasl.password.file=/run/secrets/pw`
//! sets `sasl.password` to the file's content (one trailing newline dropped), so that no secret has to be
//! on a command line. Secret values are never shown: `Debug`, [`KafkaClientConfig::redacted`] and
//! [`KafkaClientConfig::redact`] replace them with `[redacted]`.

use std::fmt;
use std::path::{Path, PathBuf};

use rdkafka::config::{ClientConfig, RDKafkaLogLevel};

use crate::java_client;

/// Where a setting came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    File { path: String, line: usize },
    Env(String),
    Flag,
    BrokersFlag,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File { path, line } => write!(f, "{path} line {line}"),
            Origin::Env(name) => write!(f, "environment variable {name}"),
            Origin::Flag => write!(f, "-X"),
            Origin::BrokersFlag => write!(f, "--brokers"),
        }
    }
}

/// One librdkafka property and where it came from.
#[derive(Clone, PartialEq, Eq)]
pub struct Setting {
    pub key: String,
    pub value: String,
    pub origin: Origin,
}

impl fmt::Debug for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}={} ({})",
            self.key,
            shown(&self.key, &self.value),
            self.origin
        )
    }
}

/// The prefix of environment variables that set librdkafka properties.
pub const ENV_PREFIX: &str = "PLAYLOG_KAFKA_";
/// `PLAYLOG_KAFKA_CONFIG` names the properties file itself; it is not a property.
pub const CONFIG_FILE_ENV: &str = "PLAYLOG_KAFKA_CONFIG";
const DEFAULT_BROKERS: &str = "localhost:9092";
const REDACTED: &str = "[redacted]";

/// Whether a property's value is a secret: passwords, client secrets, private keys, JAAS lines, tokens.
pub fn is_secret(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k.contains("password")
        || k.contains("secret")
        || k == "sasl.jaas.config"
        || k == "ssl.key.pem"
        || k == "sasl.oauthbearer.config"
        || (k.contains("token") && !k.contains("endpoint"))
}

/// `text` with each of `secrets` replaced by `[redacted]`.
pub fn redact_values(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_owned();
    for secret in secrets {
        out = out.replace(secret.as_str(), REDACTED);
    }
    out
}

fn shown<'a>(key: &str, value: &'a str) -> &'a str {
    if is_secret(key) { REDACTED } else { value }
}

/// A properties file's settings as (line, key, value), in file order.
pub type PropertyLines = Vec<(usize, String, String)>;

/// What the layers are read from. Pure input: [`KafkaClientConfig::from_process`] gathers it from the
/// process (files, environment).
#[derive(Debug, Default)]
pub struct Sources {
    /// `--brokers` or `PLAYLOG_BROKERS`, when given.
    pub brokers: Option<String>,
    /// The properties file's path (as shown in messages) and its settings in file order.
    pub file: Option<(String, PropertyLines)>,
    /// Environment variables (all of them; only `PLAYLOG_KAFKA_*` are read).
    pub env: Vec<(String, String)>,
    /// `-X` values, `key=value`.
    pub flags: Vec<String>,
}

/// The resolved configuration: the bootstrap servers and every other librdkafka property.
#[derive(Clone)]
pub struct KafkaClientConfig {
    brokers: String,
    settings: Vec<Setting>,
    notes: Vec<String>,
}

impl fmt::Debug for KafkaClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl KafkaClientConfig {
    /// Plaintext, no authentication: just the bootstrap servers.
    pub fn plaintext(brokers: &str) -> KafkaClientConfig {
        KafkaClientConfig {
            brokers: brokers.to_owned(),
            settings: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// The same, with one more property (as `-X` would set it).
    pub fn with(mut self, key: &str, value: &str) -> KafkaClientConfig {
        self.settings.retain(|s| s.key != key);
        self.settings.push(Setting {
            key: key.to_owned(),
            value: value.to_owned(),
            origin: Origin::Flag,
        });
        self
    }

    /// Resolves the layers. `read_secret` reads a `*.file` secret (the only I/O, injected).
    pub fn resolve(
        sources: Sources,
        read_secret: impl Fn(&Path) -> std::io::Result<String>,
    ) -> Result<KafkaClientConfig, String> {
        let mut layers = Vec::new();
        if let Some((path, entries)) = sources.file {
            layers.push(
                entries
                    .into_iter()
                    .map(|(line, key, value)| Setting {
                        key,
                        value,
                        origin: Origin::File {
                            path: path.clone(),
                            line,
                        },
                    })
                    .collect::<Vec<_>>(),
            );
        }
        let mut env: Vec<Setting> = sources
            .env
            .into_iter()
            .filter(|(name, _)| name.starts_with(ENV_PREFIX) && name != CONFIG_FILE_ENV)
            .map(|(name, value)| Setting {
                key: name[ENV_PREFIX.len()..]
                    .to_ascii_lowercase()
                    .replace('_', "."),
                value,
                origin: Origin::Env(name),
            })
            .collect();
        env.sort_by(|a, b| a.key.cmp(&b.key));
        layers.push(env);
        let mut flags = Vec::new();
        for (i, flag) in sources.flags.iter().enumerate() {
            let Some((key, value)) = flag.split_once('=') else {
                // The flag may be a mistyped secret: it is named by its place, never quoted.
                return Err(format!(
                    "-X number {}: expected KEY=VALUE, for example -X security.protocol=ssl (its text is not shown, as it may hold a secret)",
                    i + 1
                ));
            };
            flags.push(Setting {
                key: key.trim().to_owned(),
                value: value.trim().to_owned(),
                origin: Origin::Flag,
            });
        }
        layers.push(flags);

        let mut merged: Vec<Setting> = Vec::new();
        let mut notes = Vec::new();
        for layer in layers {
            let translated = java_client::translate(layer)?;
            notes.extend(translated.notes);
            for setting in translated.settings {
                let setting = read_secret_file(setting, &read_secret)?;
                merged.retain(|s| s.key != setting.key);
                merged.push(setting);
            }
        }
        let from_layers = merged
            .iter()
            .position(|s| s.key == "bootstrap.servers")
            .map(|i| merged.remove(i).value);
        let brokers = sources
            .brokers
            .or(from_layers)
            .unwrap_or_else(|| DEFAULT_BROKERS.to_owned());
        Ok(KafkaClientConfig {
            brokers,
            settings: merged,
            notes,
        })
    }

    /// Reads `--kafka-config FILE` (if any) and the process's environment, then resolves.
    pub fn from_process(
        brokers: Option<String>,
        file: Option<&Path>,
        flags: Vec<String>,
    ) -> Result<KafkaClientConfig, String> {
        let file = match file {
            None => None,
            Some(path) => Some((path.display().to_string(), read_properties_file(path)?)),
        };
        let sources = Sources {
            // An empty PLAYLOG_BROKERS (a compose override clearing it) means "not given".
            brokers: brokers.filter(|b| !b.trim().is_empty()),
            file,
            env: std::env::vars().collect(),
            flags,
        };
        let config = KafkaClientConfig::resolve(sources, |p| std::fs::read_to_string(p))?;
        config.check_files(|p| p.exists())?;
        Ok(config)
    }

    /// Every `*.location` file (CA, certificate, key, keystore) exists: librdkafka's own words for a
    /// missing one are "ssl.ca.location failed: … system lib".
    pub fn check_files(&self, exists: impl Fn(&Path) -> bool) -> Result<(), String> {
        for s in &self.settings {
            if s.key.ends_with(".location") && s.value != "probe" && !exists(Path::new(&s.value)) {
                return Err(format!(
                    "{} ({}): {} does not exist; give the path of the PEM file (or PKCS#12 for ssl.keystore.location)",
                    s.key, s.origin, s.value
                ));
            }
        }
        Ok(())
    }

    pub fn brokers(&self) -> &str {
        &self.brokers
    }

    /// The value of a property, if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.settings
            .iter()
            .find(|s| s.key == key)
            .map(|s| s.value.as_str())
    }

    /// Where a property was set, if it was.
    pub fn origin(&self, key: &str) -> Option<&Origin> {
        self.settings
            .iter()
            .find(|s| s.key == key)
            .map(|s| &s.origin)
    }

    /// Settings that were skipped (Java-only), to be shown once.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// Whether any setting turns on TLS or SASL.
    pub fn is_secured(&self) -> bool {
        self.get("security.protocol")
            .is_some_and(|p| !p.eq_ignore_ascii_case("plaintext"))
    }

    /// Sets `bootstrap.servers` and every property on a librdkafka configuration. Called after a client's
    /// own defaults, so that the user's settings win.
    pub fn apply(&self, config: &mut ClientConfig) {
        // librdkafka reports disconnects (a TLS listener answering a plaintext client, say) only as
        // info-level logs, which the start-up check reads. The rdkafka crate derives the level from the
        // log filter (warn by default), so it is raised here; `--log` still decides what is shown.
        if (config.log_level as i32) < (RDKafkaLogLevel::Info as i32) {
            config.set_log_level(RDKafkaLogLevel::Info);
        }
        config.set("bootstrap.servers", &self.brokers);
        for s in &self.settings {
            config.set(&s.key, &s.value);
        }
    }

    /// A new librdkafka configuration with these settings.
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        self.apply(&mut config);
        config
    }

    /// The effective configuration, secrets redacted, for logs.
    pub fn redacted(&self) -> String {
        let mut out = format!("bootstrap.servers={}", self.brokers);
        for s in &self.settings {
            out.push_str(&format!(" {}={}", s.key, shown(&s.key, &s.value)));
        }
        out
    }

    /// `text` with every secret value replaced: for messages that quote librdkafka or a broker.
    pub fn redact(&self, text: &str) -> String {
        redact_values(text, &self.secret_values())
    }

    /// The values to redact from any text: every secret long enough not to blank out ordinary words.
    pub fn secret_values(&self) -> Vec<String> {
        self.settings
            .iter()
            .filter(|s| is_secret(&s.key) && s.value.len() >= 4)
            .map(|s| s.value.clone())
            .collect()
    }

    /// A librdkafka configuration error, redacted, with where the property it names was set.
    pub fn explain_config_error(&self, error: &dyn fmt::Display) -> String {
        let text = self.redact(&error.to_string());
        let named = self
            .settings
            .iter()
            // librdkafka quotes the property it names; a bare match would take `ssl.key` for `ssl.key.pem`.
            .find(|s| text.contains(&format!("\"{}\"", s.key)));
        match named {
            Some(s) => format!("{text} (set by {})", s.origin),
            None => text,
        }
    }
}

/// `KEY.file=PATH` for a secret `KEY`: the file's content becomes `KEY`'s value.
fn read_secret_file(
    setting: Setting,
    read: &impl Fn(&Path) -> std::io::Result<String>,
) -> Result<Setting, String> {
    let Some(key) = setting.key.strip_suffix(".file") else {
        return Ok(setting);
    };
    if !is_secret(key) {
        return Ok(setting);
    }
    let path = PathBuf::from(&setting.value);
    let content = read(&path).map_err(|e| {
        format!(
            "{} ({}): cannot read {}: {e}",
            setting.key,
            setting.origin,
            path.display()
        )
    })?;
    Ok(Setting {
        key: key.to_owned(),
        value: content.trim_end_matches(['\n', '\r']).to_owned(),
        origin: setting.origin,
    })
}

/// A Java properties file's settings as (line, key, value), in file order.
pub fn read_properties_file(path: &Path) -> Result<PropertyLines, String> {
    let file = std::fs::File::open(path).map_err(|e| {
        format!(
            "--kafka-config {}: {e}; give the path of a client.properties file",
            path.display()
        )
    })?;
    parse_properties(std::io::BufReader::new(file))
        .map_err(|e| format!("--kafka-config {}: {e}", path.display()))
}

/// Parses Java properties text (ISO-8859-1, as Java's `Properties.load` and Kafka's tools read it).
pub fn parse_properties(input: impl std::io::Read) -> Result<PropertyLines, String> {
    let mut out = Vec::new();
    for line in java_properties::PropertiesIter::new(input) {
        let line = line.map_err(|e| match e.line_number() {
            Some(n) => format!("line {n}: not a valid properties line"),
            None => "not a valid properties file".to_owned(),
        })?;
        let number = line.line_number();
        if let java_properties::LineContent::KVPair(key, value) = line.consume_content() {
            out.push((number, key, value));
        }
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests: a failed step should stop them loudly.
mod tests {
    use super::*;

    fn no_files(_: &Path) -> std::io::Result<String> {
        Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "no files in this test",
        ))
    }

    fn file(text: &str) -> Option<(String, PropertyLines)> {
        Some((
            "client.properties".into(),
            parse_properties(text.as_bytes()).unwrap(),
        ))
    }

    #[test]
    fn properties_files_with_continuations_comments_and_separators() {
        let entries = parse_properties(
            "# Confluent Cloud\n! another comment\nbootstrap.servers=pkc:9092\nsasl.mechanism : PLAIN\nsasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule \\\n   required username='k' password='s';\nacks all\n"
                .as_bytes(),
        )
        .unwrap();
        let keys: Vec<(usize, &str, &str)> = entries
            .iter()
            .map(|(n, k, v)| (*n, k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            keys,
            vec![
                (3, "bootstrap.servers", "pkc:9092"),
                (4, "sasl.mechanism", "PLAIN"),
                (
                    5,
                    "sasl.jaas.config",
                    "org.apache.kafka.common.security.plain.PlainLoginModule required username='k' password='s';"
                ),
                (7, "acks", "all"),
            ]
        );
    }

    #[test]
    fn layers_file_then_environment_then_flags() {
        let config = KafkaClientConfig::resolve(
            Sources {
                brokers: None,
                file: file(
                    "bootstrap.servers=file:9092\nsecurity.protocol=SASL_SSL\nsasl.mechanism=SCRAM-SHA-512\nsasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username=\"alice\" password=\"from-file\";\nclient.id=file\n",
                ),
                env: vec![
                    ("PLAYLOG_KAFKA_SASL_PASSWORD".into(), "from-env".into()),
                    ("PLAYLOG_KAFKA_CLIENT_ID".into(), "env".into()),
                    ("PLAYLOG_KAFKA_CONFIG".into(), "client.properties".into()),
                    ("PLAYLOG_BROKERS_UNRELATED".into(), "x".into()),
                    ("HOME".into(), "/root".into()),
                ],
                flags: vec!["client.id=flag".into()],
            },
            no_files,
        )
        .unwrap();
        assert_eq!(
            config.brokers(),
            "file:9092",
            "the file's bootstrap servers"
        );
        assert_eq!(config.get("sasl.username"), Some("alice"));
        assert_eq!(config.get("sasl.password"), Some("from-env"));
        assert_eq!(config.get("client.id"), Some("flag"));
        assert_eq!(
            config.get("config"),
            None,
            "PLAYLOG_KAFKA_CONFIG is the file"
        );
        assert_eq!(
            config.origin("sasl.password"),
            Some(&Origin::Env("PLAYLOG_KAFKA_SASL_PASSWORD".into()))
        );
        assert_eq!(
            config.origin("sasl.mechanism").map(ToString::to_string),
            Some("client.properties line 3".into())
        );
    }

    #[test]
    fn brokers_flag_only_when_given_and_default_last() {
        let resolve = |brokers: Option<&str>, text: &str| {
            KafkaClientConfig::resolve(
                Sources {
                    brokers: brokers.map(str::to_owned),
                    file: file(text),
                    ..Sources::default()
                },
                no_files,
            )
            .unwrap()
            .brokers()
            .to_owned()
        };
        assert_eq!(
            resolve(Some("flag:1"), "bootstrap.servers=file:2"),
            "flag:1"
        );
        assert_eq!(resolve(None, "bootstrap.servers=file:2"), "file:2");
        assert_eq!(resolve(None, "acks=all"), "localhost:9092");
    }

    #[test]
    fn secrets_from_files_drop_one_trailing_newline() {
        let config = KafkaClientConfig::resolve(
            Sources {
                env: vec![(
                    "PLAYLOG_KAFKA_SASL_PASSWORD_FILE".into(),
                    "/run/secrets/pw".into(),
                )],
                flags: vec!["ssl.key.password.file=/run/secrets/key-pw".into()],
                ..Sources::default()
            },
            |p| match p.to_str() {
                Some("/run/secrets/pw") => Ok("s3cret pass\n".into()),
                Some("/run/secrets/key-pw") => Ok("k3y\r\n".into()),
                _ => no_files(p),
            },
        )
        .unwrap();
        assert_eq!(config.get("sasl.password"), Some("s3cret pass"));
        assert_eq!(config.get("ssl.key.password"), Some("k3y"));
        assert_eq!(config.get("sasl.password.file"), None);
        let missing = KafkaClientConfig::resolve(
            Sources {
                flags: vec!["sasl.password.file=/nope".into()],
                ..Sources::default()
            },
            no_files,
        )
        .unwrap_err();
        assert!(
            missing.contains("sasl.password.file (-X): cannot read /nope"),
            "{missing}"
        );
    }

    #[test]
    fn secrets_never_shown() {
        let config = KafkaClientConfig::resolve(
            Sources {
                brokers: Some("b:9093".into()),
                flags: vec![
                    "security.protocol=sasl_ssl".into(),
                    "sasl.username=alice".into(),
                    "sasl.password=hunter2-long".into(),
                    "sasl.oauthbearer.client.secret=cs-secret".into(),
                    "sasl.oauthbearer.token.endpoint.url=https://idp/token".into(),
                ],
                ..Sources::default()
            },
            no_files,
        )
        .unwrap();
        let shown = format!("{} {:?}", config.redacted(), config);
        assert!(
            !shown.contains("hunter2-long") && !shown.contains("cs-secret"),
            "{shown}"
        );
        assert!(shown.contains("sasl.username=alice"), "{shown}");
        assert!(shown.contains("https://idp/token"), "{shown}");
        assert_eq!(
            config.redact("broker said: bad password hunter2-long"),
            "broker said: bad password [redacted]"
        );
        let error = config.explain_config_error(
            &"Invalid value \"hunter2-long\" for configuration property \"sasl.password\"",
        );
        assert_eq!(
            error,
            "Invalid value \"[redacted]\" for configuration property \"sasl.password\" (set by -X)"
        );
        let bad_flag = KafkaClientConfig::resolve(
            Sources {
                flags: vec!["hunter2-long".into()],
                ..Sources::default()
            },
            no_files,
        )
        .unwrap_err();
        assert!(
            bad_flag.contains("-X number 1: expected KEY=VALUE"),
            "{bad_flag}"
        );
        assert!(!bad_flag.contains("hunter2"), "{bad_flag}");
    }

    #[test]
    fn missing_certificate_files_are_named_with_their_origin() {
        let config = KafkaClientConfig::resolve(
            Sources {
                file: file("security.protocol=SSL\nssl.ca.location=/etc/kafka/ca.pem\n"),
                ..Sources::default()
            },
            no_files,
        )
        .unwrap();
        assert_eq!(
            config.check_files(|_| false).unwrap_err(),
            "ssl.ca.location (client.properties line 2): /etc/kafka/ca.pem does not exist; give the path of the PEM file (or PKCS#12 for ssl.keystore.location)"
        );
        assert!(config.check_files(|_| true).is_ok());
    }

    #[test]
    fn secret_keys() {
        for key in [
            "sasl.password",
            "ssl.key.password",
            "ssl.keystore.password",
            "sasl.oauthbearer.client.secret",
            "sasl.jaas.config",
            "ssl.key.pem",
            "sasl.oauthbearer.config",
        ] {
            assert!(is_secret(key), "{key}");
        }
        for key in [
            "sasl.username",
            "ssl.ca.location",
            "ssl.key.location",
            "sasl.oauthbearer.token.endpoint.url",
            "bootstrap.servers",
        ] {
            assert!(!is_secret(key), "{key}");
        }
    }
}
