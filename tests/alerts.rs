//! `parkgate alerts` against a real broker: each test starts its own
//! Mosquitto on a free loopback port, runs the real binary, publishes
//! events as gates would, and reads what the desk sees.
//!
//! Nothing sleeps to wait: the broker is up once its log says it listens,
//! the subscription once `parkgate alerts` says `following ...` on stderr
//! (after the broker's SUBACK), and a publish is in once the broker
//! acknowledged it (PUBACK). Every wait has a deadline that fails the test.
//! A message that must NOT be printed is published before one that must:
//! the broker delivers one publisher's messages in order, so once the later
//! line is out, the earlier message was handled.

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use rumqttc::{Client, Event, MqttOptions, Packet, QoS};
use serde_json::{Value, json};
use tempfile::TempDir;

/// The longest any single wait may take before the test fails instead of hanging.
const WAIT: Duration = Duration::from_secs(20);

// ------------------------------------------------------------ the events

/// An event payload as gate `site/lot/gate` publishes it.
fn event(id: &str, [site, lot, gate]: [&str; 3], kind: &str, at: &str, fields: Value) -> Vec<u8> {
    let mut v = json!({
        "v": 1, "event_id": id, "gate_seq": 41,
        "site": site, "lot": lot, "gate": gate,
        "at": at, "clock": "synced", "type": kind,
    });
    v.as_object_mut()
        .unwrap()
        .extend(fields.as_object().unwrap().clone());
    serde_json::to_vec(&v).unwrap()
}

/// The topic the contract puts an event on.
fn topic([site, lot, gate]: [&str; 3], kind: &str) -> String {
    format!("parkgate/v1/{site}/{lot}/gates/{gate}/events/{kind}")
}

const ENTRY: [&str; 3] = ["b1", "main", "entry-1"];
const EXIT: [&str; 3] = ["b1", "main", "exit-1"];
const ANNEX: [&str; 3] = ["b1", "annex", "entry-1"];
const OTHER_SITE: [&str; 3] = ["b2", "main", "entry-1"];

fn tailgating() -> (String, Vec<u8>) {
    let payload = event(
        "01JD3W6Q8R9S5T4V7X2Y0Z1A2B",
        ENTRY,
        "alert",
        "2026-11-22T08:01:02.123+07:00",
        json!({"alert": "tailgating", "severity": "critical",
               "message": "A second vehicle passed on one authorisation.",
               "card": "04A1B2C3D4E5F6", "user_id": "u-17",
               "related_event_id": "01JD3W6Q8R9S5T4V7X2Y0Z1A2A"}),
    );
    (topic(ENTRY, "alert"), payload)
}

// The gate's offset, not this machine's, sets the time shown.
fn revoked() -> (String, Vec<u8>) {
    let payload = event(
        "01JD3W7A0000000000000000CC",
        EXIT,
        "denied",
        "2026-11-22T17:45:00-05:00",
        json!({"card": "04C4C4C4C4C4C4", "reason": "card_revoked",
               "user_id": "u-21", "user_name": "Carol Ngo"}),
    );
    (topic(EXIT, "denied"), payload)
}

fn check_in() -> (String, Vec<u8>) {
    let payload = event(
        "01JD3W7B0000000000000000A1",
        ENTRY,
        "check_in",
        "2026-11-22T08:02:00+07:00",
        json!({"card": "04A1B2C3D4E5F6", "user_id": "u-17", "user_name": "Alice Tran",
               "vehicle_id": "v-9", "vehicle_class": "standard", "reservation_id": null,
               "spot_id": null, "plan": "monthly", "walk_in": true}),
    );
    (topic(ENTRY, "check_in"), payload)
}

fn fault(gate: [&str; 3], id: &str) -> (String, Vec<u8>) {
    let payload = event(
        id,
        gate,
        "alert",
        "2026-11-22T08:03:00+07:00",
        json!({"alert": "barrier_fault", "severity": "warning",
               "message": "The barrier did not reach the top."}),
    );
    (topic(gate, "alert"), payload)
}

fn annex_fault() -> (String, Vec<u8>) {
    fault(ANNEX, "01JD3W7C0000000000000000F1")
}

fn other_site_fault() -> (String, Vec<u8>) {
    fault(OTHER_SITE, "01JD3W7D0000000000000000F2")
}

