//! systemd's readiness protocol (`sd_notify`), without libsystemd.
//!
//! With `Type=notify`, systemd passes a datagram socket in `NOTIFY_SOCKET`
//! and waits for `READY=1` before it counts the service as started. The
//! black-box tests use the same signal to know the daemon is up, instead of
//! polling its sockets.

use std::os::unix::net::{SocketAddr, UnixDatagram};

/// Sends `state` (e.g. `READY=1`) to `$NOTIFY_SOCKET`, if set. A missing or
/// broken socket is logged and otherwise ignored: readiness is a courtesy.
pub fn notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    if let Err(e) = send(&path, state) {
        tracing::warn!(error = %e, socket = ?path, "could not notify systemd");
    }
}

/// Sends one datagram to the notify socket at `path`.
fn send(path: &std::ffi::OsStr, state: &str) -> std::io::Result<()> {
    // A leading '@' names a socket in Linux's abstract namespace.
    let addr = match path.as_encoded_bytes().strip_prefix(b"@") {
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            SocketAddr::from_abstract_name(name)?
        }
        None => SocketAddr::from_pathname(path)?,
    };
    UnixDatagram::unbound()?.send_to_addr(state.as_bytes(), &addr)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_reaches_the_notify_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let listener = UnixDatagram::bind(&path).unwrap();
        send(path.as_os_str(), "READY=1").unwrap();
        let mut buf = [0u8; 64];
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
    }

    #[test]
    fn abstract_sockets_are_named_with_an_at_sign() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("parkgate-test-{}", std::process::id());
        let listener =
            UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(&name).unwrap()).unwrap();
        send(std::ffi::OsStr::new(&format!("@{name}")), "READY=1").unwrap();
        let mut buf = [0u8; 64];
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
    }
}
