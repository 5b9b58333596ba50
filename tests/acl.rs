//! The shipped broker ACL (`config/mosquitto/acl`) enforces the contract's
//! "who publishes what", checked against a real Mosquitto.
//!
//! Mosquitto acknowledges a denied publish and drops it, and delivers to a
//! subscriber only what it may read; so every check here is "exactly these
//! messages arrive, in this order". One client's publishes reach a
//! subscriber in the order sent, and each list ends with a message that must
//! arrive: once it has, anything denied before it would have arrived too.

mod common;

use common::WAIT;
use common::broker::{Broker, password_file};
use common::hq::Hq;
use common::pki::{CertFiles, Pki};
use std::path::Path;
use tempfile::TempDir;

const ACL: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config/mosquitto/acl");
const CONF: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/config/mosquitto/mosquitto.conf"
);

const GATE: &str = "b1-main-entry-1";
const ROOT: &str = "parkgate/v1/b1/main/gates/entry-1";
const SIBLING: &str = "parkgate/v1/b1/main/gates/exit-1";
const LOT: &str = "parkgate/v1/b1/main";
const OTHER_LOT: &str = "parkgate/v1/b1/visitor";

fn password(user: &str) -> String {
    format!("{user}-password")
}

/// Mosquitto with the shipped ACL and a password per user (the test's
/// stand-in for client certificates: the ACL sees the same user names).
async fn broker() -> (Broker, TempDir) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let passwd = dir.path().join("passwd");
    let users = ["hq", "security", GATE, "b1-visitor-entry-1"];
    let passwords: Vec<String> = users.iter().map(|u| password(u)).collect();
    let entries: Vec<(&str, &str)> = users
        .iter()
        .zip(&passwords)
        .map(|(u, p)| (*u, p.as_str()))
        .collect();
    password_file(&passwd, &entries);
    let broker = Broker::builder()
        .password_file(&passwd)
        .acl_file(ACL)
        .start()
        .await;
    (broker, dir)
}

async fn login(broker: &Broker, user: &str, topics: &[&str]) -> Hq {
    let mut builder = Hq::builder(broker.port()).login(user, password(user));
    for topic in topics {
        builder = builder.subscribe(*topic);
    }
    builder.connect().await
}