const TAILGATING_LINE: &str = "2026-11-22 08:01:02  b1/main/entry-1  CRITICAL  \
     tailgating: A second vehicle passed on one authorisation.  card 04A1B2C3D4E5F6 · u-17";
const REVOKED_LINE: &str = "2026-11-22 17:45:00  b1/main/exit-1  DENIED  denied: card revoked  \
     card 04C4C4C4C4C4C4 · Carol Ngo (u-21)";
const ANNEX_LINE: &str = "2026-11-22 08:03:00  b1/annex/entry-1  WARNING  \
     barrier_fault: The barrier did not reach the top.  -";

/// What a lot's gates and their neighbours publish in one test: the
/// alert, then what must not show (a check-in, another lot's alert, the
/// alert again, junk), then the denial last.
fn morning() -> Vec<(String, Vec<u8>)> {
    vec![
        tailgating(),
        check_in(),
        annex_fault(),
        tailgating(),
        (topic(ENTRY, "alert"), b"{\"v\":1, \"event_id\": ".to_vec()),
        revoked(),
    ]
}

fn following_line(site_lot: &str, port: u16) -> String {
    format!(
        "following parkgate/v1/{site_lot}/gates/+/events/alert, \
         parkgate/v1/{site_lot}/gates/+/events/denied on mqtt://127.0.0.1:{port}"
    )
}

// ------------------------------------------------------------ the tests

#[test]
fn a_lots_alerts_and_denials_show_once_each_and_junk_is_named() {
    let broker = Broker::start(free_port());
    let mut alerts = Alerts::start(&broker.args(&["--site", "b1", "--lot", "main"]));
    alerts
        .stderr
        .wait_for(&following_line("b1/main", broker.port));

    publish(broker.port, &morning());

    assert_eq!(
        alerts.stdout.take(2),
        [TAILGATING_LINE, REVOKED_LINE],
        "one line per alert or denial of b1/main, the repeated alert once"
    );
    alerts.stderr.wait_for(&format!(
        "bad message on {}: malformed payload: EOF while parsing a value at line 1 column 20",
        topic(ENTRY, "alert")
    ));
    let (status, rest) = alerts.terminate();
    assert!(status.success(), "SIGTERM ends it with 0, got {status}");
    assert_eq!(rest, Vec::<String>::new(), "nothing after the denial");
}

#[test]
fn json_lines_are_the_payloads_as_received() {
    let broker = Broker::start(free_port());
    let mut alerts = Alerts::start(&broker.args(&["--site", "b1", "--lot", "main", "--json"]));
    alerts
        .stderr
        .wait_for(&following_line("b1/main", broker.port));

    publish(broker.port, &morning());

    let text = |(_, payload): (String, Vec<u8>)| String::from_utf8(payload).unwrap();
    assert_eq!(alerts.stdout.take(2), [text(tailgating()), text(revoked())]);
    alerts
        .stderr
        .wait_for_prefix(&format!("bad message on {}: ", topic(ENTRY, "alert")));
    let (status, rest) = alerts.terminate();
    assert!(status.success(), "{status}");
    assert_eq!(rest, Vec::<String>::new());
}

#[test]
fn a_site_scope_follows_every_lot_of_the_site_and_no_other_site() {
    let broker = Broker::start(free_port());
    let mut alerts = Alerts::start(&broker.args(&["--site", "b1"]));
    alerts.stderr.wait_for(&following_line("b1/+", broker.port));

    publish(
        broker.port,
        &[tailgating(), other_site_fault(), annex_fault()],
    );

    assert_eq!(alerts.stdout.take(2), [TAILGATING_LINE, ANNEX_LINE]);
    let (status, rest) = alerts.terminate();
    assert!(status.success(), "{status}");
    assert_eq!(rest, Vec::<String>::new());
}

#[test]
fn a_gates_config_file_names_the_broker_and_the_lot() {
    let broker = Broker::start(free_port());
    let file = broker.dir.path().join("gate.toml");
    std::fs::write(
        &file,
        format!(
            "[gate]\nsite = \"b1\"\nlot = \"main\"\ngate = \"entry-1\"\nrole = \"entry\"\n\
             timezone = \"Asia/Ho_Chi_Minh\"\n\n[capacity]\nstandard = 20\n\n\
             [mqtt]\nenabled = true\nhost = \"127.0.0.1\"\nport = {}\n",
            broker.port
        ),
    )
    .unwrap();
    let mut alerts = Alerts::start(&["alerts".into(), "--config".into(), path_arg(&file)]);
    alerts
        .stderr
        .wait_for(&following_line("b1/main", broker.port));

    publish(broker.port, &[annex_fault(), revoked()]);

    assert_eq!(alerts.stdout.take(1), [REVOKED_LINE]);
    let (status, rest) = alerts.terminate();
    assert!(status.success(), "{status}");
    assert_eq!(rest, Vec::<String>::new());
}

