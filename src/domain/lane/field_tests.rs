//! What a field test of the lane found, one test each: every card read goes
//! through the lane's rules, the reader's health is the lane's to report,
//! the lamps go back to idle, a restart with the arm up, and a sensor edge
//! never waits for the store.

use super::tests::{
    admitted, barrier, config, deny, kinds, new_lane, ok, records, sensor, shows, started,
};
use super::*;
use crate::domain::contract::{AlertKind, DenyReason};
use crate::domain::model::Role;
use crate::domain::policy;

use BarrierCommand::{Down, Up};
use SensorState::{Clear, Occupied};

#[test]
fn a_failed_authentication_is_refused_with_wrong_card_on_an_entry() {
    let mut lane = new_lane(Role::Entry);
    sensor(&mut lane, Sensor::Arming, Occupied, 0);
    let actions = lane.step(Input::CardAuthFailed("04A1".into()), at(10));
    assert!(
        !actions.iter().any(|a| matches!(a, Action::Decide(_))),
        "a clone is refused without asking the store"
    );
    assert!(matches!(&records(&actions)[..], [ev] if matches!(&ev[..],
        [EventBody::Denied(d), EventBody::Alert(a)]
            if d.reason == DenyReason::CredentialAuthFailed && a.alert == AlertKind::WrongCard)));
    assert_eq!(shows(&actions)[0].light, Light::Red);
    assert!(barrier(&actions).is_empty());
}

#[test]
fn a_failed_authentication_repeated_is_one_tap() {
    let mut lane = new_lane(Role::Entry);
    sensor(&mut lane, Sensor::Arming, Occupied, 0);
    lane.step(Input::CardAuthFailed("04A1".into()), at(10));
    lane.step(ok(), at(20));
    assert!(
        lane.step(Input::CardAuthFailed("04A1".into()), at(1000))
            .is_empty(),
        "held on the reader: one denial, not one per read"
    );
}

#[test]
fn a_failed_authentication_on_an_exit_lets_the_car_out_unidentified() {
    let mut lane = new_lane(Role::Exit);
    sensor(&mut lane, Sensor::Arming, Occupied, 0);
    let actions = lane.step(Input::CardAuthFailed("04A1".into()), at(10));
    assert!(matches!(&records(&actions)[..], [ev] if matches!(&ev[..],
        [EventBody::CheckOut(c), EventBody::Alert(a)]
            if c.passage.card.as_deref() == Some("04A1") && a.alert == AlertKind::WrongCard)));
    assert_eq!(barrier(&lane.step(ok(), at(20))), vec![Up]);
}

#[test]
fn a_failed_authentication_without_a_vehicle_is_no_vehicle_present() {
    let mut lane = new_lane(Role::Exit);
    let actions = lane.step(Input::CardAuthFailed("04A1".into()), at(10));
    assert!(barrier(&actions).is_empty());
    assert!(matches!(&records(&actions)[..], [ev] if matches!(&ev[..],
        [EventBody::Denied(d)] if d.reason == DenyReason::NoVehiclePresent)));
}

#[test]
fn reads_while_the_barrier_is_up_for_someone_else_leave_their_green_alone() {
    let mut lane = admitted(Role::Entry, Direction::In, VehicleClass::Standard);
    for input in [
        Input::CardAuthFailed("0BAD".into()),
        Input::Misread,
        Input::Card("04B2".into()),
    ] {
        let actions = lane.step(input.clone(), at(1500));
        assert!(actions.is_empty(), "{input:?} while open: {actions:?}");
    }
}

#[test]
fn a_misread_asks_to_tap_again_when_the_lane_is_free() {
    let mut lane = new_lane(Role::Entry);
    let actions = lane.step(Input::Misread, at(10));
    assert_eq!(
        shows(&actions),
        vec![Signal {
            light: Light::Red,
            beep: true,
            text: TAP_AGAIN.into()
        }]
    );
    assert!(records(&actions).is_empty());
}

#[test]
fn the_reader_going_offline_and_back_is_one_alert_each() {
    let mut lane = new_lane(Role::Entry);
    let offline = Input::Reader(ReaderHealth::Offline("no answer on /dev/ttyAMA0".into()));
    let actions = lane.step(offline.clone(), at(0));
    assert_eq!(kinds(&actions), vec![AlertKind::ReaderOffline]);
    assert!(!lane.status().reader_online);
    assert!(lane.step(offline, at(1)).is_empty(), "said once");
    let actions = lane.step(Input::Reader(ReaderHealth::Online), at(2));
    assert_eq!(kinds(&actions), vec![AlertKind::ReaderOnline]);
    assert!(lane.status().reader_online);
    assert!(
        lane.step(Input::Reader(ReaderHealth::Online), at(3))
            .is_empty()
    );
}

