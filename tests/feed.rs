//! HQ to the gate over a real broker: replica change batches (in order, a
//! gap asked for, duplicates and malformed batches), siblings' passages,
//! and junk on every subscribed topic.

mod common;

use common::broker::Broker;
use common::hq::Hq;
use common::{Gate, WAIT, long_wait};
use parkgate_hal::{BarrierCommand, Sensor, SensorState};
use serde_json::{Value, json};

const LOT: &str = "parkgate/v1/b1/main";
const ROOT: &str = "parkgate/v1/b1/main/gates/entry-1";

fn mqtt(port: u16) -> String {
    format!("true\nhost = \"127.0.0.1\"\nport = {port}")
}

/// A batch that gives Erin (card 04E0E0E0E0E0E0) a standard car and a
/// monthly plan for the lot.
fn erin(seq: u64) -> Value {
    json!({"v": 1, "seq": seq, "at": "2026-11-23T07:00:00+07:00", "ops": [
        {"op": "upsert", "kind": "user", "data": {"user_id": "u-erin", "name": "Erin Vo", "company": "acme", "status": "active"}},
        {"op": "upsert", "kind": "card", "data": {"card": "04E0E0E0E0E0E0", "user_id": "u-erin", "status": "active", "valid_from": "2026-01-01T00:00:00+07:00", "valid_until": "2027-01-01T00:00:00+07:00"}},
        {"op": "upsert", "kind": "vehicle", "data": {"vehicle_id": "v-erin", "user_id": "u-erin", "plate": "51F-999.99", "class": "standard", "ada": false, "ev": false, "primary": true}},
        {"op": "upsert", "kind": "plan", "data": {"user_id": "u-erin", "kind": "monthly", "lots": ["main"], "valid_until": "2027-01-01T00:00:00+07:00", "status": "paid"}}
    ]})
}

/// An empty batch: moves the replica's seq only.
fn empty(seq: u64) -> Value {
    json!({"v": 1, "seq": seq, "at": "2026-11-23T07:00:00+07:00", "ops": []})
}

/// HQ, after the gate subscribed (its first status is the sign: the
/// gate subscribes on CONNACK, before it publishes anything).
async fn connected(port: u16) -> (Hq, Gate) {
    connected_with(port, "").await
}

/// [`connected`], with `extra` lines in the gate's `[mqtt]`.
async fn connected_with(port: u16, extra: &str) -> (Hq, Gate) {
    let mut hq = Hq::builder(port)
        .subscribe(format!("{ROOT}/status"))
        .subscribe(format!("{ROOT}/replica/request"))
        .connect()
        .await;
    let gate = Gate::start(&[("enabled", &format!("{}{extra}", mqtt(port)))]).await;
    loop {
        let msg = hq.next(WAIT).await;
        if msg.topic.ends_with("/status") && msg.json()["state"] == "online" {
            break;
        }
    }
    (hq, gate)
}

