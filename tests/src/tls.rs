//! TLS for the secure-Kafka tests. tansu 0.6 parses `--cert`/`--key` but serves no TLS, so a real TLS
//! terminator from Debian, stunnel4, stands in front of it on loopback (verifying client certificates
//! where a test wants mTLS), and tansu advertises the terminator's address. The certificates are made per
//! test with rcgen (nothing is committed): a CA, a server certificate for `localhost`, one for another
//! host, a client certificate (its key also encrypted, for `ssl.key.password`), and a second CA with a
//! certificate of its own, which nobody trusts.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

use crate::wait_for;

/// The password of `client-encrypted.key`.
pub const CLIENT_KEY_PASSWORD: &str = "client-key-passphrase-7f3a";

/// A throwaway PKI, written as PEM files into a directory.
pub struct Pki {
    dir: PathBuf,
    /// Every private key's PEM text, for the tests that check no log shows one.
    pub private_keys: Vec<String>,
}

fn ca_params(name: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params
}

fn leaf_params(common_name: &str, names: &[&str], client: bool) -> CertificateParams {
    let mut params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![if client {
        ExtendedKeyUsagePurpose::ClientAuth
    } else {
        ExtendedKeyUsagePurpose::ServerAuth
    }];
    params
}

impl Pki {
    pub fn new(dir: &Path) -> Pki {
        std::fs::create_dir_all(dir).unwrap();
        let mut pki = Pki {
            dir: dir.to_owned(),
            private_keys: Vec::new(),
        };
        let ca = CertifiedIssuer::self_signed(
            ca_params("Playlog Test CA"),
            KeyPair::generate().unwrap(),
        )
        .unwrap();
        pki.write("ca.pem", &ca.pem());
        let other_ca =
            CertifiedIssuer::self_signed(ca_params("Untrusted CA"), KeyPair::generate().unwrap())
                .unwrap();
        pki.write("other-ca.pem", &other_ca.pem());
        for (name, cn, names, client, issuer) in [
            ("server", "localhost", &["localhost"][..], false, &ca),
            (
                "wrong-host",
                "kafka.elsewhere.example",
                &["kafka.elsewhere.example"][..],
                false,
                &ca,
            ),
            ("client", "playlog-client", &[][..], true, &ca),
            ("intruder", "intruder", &[][..], true, &other_ca),
        ] {
            let key = KeyPair::generate().unwrap();
            let cert = leaf_params(cn, names, client)
                .signed_by(&key, issuer)
                .unwrap();
            pki.write(&format!("{name}.pem"), &cert.pem());
            pki.write(&format!("{name}.key"), &key.serialize_pem());
            pki.private_keys.push(key.serialize_pem());
        }
        // The client key again, encrypted (PKCS#8), for ssl.key.password.
        let plain = std::fs::read(pki.path("client.key")).unwrap();
        let encrypted = openssl::pkey::PKey::private_key_from_pem(&plain)
            .unwrap()
            .private_key_to_pem_pkcs8_passphrase(
                openssl::symm::Cipher::aes_256_cbc(),
                CLIENT_KEY_PASSWORD.as_bytes(),
            )
            .unwrap();
        pki.write(
            "client-encrypted.key",
            &String::from_utf8(encrypted).unwrap(),
        );
        pki
    }

    fn write(&self, name: &str, pem: &str) {
        std::fs::write(self.dir.join(name), pem).unwrap();
    }

    /// The path of one of its files: `ca.pem`, `server.pem`, `client.key`, …
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// `path` as a string, for flags and properties.
    pub fn file(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }

    /// The body lines of every private key (each long enough to be unmistakable in a log).
    pub fn private_key_lines(&self) -> Vec<String> {
        self.private_keys
            .iter()
            .flat_map(|pem| pem.lines())
            .filter(|l| !l.starts_with("-----") && l.len() >= 20)
            .map(str::to_owned)
            .collect()
    }
}

/// stunnel4 terminating TLS on `localhost:PORT` and forwarding to a plaintext listener; stopped on drop.
pub struct TlsTerminator {
    child: Child,
    pub port: u16,
}

impl TlsTerminator {
    /// Listens on `port` (`localhost`); `client_ca` turns on mTLS (a client certificate signed by that
    /// CA is required).
    pub fn start(
        port: u16,
        dir: &Path,
        name: &str,
        certificate: &Path,
        key: &Path,
        client_ca: Option<&Path>,
        backend: &str,
    ) -> TlsTerminator {
        let mut config = format!(
            "foreground = yes\npid =\ndebug = notice\n[kafka]\naccept = 127.0.0.1:{port}\nconnect = {backend}\ncert = {}\nkey = {}\n",
            certificate.display(),
            key.display()
        );
        if let Some(ca) = client_ca {
            config.push_str(&format!(
                "CAfile = {}\nverifyChain = yes\nrequireCert = yes\n",
                ca.display()
            ));
        }
        let config_path = dir.join(format!("{name}-stunnel.conf"));
        std::fs::write(&config_path, config).unwrap();
        let log = std::fs::File::create(dir.join(format!("{name}-stunnel.log"))).unwrap();
        let bin = std::env::var("STUNNEL_BIN").unwrap_or_else(|_| "stunnel4".into());
        let child = Command::new(&bin)
            .arg(&config_path)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("starting {bin} (apt-get install stunnel4, or scripts/install-deps.sh --test): {e}")
            });
        let terminator = TlsTerminator { child, port };
        assert!(
            wait_for(Duration::from_secs(20), || {
                std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            }),
            "stunnel did not listen on {port}; see {}",
            dir.display()
        );
        terminator
    }

    /// `localhost:PORT`: the name the server certificate carries.
    pub fn address(&self) -> String {
        format!("localhost:{}", self.port)
    }
}

impl Drop for TlsTerminator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
