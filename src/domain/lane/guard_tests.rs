//! One test per behaviour of the loops, the arm and the timers, with
//! explicit times (milliseconds after 08:00).

use super::tests::{
    admit, admitted, alerts_in, at, barrier, config, id, kinds, new_lane, ok, records, sensor,
};
use super::*;
use crate::domain::contract::{AlertKind, Severity};
use crate::domain::model::Role;

use BarrierCommand::{Down, Up};
use SensorState::{Clear, Fault, Occupied};

#[test]
fn the_barrier_comes_down_close_delay_after_the_vehicle_cleared() {
    let mut lane = admitted(Role::Entry, Direction::In, VehicleClass::Compact);
    sensor(&mut lane, Sensor::Arming, Clear, 2000);
    assert!(barrier(&sensor(&mut lane, Sensor::Safety, Occupied, 2500)).is_empty());
    let actions = sensor(&mut lane, Sensor::Safety, Clear, 4000);
    assert!(barrier(&actions).is_empty(), "not at once");
    assert!(actions.contains(&Action::WakeAt(at(4500))), "{actions:?}");
    assert!(
        records(&actions).is_empty(),
        "an authorised passage raises nothing"
    );
    assert_eq!(lane.status().phase, Phase::Closing);
    assert!(barrier(&lane.step(Input::Tick, at(4499))).is_empty());
    assert_eq!(barrier(&lane.step(Input::Tick, at(4500))), vec![Down]);
    assert_eq!(lane.status().phase, Phase::Idle);
    assert_eq!(
        lane.occupancy()[&VehicleClass::Compact],
        1,
        "a passed vehicle stays counted"
    );
}

#[test]
fn the_barrier_never_comes_down_on_an_occupied_safety_loop() {
    let mut lane = admitted(Role::Entry, Direction::In, VehicleClass::Standard);
    sensor(&mut lane, Sensor::Safety, Occupied, 2000);
    sensor(&mut lane, Sensor::Safety, Clear, 3000);
    // A second vehicle stops under the arm before the close delay ran out.
    sensor(&mut lane, Sensor::Safety, Occupied, 3400);
    for ms in [3500, 10_000, 100_000] {
        assert!(
            barrier(&lane.step(Input::Tick, at(ms))).is_empty(),
            "down at {ms}"
        );
    }
    let actions = sensor(&mut lane, Sensor::Safety, Clear, 100_100);
    assert!(barrier(&actions).is_empty());
    assert_eq!(
        barrier(&lane.step(Input::Tick, at(100_600))),
        vec![Down],
        "close delay counts from the clear"
    );
}

#[test]
fn the_arm_goes_back_up_when_a_vehicle_reaches_it_while_falling() {
    let mut lane = admitted(Role::Entry, Direction::In, VehicleClass::Standard);
    sensor(&mut lane, Sensor::Safety, Occupied, 2000);
    sensor(&mut lane, Sensor::Safety, Clear, 3000);
    assert_eq!(barrier(&lane.step(Input::Tick, at(3500))), vec![Down]);
    assert_eq!(
        barrier(&sensor(&mut lane, Sensor::Safety, Occupied, 5000)),
        vec![Up],
        "within the fall time"
    );
    let actions = sensor(&mut lane, Sensor::Safety, Clear, 6000);
    assert_eq!(kinds(&actions), vec![AlertKind::Tailgating]);
    assert_eq!(barrier(&lane.step(Input::Tick, at(6500))), vec![Down]);
    // Fully down: a vehicle on the loop now does not lift it.
    assert!(barrier(&sensor(&mut lane, Sensor::Safety, Occupied, 20_000)).is_empty());
}

#[test]
fn a_faulted_safety_loop_counts_as_occupied_and_raises_loop_fault_once() {
    let mut lane = admitted(Role::Entry, Direction::In, VehicleClass::Standard);
    sensor(&mut lane, Sensor::Arming, Clear, 1500);
    sensor(&mut lane, Sensor::Safety, Occupied, 2000);
    let actions = sensor(&mut lane, Sensor::Safety, Fault, 2500);
    assert_eq!(kinds(&actions), vec![AlertKind::LoopFault]);
    let actions = sensor(&mut lane, Sensor::Safety, Fault, 2600);
    assert!(kinds(&actions).is_empty(), "once per episode");
    for ms in [5000, 40_000, 200_000] {
        let actions = lane.step(Input::Tick, at(ms));
        assert!(
            barrier(&actions).is_empty(),
            "down on a faulted loop at {ms}"
        );
        assert!(!kinds(&actions).contains(&AlertKind::LoopFault));
    }
    assert!(lane.status().fault);
}