#[test]
fn an_unreadable_store_refuses_an_entry_out_of_order_and_opens_an_exit() {
    let decision = policy::unreadable("04A1", "disk I/O error");
    let mut entry = new_lane(Role::Entry);
    sensor(&mut entry, Sensor::Arming, Occupied, 0);
    entry.step(Input::Card("04A1".into()), at(0));
    let actions = entry.step(Input::Decided(decision.clone()), at(5));
    assert!(barrier(&actions).is_empty());
    assert_eq!(shows(&actions)[0].text, OUT_OF_ORDER);
    assert_eq!(kinds(&actions), vec![AlertKind::StorageFault]);

    let mut exit = new_lane(Role::Exit);
    sensor(&mut exit, Sensor::Arming, Occupied, 0);
    exit.step(Input::Card("04A1".into()), at(0));
    let actions = exit.step(Input::Decided(decision), at(5));
    assert_eq!(kinds(&actions), vec![AlertKind::StorageFault]);
    assert_eq!(
        barrier(&exit.step(ok(), at(10))),
        vec![Up],
        "an exit never traps"
    );
}

#[test]
fn the_lamps_go_back_to_idle_after_the_signal_time() {
    let mut cfg = config(Role::Entry);
    cfg.timings.signal_s = 5;
    cfg.timings.idle_light = IdleLight::Dark;
    let mut lane = started(cfg, Sensors::default());
    sensor(&mut lane, Sensor::Arming, Occupied, 0);
    lane.step(Input::Card("0BAD".into()), at(1000));
    let actions = lane.step(
        Input::Decided(deny("0BAD", DenyReason::UnknownCard)),
        at(1000),
    );
    assert_eq!(shows(&actions)[0].light, Light::Red);
    assert!(
        actions.contains(&Action::WakeAt(at(6000))),
        "woken to end the signal: {actions:?}"
    );
    assert!(shows(&lane.step(Input::Tick, at(5999))).is_empty());
    let actions = lane.step(Input::Tick, at(6000));
    assert_eq!(
        shows(&actions),
        vec![Signal {
            light: Light::Off,
            beep: false,
            text: IDLE_TEXT.into()
        }]
    );
}

#[test]
fn a_green_never_stays_lit_over_a_lowered_arm() {
    // The test config shows a signal for an hour: only the arm can end it.
    let mut lane = admitted(Role::Entry, Direction::In, VehicleClass::Standard);
    sensor(&mut lane, Sensor::Safety, Occupied, 1500);
    sensor(&mut lane, Sensor::Safety, Clear, 2000);
    let actions = lane.step(Input::Tick, at(2500));
    assert_eq!(barrier(&actions), vec![Down]);
    assert_eq!(
        shows(&actions).last().map(|s| s.light),
        Some(Light::Red),
        "the idle red, though the green's time has not run out"
    );
}

#[test]
fn the_idle_lamps_show_at_start_up() {
    let mut lane = Lane::new(config(Role::Entry), Sensors::default(), at(0));
    let actions = lane.step(Input::Tick, at(0));
    assert_eq!(shows(&actions).len(), 1);
    assert_eq!(shows(&actions)[0].light, Light::Red);
    assert!(barrier(&actions).is_empty(), "no output pulses at start-up");
}

#[test]
fn a_restart_with_the_arm_up_and_a_car_under_it_keeps_it_up_until_the_car_leaves() {
    let sensors = Sensors {
        arming: Clear,
        safety: Occupied,
        barrier_up: Some(Occupied),
    };
    let mut lane = Lane::new(config(Role::Entry), sensors, at(0));
    let actions = lane.step(Input::Tick, at(0));
    assert!(
        barrier(&actions).is_empty(),
        "nothing commanded at start-up"
    );
    assert_eq!(lane.status().barrier, Up, "the arm is taken where it is");
    assert!(barrier(&lane.step(Input::Tick, at(10_000))).is_empty());

    let actions = sensor(&mut lane, Sensor::Safety, Clear, 20_000);
    assert!(
        kinds(&actions).is_empty(),
        "the car that was there at start-up is nobody's passage: {actions:?}"
    );
    assert_eq!(barrier(&lane.step(Input::Tick, at(20_500))), vec![Down]);
}

