//! Java client settings, as `client.properties` files from Confluent Cloud, MSK, Aiven or Strimzi carry
//! them, translated into librdkafka's. librdkafka rejects Java-only keys, so the common ones are translated
//! (`sasl.jaas.config` → `sasl.username`/`sasl.password`, PEM truststores → `ssl.ca.location`, …), settings
//! that only a Java client uses (serializers, Schema Registry) are skipped with a note, and the rest are
//! refused with a line naming the librdkafka equivalent. Pure: no I/O; errors never quote a value.

use crate::client_config::Setting;
use crate::jaas;

/// One layer's settings in librdkafka's terms, and notes about what was skipped.
#[derive(Debug, Default)]
pub struct Translation {
    pub settings: Vec<Setting>,
    pub notes: Vec<String>,
}

const PLAIN_MODULE: &str = "org.apache.kafka.common.security.plain.PlainLoginModule";
const SCRAM_MODULE: &str = "org.apache.kafka.common.security.scram.ScramLoginModule";
const OAUTH_MODULE: &str = "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule";
const OAUTH_HANDLERS: [&str; 2] = [
    "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginCallbackHandler",
    "org.apache.kafka.common.security.oauthbearer.secured.OAuthBearerLoginCallbackHandler",
];

/// Settings only a Java client (or Confluent's Java serializers) reads; Playlog has its own encoders and
/// no Schema Registry, so they are skipped rather than refused.
fn java_only(key: &str) -> bool {
    matches!(
        key,
        "key.serializer"
            | "value.serializer"
            | "key.deserializer"
            | "value.deserializer"
            | "ssl.protocol"
            | "ssl.enabled.protocols"
            | "ssl.keymanager.algorithm"
            | "ssl.trustmanager.algorithm"
            | "ssl.secure.random.implementation"
    ) || key.starts_with("schema.registry.")
        || key.starts_with("basic.auth.")
        || key.starts_with("bearer.auth.")
}

