//! Throw-away certificates for TLS tests: one CA, a broker certificate it
//! signs, and client certificates for mutual TLS.
//!
//! With Mosquitto's `use_identity_as_username true` the client
//! certificate's common name becomes the MQTT user name, which the ACL then
//! matches: give a gate's certificate the CN `{site}-{lot}-{gate}` (see
//! `config/mosquitto/README.md`) and HQ's the CN `hq`.
//!
//! ```ignore
//! let pki = Pki::new(dir.path());
//! let gate = pki.client("b1-main-entry-1");
//! let broker = Broker::builder().tls(BrokerTls::mutual(&pki)).start().await;
//! ```

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// A certificate and its private key, as PEM files.
#[derive(Clone, Debug)]
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A CA in a directory, with the broker's certificate already issued.
pub struct Pki {
    dir: PathBuf,
    issuer: Issuer<'static, KeyPair>,
    /// The CA certificate (`ca.pem`), the trust anchor for both sides.
    pub ca: PathBuf,
    /// The broker's certificate for `localhost` and `127.0.0.1`
    /// (`server.pem`, `server.key`).
    pub server: CertFiles,
}

impl Pki {
    /// Creates a CA and the broker's certificate in `dir` (which must exist).
    pub fn new(dir: &Path) -> Pki {
        let mut params = CertificateParams::new(Vec::new()).expect("CA params");
        params
            .distinguished_name
            .push(DnType::CommonName, "parkgate test CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().expect("CA key");
        let cert = params.self_signed(&key).expect("CA certificate");
        let ca = dir.join("ca.pem");
        fs::write(&ca, cert.pem()).expect("ca.pem written");
        let mut pki = Pki {
            dir: dir.to_path_buf(),
            issuer: Issuer::new(params, key),
            ca,
            server: CertFiles {
                cert: PathBuf::new(),
                key: PathBuf::new(),
            },
        };
        pki.server = pki.issue(
            "server",
            "localhost",
            &["localhost", "127.0.0.1"],
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        pki
    }

    /// Issues a client certificate whose common name is `cn` (the MQTT user
    /// name under `use_identity_as_username`), written as `{cn}.pem` and
    /// `{cn}.key` (so once per CN and PKI).
    pub fn client(&self, cn: &str) -> CertFiles {
        assert!(
            !cn.is_empty() && !cn.contains(['/', '.']) && cn != "server",
            "{cn:?} would not make a safe file name"
        );
        self.issue(cn, cn, &[], ExtendedKeyUsagePurpose::ClientAuth)
    }

    fn issue(
        &self,
        file: &str,
        cn: &str,
        names: &[&str],
        usage: ExtendedKeyUsagePurpose,
    ) -> CertFiles {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).expect("certificate params");
        params.distinguished_name.push(DnType::CommonName, cn);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate().expect("key pair");
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("signed certificate");
        let files = CertFiles {
            cert: self.dir.join(format!("{file}.pem")),
            key: self.dir.join(format!("{file}.key")),
        };
        fs::write(&files.cert, cert.pem()).expect("certificate written");
        write_secret(&files.key, key.serialize_pem().as_bytes());
        files
    }
}

/// Writes a private key readable by its owner only, as a real deployment
/// keeps it (and as Mosquitto, running as root with `user root`, reads it):
/// the mode is set at creation, so the key is never briefly world-readable.
fn write_secret(path: &Path, bytes: &[u8]) {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    file.write_all(bytes).expect("key written");
}