#[test]
fn a_vehicle_under_the_arm_just_after_start_up_is_no_reason_to_raise_it() {
    // The arm was found down: nothing is falling, whatever the clock says.
    let mut lane = new_lane(Role::Entry);
    let actions = sensor(&mut lane, Sensor::Safety, Occupied, 1);
    assert!(barrier(&actions).is_empty(), "{actions:?}");
}

#[test]
fn a_restart_with_the_arm_up_and_nothing_under_it_lowers_it() {
    let sensors = Sensors {
        barrier_up: Some(Occupied),
        ..Sensors::default()
    };
    let mut lane = Lane::new(config(Role::Entry), sensors, at(0));
    lane.step(Input::Tick, at(0));
    assert_eq!(barrier(&lane.step(Input::Tick, at(500))), vec![Down]);
}

#[test]
fn a_safety_edge_during_a_commit_is_acted_on_at_once() {
    // The arm is coming down behind a car; a denial is being committed
    // (slowly, on an SD card) when the next car noses onto the safety loop.
    let mut lane = admitted(Role::Entry, Direction::In, VehicleClass::Standard);
    sensor(&mut lane, Sensor::Safety, Occupied, 2000);
    sensor(&mut lane, Sensor::Safety, Clear, 3000);
    assert_eq!(barrier(&lane.step(Input::Tick, at(3500))), vec![Down]);
    sensor(&mut lane, Sensor::Arming, Occupied, 3600);
    lane.step(Input::Card("0BAD".into()), at(3600));
    let actions = lane.step(
        Input::Decided(deny("0BAD", DenyReason::UnknownCard)),
        at(3600),
    );
    assert_eq!(records(&actions).len(), 1, "the denial's commit is pending");

    let actions = sensor(&mut lane, Sensor::Safety, Occupied, 3700);
    assert_eq!(barrier(&actions), vec![Up], "not after the commit: now");
}

fn at(ms: i64) -> Mono {
    super::tests::at(ms)
}

#[test]
fn events_a_failed_commit_left_are_committed_again_under_the_same_ids() {
    let mut lane = new_lane(Role::Entry);
    let actions = sensor(&mut lane, Sensor::Safety, Occupied, 0);
    assert!(records(&actions).is_empty());
    let actions = sensor(&mut lane, Sensor::Safety, Clear, 100);
    let first = super::tests::drafts(&actions);
    assert_eq!(kinds(&actions), vec![AlertKind::UnauthorizedVehicle]);
    let actions = lane.step(Input::Committed(Err("disk full".into())), at(200));
    assert!(
        actions.contains(&Action::WakeAt(at(200 + RETRY_MS as i64))),
        "a retry is due: {actions:?}"
    );
    assert!(records(&lane.step(Input::Tick, at(5_199))).is_empty());
    let actions = lane.step(Input::Tick, at(5_200));
    assert_eq!(
        super::tests::drafts(&actions),
        first,
        "the same event, the same id"
    );
    assert!(records(&lane.step(ok(), at(5_300))).is_empty(), "done");
    assert!(records(&lane.step(Input::Tick, at(20_000))).is_empty());
}

#[test]
fn a_void_whose_commit_failed_is_tried_again_and_counted_once() {
    let mut lane = admitted(Role::Entry, Direction::In, VehicleClass::Standard);
    assert_eq!(lane.occupancy()[&VehicleClass::Standard], 1);
    // The car turns away: void at the pass timeout, and the disk is full.
    lane.step(Input::Tick, at(31_000));
    lane.step(Input::Committed(Err("disk full".into())), at(31_001));
    assert_eq!(
        lane.occupancy()[&VehicleClass::Standard],
        1,
        "the journal still holds the check_in"
    );
    let actions = lane.step(Input::Tick, at(36_001));
    assert!(matches!(&records(&actions)[..], [ev] if matches!(&ev[..], [EventBody::Void { .. }])));
    lane.step(ok(), at(36_002));
    assert_eq!(lane.occupancy()[&VehicleClass::Standard], 0);
}

#[test]
fn a_lockdown_whose_commit_failed_is_persisted_on_the_retry() {
    let mut lane = new_lane(Role::Entry);
    lane.step(Input::Command(Command::Lockdown, By::Technician), at(0));
    lane.step(Input::Committed(Err("disk full".into())), at(1));
    assert!(lane.lockdown(), "in force at once, whatever the disk says");
    let actions = lane.step(Input::Tick, at(5_001));
    assert!(
        matches!(&actions[..], [Action::Record(c), ..] if c.lockdown == Some(true)),
        "{actions:?}"
    );
}
