//! The lane end to end: the real binary on the sim backend, vehicles and
//! cards played through the sim socket, the clock moved through the control
//! socket, and the journal and the barrier checked after each step.

mod common;

use common::{Gate, cards, kinds, of_type, time};
use parkgate_hal::{BarrierCommand, Light, Sensor, SensorState};
use serde_json::json;

#[tokio::test]
async fn an_arrival_and_a_departure_open_and_close_the_barrier() {
    let mut gate = Gate::start(&[]).await;

    let text = gate.badge_admitted(cards::ALICE).await;
    assert_eq!(text, "Welcome Alice Tran - spot B1-042");
    let status = gate.settle().await;
    assert_eq!(status["lane"], "open");
    assert_eq!(status["barrier"], "up");
    assert_eq!(status["occupancy"], json!({"standard": 1}));

    // The barrier waits the whole close delay (500 ms) after the safety
    // loop clears, and not a millisecond more.
    gate.sensor(Sensor::Arming, SensorState::Clear).await;
    gate.cross(1).await;
    gate.advance(499).await;
    assert_eq!(gate.settle().await["barrier"], "up");
    assert_eq!(gate.sim_state().await.barrier, BarrierCommand::Up);
    gate.advance(1).await;
    gate.expect_barrier(BarrierCommand::Down).await;

    gate.advance(2 * 3600 * 1000).await;
    let text = gate.badge_admitted(cards::ALICE).await;
    assert_eq!(text, "Goodbye Alice Tran", "a monthly plan pays no fee");
    gate.drive_through(1).await;

    let status = gate.settle().await;
    assert_eq!(status["lane"], "idle");
    assert_eq!(status["barrier"], "down");
    assert_eq!(status["occupancy"], json!({}));
    assert_eq!(status["entered"], json!({"standard": 1}));
    assert_eq!(status["exited"], json!({"standard": 1}));
    assert_eq!(status["outbox_depth"], 2);

    let events = gate.events();
    assert_eq!(kinds(&events), ["check_in", "check_out"]);
    let (check_in, check_out) = (&events[0], &events[1]);
    assert_eq!(check_in["card"], cards::ALICE);
    assert_eq!(check_in["reservation_id"], "r-alice-1");
    assert_eq!(check_in["spot_id"], "B1-042");
    assert_eq!(check_in["walk_in"], false);
    assert_eq!(time(&check_in["at"]), time(&json!(common::START)));
    assert_eq!(check_out["user_id"], "u-alice");
    assert_eq!(check_out["check_in_at"], check_in["at"]);
    assert_eq!(check_out["fee"]["amount_minor"], 0);
    assert_eq!(check_out["overstay_s"], 0);
    assert_eq!(
        [&check_in["gate_seq"], &check_out["gate_seq"]],
        [&json!(1), &json!(2)]
    );
}

#[tokio::test]
async fn a_daily_plan_pays_its_fee_at_the_exit() {
    let mut gate = Gate::start(&[]).await;
    assert_eq!(gate.badge_admitted(cards::BOB).await, "Welcome Bob Nguyen");
    gate.drive_through(1).await;

    gate.advance(9 * 3600 * 1000).await;
    let text = gate.badge_admitted(cards::BOB).await;
    assert_eq!(text, "Goodbye Bob Nguyen - fee 50,000 VND");
    gate.drive_through(1).await;

    let events = gate.events();
    assert_eq!(kinds(&events), ["check_in", "check_out"]);
    let (check_in, check_out) = (&events[0], &events[1]);
    assert_eq!(check_in["plan"], "daily");
    assert_eq!(check_in["walk_in"], true);
    assert_eq!(
        check_out["fee"],
        json!({"amount_minor": 50000, "currency": "VND", "plan": "daily"})
    );
    assert_eq!(check_out["check_in_at"], check_in["at"]);
    let stay = time(&check_out["at"]) - time(&check_in["at"]);
    assert!(stay >= chrono::TimeDelta::hours(9), "{stay}");
    assert_eq!(check_out["duration_s"], stay.num_seconds());
    assert_eq!(gate.settle().await["occupancy"], json!({}));

    // The technician's view of the same journal: names, times in and out, fee.
    let out = gate.cli(&["events"]);
    assert!(out.status.success(), "{out:?}");
    let text = common::stdout(&out);
    let line = text
        .lines()
        .find(|l| l.contains("check_out"))
        .unwrap_or_else(|| panic!("no check_out line in\n{text}"));
    assert!(line.contains("Bob Nguyen (u-bob)"), "{line}");
    assert!(
        line.contains("in 2026-11-23 07:58:00 out 2026-11-23 16:58:00 (9h00m)"),
        "{line}"
    );
    assert!(line.contains("fee 50,000 VND"), "{line}");
    let first = text.lines().nth(1).expect("a line under the header");
    assert!(first.contains("check_out"), "newest first:\n{text}");
}

