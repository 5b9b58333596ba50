//! An entry gate and an exit gate of one lot, two daemons on one broker: a
//! car that enters at one leaves at the other with the right fee and no
//! anti-passback alert, the two agree on who is inside, also across a
//! partition of one of them and its healing.

mod common;

use common::broker::Broker;
use common::proxy::Proxy;
use common::{Gate, WAIT, cards};
use parkgate::daemon::status::Status;
use serde_json::{Value, json};

fn gate(name: &str, role: &str, port: u16) -> Vec<(&'static str, String)> {
    vec![
        ("gate", format!("\"{name}\"")),
        ("role", format!("\"{role}\"")),
        (
            "enabled",
            format!("true\nhost = \"127.0.0.1\"\nport = {port}"),
        ),
    ]
}

async fn start(tweaks: &[(&'static str, String)]) -> Gate {
    let tweaks: Vec<(&str, &str)> = tweaks.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Gate::start(&tweaks).await
}

fn inside(status: &Status) -> Value {
    serde_json::to_value(&status.occupancy).unwrap()
}

fn last(events: &[Value], kind: &str) -> Value {
    events
        .iter()
        .rev()
        .find(|e| e["type"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in {events:?}"))
        .clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_car_enters_at_one_gate_and_leaves_at_the_other() {
    let broker = Broker::start().await;
    let proxy = Proxy::start(broker.port()).await;
    let mut entry = start(&gate("entry-1", "entry", broker.port())).await;
    let mut exit = start(&gate("exit-1", "exit", proxy.port())).await;
    // Both connected and subscribed: each has the other's occupancy.
    entry
        .wait_status(WAIT, "heard of exit-1", |s| s.link.connected)
        .await;
    exit.wait_status(WAIT, "connected", |s| s.link.connected)
        .await;

    // Bob (daily plan) in at entry-1 at 07:58 ...
    assert_eq!(entry.badge_admitted(cards::BOB).await, "Welcome Bob Nguyen");
    entry.drive_through(1).await;
    let check_in = last(&entry.events(), "check_in");
    let seen = exit
        .wait_status(WAIT, "saw Bob come in", |s| !s.occupancy.is_empty())
        .await;
    assert_eq!(inside(&seen), json!({"compact": 1}));

    // ... and out at exit-1 three hours later: the fee of a day, his entry time.
    exit.advance(3 * 3600 * 1000).await;
    let shown = exit.badge_admitted(cards::BOB).await;
    assert!(shown.contains("50,000 VND"), "{shown}");
    exit.drive_through(1).await;
    let check_out = last(&exit.events(), "check_out");
    assert_eq!(check_out["check_in_at"], check_in["at"]);
    assert_eq!(check_out["fee"]["amount_minor"], 50_000);
    assert!(exit.alerts("anti_passback").is_empty());
    entry
        .wait_status(WAIT, "saw Bob leave", |s| s.occupancy.is_empty())
        .await;
    assert!(exit.status().await.occupancy.is_empty());

    // The exit gate is cut off while Dan rides in; when the link heals the
    // broker hands it what it missed (its session was kept), and Dan leaves
    // with his entry time known.
    proxy.cut().await;
    exit.wait_status(WAIT, "noticed the cut", |s| !s.link.connected)
        .await;
    entry.advance(3 * 3600 * 1000).await;
    assert_eq!(entry.badge_admitted(cards::DAN).await, "Welcome Dan Pham");
    entry.drive_through(1).await;
    let dan_in = last(&entry.events(), "check_in");
    assert!(
        exit.status().await.occupancy.is_empty(),
        "partitioned: not heard"
    );
    proxy.restore();
    let seen = exit
        .wait_status(WAIT, "heard of Dan after the partition", |s| {
            !s.occupancy.is_empty()
        })
        .await;
    assert_eq!(inside(&seen), json!({"motorcycle": 1}));
    assert_eq!(entry.status().await.occupancy, seen.occupancy, "both agree");
    exit.badge_admitted(cards::DAN).await;
    exit.drive_through(1).await;
    let dan_out = last(&exit.events(), "check_out");
    assert_eq!(dan_out["check_in_at"], dan_in["at"]);
    assert!(exit.alerts("anti_passback").is_empty());
    entry
        .wait_status(WAIT, "saw Dan leave", |s| s.occupancy.is_empty())
        .await;
}

/// Cora: a second compact car on a daily plan, for the replica of the lot.
fn cora() -> Value {
    json!({"v": 1, "seq": 2, "at": "2026-11-23T07:00:00+07:00", "ops": [
        {"op": "upsert", "kind": "user", "data": {"user_id": "u-cora", "name": "Cora Ly", "company": "acme", "status": "active"}},
        {"op": "upsert", "kind": "card", "data": {"card": "04C0C0C0C0C0C0", "user_id": "u-cora", "status": "active", "valid_from": "2026-01-01T00:00:00+07:00", "valid_until": "2027-01-01T00:00:00+07:00"}},
        {"op": "upsert", "kind": "vehicle", "data": {"vehicle_id": "v-cora", "user_id": "u-cora", "plate": null, "class": "compact", "ada": false, "ev": false, "primary": true}},
        {"op": "upsert", "kind": "plan", "data": {"user_id": "u-cora", "kind": "daily", "lots": ["main"], "valid_until": "2027-01-01T00:00:00+07:00", "status": "paid"}},
        {"op": "upsert", "kind": "user", "data": {"user_id": "u-cid", "name": "Cid Ho", "company": "acme", "status": "active"}},
        {"op": "upsert", "kind": "card", "data": {"card": "04C1C1C1C1C1C1", "user_id": "u-cid", "status": "active", "valid_from": "2026-01-01T00:00:00+07:00", "valid_until": "2027-01-01T00:00:00+07:00"}},
        {"op": "upsert", "kind": "vehicle", "data": {"vehicle_id": "v-cid", "user_id": "u-cid", "plate": null, "class": "compact", "ada": false, "ev": false, "primary": true}}
    ]})
}

#[tokio::test(flavor = "multi_thread")]
async fn two_entry_gates_at_once_never_overfill_a_class() {
    let broker = Broker::start().await;
    let mut tweaks_1 = gate("entry-1", "entry", broker.port());
    tweaks_1.extend([("compact", "2".into()), ("total", "32".into())]);
    let mut tweaks_2 = gate("entry-2", "entry", broker.port());
    tweaks_2.extend([("compact", "2".into()), ("total", "32".into())]);
    let mut one = start(&tweaks_1).await;
    let mut two = start(&tweaks_2).await;
    let hq = common::hq::Hq::builder(broker.port()).connect().await;
    // Each knows the other (its retained occupancy) and has the replica.
    for g in [&one, &two] {
        g.wait_status(WAIT, "connected", |s| s.link.connected).await;
    }
    hq.publish(
        "parkgate/v1/b1/main/replica/changes",
        cora().to_string(),
        true,
        false,
    )
    .await;
    for g in [&one, &two] {
        g.wait_status(WAIT, "has Cora", |s| s.replica_seq == 2)
            .await;
    }
    // Two compact spots, two drivers at two gates at the same moment: each
    // gate keeps a spot back for the other, so both fit and no more.
    one.sensor(
        parkgate_hal::Sensor::Arming,
        parkgate_hal::SensorState::Occupied,
    )
    .await;
    two.sensor(
        parkgate_hal::Sensor::Arming,
        parkgate_hal::SensorState::Occupied,
    )
    .await;
    one.tap(cards::BOB).await;
    two.tap("04C0C0C0C0C0C0").await;
    for g in [&mut one, &mut two] {
        g.expect_barrier(parkgate_hal::BarrierCommand::Up).await;
        g.expect_signal(parkgate_hal::Light::Green).await;
        g.drive_through(1).await;
    }
    for g in [&one, &two] {
        let s = g
            .wait_status(WAIT, "saw both inside", |s| {
                s.occupancy
                    .get(&parkgate::domain::model::VehicleClass::Compact)
                    == Some(&2)
            })
            .await;
        assert_eq!(inside(&s), json!({"compact": 2}));
    }
    // A third compact finds the class full at either gate.
    one.advance(5_000).await;
    one.sensor(
        parkgate_hal::Sensor::Arming,
        parkgate_hal::SensorState::Occupied,
    )
    .await;
    one.tap("04C1C1C1C1C1C1").await;
    assert_eq!(
        one.expect_signal(parkgate_hal::Light::Red).await,
        "Lot full - sorry"
    );
}
