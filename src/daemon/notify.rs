//! systemd's notify protocol (`sd_notify`), without libsystemd.
//!
//! With `Type=notify`, systemd passes a datagram socket in `NOTIFY_SOCKET`
//! and waits for `READY=1` before it counts the service as started. With
//! `WatchdogSec=` it also passes `WATCHDOG_USEC` and restarts the service
//! when no `WATCHDOG=1` came for that long (when to send one is
//! `watchdog.rs`'s business). The black-box tests use the same socket to
//! know the daemon is up, instead of polling its sockets.

use std::ffi::{OsStr, OsString};
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

/// Where systemd listens, and how often it wants a sign of life.
/// `Default`: nobody listens (the demo, in-process tests).
#[derive(Debug, Clone, Default)]
pub struct Systemd {
    socket: Option<OsString>,
    watchdog: Option<Duration>,
}

impl Systemd {
    /// As systemd set the environment: `NOTIFY_SOCKET`, and `WATCHDOG_USEC`
    /// unless `WATCHDOG_PID` names another process (a child that inherited
    /// the variables must not feed its parent's watchdog).
    pub fn from_env() -> Systemd {
        let var = |name| std::env::var_os(name);
        Systemd::from_vars(
            var("NOTIFY_SOCKET"),
            var("WATCHDOG_USEC"),
            var("WATCHDOG_PID"),
            std::process::id(),
        )
    }

    /// [`from_env`](Self::from_env) given the variables and this process's id.
    fn from_vars(
        socket: Option<OsString>,
        usec: Option<OsString>,
        pid: Option<OsString>,
        me: u32,
    ) -> Systemd {
        let number = |v: &OsStr| v.to_str()?.trim().parse::<u64>().ok();
        let ours = pid
            .as_deref()
            .is_none_or(|p| number(p) == Some(u64::from(me)));
        let watchdog = usec
            .as_deref()
            .and_then(number)
            .filter(|us| *us > 0 && ours)
            .map(Duration::from_micros);
        Systemd { socket, watchdog }
    }

    /// Tells the listener at `socket` (a path, or `@name` in the abstract
    /// namespace), and wants a sign of life every `watchdog` if given.
    pub fn new(socket: impl Into<OsString>, watchdog: Option<Duration>) -> Systemd {
        Systemd {
            socket: Some(socket.into()),
            watchdog,
        }
    }

    /// `WATCHDOG_USEC`: how long systemd waits for a `WATCHDOG=1`.
    pub fn watchdog(&self) -> Option<Duration> {
        self.watchdog.filter(|_| self.socket.is_some())
    }

    /// Sends `state` (e.g. `READY=1`), if anyone listens. A missing or
    /// broken socket is logged and otherwise ignored: the gate runs on.
    pub fn notify(&self, state: &str) {
        let Some(path) = &self.socket else {
            return;
        };
        if let Err(e) = send(path, state) {
            tracing::warn!(error = %e, socket = ?path, "could not notify systemd");
        }
    }
}

/// Sends one datagram to the notify socket at `path`.
fn send(path: &OsStr, state: &str) -> std::io::Result<()> {
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
        Systemd::new(path.as_os_str(), None).notify("READY=1");
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
        send(OsStr::new(&format!("@{name}")), "READY=1").unwrap();
        let mut buf = [0u8; 64];
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
    }

    #[test]
    fn the_watchdog_is_ours_only_when_systemd_says_so() {
        let os = |s: &str| Some(OsString::from(s));
        let sd = |usec, pid| Systemd::from_vars(os("/run/notify"), usec, pid, 42);
        let half_minute = Some(Duration::from_secs(30));
        assert_eq!(sd(os("30000000"), None).watchdog(), half_minute);
        assert_eq!(sd(os("30000000"), os("42")).watchdog(), half_minute);
        // Inherited from a parent whose watchdog it is not.
        assert_eq!(sd(os("30000000"), os("41")).watchdog(), None);
        assert_eq!(sd(os("0"), None).watchdog(), None);
        assert_eq!(sd(os("soon"), None).watchdog(), None);
        assert_eq!(sd(None, None).watchdog(), None);
        // Nowhere to send the pings: no watchdog.
        let no_socket = Systemd::from_vars(None, os("30000000"), None, 42);
        assert_eq!(no_socket.watchdog(), None);
    }
}