#[tokio::test]
async fn a_second_vehicle_through_the_open_barrier_is_tailgating() {
    let mut gate = Gate::start(&[]).await;
    gate.badge_admitted(cards::DAN).await;
    gate.drive_through(2).await;

    let events = gate.events();
    assert_eq!(kinds(&events), ["check_in", "alert:tailgating"]);
    let alert = &events[1];
    assert_eq!(alert["severity"], "warning");
    assert_eq!(alert["card"], cards::DAN);
    assert_eq!(alert["user_id"], "u-dan");
    assert_eq!(alert["related_event_id"], events[0]["event_id"]);
    assert_eq!(gate.sim_state().await.barrier, BarrierCommand::Down);
}

#[tokio::test]
async fn a_vehicle_under_the_closed_barrier_is_unauthorized() {
    let mut gate = Gate::start(&[]).await;
    gate.cross(1).await;
    let status = gate.settle().await;

    assert_eq!(status["barrier"], "down");
    let events = gate.events();
    assert_eq!(kinds(&events), ["alert:unauthorized_vehicle"]);
    assert_eq!(events[0]["severity"], "critical");
    assert_eq!(events[0]["card"], json!(null));
    let sim = gate.sim_state().await;
    assert_eq!(sim.barrier, BarrierCommand::Down, "nothing was raised");
    assert_eq!(status["occupancy"], json!({}));
}

#[tokio::test]
async fn a_barrier_raised_by_hand_is_forced() {
    let mut gate = Gate::start(&[]).await;
    gate.barrier_follows(false).await;
    gate.sensor(Sensor::BarrierUp, SensorState::Occupied).await;
    gate.settle().await;

    let events = gate.events();
    assert_eq!(kinds(&events), ["alert:barrier_forced"]);
    assert_eq!(events[0]["severity"], "critical");
    // Lowering it again by hand is no new alert.
    gate.sensor(Sensor::BarrierUp, SensorState::Clear).await;
    gate.settle().await;
    assert_eq!(gate.events().len(), 1);
}

#[tokio::test]
async fn a_barrier_up_with_nothing_passing_is_held_open() {
    let mut gate = Gate::start(&[("held_open_s", "10"), ("pass_timeout_s", "30")]).await;
    gate.badge_admitted(cards::ALICE).await;

    gate.advance(9_999).await;
    gate.settle().await;
    assert!(gate.alerts("barrier_held_open").is_empty(), "too early");
    gate.advance(1).await;
    let status = gate.settle().await;

    let events = gate.events();
    assert_eq!(kinds(&events), ["check_in", "alert:barrier_held_open"]);
    let alert = &events[1];
    assert_eq!(alert["severity"], "warning");
    assert_eq!(alert["card"], cards::ALICE);
    assert_eq!(alert["related_event_id"], events[0]["event_id"]);
    assert!(
        alert["message"].as_str().unwrap().contains("10 s"),
        "{alert}"
    );
    assert_eq!(
        status["barrier"], "up",
        "held open is an alert, not a close"
    );
}

#[tokio::test]
async fn an_accepted_vehicle_that_never_passes_is_voided() {
    let mut gate = Gate::start(&[]).await;
    gate.badge_admitted(cards::ALICE).await;
    assert_eq!(gate.settle().await["occupancy"], json!({"standard": 1}));
    gate.sensor(Sensor::Arming, SensorState::Clear).await; // she backs away

    gate.advance(29_999).await;
    assert_eq!(gate.settle().await["barrier"], "up");
    gate.advance(1).await;
    gate.expect_barrier(BarrierCommand::Down).await;

    let status = gate.settle().await;
    let events = gate.events();
    assert_eq!(kinds(&events), ["check_in", "void"]);
    assert_eq!(events[1]["related_event_id"], events[0]["event_id"]);
    assert_eq!(status["occupancy"], json!({}), "the void undoes the stay");
    assert_eq!(status["lane"], "idle");
    assert!(
        gate.alerts("barrier_held_open").is_empty(),
        "the void closes the barrier before held_open_s (60 s)"
    );
}