#[test]
fn it_follows_again_after_the_broker_restarts() {
    let port = free_port();
    let mut broker = Broker::start(port);
    let mut alerts = Alerts::start(&broker.args(&["--site", "b1", "--lot", "main"]));
    alerts.stderr.wait_for(&following_line("b1/main", port));
    publish(port, &[tailgating()]);
    assert_eq!(alerts.stdout.take(1), [TAILGATING_LINE]);

    broker.stop();
    alerts
        .stderr
        .wait_for_prefix(&format!("lost mqtt://127.0.0.1:{port}: "));
    let broker = Broker::start(port);
    alerts.stderr.wait_for(&following_line("b1/main", port));

    // The new broker's subscription is a fresh one: the alert again (a
    // replay) stays hidden, the denial shows.
    publish(port, &[tailgating(), revoked()]);
    assert_eq!(alerts.stdout.take(1), [REVOKED_LINE]);
    let (status, rest) = alerts.terminate();
    assert!(status.success(), "{status}");
    assert_eq!(rest, Vec::<String>::new());
    drop(broker);
}

#[test]
fn without_a_config_file_or_a_host_it_says_what_to_give() {
    assert!(
        !Path::new("/etc/parkgate/gate.toml").exists(),
        "this test needs a machine without /etc/parkgate/gate.toml (the default config)"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_parkgate"))
        .args(["alerts", "--site", "b1"])
        .env_remove("PARKGATE_CONFIG")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.trim_end(),
        "parkgate: no broker to follow: no config file at /etc/parkgate/gate.toml and no --host; \
         give --config FILE (a gate's config) or --host HOST"
    );
}

// ------------------------------------------------------------ the harness

/// A loopback port nobody listens on right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn path_arg(path: &Path) -> String {
    path.to_str().expect("a UTF-8 temp path").to_string()
}

/// The lines a child writes on one of its pipes, as they come.
struct Lines {
    what: &'static str,
    rx: Receiver<String>,
    /// Lines already read while waiting for another one.
    seen: Vec<String>,
}

impl Lines {
    fn new(what: &'static str, pipe: impl Read + Send + 'static) -> Lines {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Lines {
            what,
            rx,
            seen: Vec::new(),
        }
    }

    /// The next line, failing the test if none comes in time.
    fn next(&mut self, deadline: Instant) -> String {
        let left = deadline.saturating_duration_since(Instant::now());
        match self.rx.recv_timeout(left) {
            Ok(line) => {
                self.seen.push(line.clone());
                line
            }
            Err(RecvTimeoutError::Timeout) => panic!(
                "{}: no line in {WAIT:?}; so far:\n{}",
                self.what,
                self.seen.join("\n")
            ),
            Err(RecvTimeoutError::Disconnected) => {
                panic!("{}: closed; it said:\n{}", self.what, self.seen.join("\n"))
            }
        }
    }

    /// The next `n` lines.
    fn take(&mut self, n: usize) -> Vec<String> {
        let deadline = Instant::now() + WAIT;
        (0..n).map(|_| self.next(deadline)).collect()
    }

    /// Reads until a line is `want`.
    fn wait_for(&mut self, want: &str) {
        let deadline = Instant::now() + WAIT;
        while self.next(deadline) != want {}
    }

    /// Reads until a line starts with `prefix`.
    fn wait_for_prefix(&mut self, prefix: &str) {
        let deadline = Instant::now() + WAIT;
        while !self.next(deadline).starts_with(prefix) {}
    }

    /// Every line until the pipe closes (the child exited).
    fn rest(&mut self) -> Vec<String> {
        let deadline = Instant::now() + WAIT;
        let mut rest = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(line) => rest.push(line),
                Err(RecvTimeoutError::Disconnected) => return rest,
                Err(RecvTimeoutError::Timeout) => {
                    panic!("{}: still open after {WAIT:?}", self.what)
                }
            }
        }
    }
}

