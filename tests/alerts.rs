//! `parkgate alerts` against a real broker: each test starts its own
//! Mosquitto ([`common::broker`]), runs the real binary, has HQ
//! ([`common::hq`]) publish events as gates' links would relay them, and
//! reads what the desk sees.
//!
//! Nothing sleeps to wait: the broker is up once its log says it listens,
//! the subscription once `parkgate alerts` says `following ...` on stderr
//! (after the broker's SUBACK), and a publish is in once the broker
//! acknowledged it (PUBACK). Every wait has a deadline that fails the test.
//! A message that must NOT be printed is published before one that must:
//! the broker delivers one publisher's messages in order, so once the later
//! line is out, the earlier message was handled.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Stdio};

use common::broker::{Broker, BrokerTls};
use common::hq::Hq;
use common::pki::Pki;
use common::{WAIT, binary, cli, reap, sigterm};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// The broker ACL as shipped to HQ.
const ACL: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config/mosquitto/acl");

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

fn following_line(site_lot: &str, broker: &str) -> String {
    format!(
        "following parkgate/v1/{site_lot}/gates/+/events/alert, \
         parkgate/v1/{site_lot}/gates/+/events/denied on {broker}"
    )
}

/// How `parkgate alerts` names a plain-TCP broker on loopback `port`.
fn plain_url(port: u16) -> String {
    format!("mqtt://127.0.0.1:{port}")
}

/// A plain broker anyone may use, HQ's client on it (publishing only), and
/// `parkgate alerts` pointed at it with `flags`, following `site_lot`. Hold
/// on to the broker: dropping it kills Mosquitto.
async fn on_plain_broker(flags: &[&str], site_lot: &str) -> (Broker, Hq, Alerts) {
    let broker = Broker::start().await;
    let port = broker.port();
    let hq = Hq::builder(port).connect().await;
    let port_flag = port.to_string();
    let args: Vec<String> = ["alerts", "--host", "127.0.0.1", "--port", &port_flag]
        .iter()
        .chain(flags)
        .map(|s| s.to_string())
        .collect();
    let alerts = Alerts::following(&args, site_lot, &plain_url(port)).await;
    (broker, hq, alerts)
}

/// Publishes `messages` in order at QoS 1 from one client, as the events of
/// gates reach the broker, each acknowledged before the next goes.
async fn publish(hq: &Hq, messages: &[(String, Vec<u8>)]) {
    for (topic, payload) in messages {
        hq.publish(topic, payload.clone(), true, false).await;
    }
}

// ------------------------------------------------------------ the tests

