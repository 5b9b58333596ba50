//! Signed HQ commands over a real broker: carried out and acked, or
//! rejected (forged, expired, replayed, for another gate) with one
//! `command_rejected` alert and no effect, also after a restart.

mod common;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::broker::Broker;
use common::hq::Hq;
use common::{Gate, START, WAIT};
use ed25519_dalek::{Signer, SigningKey};
use parkgate_hal::BarrierCommand;
use serde_json::{Value, json};

const ROOT: &str = "parkgate/v1/b1/main/gates/entry-1";

fn hq_key() -> SigningKey {
    SigningKey::from_bytes(&[7u8; 32])
}

/// The gate's config: the broker, and HQ's public key.
fn config(port: u16) -> String {
    let public = STANDARD.encode(hq_key().verifying_key().as_bytes());
    format!("true\nhost = \"127.0.0.1\"\nport = {port}\nhq_public_key = \"{public}\"")
}

/// A command envelope signed by `key`.
fn signed(key: &SigningKey, id: &str, gate: &str, cmd: &str, expires_at: &str) -> String {
    let body = json!({"v": 1, "command_id": id, "gate": gate, "cmd": cmd,
        "issued_at": START, "expires_at": expires_at})
    .to_string();
    let sig = key.sign(body.as_bytes());
    json!({"body": STANDARD.encode(&body), "sig": STANDARD.encode(sig.to_bytes())}).to_string()
}

const LATER: &str = "2026-11-23T09:00:00+07:00";

/// HQ, and a gate that has subscribed (its first status says so).
async fn start(port: u16) -> (Hq, Gate) {
    let mut hq = Hq::builder(port)
        .subscribe(format!("{ROOT}/commands/ack"))
        .subscribe(format!("{ROOT}/status"))
        .subscribe(format!("{ROOT}/replica/request"))
        .connect()
        .await;
    let gate = Gate::start(&[("enabled", &config(port))]).await;
    online(&mut hq).await;
    (hq, gate)
}

async fn online(hq: &mut Hq) {
    loop {
        let msg = hq.next(WAIT).await;
        if msg.topic.ends_with("/status") && msg.json()["state"] == "online" {
            return;
        }
    }
}

/// The next message on `leaf` (other topics skipped).
async fn next_on(hq: &mut Hq, leaf: &str) -> Value {
    loop {
        let msg = hq.next(WAIT).await;
        if msg.topic.ends_with(leaf) {
            return msg.json();
        }
    }
}

async fn send(hq: &Hq, envelope: String) {
    hq.publish(&format!("{ROOT}/commands"), envelope, true, false)
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn commands_are_carried_out_and_acked() {
    let broker = Broker::start().await;
    let (mut hq, mut gate) = start(broker.port()).await;
    let key = hq_key();

    send(&hq, signed(&key, "c-1", "entry-1", "lockdown", LATER)).await;
    let ack = next_on(&mut hq, "/commands/ack").await;
    assert_eq!(ack["command_id"], "c-1");
    assert_eq!(ack["result"], "done");
    assert_eq!(ack["reason"], Value::Null);
    assert!(
        gate.status().await.lockdown,
        "HQ's lockdown is the gate's lockdown"
    );

    send(&hq, signed(&key, "c-2", "entry-1", "unlock", LATER)).await;
    assert_eq!(next_on(&mut hq, "/commands/ack").await["result"], "done");
    assert!(!gate.status().await.lockdown);

    send(&hq, signed(&key, "c-3", "entry-1", "open", LATER)).await;
    assert_eq!(next_on(&mut hq, "/commands/ack").await["result"], "done");
    gate.expect_barrier(BarrierCommand::Up).await;

    send(&hq, signed(&key, "c-4", "entry-1", "resync", LATER)).await;
    let request = next_on(&mut hq, "/replica/request").await;
    assert_eq!(request, json!({"v": 1, "have_seq": 1, "want": "snapshot"}));
    assert_eq!(next_on(&mut hq, "/commands/ack").await["result"], "done");
    assert!(gate.alerts("command_rejected").is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn forged_expired_replayed_and_misaddressed_commands_change_nothing() {
    let broker = Broker::start().await;
    let (mut hq, mut gate) = start(broker.port()).await;
    let key = hq_key();
    let forger = SigningKey::from_bytes(&[8u8; 32]);

    // Forged: no ack (its id cannot be trusted), one alert, no lockdown;
    // a flood of forgeries and junk is one alert a minute.
    send(&hq, signed(&forger, "f-1", "entry-1", "lockdown", LATER)).await;
    for i in 2..10 {
        send(
            &hq,
            signed(&forger, &format!("f-{i}"), "entry-1", "open", LATER),
        )
        .await;
        send(&hq, "junk".to_string()).await;
    }
    // Expired, and for another gate: acked as rejected, with the reason.
    send(
        &hq,
        signed(
            &key,
            "x-1",
            "entry-1",
            "lockdown",
            "2026-11-23T07:00:00+07:00",
        ),
    )
    .await;
    let ack = next_on(&mut hq, "/commands/ack").await;
    assert_eq!(
        (ack["command_id"].as_str(), ack["result"].as_str()),
        (Some("x-1"), Some("rejected"))
    );
    assert_eq!(ack["reason"], "expired");
    send(&hq, signed(&key, "w-1", "exit-1", "lockdown", LATER)).await;
    let ack = next_on(&mut hq, "/commands/ack").await;
    assert_eq!(
        (ack["command_id"].as_str(), ack["reason"].as_str()),
        (Some("w-1"), Some("wrong_gate"))
    );
    // A good one, then the same again: replayed.
    send(&hq, signed(&key, "c-1", "entry-1", "open", LATER)).await;
    assert_eq!(next_on(&mut hq, "/commands/ack").await["result"], "done");
    gate.expect_barrier(BarrierCommand::Up).await;
    let replay = signed(&key, "c-1", "entry-1", "lockdown", LATER);
    send(&hq, replay.clone()).await;
    let ack = next_on(&mut hq, "/commands/ack").await;
    assert_eq!(
        (ack["command_id"].as_str(), ack["reason"].as_str()),
        (Some("c-1"), Some("replayed"))
    );
    let status = gate.status().await;
    assert!(!status.lockdown, "no rejected command had an effect");
    assert_eq!(
        gate.alerts("command_rejected").len(),
        4,
        "forged, expired, wrong gate, replayed"
    );

    // The ids seen survive a restart: the replay is still refused.
    gate.terminate().await;
    let gate = gate.restart(START).await;
    online(&mut hq).await;
    send(&hq, replay).await;
    let ack = next_on(&mut hq, "/commands/ack").await;
    assert_eq!(ack["reason"], "replayed");
    assert!(!gate.status().await.lockdown);
    assert_eq!(gate.alerts("command_rejected").len(), 5);
}