#[tokio::test]
async fn a_loop_occupied_too_long_is_a_loop_fault() {
    let mut gate = Gate::start(&[("loop_fault_s", "60")]).await;
    gate.sensor(Sensor::Arming, SensorState::Occupied).await;
    gate.advance(59_999).await;
    assert_eq!(gate.settle().await["fault"], false);
    gate.advance(1).await;
    let status = gate.settle().await;

    assert_eq!(status["fault"], true);
    let events = gate.events();
    assert_eq!(kinds(&events), ["alert:loop_fault"]);
    let message = events[0]["message"].as_str().unwrap();
    assert!(message.contains("arming loop"), "{message}");
    assert!(message.contains("60 s"), "{message}");

    gate.sensor(Sensor::Arming, SensorState::Clear).await;
    assert_eq!(gate.settle().await["fault"], false);
}

#[tokio::test]
async fn a_loop_reporting_a_fault_is_a_loop_fault_and_keeps_the_barrier_up() {
    let mut gate = Gate::start(&[]).await;
    gate.badge_admitted(cards::ALICE).await;
    gate.sensor(Sensor::Arming, SensorState::Clear).await;
    gate.sensor(Sensor::Safety, SensorState::Fault).await;
    let status = gate.settle().await;
    assert_eq!(status["fault"], true);
    let events = gate.events();
    assert_eq!(kinds(&events), ["check_in", "alert:loop_fault"]);
    assert!(
        events[1]["message"]
            .as_str()
            .unwrap()
            .contains("safety loop reports a fault")
    );

    // A faulted safety loop counts as a vehicle under the arm: however
    // long, the barrier stays up (the pass timeout waits for it too).
    gate.advance(120_000).await;
    let status = gate.settle().await;
    assert_eq!(status["barrier"], "up");
    assert_eq!(gate.sim_state().await.barrier, BarrierCommand::Up);
    assert!(of_type(&gate.events(), "void").is_empty());
}

#[tokio::test]
async fn wrong_cards_are_denied_with_an_alert() {
    let mut gate = Gate::start(&[]).await;

    gate.badge(cards::CAROL_REVOKED).await;
    assert_eq!(
        gate.expect_signal(Light::Red).await,
        "Card not valid - call security"
    );
    gate.sensor(Sensor::Arming, SensorState::Clear).await;
    gate.badge(cards::UNKNOWN).await;
    assert_eq!(
        gate.expect_signal(Light::Red).await,
        "Card not valid - call security"
    );
    gate.sensor(Sensor::Arming, SensorState::Clear).await;
    gate.badge(cards::ALICE).await;
    gate.tap_auth_failed(cards::BOB).await;
    // Alice's clean read opens; the clone of Bob's card, read while she is
    // let in, is ignored like any other card then (her green stays).
    gate.expect_barrier(BarrierCommand::Up).await;
    gate.expect_signal(Light::Green).await;
    gate.drive_through(1).await;
    // Once the lane is free (and the repeat window has passed) the clone is
    // refused, as any card would be.
    gate.advance(5_000).await;
    gate.badge_auth_failed(cards::BOB).await;
    assert_eq!(
        gate.expect_signal(Light::Red).await,
        "Card not valid - call security"
    );

    let events = gate.events();
    assert_eq!(
        kinds(&events),
        [
            "denied",
            "alert:wrong_card",
            "denied",
            "alert:wrong_card",
            "check_in",
            "denied",
            "alert:wrong_card"
        ]
    );
    let reasons: Vec<_> = of_type(&events, "denied")
        .iter()
        .map(|d| (d["card"].clone(), d["reason"].clone()))
        .collect();
    assert_eq!(
        reasons,
        [
            (json!(cards::CAROL_REVOKED), json!("card_revoked")),
            (json!(cards::UNKNOWN), json!("unknown_card")),
            (json!(cards::BOB), json!("credential_auth_failed")),
        ]
    );
    assert_eq!(events[0]["user_id"], "u-carol");
    assert_eq!(events[1]["related_event_id"], events[0]["event_id"]);
    assert_eq!(events[3]["related_event_id"], events[2]["event_id"]);
    assert_eq!(events[1]["card"], cards::CAROL_REVOKED);
    assert_eq!(events[6]["card"], cards::BOB);
}