async fn publish(hq: &Hq, topic: &str, payload: impl ToString) {
    hq.publish(topic, payload.to_string(), true, false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn batches_apply_in_order_and_a_gap_is_asked_for() {
    let broker = Broker::start().await;
    let (mut hq, mut gate) = connected(broker.port()).await;
    let changes = format!("{LOT}/replica/changes");
    // The demo replica is at seq 1: seq 3 is a gap.
    publish(&hq, &changes, erin(3)).await;
    let request = loop {
        let msg = hq.next(WAIT).await;
        if msg.topic.ends_with("/replica/request") {
            break msg.json();
        }
    };
    assert_eq!(request, json!({"v": 1, "have_seq": 1, "want": "changes"}));
    assert_eq!(
        gate.status().await.replica_seq,
        1,
        "nothing applied on a gap"
    );
    // HQ answers with the missing batches, then the one that was early.
    publish(&hq, &changes, empty(2)).await;
    publish(&hq, &changes, erin(3)).await;
    gate.wait_status(WAIT, "applied seq 3", |s| s.replica_seq == 3)
        .await;
    // A duplicate changes nothing and is not an error.
    publish(&hq, &changes, empty(2)).await;
    // A malformed batch (a vehicle class the contract has not) is refused
    // whole: its first op (a plan for Erin revoking this lot) is not applied.
    let bad = json!({"v": 1, "seq": 4, "at": "2026-11-23T07:00:00+07:00", "ops": [
        {"op": "upsert", "kind": "plan", "data": {"user_id": "u-erin", "kind": "monthly", "lots": ["other"], "valid_until": "2027-01-01T00:00:00+07:00", "status": "paid"}},
        {"op": "upsert", "kind": "vehicle", "data": {"vehicle_id": "v-x", "user_id": "u-erin", "plate": null, "class": "tank", "ada": false, "ev": false, "primary": false}}
    ]});
    publish(&hq, &changes, bad).await;
    publish(&hq, &changes, empty(4)).await;
    gate.wait_status(WAIT, "applied seq 4", |s| s.replica_seq == 4)
        .await;
    let alerts = gate.alerts("bad_message");
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert!(
        alerts[0]["message"]
            .as_str()
            .unwrap()
            .contains("replica/changes"),
        "{}",
        alerts[0]
    );
    // Erin, from the applied batch, is let in: her plan still names the lot.
    gate.sensor(Sensor::Arming, SensorState::Occupied).await;
    gate.tap("04E0E0E0E0E0E0").await;
    gate.expect_barrier(BarrierCommand::Up).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_siblings_check_in_puts_the_car_inside_once() {
    let broker = Broker::start().await;
    let (hq, gate) = connected(broker.port()).await;
    let check_in = json!({
        "v": 1, "event_id": "01JSIBLING0000000000000001", "gate_seq": 7,
        "site": "b1", "lot": "main", "gate": "entry-2",
        "at": "2026-11-23T07:50:00+07:00", "clock": "synced", "type": "check_in",
        "card": "04B0B0B0B0B0B0", "user_id": "u-bob", "user_name": "Bob Nguyen",
        "vehicle_id": "v-bob", "vehicle_class": "compact", "reservation_id": null,
        "spot_id": null, "plan": "daily", "walk_in": true
    });
    let topic = format!("{LOT}/gates/entry-2/events/check_in");
    publish(&hq, &topic, &check_in).await;
    publish(&hq, &topic, &check_in).await; // redelivered: applied once
    let status = gate
        .wait_status(WAIT, "saw Bob inside", |s| !s.occupancy.is_empty())
        .await;
    assert_eq!(
        serde_json::to_value(&status.occupancy).unwrap(),
        json!({"compact": 1})
    );
    // ... and a marker after the duplicate shows it changed nothing twice.
    publish(&hq, &format!("{LOT}/replica/changes"), empty(2)).await;
    let status = gate
        .wait_status(WAIT, "applied seq 2", |s| s.replica_seq == 2)
        .await;
    assert_eq!(
        serde_json::to_value(&status.occupancy).unwrap(),
        json!({"compact": 1})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn junk_on_every_subscribed_topic_changes_nothing_and_makes_one_alert() {
    let broker = Broker::start().await;
    let (hq, gate) = connected(broker.port()).await;
    let topics = [
        format!("{ROOT}/replay"),
        format!("{ROOT}/replica/snapshot"),
        format!("{LOT}/replica/changes"),
        format!("{LOT}/gates/exit-1/events/check_in"),
        format!("{LOT}/gates/exit-1/events/check_out"),
        format!("{LOT}/gates/exit-1/events/void"),
        format!("{LOT}/gates/exit-1/occupancy"),
    ];
    for topic in &topics {
        for junk in ["not json", r#"{"v":2}"#, r#"{"v":1}"#, "[]"] {
            publish(&hq, topic, junk).await;
        }
    }
    // Oversized: a megabyte and a bit of spaces.
    mosquitto_pub(
        broker.port(),
        &format!("{LOT}/replica/changes"),
        &" ".repeat((1 << 20) + 1),
    );
    // A good batch after all of it: when it is applied, the junk was read.
    publish(&hq, &format!("{LOT}/replica/changes"), empty(2)).await;
    gate.wait_status(WAIT, "applied seq 2", |s| s.replica_seq == 2)
        .await;
    let alerts = gate.alerts("bad_message");
    assert_eq!(alerts.len(), 1, "one alert, not a flood: {alerts:?}");
    let status = gate.status().await;
    assert!(
        status.link.connected,
        "the link kept running: {:?}",
        status.link
    );
    assert!(status.occupancy.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_quiet_feed_raises_replica_stale_once_per_quiet_spell() {
    let broker = Broker::start().await;
    let (hq, gate) = connected_with(broker.port(), "\nreplica_stale_h = 1").await;
    publish(&hq, &format!("{LOT}/replica/changes"), empty(2)).await;
    gate.wait_status(WAIT, "applied seq 2", |s| s.replica_seq == 2)
        .await;
    gate.advance(59 * 60_000).await;
    gate.settle().await;
    assert_eq!(gate.alerts("replica_stale").len(), 0, "59 minutes is fresh");
    let status = gate.status().await;
    assert_eq!(status.replica_age_s, Some(59 * 60));
    gate.advance(2 * 60_000).await;
    gate.settle().await;
    gate.advance(60 * 60_000).await;
    gate.settle().await;
    let stale = gate.alerts("replica_stale");
    assert_eq!(stale.len(), 1, "once per quiet spell: {stale:?}");
    assert!(
        stale[0]["message"].as_str().unwrap().contains("seq 2"),
        "{}",
        stale[0]
    );
    let text = common::stdout(&gate.cli(&["status"]));
    assert!(
        text.contains("replica   seq 2, last heard from HQ 2h01m ago"),
        "{text}"
    );
    // Heard again, then quiet again: a second alert.
    publish(&hq, &format!("{LOT}/replica/changes"), empty(3)).await;
    gate.wait_status(WAIT, "applied seq 3", |s| s.replica_seq == 3)
        .await;
    gate.advance(61 * 60_000).await;
    gate.settle().await;
    assert_eq!(gate.alerts("replica_stale").len(), 2);
}

/// Publishes `payload` with `mosquitto_pub` (for payloads over the test
/// client's 10 KiB packet limit).
fn mosquitto_pub(port: u16, topic: &str, payload: &str) {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), payload).unwrap();
    let sent = std::process::Command::new(common::broker::mosquitto_program("mosquitto_pub"))
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q", "1"])
        .args(["-t", topic, "-f"])
        .arg(file.path())
        .status()
        .unwrap();
    assert!(sent.success());
}

/// A snapshot chunk holding `users` (user, card, vehicle, plan each).
fn chunk(id: &str, seq: u64, n: u32, of: u32, users: std::ops::Range<u32>) -> Value {
    let mut ops = Vec::new();
    for u in users {
        let (user, card, car) = (
            format!("u-{u}"),
            format!("{:014X}", 0x04_0000_0000_0000_u64 + u64::from(u)),
            format!("v-{u}"),
        );
        ops.push(json!({"op": "upsert", "kind": "user", "data": {"user_id": user, "name": format!("User {u}"), "company": "acme", "status": "active"}}));
        ops.push(json!({"op": "upsert", "kind": "card", "data": {"card": card, "user_id": user, "status": "active", "valid_from": "2026-01-01T00:00:00+07:00", "valid_until": "2027-01-01T00:00:00+07:00"}}));
        ops.push(json!({"op": "upsert", "kind": "vehicle", "data": {"vehicle_id": car, "user_id": user, "plate": null, "class": "standard", "ada": false, "ev": false, "primary": true}}));
        ops.push(json!({"op": "upsert", "kind": "plan", "data": {"user_id": user, "kind": "monthly", "lots": ["main"], "valid_until": "2027-01-01T00:00:00+07:00", "status": "paid"}}));
    }
    json!({"v": 1, "snapshot_id": id, "seq": seq, "chunk": n, "chunks": of, "ops": ops})
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gap_answered_by_a_snapshot_and_an_abandoned_snapshot_dropped() {
    let broker = Broker::start().await;
    let (mut hq, mut gate) = connected(broker.port()).await;
    let snapshot = format!("{ROOT}/replica/snapshot");
    publish(&hq, &format!("{LOT}/replica/changes"), empty(5)).await;
    loop {
        let msg = hq.next(WAIT).await;
        if msg.topic.ends_with("/replica/request") {
            break;
        }
    }
    // HQ answers with a snapshot instead. One it gives up half-way first:
    // its chunk is dropped when the next snapshot starts.
    mosquitto_pub(
        broker.port(),
        &snapshot,
        &chunk("s-1", 5, 0, 2, 0..10).to_string(),
    );
    mosquitto_pub(
        broker.port(),
        &snapshot,
        &chunk("s-2", 6, 1, 2, 100..110).to_string(),
    );
    assert_eq!(
        gate.status().await.replica_seq,
        1,
        "half a snapshot changes nothing"
    );
    mosquitto_pub(
        broker.port(),
        &snapshot,
        &chunk("s-2", 6, 0, 2, 110..120).to_string(),
    );
    gate.wait_status(WAIT, "swapped in the snapshot", |s| s.replica_seq == 6)
        .await;
    // The whole replica is the snapshot: the demo's Alice is gone, user 105
    // (s-2) is in, user 5 (abandoned s-1) is not.
    gate.sensor(Sensor::Arming, SensorState::Occupied).await;
    gate.tap(common::cards::ALICE).await;
    gate.expect_signal(parkgate_hal::Light::Red).await;
    gate.advance(5_000).await;
    gate.tap("04000000000069").await; // user 105
    gate.expect_barrier(BarrierCommand::Up).await;
    let denied: Vec<Value> = gate
        .events()
        .into_iter()
        .filter(|e| e["type"] == "denied")
        .collect();
    assert_eq!(denied.len(), 1, "{denied:?}");
    assert_eq!(denied[0]["reason"], "unknown_card");
    // Changes follow on from the snapshot's seq.
    publish(&hq, &format!("{LOT}/replica/changes"), empty(7)).await;
    gate.wait_status(WAIT, "applied seq 7", |s| s.replica_seq == 7)
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn cards_are_decided_on_the_old_replica_while_a_big_snapshot_stages() {
    let broker = Broker::start().await;
    let (_hq, mut gate) = connected(broker.port()).await;
    let snapshot = format!("{ROOT}/replica/snapshot");
    let chunks = 20;
    for n in 0..chunks {
        let users = n * 1000..(n + 1) * 1000;
        mosquitto_pub(
            broker.port(),
            &snapshot,
            &chunk("big", 9, n, chunks + 1, users).to_string(),
        );
        // Between chunks, a card of the old replica is decided as before.
        if n % 5 == 0 {
            gate.advance(5_000).await; // past the repeat-read window
            assert_eq!(
                gate.badge_admitted(common::cards::ALICE).await,
                "Welcome Alice Tran - spot B1-042"
            );
            gate.drive_through(1).await;
            gate.advance(5_000).await;
            gate.badge_admitted(common::cards::ALICE).await; // and out again
            gate.drive_through(1).await;
        }
    }
    assert_eq!(gate.status().await.replica_seq, 1);
    mosquitto_pub(
        broker.port(),
        &snapshot,
        &chunk("big", 9, chunks, chunks + 1, 20_000..20_001).to_string(),
    );
    gate.wait_status(long_wait(), "swapped in 20,001 users", |s| {
        s.replica_seq == 9
    })
    .await;
}
