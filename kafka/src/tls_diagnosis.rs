//! Why a TLS connection to a broker failed, in one sentence. librdkafka reports every verification failure
//! as "certificate verify failed", whether the CA is unknown or the host name is wrong, and a missing
//! client certificate as a closed connection. On such a failure at start-up, Playlog repeats the handshake
//! itself with the same OpenSSL, the same CA and client certificate settings, and reads the verification
//! result, which names the cause.

use std::io::Read;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::ssl::{HandshakeError, SslConnector, SslFiletype, SslMethod, SslVerifyMode};
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::{X509, X509VerifyResult};

use crate::client_config::KafkaClientConfig;

/// The TLS settings of a client, in librdkafka's names.
#[derive(Debug, Default, Clone)]
pub struct TlsSettings {
    pub ca_location: Option<String>,
    pub certificate_location: Option<String>,
    pub key_location: Option<String>,
    pub key_password: Option<String>,
    pub verify_certificate: bool,
    pub verify_host: bool,
}

impl TlsSettings {
    pub fn of(config: &KafkaClientConfig) -> TlsSettings {
        let get = |k: &str| config.get(k).map(str::to_owned);
        TlsSettings {
            ca_location: get("ssl.ca.location").filter(|l| l != "probe"),
            certificate_location: get("ssl.certificate.location"),
            key_location: get("ssl.key.location"),
            key_password: get("ssl.key.password"),
            verify_certificate: config
                .get("enable.ssl.certificate.verification")
                .is_none_or(|v| v != "false"),
            verify_host: config
                .get("ssl.endpoint.identification.algorithm")
                .is_none_or(|v| v != "none"),
        }
    }
}

/// The first bootstrap server as (host, port), without a `SSL://`-style scheme.
pub fn first_broker(brokers: &str) -> Option<(String, u16)> {
    let first = brokers.split(',').next()?.trim();
    let first = first.rsplit_once("://").map_or(first, |(_, rest)| rest);
    let (host, port) = first.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Some((host.to_owned(), port.parse().ok()?))
}

/// Whether `host:port` completes a TLS handshake (certificate unchecked): a plaintext client that cannot
/// get an answer there is talking to a TLS listener.
pub fn speaks_tls(host: &str, port: u16) -> bool {
    let Ok(mut builder) = SslConnector::builder(SslMethod::tls_client()) else {
        return false;
    };
    builder.set_verify(SslVerifyMode::NONE);
    let connector = builder.build();
    let Some(address) = (host, port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
    else {
        return false;
    };
    let Ok(stream) = TcpStream::connect_timeout(&address, Duration::from_secs(5)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(3)));
    connector
        .configure()
        .map(|mut c| {
            c.set_verify_hostname(false);
            c.connect(host, stream).is_ok()
        })
        .unwrap_or(false)
}

/// One sentence on why a TLS handshake with `host:port` fails, or `None` when it succeeds here (or the
/// broker cannot be reached at all), in which case librdkafka's own message is the best there is.
pub fn diagnose(host: &str, port: u16, settings: &TlsSettings) -> Option<String> {
    // The broker's own certificate, kept by the verify callback: after a failed handshake OpenSSL no
    // longer hands it out, and the message names its issuer and host names.
    let leaf: Arc<Mutex<Option<X509>>> = Arc::default();
    let connector = match connector(settings, leaf.clone()) {
        Ok(c) => c,
        Err(problem) => return Some(problem),
    };
    let address = (host, port).to_socket_addrs().ok()?.next()?;
    let stream = TcpStream::connect_timeout(&address, Duration::from_secs(5)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    stream
        .set_write_timeout(Some(Duration::from_secs(3)))
        .ok()?;
    let mut configuration = connector.configure().ok()?;
    configuration.set_verify_hostname(settings.verify_host && settings.verify_certificate);
    match configuration.connect(host, stream) {
        Ok(mut tls) => {
            // TLS 1.3 servers check the client certificate after the handshake: a refusal arrives as an
            // alert on the first read. A server that accepted us just waits (the read times out).
            let mut byte = [0u8; 1];
            match tls.read_exact(&mut byte) {
                Err(e) => client_certificate_problem(&e.to_string(), settings),
                Ok(()) => None,
            }
        }
        Err(HandshakeError::Failure(failed)) => {
            let verify = failed.ssl().verify_result();
            if verify != X509VerifyResult::OK {
                let peer = leaf.lock().ok().and_then(|l| l.clone());
                return Some(verification_problem(host, verify, peer.as_ref(), settings));
            }
            let timed_out = failed.error().io_error().is_some_and(|e| {
                matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                )
            });
            if timed_out {
                return Some(no_tls_answer(host, port));
            }
            let error = failed.error().to_string();
            if error.contains("wrong version number") || error.contains("packet length too long") {
                return Some(format!(
                    "{host}:{port} does not speak TLS: use the broker's TLS listener, or security.protocol=plaintext (or sasl_plaintext) for this one"
                ));
            }
            client_certificate_problem(&error, settings)
        }
        Err(HandshakeError::WouldBlock(_)) => Some(no_tls_answer(host, port)),
        Err(HandshakeError::SetupFailure(_)) => None,
    }
}

