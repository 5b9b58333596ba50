//! A real Mosquitto broker per test, on a loopback port of its own.
//!
//! Each [`Broker`] runs the `mosquitto` binary with a config written into its
//! own temp dir, logging to a pipe the harness reads: start-up ends on
//! Mosquitto's `running` line (printed once every listener is bound), so
//! nothing polls the port or sleeps. Persistence is off, so [`Broker::kill`]
//! is a crash that loses every session, queued message and retained message,
//! the worst case the contract asks the gate to survive.
//!
//! ```ignore
//! let mut broker = Broker::start().await;                 // plain TCP, anonymous
//! let hq = Hq::builder(broker.port()).subscribe("parkgate/v1/#").connect().await;
//! broker.kill();                                          // crash: everything lost
//! broker.restart().await;                                 // same port, same config
//! hq.wait_subscribed(2).await;                            // HQ is back and subscribed
//! ```
//!
//! Queues are unlimited (`max_queued_messages 0`) and the in-flight window
//! wide, unlike Mosquitto's defaults, which silently drop QoS 1 messages for a
//! subscriber that falls 1000 behind: a test that floods a slow client would
//! otherwise see losses the broker made, not the code under test.

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tempfile::TempDir;
use tokio::sync::oneshot;

use super::pki::Pki;

/// How long Mosquitto may take to start before the test fails.
const READY_WITHIN: Duration = Duration::from_secs(20);

/// The line Mosquitto logs after it has bound every listener.
const READY_LINE: &str = " running";

/// Finds one of Mosquitto's programs. Debian puts the broker in /usr/sbin,
/// which is not on a non-root user's PATH (nor always on CI's).
pub fn mosquitto_program(name: &str) -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    let fixed = ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"].map(PathBuf::from);
    on_path
        .into_iter()
        .chain(fixed)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
        .unwrap_or_else(|| {
            panic!("`{name}` not found on PATH nor in /usr/sbin: apt-get install mosquitto mosquitto-clients")
        })
}

/// Writes a Mosquitto password file at `path` with each `(user, password)`,
/// through `mosquitto_passwd -b` (Mosquitto's own hashing, as an operator
/// would make it).
pub fn password_file(path: &Path, users: &[(&str, &str)]) {
    let program = mosquitto_program("mosquitto_passwd");
    for (i, (user, password)) in users.iter().enumerate() {
        let mut cmd = Command::new(&program);
        if i == 0 {
            // -c truncates: only the first user may create the file.
            cmd.arg("-c");
        }
        let out = cmd
            .arg("-b")
            .arg(path)
            .args([user, password])
            .stdin(Stdio::null())
            .output()
            .expect("mosquitto_passwd runs");
        assert!(out.status.success(), "mosquitto_passwd for {user}: {out:?}");
    }
}

/// A TLS listener's files and client-certificate policy.
#[derive(Clone, Debug)]
pub struct BrokerTls {
    pub cafile: PathBuf,
    pub certfile: PathBuf,
    pub keyfile: PathBuf,
    /// Refuse clients that present no certificate signed by `cafile`.
    pub require_certificate: bool,
    /// Take the MQTT user name from the client certificate's CN (what the
    /// ACL matches), ignoring the one in CONNECT.
    pub use_identity_as_username: bool,
}

impl BrokerTls {
    /// Server authentication only: clients check the broker, not the reverse.
    pub fn server_only(pki: &Pki) -> BrokerTls {
        BrokerTls {
            cafile: pki.ca.clone(),
            certfile: pki.server.cert.clone(),
            keyfile: pki.server.key.clone(),
            require_certificate: false,
            use_identity_as_username: false,
        }
    }

    /// Mutual TLS as in production (`config/mosquitto/mosquitto.conf`): a
    /// client certificate is required and its CN is the user name.
    pub fn mutual(pki: &Pki) -> BrokerTls {
        BrokerTls {
            require_certificate: true,
            use_identity_as_username: true,
            ..BrokerTls::server_only(pki)
        }
    }
}