#[tokio::test]
async fn hard_anti_passback_refuses_a_second_entry() {
    let mut gate = Gate::start(&[("role", "\"entry\""), ("anti_passback", "\"hard\"")]).await;
    gate.badge_admitted(cards::ALICE).await;
    gate.drive_through(1).await;

    gate.advance(60_000).await;
    gate.badge(cards::ALICE).await;
    assert_eq!(
        gate.expect_signal(Light::Red).await,
        "Already inside - call security"
    );
    let status = gate.settle().await;
    assert_eq!(status["barrier"], "down");
    assert_eq!(status["occupancy"], json!({"standard": 1}));

    let events = gate.events();
    assert_eq!(
        kinds(&events),
        ["check_in", "denied", "alert:anti_passback"]
    );
    assert_eq!(events[1]["reason"], "anti_passback");
    assert_eq!(events[2]["related_event_id"], events[1]["event_id"]);
    assert_eq!(events[2]["user_id"], "u-alice");
}

#[tokio::test]
async fn soft_anti_passback_lets_a_second_entry_in_with_an_alert() {
    let mut gate = Gate::start(&[("role", "\"entry\"")]).await;
    gate.badge_admitted(cards::BOB).await;
    gate.drive_through(1).await;

    gate.advance(60_000).await;
    assert_eq!(gate.badge_admitted(cards::BOB).await, "Welcome Bob Nguyen");
    gate.drive_through(1).await;

    let events = gate.events();
    assert_eq!(
        kinds(&events),
        ["check_in", "check_in", "alert:anti_passback"]
    );
    assert_eq!(events[2]["related_event_id"], events[1]["event_id"]);
    assert_eq!(events[2]["severity"], "warning");
}

#[tokio::test]
async fn an_exit_never_traps_a_car() {
    let mut gate = Gate::start(&[("role", "\"exit\"")]).await;

    // A card the gate has never seen, and a revoked one: both let out.
    for card in [cards::UNKNOWN, cards::CAROL_REVOKED] {
        gate.badge_admitted(card).await;
        gate.drive_through(1).await;
    }

    let events = gate.events();
    assert_eq!(
        kinds(&events),
        [
            "check_out",
            "alert:wrong_card",
            "check_out",
            "alert:wrong_card",
            "alert:anti_passback"
        ]
    );
    let unknown = &events[0];
    assert_eq!(unknown["card"], cards::UNKNOWN);
    assert_eq!(unknown["user_id"], json!(null));
    assert_eq!(unknown["check_in_at"], json!(null));
    assert_eq!(events[1]["related_event_id"], unknown["event_id"]);
    assert_eq!(events[2]["user_id"], "u-carol");
    assert!(of_type(&events, "denied").is_empty(), "no exit is refused");
    assert_eq!(gate.sim_state().await.barrier, BarrierCommand::Down);
}

/// The daemon handles a loop edge before a card read queued right after
/// it, and every input before a later control request (`advance`,
/// `status`). Left to chance, the card wins half the time when both are
/// queued at once (a burst), and the `advance` of `drive_through` now and
/// then overtakes the safety loop clearing; so the test plays many rounds.
#[tokio::test]
async fn inputs_are_handled_in_the_order_they_were_sent() {
    let mut gate = Gate::start(&[]).await;
    let arrive = [
        json!({"cmd": "vehicle", "sensor": "arming", "state": "occupied"}),
        json!({"cmd": "tap", "card": cards::ALICE}),
    ];
    for round in 0..15 {
        for greeting in ["Welcome Alice Tran - spot B1-042", "Goodbye Alice Tran"] {
            gate.sim_burst(&arrive).await;
            gate.expect_barrier(BarrierCommand::Up).await;
            let text = gate.expect_signal(Light::Green).await;
            assert_eq!(text, greeting, "round {round}");
            gate.drive_through(1).await;
            gate.advance(5_000).await;
        }
    }
    let status = gate.settle().await;
    assert_eq!(status["entered"], json!({"standard": 15}));
    assert_eq!(status["exited"], json!({"standard": 15}));
    let events = gate.events();
    assert_eq!(events.len(), 30);
    assert!(of_type(&events, "alert").is_empty(), "{:?}", kinds(&events));
}