fn no_tls_answer(host: &str, port: u16) -> String {
    format!(
        "{host}:{port} does not answer a TLS handshake (no reply within 3 s): it is probably a plaintext listener; use the broker's TLS listener, or security.protocol=plaintext (or sasl_plaintext) for this one"
    )
}

fn connector(
    settings: &TlsSettings,
    leaf: Arc<Mutex<Option<X509>>>,
) -> Result<SslConnector, String> {
    let mut builder = SslConnector::builder(SslMethod::tls_client())
        .map_err(|e| format!("OpenSSL could not start: {e}"))?;
    let mode = if settings.verify_certificate {
        SslVerifyMode::PEER
    } else {
        SslVerifyMode::NONE
    };
    builder.set_verify_callback(mode, move |ok, context| {
        if let (Ok(mut leaf), Some(chain)) = (leaf.lock(), context.chain())
            && leaf.is_none()
            && let Some(first) = chain.get(0)
        {
            *leaf = Some(first.to_owned());
        }
        ok
    });
    if let Some(ca) = &settings.ca_location {
        // librdkafka trusts only the given CAs when ssl.ca.location is set, not the system's as well.
        let mut store = X509StoreBuilder::new().map_err(|e| e.to_string())?;
        let path = Path::new(ca);
        if path.is_dir() {
            builder.set_cert_store(store.build());
            builder
                .load_verify_locations(None, Some(path))
                .map_err(|e| format!("ssl.ca.location {ca}: cannot load the CA directory: {e}"))?;
        } else {
            let pem = std::fs::read(path)
                .map_err(|e| format!("ssl.ca.location {ca}: cannot be read: {e}"))?;
            let certificates = X509::stack_from_pem(&pem)
                .map_err(|_| format!("ssl.ca.location {ca}: not a PEM file of CA certificates"))?;
            if certificates.is_empty() {
                return Err(format!("ssl.ca.location {ca}: holds no PEM certificate"));
            }
            for c in certificates {
                store.add_cert(c).map_err(|e| e.to_string())?;
            }
            builder.set_cert_store(store.build());
        }
    }
    if let (Some(cert), Some(key)) = (&settings.certificate_location, &settings.key_location) {
        builder.set_certificate_chain_file(cert).map_err(|_| {
            format!("ssl.certificate.location {cert}: not a readable PEM certificate")
        })?;
        match &settings.key_password {
            None => builder
                .set_private_key_file(key, SslFiletype::PEM)
                .map_err(|_| {
                    format!(
                        "ssl.key.location {key}: not a readable PEM private key (an encrypted key needs ssl.key.password)"
                    )
                })?,
            Some(password) => {
                let pem = std::fs::read(key)
                    .map_err(|e| format!("ssl.key.location {key}: cannot be read: {e}"))?;
                let pkey = PKey::private_key_from_pem_passphrase(&pem, password.as_bytes())
                    .map_err(|_| {
                        format!(
                            "ssl.key.location {key}: cannot be decrypted with ssl.key.password, or is not a PEM private key"
                        )
                    })?;
                builder
                    .set_private_key(&pkey)
                    .map_err(|e| format!("ssl.key.location {key}: {e}"))?;
            }
        }
    }
    Ok(builder.build())
}