/// What to put in a broker's config; see [`Broker::builder`].
#[derive(Clone, Default)]
pub struct BrokerBuilder {
    custom: Option<Arc<dyn Fn(u16) -> String + Send + Sync>>,
    tls: Option<BrokerTls>,
    password_file: Option<PathBuf>,
    acl_file: Option<PathBuf>,
    allow_anonymous: Option<bool>,
    lines: Vec<String>,
}

impl BrokerBuilder {
    /// Makes the listener a TLS one.
    pub fn tls(mut self, tls: BrokerTls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Checks user names and passwords against `path` (see
    /// [`password_file`]); anonymous clients are then refused unless
    /// [`BrokerBuilder::allow_anonymous`] says otherwise.
    pub fn password_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.password_file = Some(path.into());
        self
    }

    /// Enforces the ACL in `path` (for instance the shipped
    /// `config/mosquitto/acl`).
    pub fn acl_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.acl_file = Some(path.into());
        self
    }

    /// Whether clients without credentials may connect. By default they may,
    /// unless a password file is set.
    pub fn allow_anonymous(mut self, allow: bool) -> Self {
        self.allow_anonymous = Some(allow);
        self
    }

    /// Appends a raw line to the config (after the listener, so listener
    /// options work too).
    pub fn line(mut self, line: impl Into<String>) -> Self {
        self.lines.push(line.into());
        self
    }

    /// Uses the config `config(port)` returns instead, as is: for running a
    /// shipped config with its paths and listener rewritten. It must log
    /// to stderr (`log_dest stderr`), where readiness is read, and listen on
    /// `port` only.
    pub fn custom(mut self, config: impl Fn(u16) -> String + Send + Sync + 'static) -> Self {
        self.custom = Some(Arc::new(config));
        self
    }

    fn config(&self, port: u16) -> String {
        if let Some(custom) = &self.custom {
            return custom(port);
        }
        let anonymous = self.allow_anonymous.unwrap_or(self.password_file.is_none());
        // `user root`: Mosquitto started as root otherwise drops to the
        // `mosquitto` user, which can read neither the 0700 temp dir nor the
        // 0600 keys. A non-root Mosquitto ignores the option.
        let mut text = format!(
            "# written by tests/common/broker.rs\n\
             user root\n\
             persistence false\n\
             log_dest stderr\n\
             log_type error\nlog_type warning\nlog_type notice\nlog_type information\n\
             max_queued_messages 0\n\
             max_inflight_messages 1000\n\
             allow_anonymous {anonymous}\n"
        );
        if let Some(path) = &self.password_file {
            text += &format!("password_file {}\n", path.display());
        }
        if let Some(path) = &self.acl_file {
            text += &format!("acl_file {}\n", path.display());
        }
        text += &format!("listener {port} 127.0.0.1\n");
        if let Some(tls) = &self.tls {
            text += &format!(
                "cafile {}\ncertfile {}\nkeyfile {}\nrequire_certificate {}\nuse_identity_as_username {}\n",
                tls.cafile.display(),
                tls.certfile.display(),
                tls.keyfile.display(),
                tls.require_certificate,
                tls.use_identity_as_username,
            );
        }
        for line in &self.lines {
            text += line;
            text += "\n";
        }
        text
    }

    /// Starts the broker on a free loopback port and waits until it listens.
    pub async fn start(self) -> Broker {
        let dir = tempfile::tempdir().expect("a temp dir");
        let config = dir.path().join("mosquitto.conf");
        let mut broker = Broker {
            dir,
            config,
            port: 0,
            child: None,
            log: Arc::default(),
        };
        // Another process can take the port between our check and
        // Mosquitto's bind: then try another.
        for _ in 0..5 {
            broker.port = free_port();
            std::fs::write(&broker.config, self.config(broker.port)).expect("config written");
            lock(&broker.log).clear();
            match broker.spawn().await {
                Ok(()) => return broker,
                Err(log) if log.contains("Address already in use") => continue,
                Err(log) => panic!("mosquitto did not start:\n{log}"),
            }
        }
        panic!("mosquitto found no free port in 5 tries:\n{}", broker.log());
    }
}