#[test]
fn a_loop_occupied_too_long_raises_loop_fault_once() {
    let mut lane = new_lane(Role::Entry);
    sensor(&mut lane, Sensor::Arming, Occupied, 1000);
    assert!(kinds(&lane.step(Input::Tick, at(120_999))).is_empty());
    let actions = lane.step(Input::Tick, at(121_000));
    let alerts = alerts_in(&actions);
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].alert, AlertKind::LoopFault);
    assert!(
        alerts[0].message.contains("arming loop"),
        "{}",
        alerts[0].message
    );
    assert!(kinds(&lane.step(Input::Tick, at(500_000))).is_empty());
    // A new episode may alert again.
    sensor(&mut lane, Sensor::Arming, Clear, 500_001);
    sensor(&mut lane, Sensor::Arming, Occupied, 500_002);
    assert_eq!(
        kinds(&lane.step(Input::Tick, at(620_002))),
        vec![AlertKind::LoopFault]
    );
}

#[test]
fn a_vehicle_that_never_passes_is_voided_and_uncounted() {
    let mut lane = admitted(Role::Entry, Direction::In, VehicleClass::Large);
    assert_eq!(lane.occupancy()[&VehicleClass::Large], 1);
    assert!(barrier(&lane.step(Input::Tick, at(30_999))).is_empty());
    let actions = lane.step(Input::Tick, at(31_000));
    assert_eq!(
        records(&actions),
        vec![vec![EventBody::Void {
            related_event_id: id(0)
        }]]
    );
    assert_eq!(barrier(&actions), vec![Down]);
    assert_eq!(
        lane.occupancy()[&VehicleClass::Large],
        1,
        "until the void is committed"
    );
    lane.step(ok(), at(31_010));
    assert_eq!(lane.occupancy()[&VehicleClass::Large], 0);
    assert_eq!(
        lane.counters().exited[&VehicleClass::Large],
        1,
        "counters only grow"
    );
}

#[test]
fn a_voided_exit_counts_back_in() {
    let mut lane = admitted(Role::Exit, Direction::Out, VehicleClass::Standard);
    assert_eq!(lane.occupancy()[&VehicleClass::Standard], -1);
    lane.step(Input::Tick, at(31_000));
    lane.step(ok(), at(31_000));
    assert_eq!(lane.occupancy()[&VehicleClass::Standard], 0);
}

#[test]
fn the_pass_timeout_waits_for_a_vehicle_on_the_safety_loop() {
    let mut lane = admitted(Role::Entry, Direction::In, VehicleClass::Standard);
    sensor(&mut lane, Sensor::Safety, Occupied, 29_000);
    let actions = lane.step(Input::Tick, at(31_000));
    assert!(
        records(&actions).is_empty() && barrier(&actions).is_empty(),
        "{actions:?}"
    );
    let actions = sensor(&mut lane, Sensor::Safety, Clear, 33_000);
    assert!(
        records(&actions).is_empty(),
        "it passed late: no void, no alert"
    );
    assert_eq!(lane.occupancy()[&VehicleClass::Standard], 1);
}

#[test]
fn a_second_vehicle_on_one_authorisation_is_tailgating() {
    let mut lane = admitted(Role::Entry, Direction::In, VehicleClass::Standard);
    sensor(&mut lane, Sensor::Safety, Occupied, 2000);
    assert!(records(&sensor(&mut lane, Sensor::Safety, Clear, 2200)).is_empty());
    sensor(&mut lane, Sensor::Safety, Occupied, 2300);
    let alerts = alerts_in(&sensor(&mut lane, Sensor::Safety, Clear, 2600));
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].alert, AlertKind::Tailgating);
    assert_eq!(alerts[0].related_event_id.as_deref(), Some(id(0).as_str()));
    assert_eq!(alerts[0].card.as_deref(), Some("04A1"));
    assert_eq!(
        lane.occupancy()[&VehicleClass::Standard],
        1,
        "a tailgater is not a check_in"
    );
}