/// Translates one layer (a file, the environment or `-X`) into librdkafka settings.
pub fn translate(layer: Vec<Setting>) -> Result<Translation, String> {
    let mut out = Translation::default();
    let value_of = |key: &str| {
        layer
            .iter()
            .rev()
            .find(|s| s.key == key)
            .map(|s| s.value.clone())
    };
    let truststore_type = value_of("ssl.truststore.type").map(|t| t.to_ascii_uppercase());
    let keystore_type = value_of("ssl.keystore.type").map(|t| t.to_ascii_uppercase());
    let mut oidc = false;
    for setting in &layer {
        if setting.key == "sasl.jaas.config" {
            oidc |= jaas::parse(&setting.value)
                .is_ok_and(|m| m.class == OAUTH_MODULE && m.option("clientId").is_some());
        }
    }
    for setting in layer.iter().cloned() {
        let Setting { key, value, origin } = setting;
        let at = |what: String| format!("{key} ({origin}): {what}");
        let mut set = |k: &str, v: String| {
            out.settings.push(Setting {
                key: k.to_owned(),
                value: v,
                origin: origin.clone(),
            })
        };
        match key.as_str() {
            "sasl.jaas.config" => {
                let module = jaas::parse(&value).map_err(&at)?;
                for (k, v) in login_settings(&module).map_err(at)? {
                    set(&k, v);
                }
            }
            "sasl.login.callback.handler.class" | "sasl.client.callback.handler.class" => {
                if !(oidc && OAUTH_HANDLERS.contains(&value.as_str())) {
                    return Err(at(format!(
                        "Java callback handlers cannot run in librdkafka ({value}); for OAuth/OIDC set sasl.mechanism=OAUTHBEARER with sasl.oauthbearer.method=oidc, sasl.oauthbearer.client.id, sasl.oauthbearer.client.secret and sasl.oauthbearer.token.endpoint.url"
                    )));
                }
            }
            "ssl.truststore.location" => match truststore_type.as_deref() {
                Some("PEM") => set("ssl.ca.location", value),
                _ => {
                    return Err(at(
                        "JKS and PKCS12 truststores are Java-only: export the CA certificate as PEM (keytool -exportcert -rfc -keystore TRUSTSTORE -alias ALIAS -file ca.pem) and set ssl.ca.location=ca.pem instead".into(),
                    ));
                }
            },
            "ssl.truststore.type" | "ssl.keystore.type" => {}
            "ssl.truststore.password" => {
                if truststore_type.as_deref() != Some("PEM") {
                    return Err(at(
                        "truststores are Java-only: use ssl.ca.location with a PEM file (no password)"
                            .into(),
                    ));
                }
            }
            "ssl.keystore.location" => {
                let pkcs12 = match keystore_type.as_deref() {
                    Some("PKCS12") => true,
                    Some("PEM") => false,
                    Some(_) => {
                        return Err(at(
                            "JKS keystores are Java-only: convert to PKCS12 (keytool -importkeystore -srckeystore KEYSTORE -destkeystore client.p12 -deststoretype PKCS12), or set ssl.certificate.location and ssl.key.location (PEM)".into(),
                        ));
                    }
                    None => {
                        let lower = value.to_ascii_lowercase();
                        if lower.ends_with(".p12") || lower.ends_with(".pfx") {
                            true
                        } else {
                            return Err(at(
                                "a keystore without ssl.keystore.type is JKS, which is Java-only: set ssl.keystore.type=PKCS12 for a PKCS#12 file, or use ssl.certificate.location and ssl.key.location (PEM)".into(),
                            ));
                        }
                    }
                };
                if pkcs12 {
                    set("ssl.keystore.location", value);
                } else {
                    // A PEM keystore holds the key and its certificate chain in one file; OpenSSL reads
                    // each from it, skipping the other's blocks.
                    set("ssl.certificate.location", value.clone());
                    set("ssl.key.location", value);
                }
            }
            "ssl.endpoint.identification.algorithm" => {
                // Java turns hostname verification off with an empty value; librdkafka with `none`.
                let v = if value.trim().is_empty() {
                    "none".to_owned()
                } else {
                    value.to_ascii_lowercase()
                };
                set(&key, v)
            }
            "security.protocol" => set(&key, value.to_ascii_lowercase()),
            k if java_only(k) => out.notes.push(format!(
                "{key} ({origin}) is a Java client setting; skipped"
            )),
            _ => set(&key, value),
        }
    }
    Ok(out)
}