#[tokio::test(flavor = "multi_thread")]
async fn a_lots_alerts_and_denials_show_once_each_and_junk_is_named() {
    let (_broker, hq, mut alerts) =
        on_plain_broker(&["--site", "b1", "--lot", "main"], "b1/main").await;

    publish(&hq, &morning()).await;

    assert_eq!(
        alerts.stdout.take(2).await,
        [TAILGATING_LINE, REVOKED_LINE],
        "one line per alert or denial of b1/main, the repeated alert once"
    );
    alerts
        .stderr
        .wait_for(&format!(
            "bad message on {}: malformed payload: EOF while parsing a value at line 1 column 20",
            topic(ENTRY, "alert")
        ))
        .await;
    alerts.stop_with_nothing_more().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn json_lines_are_the_payloads_as_received() {
    let (_broker, hq, mut alerts) =
        on_plain_broker(&["--site", "b1", "--lot", "main", "--json"], "b1/main").await;

    publish(&hq, &morning()).await;

    let text = |(_, payload): (String, Vec<u8>)| String::from_utf8(payload).unwrap();
    assert_eq!(
        alerts.stdout.take(2).await,
        [text(tailgating()), text(revoked())]
    );
    alerts
        .stderr
        .wait_for_prefix(&format!("bad message on {}: ", topic(ENTRY, "alert")))
        .await;
    alerts.stop_with_nothing_more().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_site_scope_follows_every_lot_of_the_site_and_no_other_site() {
    let (_broker, hq, mut alerts) = on_plain_broker(&["--site", "b1"], "b1/+").await;

    publish(&hq, &[tailgating(), other_site_fault(), annex_fault()]).await;

    assert_eq!(alerts.stdout.take(2).await, [TAILGATING_LINE, ANNEX_LINE]);
    alerts.stop_with_nothing_more().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gates_config_file_names_the_broker_and_the_lot() {
    let broker = Broker::start().await;
    let port = broker.port();
    let hq = Hq::builder(port).connect().await;
    let file = broker.dir().join("gate.toml");
    std::fs::write(
        &file,
        format!(
            "[gate]\nsite = \"b1\"\nlot = \"main\"\ngate = \"entry-1\"\nrole = \"entry\"\n\
             timezone = \"Asia/Ho_Chi_Minh\"\n\n[capacity]\nstandard = 20\n\n\
             [mqtt]\nenabled = true\nhost = \"127.0.0.1\"\nport = {port}\n"
        ),
    )
    .unwrap();
    let args = ["alerts".into(), "--config".into(), path_arg(&file)];
    let mut alerts = Alerts::following(&args, "b1/main", &plain_url(port)).await;

    publish(&hq, &[annex_fault(), revoked()]).await;

    assert_eq!(alerts.stdout.take(1).await, [REVOKED_LINE]);
    alerts.stop_with_nothing_more().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn it_follows_again_after_the_broker_restarts() {
    let (mut broker, hq, mut alerts) =
        on_plain_broker(&["--site", "b1", "--lot", "main"], "b1/main").await;
    let port = broker.port();
    publish(&hq, &[tailgating()]).await;
    assert_eq!(alerts.stdout.take(1).await, [TAILGATING_LINE]);

    // A crash: no session or subscription survives it.
    broker.kill();
    alerts
        .stderr
        .wait_for_prefix(&format!("lost {}: ", plain_url(port)))
        .await;
    broker.restart().await;
    alerts
        .stderr
        .wait_for(&following_line("b1/main", &plain_url(port)))
        .await;
    // HQ's client reconnects on its own; its second CONNACK means the
    // publishes below go to the new broker.
    hq.wait_subscribed(2).await;

    // The new broker's subscription is a fresh one: the alert again (a
    // replay) stays hidden, the denial shows.
    publish(&hq, &[tailgating(), revoked()]).await;
    assert_eq!(alerts.stdout.take(1).await, [REVOKED_LINE]);
    alerts.stop_with_nothing_more().await;
}

/// The production set-up of `config/mosquitto`: mutual TLS, the certificate's
/// common name as the user, the shipped ACL. Under it Mosquitto grants any
/// subscription and then silently delivers only what the user may read, so
/// `following` alone proves nothing: the lines must come.
#[tokio::test(flavor = "multi_thread")]
async fn the_desk_follows_with_the_security_certificate_through_the_shipped_acl() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let pki = Pki::new(dir.path());
    let broker = Broker::builder()
        .tls(BrokerTls::mutual(&pki))
        .acl_file(ACL)
        .allow_anonymous(false)
        .start()
        .await;
    let port = broker.port();
    let hq_cert = pki.client("hq");
    let hq = Hq::builder(port)
        .tls(&pki.ca, Some(&hq_cert))
        .connect()
        .await;
    let desk = pki.client("security");
    let mut args: Vec<String> = ["alerts", "--tls", "--site", "b1", "--lot", "main"]
        .map(String::from)
        .into();
    args.extend([
        "--ca-file".into(),
        path_arg(&pki.ca),
        "--client-cert".into(),
        path_arg(&desk.cert),
        "--client-key".into(),
        path_arg(&desk.key),
        // The name in the broker's certificate, which the desk checks.
        "--host".into(),
        "localhost".into(),
        "--port".into(),
        port.to_string(),
    ]);
    let broker_url = format!("mqtts://localhost:{port}");
    let mut alerts = Alerts::following(&args, "b1/main", &broker_url).await;

    // The check-in first: neither subscribed to nor readable by `security`,
    // and handled once the later lines are out.
    publish(&hq, &[check_in(), tailgating(), revoked()]).await;

    assert_eq!(
        alerts.stdout.take(2).await,
        [TAILGATING_LINE, REVOKED_LINE],
        "HQ's alert and denial reach the desk, its check-in does not"
    );
    alerts.stop_with_nothing_more().await;
    // The user the ACL matched came from the desk's certificate: it sent
    // no user name of its own.
    let log = broker.log();
    assert!(
        log.lines()
            .any(|l| l.contains(" as parkgate-alerts-") && l.contains(" u'security').")),
        "the desk connected as user security:\n{log}"
    );
}

#[test]
fn without_a_config_file_or_a_host_it_says_what_to_give() {
    assert!(
        !Path::new("/etc/parkgate/gate.toml").exists(),
        "this test needs a machine without /etc/parkgate/gate.toml (the default config)"
    );
    let out = cli(&["alerts", "--site", "b1"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.trim_end(),
        "parkgate: no broker to follow: no config file at /etc/parkgate/gate.toml and no --host; \
         give --config FILE (a gate's config) or --host HOST"
    );
}

// ------------------------------------------------------------ the desk

fn path_arg(path: &Path) -> String {
    path.to_str().expect("a UTF-8 temp path").to_string()
}

/// The lines a child writes on one of its pipes, as they come.
struct Lines {
    what: &'static str,
    rx: mpsc::UnboundedReceiver<String>,
    /// Lines already read while waiting for another one.
    seen: Vec<String>,
}

impl Lines {
    fn new(what: &'static str, pipe: impl Read + Send + 'static) -> Lines {
        let (tx, rx) = mpsc::unbounded_channel();
        // A plain thread: the pipe blocks. It ends at EOF, when the child
        // exits, or at the next line once the test is gone.
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

    /// The next line, failing the test if none comes by `deadline`.
    async fn next(&mut self, deadline: Instant) -> String {
        match tokio::time::timeout_at(deadline, self.rx.recv()).await {
            Ok(Some(line)) => {
                self.seen.push(line.clone());
                line
            }
            Ok(None) => panic!("{}: closed; it said:\n{}", self.what, self.seen.join("\n")),
            Err(_) => panic!(
                "{}: no line in {WAIT:?}; so far:\n{}",
                self.what,
                self.seen.join("\n")
            ),
        }
    }

    /// The next `n` lines.
    async fn take(&mut self, n: usize) -> Vec<String> {
        let deadline = Instant::now() + WAIT;
        let mut lines = Vec::with_capacity(n);
        for _ in 0..n {
            lines.push(self.next(deadline).await);
        }
        lines
    }

    /// Reads until a line is `want`.
    async fn wait_for(&mut self, want: &str) {
        let deadline = Instant::now() + WAIT;
        while self.next(deadline).await != want {}
    }

    /// Reads until a line starts with `prefix`.
    async fn wait_for_prefix(&mut self, prefix: &str) {
        let deadline = Instant::now() + WAIT;
        while !self.next(deadline).await.starts_with(prefix) {}
    }

    /// Every line until the pipe closes (the child exited).
    async fn rest(&mut self) -> Vec<String> {
        let deadline = Instant::now() + WAIT;
        let mut rest = Vec::new();
        loop {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(line)) => rest.push(line),
                Ok(None) => return rest,
                Err(_) => panic!("{}: still open after {WAIT:?}", self.what),
            }
        }
    }
}

/// A running `parkgate alerts`, killed if the test ends without
/// [`Alerts::stop_with_nothing_more`].
struct Alerts {
    child: Option<Child>,
    stdout: Lines,
    stderr: Lines,
}

impl Alerts {
    /// Starts `parkgate alerts` with `args`; returns once it says it follows
    /// `site_lot` (`b1/main`, `b1/+`) on `broker`, i.e. the broker's SUBACK
    /// is in and whatever is published from now on reaches it.
    async fn following(args: &[String], site_lot: &str, broker: &str) -> Alerts {
        let mut child = binary()
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
        let mut alerts = Alerts {
            child: Some(child),
            stdout,
            stderr,
        };
        alerts
            .stderr
            .wait_for(&following_line(site_lot, broker))
            .await;
        alerts
    }

    /// Sends SIGTERM, as systemd or `kill` would: it must exit with 0,
    /// printing nothing more on stdout (every line expected was taken).
    async fn stop_with_nothing_more(mut self) {
        let child = self.child.take().expect("parkgate alerts is running");
        // Its stdout is drained meanwhile (the reader thread), so it cannot
        // block on a full pipe; the pipe closes as it exits.
        let status = sigterm(child)
            .await
            .unwrap_or_else(|| panic!("parkgate alerts ignored SIGTERM for {WAIT:?}"));
        let rest = self.stdout.rest().await;
        assert!(status.success(), "SIGTERM ends it with 0, got {status}");
        assert_eq!(
            rest,
            Vec::<String>::new(),
            "nothing after the last line expected"
        );
    }
}

impl Drop for Alerts {
    fn drop(&mut self) {
        reap(self.child.take());
    }
}