fn verification_problem(
    host: &str,
    verify: X509VerifyResult,
    peer: Option<&X509>,
    settings: &TlsSettings,
) -> String {
    let trusted = match &settings.ca_location {
        Some(ca) => format!("the CA in ssl.ca.location ({ca})"),
        None => "the system's CA certificates (ssl.ca.location is not set)".to_owned(),
    };
    let issuer = peer
        .and_then(|c| c.issuer_name().entries_by_nid(Nid::COMMONNAME).next())
        .and_then(|e| e.data().to_string().ok())
        .unwrap_or_else(|| "an unknown issuer".into());
    // The codes of OpenSSL's x509_vfy.h.
    match verify.as_raw() {
        // X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH
        62 | 64 => {
            let names = peer.map(certificate_names).unwrap_or_default();
            format!(
                "the broker's certificate does not match the host name {host}: it names {}. Connect by a name the certificate lists (in --brokers and in the broker's advertised listeners), or reissue the certificate with {host} among its subject alternative names",
                if names.is_empty() {
                    "no host".to_owned()
                } else {
                    names.join(", ")
                }
            )
        }
        2 | 18 | 19 | 20 | 21 => format!(
            "the broker's certificate (issued by {issuer}) is not signed by a CA this client trusts ({}); trusted here: {trusted}. Set ssl.ca.location to the PEM file of the CA that signed the broker's certificate",
            verify.error_string()
        ),
        9 | 10 => format!(
            "the broker's certificate is not valid now ({}): check the clocks, or renew the certificate",
            verify.error_string()
        ),
        _ => format!(
            "the broker's certificate was rejected: {}; trusted here: {trusted}",
            verify.error_string()
        ),
    }
}

fn client_certificate_problem(error: &str, settings: &TlsSettings) -> Option<String> {
    let lower = error.to_ascii_lowercase();
    let refused = lower.contains("certificate required")
        || lower.contains("alert handshake failure")
        || lower.contains("alert bad certificate")
        || lower.contains("unknown ca")
        || lower.contains("peer did not return a certificate");
    if !refused {
        return None;
    }
    Some(match &settings.certificate_location {
        None => "the broker requires a client certificate (mTLS) and none is configured: set ssl.certificate.location and ssl.key.location (PEM), or ssl.keystore.location (PKCS#12)".to_owned(),
        Some(cert) => format!(
            "the broker refused this client's certificate ({cert}): is it signed by a CA the broker trusts, and still valid?"
        ),
    })
}

fn certificate_names(cert: &X509) -> Vec<String> {
    let mut names: Vec<String> = cert
        .subject_alt_names()
        .map(|sans| {
            sans.iter()
                .filter_map(|n| {
                    n.dnsname().map(str::to_owned).or_else(|| {
                        n.ipaddress().map(|ip| match ip.len() {
                            4 => format!("{}.{}.{}.{}", ip[0], ip[1], ip[2], ip[3]),
                            _ => format!("{ip:?}"),
                        })
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    if names.is_empty()
        && let Some(cn) = cert.subject_name().entries_by_nid(Nid::COMMONNAME).next()
        && let Ok(cn) = cn.data().to_string()
    {
        names.push(cn);
    }
    names
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests: a failed step should stop them loudly.
mod tests {
    use super::*;

    #[test]
    fn first_broker_strips_schemes_and_takes_the_first() {
        assert_eq!(
            first_broker("SSL://kafka-0.example:9093,kafka-1.example:9093"),
            Some(("kafka-0.example".into(), 9093))
        );
        assert_eq!(
            first_broker("localhost:9092"),
            Some(("localhost".into(), 9092))
        );
        assert_eq!(first_broker("[::1]:9092"), Some(("::1".into(), 9092)));
        assert_eq!(first_broker("nohost"), None);
    }

    #[test]
    fn client_certificate_alerts_are_named() {
        let none = TlsSettings::default();
        let said = client_certificate_problem(
            "error:0A00045C:SSL routines:ssl3_read_bytes:tlsv13 alert certificate required",
            &none,
        )
        .unwrap();
        assert!(said.contains("ssl.certificate.location"), "{said}");
        assert_eq!(client_certificate_problem("connection reset", &none), None);
    }
}