/// Kills a child process when the test ends, passed or failed.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A Mosquitto of the test's own on `127.0.0.1:port`.
struct Broker {
    port: u16,
    dir: TempDir,
    child: Option<Reaped>,
    // Mosquitto logs every connection; its reader thread drains the pipe
    // for as long as this lives, so the broker never blocks on a full one.
    _log: Lines,
}

impl Broker {
    /// Starts it and returns once it listens.
    fn start(port: u16) -> Broker {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n\
                 user root\nlog_dest stderr\n"
            ),
        )
        .unwrap();
        let mut child = Command::new(mosquitto())
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("mosquitto starts (apt-get install -y mosquitto)");
        let mut log = Lines::new("mosquitto", child.stderr.take().unwrap());
        let child = Reaped(child);
        // It logs "Opening" before it binds, and "running" once every
        // listener is bound; a port taken meanwhile ends it with an error.
        let deadline = Instant::now() + WAIT;
        let mut opened = false;
        loop {
            let line = log.next(deadline);
            opened |= line.contains(&format!("Opening ipv4 listen socket on port {port}."));
            if line.contains("Error") {
                panic!("mosquitto on port {port}: {line}");
            }
            if opened && line.ends_with(" running") {
                break;
            }
        }
        Broker {
            port,
            dir,
            child: Some(child),
            _log: log,
        }
    }

    /// `parkgate alerts` flags for this broker, then `more`.
    fn args(&self, more: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = ["alerts", "--host", "127.0.0.1", "--port"]
            .map(String::from)
            .into();
        args.push(self.port.to_string());
        args.extend(more.iter().map(|s| s.to_string()));
        args
    }

    /// Kills it, as a crash or a restart would.
    fn stop(&mut self) {
        drop(self.child.take());
    }
}

fn mosquitto() -> PathBuf {
    // Debian puts it in /usr/sbin, often not on a user's PATH.
    let sbin = PathBuf::from("/usr/sbin/mosquitto");
    if sbin.exists() {
        sbin
    } else {
        PathBuf::from("mosquitto")
    }
}

/// A running `parkgate alerts`.
struct Alerts {
    child: Reaped,
    stdout: Lines,
    stderr: Lines,
}

impl Alerts {
    fn start(args: &[String]) -> Alerts {
        let mut child = Command::new(env!("CARGO_BIN_EXE_parkgate"))
            .args(args)
            .env_remove("PARKGATE_CONFIG")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the parkgate binary runs");
        let stdout = Lines::new("parkgate alerts stdout", child.stdout.take().unwrap());
        let stderr = Lines::new("parkgate alerts stderr", child.stderr.take().unwrap());
        Alerts {
            child: Reaped(child),
            stdout,
            stderr,
        }
    }

    /// Sends SIGTERM, as systemd or `kill` would; returns the exit status
    /// and whatever was still printed on stdout.
    fn terminate(&mut self) -> (ExitStatus, Vec<String>) {
        let pid = self.child.0.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success(), "kill -TERM {pid}");
        // Its stdout closes when it exits; the wait below is then immediate.
        let rest = self.stdout.rest();
        (self.child.0.wait().unwrap(), rest)
    }
}

/// Publishes `messages` in order at QoS 1, as one gate's link does, and
/// returns once the broker acknowledged them all.
fn publish(port: u16, messages: &[(String, Vec<u8>)]) {
    // A broker drops the older of two connections with one client id.
    static PUBLISHERS: AtomicU32 = AtomicU32::new(0);
    let n = PUBLISHERS.fetch_add(1, Ordering::Relaxed);
    let id = format!("test-gate-{}-{n}", std::process::id());
    let (client, mut connection) = Client::new(MqttOptions::new(id, "127.0.0.1", port), 64);
    for (topic, payload) in messages {
        client
            .publish(topic.as_str(), QoS::AtLeastOnce, false, payload.clone())
            .unwrap();
    }
    let deadline = Instant::now() + WAIT;
    let mut acked = 0;
    while acked < messages.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        match connection.recv_timeout(left) {
            Ok(Ok(Event::Incoming(Packet::PubAck(_)))) => acked += 1,
            Ok(Ok(_)) => {}
            Ok(Err(e)) => panic!("publishing to 127.0.0.1:{port}: {e}"),
            Err(e) => panic!(
                "{acked} of {} publishes acknowledged: {e:?}",
                messages.len()
            ),
        }
    }
    client.disconnect().unwrap();
}