/// Publishes on each topic in turn; `receiver` must get exactly those
/// marked allowed, in order. The last must be allowed (the marker).
async fn check(publisher: &Hq, receiver: &mut Hq, cases: &[(String, bool)]) {
    let (last, allowed) = cases.last().expect("cases");
    assert!(
        *allowed,
        "the last case ({last}) is the marker and must be allowed"
    );
    for (i, (topic, _)) in cases.iter().enumerate() {
        publisher
            .publish(topic, format!(r#"{{"v":1,"case":{i}}}"#), true, false)
            .await;
    }
    for (topic, _) in cases.iter().filter(|(_, allowed)| *allowed) {
        let msg = receiver.next(WAIT).await;
        assert_eq!(
            &msg.topic, topic,
            "received (left) instead of the next allowed message (right); cases: {cases:#?}"
        );
    }
    assert_eq!(
        receiver.try_next(),
        None,
        "more than the allowed; cases: {cases:#?}"
    );
}

fn cases(list: &[(&str, bool)]) -> Vec<(String, bool)> {
    list.iter().map(|(t, a)| (t.to_string(), *a)).collect()
}

#[tokio::test]
async fn a_gate_publishes_only_its_own_gate_to_hq_topics() {
    let (broker, _dir) = broker().await;
    let mut hq = login(&broker, "hq", &["parkgate/v1/#"]).await;
    let gate = login(&broker, GATE, &[]).await;
    let cases = cases(&[
        // HQ's topics: never from a gate, not even its own.
        (&format!("{LOT}/replica/changes"), false),
        (&format!("{ROOT}/commands"), false),
        (&format!("{ROOT}/replay"), false),
        (&format!("{ROOT}/replica/snapshot"), false),
        // Another gate's, another lot's.
        (&format!("{SIBLING}/events/check_in"), false),
        (&format!("{SIBLING}/status"), false),
        (&format!("{OTHER_LOT}/gates/entry-1/events/check_in"), false),
        ("parkgate/v1/elsewhere", false),
        // Its own gate -> HQ topics.
        (&format!("{ROOT}/events/check_out"), true),
        (&format!("{ROOT}/events/alert"), true),
        (&format!("{ROOT}/status"), true),
        (&format!("{ROOT}/occupancy"), true),
        (&format!("{ROOT}/replica/request"), true),
        (&format!("{ROOT}/commands/ack"), true),
        (&format!("{ROOT}/events/check_in"), true),
    ]);
    check(&gate, &mut hq, &cases).await;
}

#[tokio::test]
async fn a_gate_reads_only_what_is_meant_for_it_and_its_lot() {
    let (broker, _dir) = broker().await;
    let hq = login(&broker, "hq", &[]).await;
    // Subscribed to everything: the ACL decides what it gets.
    let mut gate = login(&broker, GATE, &["parkgate/v1/#"]).await;
    let cases = cases(&[
        (&format!("{OTHER_LOT}/replica/changes"), false),
        (&format!("{LOT}/replica/changes"), true),
        (&format!("{SIBLING}/commands"), false),
        (&format!("{ROOT}/commands"), true),
        (&format!("{SIBLING}/replay"), false),
        (&format!("{ROOT}/replay"), true),
        (&format!("{SIBLING}/replica/snapshot"), false),
        (&format!("{ROOT}/replica/snapshot"), true),
        // Siblings' (and its own) passages and counters, not the rest.
        (&format!("{SIBLING}/events/check_in"), true),
        (&format!("{SIBLING}/events/check_out"), true),
        (&format!("{SIBLING}/events/void"), true),
        (&format!("{SIBLING}/occupancy"), true),
        (&format!("{SIBLING}/events/alert"), false),
        (&format!("{SIBLING}/events/denied"), false),
        (&format!("{SIBLING}/status"), false),
        (&format!("{SIBLING}/commands/ack"), false),
        (&format!("{SIBLING}/replica/request"), false),
        (&format!("{OTHER_LOT}/gates/entry-1/events/check_in"), false),
        (&format!("{OTHER_LOT}/gates/entry-1/occupancy"), false),
        (&format!("{ROOT}/events/check_in"), true),
    ]);
    check(&hq, &mut gate, &cases).await;
}

#[tokio::test]
async fn security_reads_alerts_and_denials_only() {
    let (broker, _dir) = broker().await;
    let hq = login(&broker, "hq", &[]).await;
    let mut security = login(&broker, "security", &["parkgate/v1/#"]).await;
    let cases = cases(&[
        (&format!("{ROOT}/events/check_in"), false),
        (&format!("{ROOT}/events/alert"), true),
        (&format!("{ROOT}/status"), false),
        (&format!("{OTHER_LOT}/gates/entry-1/events/denied"), true),
        (&format!("{LOT}/replica/changes"), false),
        (&format!("{SIBLING}/commands"), false),
        (&format!("{SIBLING}/events/alert"), true),
    ]);
    check(&hq, &mut security, &cases).await;
}

#[tokio::test]
async fn a_wrong_password_is_refused() {
    let (broker, _dir) = broker().await;
    let refused = Hq::builder(broker.port())
        .login(GATE, "not its password")
        .try_connect()
        .await;
    let error = refused.err().expect("a wrong password was let in");
    assert!(error.contains("NotAuthorized"), "{error}");
    let anonymous = Hq::builder(broker.port()).try_connect().await;
    let error = anonymous.err().expect("an anonymous client was let in");
    assert!(error.contains("NotAuthorized"), "{error}");
}

/// `config/mosquitto/mosquitto.conf` with its paths pointed into `dir` and
/// its listener on loopback `port`; the rest as shipped.
fn shipped_conf(dir: &Path, ca: &Path, server: &CertFiles, port: u16) -> String {
    let replace = [
        ("listener ", format!("listener {port} 127.0.0.1")),
        ("acl_file ", format!("acl_file {ACL}")),
        (
            "persistence_location ",
            format!("persistence_location {}/", dir.display()),
        ),
        ("log_dest ", "log_dest stderr".into()),
        ("cafile ", format!("cafile {}", ca.display())),
        ("certfile ", format!("certfile {}", server.cert.display())),
        ("keyfile ", format!("keyfile {}", server.key.display())),
    ];
    let mut seen = [0; 7];
    let mut text = String::from("user root\n");
    for line in std::fs::read_to_string(CONF)
        .expect("shipped mosquitto.conf")
        .lines()
    {
        match replace.iter().position(|(key, _)| line.starts_with(key)) {
            Some(i) => {
                seen[i] += 1;
                text += &replace[i].1;
            }
            None => text += line,
        }
        text.push('\n');
    }
    for ((key, _), n) in replace.iter().zip(seen) {
        assert_eq!(n, 1, "mosquitto.conf should have one `{key}` line");
    }
    text
}

#[tokio::test]
async fn the_shipped_config_runs_with_certificates_as_identities() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let pki = Pki::new(dir.path());
    let (path, ca, server) = (dir.path().to_path_buf(), pki.ca.clone(), pki.server.clone());
    let broker = Broker::builder()
        .custom(move |port| shipped_conf(&path, &ca, &server, port))
        .start()
        .await;
    let hq_cert = pki.client("hq");
    let gate_cert = pki.client(GATE);
    let mut hq = Hq::builder(broker.port())
        .tls(&pki.ca, Some(&hq_cert))
        .subscribe("parkgate/v1/#")
        .connect()
        .await;
    // The user name the gate sends is ignored: its certificate says who it is.
    let gate = Hq::builder(broker.port())
        .tls(&pki.ca, Some(&gate_cert))
        .login("hq", "whatever")
        .connect()
        .await;
    let cases = cases(&[
        (&format!("{SIBLING}/events/check_in"), false),
        (&format!("{LOT}/replica/changes"), false),
        (&format!("{ROOT}/status"), true),
    ]);
    check(&gate, &mut hq, &cases).await;
    let anonymous = Hq::builder(broker.port())
        .tls(&pki.ca, None)
        .try_connect()
        .await;
    let error = anonymous
        .err()
        .expect("a client without a certificate was let in");
    assert!(error.contains("CertificateRequired"), "{error}");
}
