//! How a connection to the broker is set up: address, TLS (rustls on ring),
//! mutual TLS, user name and password, keep-alive. Shared by the gate's link
//! and by `parkgate alerts`, which read the same `[mqtt]` keys.
//!
//! Files named in the config are read here, once per connection attempt, so
//! a certificate renewed on disk is picked up at the next reconnect.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{MqttOptions, TlsConfiguration, Transport};
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::MqttConfig;

/// Why a connection could not even be attempted.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A file named in `[mqtt]` could not be read.
    #[error("mqtt {key} {path}: {source}")]
    Read {
        key: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// A certificate or key file holds no usable PEM item.
    #[error("mqtt {key} {path}: {reason}")]
    Pem {
        key: &'static str,
        path: PathBuf,
        reason: String,
    },
    /// rustls refused the certificates or key (e.g. a key that does not match).
    #[error("mqtt TLS setup: {0}")]
    Tls(#[from] rustls::Error),
    /// `client_cert` without `client_key`, or the other way round.
    #[error("mqtt client_cert and client_key go together; give both or neither")]
    HalfClientAuth,
    /// No CA file and no system roots to verify the broker with.
    #[error("mqtt tls: no ca_file given and no system root certificates found")]
    NoRoots,
}

/// The `MqttOptions` for connecting as `client_id` with `[mqtt]` settings.
/// The caller adds what is its own: session, last will, inflight window.
pub fn mqtt_options(m: &MqttConfig, client_id: &str) -> Result<MqttOptions, SetupError> {
    let mut options = MqttOptions::new(client_id, m.host.as_str(), m.port);
    options.set_keep_alive(Duration::from_secs(m.keep_alive_s.max(1)));
    if let Some(user) = &m.username {
        let password = match &m.password_file {
            Some(path) => password(path)?,
            None => String::new(),
        };
        options.set_credentials(user.as_str(), password);
    }
    if m.tls {
        let config = client_config(m)?;
        options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
            Arc::new(config),
        )));
    }
    Ok(options)
}

/// The password file's first line: editors add a newline, brokers never
/// want one.
fn password(path: &Path) -> Result<String, SetupError> {
    let text = read_string(path, "password_file")?;
    Ok(text.lines().next().unwrap_or("").to_string())
}

/// The rustls client config: the broker verified against `ca_file` (or the
/// system's roots), and our certificate offered if `client_cert` is set.
pub fn client_config(m: &MqttConfig) -> Result<rustls::ClientConfig, SetupError> {
    let mut roots = RootCertStore::empty();
    match &m.ca_file {
        Some(path) => {
            for cert in certs(path, "ca_file")? {
                roots.add(cert)?;
            }
        }
        None => {
            // Unreadable system certificates are skipped, not fatal.
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
            if roots.is_empty() {
                return Err(SetupError::NoRoots);
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    Ok(match (&m.client_cert, &m.client_key) {
        (Some(cert), Some(key)) => {
            builder.with_client_auth_cert(certs(cert, "client_cert")?, private_key(key)?)?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => return Err(SetupError::HalfClientAuth),
    })
}

fn certs(path: &Path, key: &'static str) -> Result<Vec<CertificateDer<'static>>, SetupError> {
    let bytes = read(path, key)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem(path, key, e.to_string()))?;
    if certs.is_empty() {
        return Err(pem(path, key, "no PEM certificate in the file".into()));
    }
    Ok(certs)
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, SetupError> {
    let bytes = read(path, "client_key")?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| {
        pem(
            path,
            "client_key",
            format!("no usable PEM private key ({e})"),
        )
    })
}

fn pem(path: &Path, key: &'static str, reason: String) -> SetupError {
    SetupError::Pem {
        key,
        path: path.to_owned(),
        reason,
    }
}

fn read(path: &Path, key: &'static str) -> Result<Vec<u8>, SetupError> {
    std::fs::read(path).map_err(|source| SetupError::Read {
        key,
        path: path.to_owned(),
        source,
    })
}

fn read_string(path: &Path, key: &'static str) -> Result<String, SetupError> {
    std::fs::read_to_string(path).map_err(|source| SetupError::Read {
        key,
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tls_config(dir: &Path) -> MqttConfig {
        MqttConfig {
            enabled: true,
            tls: true,
            ca_file: Some(dir.join("ca.pem")),
            ..MqttConfig::default()
        }
    }

    #[test]
    fn the_password_is_the_first_line_without_its_newline() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pass");
        std::fs::write(&file, "s3cret\n").unwrap();
        assert_eq!(password(&file).unwrap(), "s3cret");
    }

    #[test]
    fn a_missing_file_names_its_key_and_path() {
        let dir = tempfile::tempdir().unwrap();
        let err = client_config(&tls_config(dir.path())).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("ca_file") && text.contains("ca.pem"),
            "{text}"
        );
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), "not a certificate\n").unwrap();
        let err = client_config(&tls_config(dir.path())).unwrap_err();
        assert!(matches!(err, SetupError::Pem { .. }), "{err}");
    }

    #[test]
    fn generated_certificates_make_a_mutual_tls_config() {
        let dir = tempfile::tempdir().unwrap();
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = params.self_signed(&ca_key).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let issuer = rcgen::Issuer::new(params, ca_key);
        let cert = rcgen::CertificateParams::new(vec!["gate".to_string()])
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
        std::fs::write(dir.path().join("gate.crt"), cert.pem()).unwrap();
        std::fs::write(dir.path().join("gate.key"), key.serialize_pem()).unwrap();
        let mut m = tls_config(dir.path());
        assert!(client_config(&m).is_ok());
        m.client_cert = Some(dir.path().join("gate.crt"));
        assert!(matches!(client_config(&m), Err(SetupError::HalfClientAuth)));
        m.client_key = Some(dir.path().join("gate.key"));
        let config = client_config(&m).unwrap();
        assert!(config.client_auth_cert_resolver.has_certs());
    }
}