#[test]
fn a_vehicle_through_a_closed_barrier_is_unauthorized() {
    let mut lane = new_lane(Role::Entry);
    sensor(&mut lane, Sensor::Safety, Occupied, 10_000);
    let actions = sensor(&mut lane, Sensor::Safety, Clear, 11_000);
    let alerts = alerts_in(&actions);
    assert_eq!(alerts.len(), 1);
    assert_eq!(
        (alerts[0].alert, alerts[0].severity),
        (AlertKind::UnauthorizedVehicle, Severity::Critical)
    );
    // A fault that clears is not a vehicle.
    sensor(&mut lane, Sensor::Safety, Fault, 12_000);
    assert!(kinds(&sensor(&mut lane, Sensor::Safety, Clear, 13_000)).is_empty());
}

#[test]
fn the_barrier_going_up_without_a_command_is_forced() {
    let sensors = Sensors {
        barrier_up: Some(Clear),
        ..Sensors::default()
    };
    let mut lane = Lane::new(config(Role::Entry), sensors, at(0));
    let actions = sensor(&mut lane, Sensor::BarrierUp, Occupied, 5000);
    assert_eq!(kinds(&actions), vec![AlertKind::BarrierForced]);

    // Up on command is no alert.
    let mut lane = admitted(Role::Entry, Direction::In, VehicleClass::Standard);
    assert!(kinds(&sensor(&mut lane, Sensor::BarrierUp, Occupied, 1500)).is_empty());
}

#[test]
fn a_barrier_up_with_nothing_passing_is_held_open_once() {
    let mut lane = admitted(Role::Entry, Direction::In, VehicleClass::Standard);
    // The car stops on the safety loop: no void, no lowering, and after
    // held_open_s the alert names the passage.
    sensor(&mut lane, Sensor::Safety, Occupied, 2000);
    assert!(kinds(&lane.step(Input::Tick, at(60_999))).is_empty());
    let alerts = alerts_in(&lane.step(Input::Tick, at(61_000)));
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].alert, AlertKind::BarrierHeldOpen);
    assert_eq!(alerts[0].related_event_id.as_deref(), Some(id(0).as_str()));
    let later = kinds(&lane.step(Input::Tick, at(200_000)));
    assert_eq!(
        later,
        vec![AlertKind::LoopFault; 2],
        "held open once (both loops are another matter)"
    );
}

#[test]
fn an_arm_stuck_up_after_down_is_held_open() {
    let sensors = Sensors {
        barrier_up: Some(Clear),
        ..Sensors::default()
    };
    let mut lane = Lane::new(config(Role::Entry), sensors, at(0));
    sensor(&mut lane, Sensor::Arming, Occupied, 0);
    lane.step(Input::Card("04A1".into()), at(0));
    lane.step(
        Input::Decided(admit(Direction::In, "04A1", None, vec![])),
        at(0),
    );
    lane.step(ok(), at(0));
    sensor(&mut lane, Sensor::BarrierUp, Occupied, 1000);
    assert_eq!(
        barrier(&lane.step(Input::Tick, at(30_000))),
        vec![Down],
        "timed out"
    );
    assert!(kinds(&lane.step(Input::Tick, at(89_999))).is_empty());
    let alerts = alerts_in(&lane.step(Input::Tick, at(90_000)));
    assert_eq!(alerts.len(), 1);
    assert!(
        alerts[0].message.contains("told to close"),
        "{}",
        alerts[0].message
    );
    // Once it does come down, all is well.
    assert!(kinds(&sensor(&mut lane, Sensor::BarrierUp, Clear, 91_000)).is_empty());
}

#[test]
fn startup_faults_are_reported_on_the_first_tick() {
    let sensors = Sensors {
        arming: Fault,
        safety: Clear,
        barrier_up: Some(Fault),
    };
    let mut lane = Lane::new(config(Role::Entry), sensors, at(0));
    let mut got = kinds(&lane.step(Input::Tick, at(0)));
    got.sort_by_key(|k| format!("{k:?}"));
    assert_eq!(got, vec![AlertKind::BarrierFault, AlertKind::LoopFault]);
    assert!(lane.status().fault);
}

#[test]
fn wake_at_is_given_only_when_it_changes() {
    let mut lane = admitted(Role::Entry, Direction::In, VehicleClass::Standard);
    let actions = lane.step(Input::Tick, at(2000));
    assert!(
        !actions.iter().any(|a| matches!(a, Action::WakeAt(_))),
        "{actions:?}"
    );
}
