//! Stopping and starting again: SIGTERM is a clean shutdown, and a restart
//! picks up exactly where the store left off.

mod common;

use common::{Gate, cards, kinds, time};
use serde_json::json;

#[tokio::test]
async fn sigterm_stops_cleanly_and_a_restart_resumes_the_same_state() {
    let mut gate = Gate::start(&[]).await;
    gate.badge_admitted(cards::ALICE).await;
    gate.drive_through(1).await;
    gate.badge_admitted(cards::BOB).await;
    gate.drive_through(1).await;
    // Once the arm is down (not still falling), a vehicle sneaks under it:
    // an alert in the outbox too.
    gate.advance(60_000).await;
    gate.cross(1).await;

    let before = gate.settle().await;
    assert_eq!(before["occupancy"], json!({"compact": 1, "standard": 1}));
    assert_eq!(before["outbox_depth"], 3);
    let journal = gate.events();
    assert_eq!(
        kinds(&journal),
        ["check_in", "check_in", "alert:unauthorized_vehicle"]
    );

    let exit = gate.terminate().await;
    assert_eq!(
        exit.code(),
        Some(0),
        "SIGTERM is a clean stop:\n{}",
        gate.log()
    );
    assert!(
        !gate.control_socket().exists(),
        "the control socket is removed on the way out"
    );
    assert!(gate.log().contains("SIGTERM"), "{}", gate.log());
    let stdout = std::fs::read_to_string(gate.dir().join("stdout.log")).unwrap();
    assert_eq!(
        stdout.lines().filter(|l| l.contains("check_in")).count(),
        2,
        "`run` prints each committed event:\n{stdout}"
    );

    let mut gate = gate.restart("2026-11-23T09:00:00+07:00").await;
    let after = gate.settle().await;
    for key in [
        "occupancy",
        "entered",
        "exited",
        "outbox_depth",
        "replica_seq",
    ] {
        assert_eq!(after[key], before[key], "{key} after the restart");
    }
    assert_eq!(after["replica_seq"], 1, "the demo data is loaded once");
    assert_eq!(after["lane"], "idle");
    assert_eq!(gate.events(), journal, "the same events, ids and all");

    // Bob's stay from before the restart is still his to pay for.
    let text = gate.badge_admitted(cards::BOB).await;
    assert_eq!(text, "Goodbye Bob Nguyen - fee 50,000 VND");
    gate.drive_through(1).await;
    let events = gate.events();
    let check_out = events.last().unwrap();
    assert_eq!(check_out["type"], "check_out");
    assert_eq!(check_out["check_in_at"], journal[1]["at"]);
    assert_eq!(check_out["gate_seq"], 4, "the sequence carries on");
    assert_eq!(
        time(&check_out["at"]),
        time(&json!("2026-11-23T09:00:00+07:00"))
    );
    let status = gate.settle().await;
    assert_eq!(status["occupancy"], json!({"standard": 1}));
    assert_eq!(status["outbox_depth"], 4);

    assert_eq!(gate.terminate().await.code(), Some(0));
}

#[tokio::test]
async fn a_restart_with_the_arm_up_over_a_car_keeps_it_up_until_the_car_leaves() {
    // The daemon was restarted while a car sat under the open arm.
    let tweaks = [("safety", "\"occupied\""), ("barrier_up", "\"occupied\"")];
    let mut gate = Gate::start(&tweaks).await;
    let status = gate.settle().await;
    assert_eq!(status["barrier"], "up", "taken where its switch says");
    gate.advance(30_000).await;
    let status = gate.settle().await;
    assert_eq!(status["barrier"], "up", "kept up over the car");
    assert_eq!(
        gate.sim_state().await.barrier,
        parkgate_hal::BarrierCommand::Up,
        "never commanded down"
    );

    gate.sensor(
        parkgate_hal::Sensor::Safety,
        parkgate_hal::SensorState::Clear,
    )
    .await;
    gate.close().await;
    assert_eq!(
        kinds(&gate.events()),
        Vec::<String>::new(),
        "the car found under the arm is nobody's passage: no unauthorized_vehicle"
    );
}

#[tokio::test]
async fn a_technicians_lockdown_is_recorded_refuses_entries_and_survives_a_restart() {
    let mut gate = Gate::start(&[]).await;
    gate.badge_admitted(cards::ALICE).await;
    gate.drive_through(1).await;

    let out = gate.cli(&["lockdown", "on"]);
    assert!(out.status.success(), "{out:?}");
    assert!(common::stdout(&out).starts_with("lockdown on"), "{out:?}");
    assert_eq!(gate.settle().await["lockdown"], true);
    gate.advance(5_000).await;
    gate.badge(cards::BOB).await;
    gate.expect_signal(parkgate_hal::Light::Red).await;
    gate.sensor(
        parkgate_hal::Sensor::Arming,
        parkgate_hal::SensorState::Clear,
    )
    .await;

    assert_eq!(gate.terminate().await.code(), Some(0));
    let mut gate = gate.restart("2026-11-23T09:00:00+07:00").await;
    assert_eq!(
        gate.settle().await["lockdown"],
        true,
        "kept across a restart"
    );
    // An exit stays open in a lockdown.
    assert_eq!(
        gate.badge_admitted(cards::ALICE).await,
        "Goodbye Alice Tran"
    );
    gate.drive_through(1).await;
    assert!(!gate.lockdown(false).await, "lifted");

    let events = gate.events();
    assert_eq!(
        kinds(&events),
        [
            "check_in",
            "alert:lockdown",
            "denied",
            "check_out",
            "alert:lockdown"
        ]
    );
    let lockdowns = common::of_type(&events, "alert");
    assert!(
        lockdowns[0]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("Lockdown set by a technician")),
        "{lockdowns:?}"
    );
    assert_eq!(events[2]["reason"], "lockdown");
    assert_eq!(gate.settle().await["lockdown"], false);
}

#[tokio::test]
async fn sigterm_with_a_car_under_the_open_arm_leaves_the_arm_up() {
    let mut gate = Gate::start(&[]).await;
    gate.badge_admitted(cards::ALICE).await;
    gate.sensor(
        parkgate_hal::Sensor::Arming,
        parkgate_hal::SensorState::Clear,
    )
    .await;
    gate.sensor(
        parkgate_hal::Sensor::Safety,
        parkgate_hal::SensorState::Occupied,
    )
    .await;
    // Long past the close delay and the pass timeout: still over the car.
    gate.advance(60_000).await;
    assert_eq!(gate.settle().await["barrier"], "up");

    assert_eq!(gate.terminate().await.code(), Some(0), "{}", gate.log());
    let after = gate.outputs_until_closed().await;
    assert!(
        !after.iter().any(|o| matches!(
            o,
            parkgate_hal::sim::SimOutput::Barrier {
                cmd: parkgate_hal::BarrierCommand::Down
            }
        )),
        "the barrier was commanded down on the car: {after:?}"
    );

    // The next start finds the arm up over the car (the sim starts as the
    // config says; a Pi reads its pins) and keeps it there.
    let mut text = std::fs::read_to_string(&gate.config).unwrap();
    for key in ["safety", "barrier_up"] {
        text = text.replace(
            &format!("{key} = \"clear\""),
            &format!("{key} = \"occupied\""),
        );
    }
    std::fs::write(&gate.config, text).unwrap();
    let mut gate = gate.restart(common::START).await;
    gate.advance(60_000).await;
    assert_eq!(gate.settle().await["barrier"], "up");
    assert_eq!(
        gate.sim_state().await.barrier,
        parkgate_hal::BarrierCommand::Up
    );
}