/// librdkafka settings for one JAAS login module.
fn login_settings(module: &jaas::LoginModule) -> Result<Vec<(String, String)>, String> {
    let required = |name: &str| {
        module
            .option(name)
            .map(str::to_owned)
            .ok_or_else(|| format!("{} needs a {name} option", module.class))
    };
    match module.class.as_str() {
        PLAIN_MODULE | SCRAM_MODULE => Ok(vec![
            ("sasl.username".into(), required("username")?),
            ("sasl.password".into(), required("password")?),
        ]),
        OAUTH_MODULE => {
            if module.option("clientId").is_some() {
                let mut out = vec![
                    ("sasl.oauthbearer.method".into(), "oidc".into()),
                    ("sasl.oauthbearer.client.id".into(), required("clientId")?),
                    (
                        "sasl.oauthbearer.client.secret".into(),
                        required("clientSecret")?,
                    ),
                ];
                if let Some(scope) = module.option("scope") {
                    out.push(("sasl.oauthbearer.scope".into(), scope.into()));
                }
                let extensions: Vec<String> = module
                    .options
                    .iter()
                    .filter_map(|(k, v)| k.strip_prefix("extension_").map(|e| format!("{e}={v}")))
                    .collect();
                if !extensions.is_empty() {
                    out.push(("sasl.oauthbearer.extensions".into(), extensions.join(",")));
                }
                Ok(out)
            } else if let Some(sub) = module.option("unsecuredLoginStringClaim_sub") {
                // Kafka's unsecured JWTs, for development brokers: librdkafka makes them itself.
                Ok(vec![(
                    "sasl.oauthbearer.config".into(),
                    format!("principal={sub}"),
                )])
            } else {
                Err(format!(
                    "{OAUTH_MODULE} needs clientId and clientSecret (OIDC client credentials) or unsecuredLoginStringClaim_sub"
                ))
            }
        }
        "software.amazon.msk.auth.iam.IAMLoginModule" => Err(
            "MSK IAM authentication needs AWS's signing callback, which librdkafka cannot load from configuration: use MSK's SASL/SCRAM (ScramLoginModule with SCRAM-SHA-512) or mTLS listener instead".into(),
        ),
        "com.sun.security.auth.module.Krb5LoginModule" => Err(
            "Kerberos (GSSAPI) is not built into Playlog: use SCRAM, PLAIN over TLS, OAUTHBEARER or mTLS".into(),
        ),
        other => Err(format!(
            "unknown login module {other}: Playlog translates PlainLoginModule, ScramLoginModule and OAuthBearerLoginModule; set sasl.username and sasl.password (or sasl.oauthbearer.*) directly instead"
        )),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests: a failed step should stop them loudly.
mod tests {
    use super::*;
    use crate::client_config::Origin;

    fn layer(entries: &[(&str, &str)]) -> Vec<Setting> {
        entries
            .iter()
            .enumerate()
            .map(|(i, (k, v))| Setting {
                key: (*k).into(),
                value: (*v).into(),
                origin: Origin::File {
                    path: "client.properties".into(),
                    line: i + 1,
                },
            })
            .collect()
    }

    fn pairs(t: &Translation) -> Vec<(String, String)> {
        t.settings
            .iter()
            .map(|s| (s.key.clone(), s.value.clone()))
            .collect()
    }

    fn owned(entries: &[(&str, &str)]) -> Vec<(String, String)> {
        entries
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect()
    }

    #[test]
    fn confluent_cloud_file() {
        let t = translate(layer(&[
            ("bootstrap.servers", "pkc-1.eu-west-1.aws.confluent.cloud:9092"),
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanisms", "PLAIN"),
            (
                "sasl.jaas.config",
                "org.apache.kafka.common.security.plain.PlainLoginModule required username='KEY' password='SECRET';",
            ),
            ("client.dns.lookup", "use_all_dns_ips"),
            ("session.timeout.ms", "45000"),
            ("acks", "all"),
            ("schema.registry.url", "https://psrc-1.confluent.cloud"),
            ("basic.auth.user.info", "SRKEY:SRSECRET"),
        ]))
        .unwrap();
        assert_eq!(
            pairs(&t),
            owned(&[
                (
                    "bootstrap.servers",
                    "pkc-1.eu-west-1.aws.confluent.cloud:9092"
                ),
                ("security.protocol", "sasl_ssl"),
                ("sasl.mechanisms", "PLAIN"),
                ("sasl.username", "KEY"),
                ("sasl.password", "SECRET"),
                ("client.dns.lookup", "use_all_dns_ips"),
                ("session.timeout.ms", "45000"),
                ("acks", "all"),
            ])
        );
        assert_eq!(t.notes.len(), 2, "{:?}", t.notes);
        assert!(t.notes.iter().all(|n| !n.contains("SRSECRET")));
        // The translated settings keep the line they came from.
        assert_eq!(t.settings[4].origin.to_string(), "client.properties line 4");
    }

    #[test]
    fn msk_scram_and_pem_truststore() {
        let t = translate(layer(&[
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "SCRAM-SHA-512"),
            (
                "sasl.jaas.config",
                "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"alice\" password=\"pw\";",
            ),
            ("ssl.truststore.type", "PEM"),
            ("ssl.truststore.location", "/etc/kafka/ca.pem"),
            ("ssl.endpoint.identification.algorithm", ""),
        ]))
        .unwrap();
        assert_eq!(
            pairs(&t),
            owned(&[
                ("security.protocol", "sasl_ssl"),
                ("sasl.mechanism", "SCRAM-SHA-512"),
                ("sasl.username", "alice"),
                ("sasl.password", "pw"),
                ("ssl.ca.location", "/etc/kafka/ca.pem"),
                ("ssl.endpoint.identification.algorithm", "none"),
            ])
        );
    }

    #[test]
    fn keystores_pkcs12_and_pem_translate_jks_is_refused() {
        let t = translate(layer(&[
            ("ssl.keystore.type", "PKCS12"),
            ("ssl.keystore.location", "/s/user.p12"),
            ("ssl.keystore.password", "pw"),
        ]))
        .unwrap();
        assert_eq!(
            pairs(&t),
            owned(&[
                ("ssl.keystore.location", "/s/user.p12"),
                ("ssl.keystore.password", "pw"),
            ])
        );
        let t = translate(layer(&[
            ("ssl.keystore.type", "PEM"),
            ("ssl.keystore.location", "/s/client.pem"),
        ]))
        .unwrap();
        assert_eq!(
            pairs(&t),
            owned(&[
                ("ssl.certificate.location", "/s/client.pem"),
                ("ssl.key.location", "/s/client.pem"),
            ])
        );
        let e = translate(layer(&[(
            "ssl.keystore.location",
            "/s/client.keystore.jks",
        )]))
        .unwrap_err();
        assert!(e.contains("ssl.certificate.location"), "{e}");
        assert!(
            e.starts_with("ssl.keystore.location (client.properties line 1)"),
            "{e}"
        );
    }

    #[test]
    fn jks_truststores_are_refused_naming_the_librdkafka_equivalent() {
        let e = translate(layer(&[
            ("ssl.truststore.location", "/s/truststore.jks"),
            ("ssl.truststore.password", "changeit"),
        ]))
        .unwrap_err();
        assert!(e.contains("ssl.ca.location"), "{e}");
        assert!(!e.contains("changeit"), "{e}");
    }

    #[test]
    fn oauth_client_credentials_become_librdkafka_oidc() {
        let t = translate(layer(&[
            ("sasl.mechanism", "OAUTHBEARER"),
            (
                "sasl.login.callback.handler.class",
                "org.apache.kafka.common.security.oauthbearer.secured.OAuthBearerLoginCallbackHandler",
            ),
            ("sasl.oauthbearer.token.endpoint.url", "https://idp/token"),
            (
                "sasl.jaas.config",
                "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required clientId='cid' clientSecret='cs' scope='kafka' extension_logicalCluster='lkc-1' extension_identityPoolId='pool-1';",
            ),
        ]))
        .unwrap();
        assert_eq!(
            pairs(&t),
            owned(&[
                ("sasl.mechanism", "OAUTHBEARER"),
                ("sasl.oauthbearer.token.endpoint.url", "https://idp/token"),
                ("sasl.oauthbearer.method", "oidc"),
                ("sasl.oauthbearer.client.id", "cid"),
                ("sasl.oauthbearer.client.secret", "cs"),
                ("sasl.oauthbearer.scope", "kafka"),
                (
                    "sasl.oauthbearer.extensions",
                    "logicalCluster=lkc-1,identityPoolId=pool-1"
                ),
            ])
        );
    }

    #[test]
    fn unsupported_login_modules_and_handlers_are_refused_clearly() {
        for (entries, wanted) in [
            (
                vec![(
                    "sasl.jaas.config",
                    "software.amazon.msk.auth.iam.IAMLoginModule required;",
                )],
                "SCRAM",
            ),
            (
                vec![(
                    "sasl.jaas.config",
                    "com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true;",
                )],
                "Kerberos",
            ),
            (
                vec![("sasl.jaas.config", "com.example.Custom required;")],
                "sasl.username",
            ),
            (
                vec![(
                    "sasl.client.callback.handler.class",
                    "software.amazon.msk.auth.iam.IAMClientCallbackHandler",
                )],
                "sasl.oauthbearer.method=oidc",
            ),
            (
                vec![(
                    "sasl.jaas.config",
                    "org.apache.kafka.common.security.plain.PlainLoginModule required username='u';",
                )],
                "needs a password",
            ),
        ] {
            let e = translate(layer(&entries)).unwrap_err();
            assert!(e.contains(wanted), "{e}");
        }
    }
}