/// A running (or killed) Mosquitto; killed when dropped.
pub struct Broker {
    dir: TempDir,
    config: PathBuf,
    port: u16,
    child: Option<Child>,
    log: Arc<Mutex<String>>,
}

impl Broker {
    /// A config to fill in before [`BrokerBuilder::start`].
    pub fn builder() -> BrokerBuilder {
        BrokerBuilder::default()
    }

    /// A plain-TCP broker that lets anyone in.
    pub async fn start() -> Broker {
        Broker::builder().start().await
    }

    /// The loopback port it listens on (the same across restarts).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its temp dir, where the config lives; a handy place for a test's
    /// certificates and password file too.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The config Mosquitto was started with.
    pub fn config_path(&self) -> &Path {
        &self.config
    }

    /// Everything Mosquitto logged so far, across restarts: for failure
    /// messages, or to check a connection was refused for the right reason.
    pub fn log(&self) -> String {
        lock(&self.log).clone()
    }

    /// Whether the process is running (it was not killed, nor did it die).
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// SIGKILLs the broker, as a crash or power loss would: no DISCONNECT
    /// to anyone, and with persistence off every session and queued or
    /// retained message is gone. Returns once the process is reaped, so the
    /// port is closed.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Child::kill is SIGKILL on Unix.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the broker if it runs, then starts it again on the same port
    /// with the same config and waits until it listens.
    pub async fn restart(&mut self) {
        self.kill();
        if let Err(log) = self.spawn().await {
            panic!("mosquitto did not restart on port {}:\n{log}", self.port);
        }
    }

    /// Starts the process; `Err` carries the log when it did not get ready.
    async fn spawn(&mut self) -> Result<(), String> {
        let mut child = Command::new(mosquitto_program("mosquitto"))
            .arg("-c")
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("mosquitto runs");
        let stderr = child.stderr.take().expect("piped stderr");
        self.child = Some(child);
        let (ready_tx, ready_rx) = oneshot::channel();
        let log = Arc::clone(&self.log);
        // A plain thread: it blocks on the pipe, and must outlive whichever
        // runtime the test uses. It ends at EOF, when Mosquitto exits.
        std::thread::spawn(move || {
            let mut ready = Some(ready_tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let is_ready = line.ends_with(READY_LINE) && line.contains("mosquitto version");
                {
                    let mut log = lock(&log);
                    log.push_str(&line);
                    log.push('\n');
                }
                if is_ready && let Some(tx) = ready.take() {
                    let _ = tx.send(());
                }
            }
        });
        match tokio::time::timeout(READY_WITHIN, ready_rx).await {
            Ok(Ok(())) => Ok(()),
            // The sender dropped: Mosquitto exited (a bad config, a port in
            // use) and the pipe closed.
            Ok(Err(_)) => {
                self.kill();
                Err(self.log())
            }
            Err(_) => {
                self.kill();
                Err(format!("(not ready in {READY_WITHIN:?})\n{}", self.log()))
            }
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
    }
}

fn lock(log: &Mutex<String>) -> std::sync::MutexGuard<'_, String> {
    // A reader thread that panicked mid-append leaves a usable log.
    log.lock().unwrap_or_else(|e| e.into_inner())
}

/// A loopback port nothing listens on, below Linux's ephemeral range
/// (32768 and up): a port from that range may be handed to some client's
/// outgoing connection while the broker is down between kill and restart,
/// and a client reconnecting to its own ephemeral port can even connect to
/// itself (TCP simultaneous open).
fn free_port() -> u16 {
    loop {
        let port = fastrand::u16(20_000..32_000);
        if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return port;
        }
    }
}
