//! One test per behaviour of a card's way through the lane, with explicit
//! times (milliseconds after 08:00); the shared helpers live here too.

use super::flow::check_out;
use super::*;
use crate::domain::contract::{Alert, AlertKind, Denied, DenyReason, Passage, Severity};
use crate::domain::lane::LaneTimings;
use crate::domain::model::{PlanKind, Role};
use crate::domain::policy::Decision;

use BarrierCommand::{Down, Up};
use SensorState::{Clear, Occupied};

/// `ms` milliseconds on the lane's monotonic clock.
pub(super) fn at(ms: i64) -> Mono {
    Mono::from_ms(u64::try_from(ms).expect("test times are not negative"))
}

/// Where the test lanes' event ids start: ids are this, plus one per event.
pub(super) const FIRST_ID: ulid::Ulid = ulid::Ulid(1 << 90);

/// The id of the `n`th event a test lane minted (0: the first).
pub(super) fn id(n: u128) -> String {
    ulid::Ulid(FIRST_ID.0 + n).to_string()
}

/// Short, distinct timings so each one can be told apart.
pub(super) fn timings() -> LaneTimings {
    LaneTimings {
        require_vehicle: true,
        repeat_read_ms: 3000,
        pass_timeout_s: 30,
        held_open_s: 60,
        loop_fault_s: 120,
        close_delay_ms: 500,
        // Long, so tests of other rules see no lamp changes; the lamp tests
        // set their own.
        signal_s: 3600,
        idle_light: IdleLight::Red,
    }
}

pub(super) fn config(role: Role) -> LaneConfig {
    LaneConfig {
        role,
        timings: timings(),
        lockdown: false,
        fall_ms: 4000,
        first_id: FIRST_ID,
    }
}

pub(super) fn passage(card: &str, class: Option<VehicleClass>) -> Passage {
    Passage {
        card: Some(card.to_string()),
        user_id: Some("u-17".into()),
        user_name: Some("Alice Tran".into()),
        vehicle_id: class.map(|_| "v-9".into()),
        vehicle_class: class,
        reservation_id: None,
        spot_id: None,
        plan: Some(PlanKind::Monthly),
        walk_in: true,
    }
}

pub(super) fn admit(
    direction: Direction,
    card: &str,
    class: Option<VehicleClass>,
    alerts: Vec<Alert>,
) -> Decision {
    let event = match direction {
        Direction::In => EventBody::CheckIn(passage(card, class)),
        Direction::Out => check_out(passage(card, class)),
    };
    Decision::Admit {
        direction,
        event,
        alerts,
        display: "Welcome Alice Tran".into(),
    }
}

pub(super) fn policy_alert(kind: AlertKind, card: &str) -> Alert {
    Alert {
        alert: kind,
        severity: Severity::Warning,
        message: "Policy says so.".into(),
        card: Some(card.to_string()),
        user_id: None,
        related_event_id: None,
    }
}

pub(super) fn deny(card: &str, reason: DenyReason) -> Decision {
    Decision::Deny {
        denied: Denied {
            card: Some(card.to_string()),
            reason,
            user_id: None,
            user_name: None,
        },
        alert: reason
            .is_wrong_card()
            .then(|| policy_alert(AlertKind::WrongCard, card)),
        display: "Card not valid - call security".into(),
    }
}

pub(super) fn alerts_in(actions: &[Action]) -> Vec<Alert> {
    records(actions)
        .into_iter()
        .flatten()
        .filter_map(|e| match e {
            EventBody::Alert(a) => Some(a),
            _ => None,
        })
        .collect()
}

pub(super) fn kinds(actions: &[Action]) -> Vec<AlertKind> {
    alerts_in(actions).into_iter().map(|a| a.alert).collect()
}

pub(super) fn records(actions: &[Action]) -> Vec<Vec<EventBody>> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Record(commit) => Some(commit.events.iter().map(|d| d.body.clone()).collect()),
            _ => None,
        })
        .collect()
}

pub(super) fn barrier(actions: &[Action]) -> Vec<BarrierCommand> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Barrier(b) => Some(*b),
            _ => None,
        })
        .collect()
}

pub(super) fn shows(actions: &[Action]) -> Vec<Signal> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Show(s) => Some(s.clone()),
            _ => None,
        })
        .collect()
}

/// A lane started as the daemon starts one: a first tick (idle lamps) at 0.
pub(super) fn new_lane(role: Role) -> Lane {
    started(config(role), Sensors::default())
}

pub(super) fn started(cfg: LaneConfig, sensors: Sensors) -> Lane {
    let mut lane = Lane::new(cfg, sensors, at(0));
    lane.step(Input::Tick, at(0));
    lane
}

pub(super) fn sensor(lane: &mut Lane, sensor: Sensor, state: SensorState, ms: i64) -> Vec<Action> {
    lane.step(Input::Sensor(sensor, state), at(ms))
}

/// The store committed the oldest Record.
pub(super) fn ok() -> Input {
    Input::Committed(Ok(()))
}

/// The drafts of every Record in `actions`, in order.
pub(super) fn drafts(actions: &[Action]) -> Vec<Draft> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Record(commit) => Some(commit.events.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

/// A vehicle on the arming loop taps `card` at 1 s, the policy admits it and
/// the store commits `e1`: the barrier is up at 1 s.
pub(super) fn admitted(role: Role, direction: Direction, class: VehicleClass) -> Lane {
    let mut lane = new_lane(role);
    sensor(&mut lane, Sensor::Arming, Occupied, 500);
    lane.step(Input::Card("04A1".into()), at(1000));
    lane.step(
        Input::Decided(admit(direction, "04A1", Some(class), vec![])),
        at(1000),
    );
    let actions = lane.step(ok(), at(1000));
    assert_eq!(barrier(&actions), vec![Up]);
    lane
}

#[test]
fn admit_records_the_check_in_before_the_barrier_rises() {
    let mut lane = new_lane(Role::Entry);
    sensor(&mut lane, Sensor::Arming, Occupied, 500);
    assert_eq!(
        lane.step(Input::Card("04A1".into()), at(1000)),
        vec![Action::Decide("04A1".into())]
    );
    assert_eq!(lane.status().phase, Phase::Deciding);

    let decision = admit(Direction::In, "04A1", Some(VehicleClass::Standard), vec![]);
    let actions = lane.step(Input::Decided(decision), at(1010));
    assert_eq!(
        records(&actions),
        vec![vec![EventBody::CheckIn(passage(
            "04A1",
            Some(VehicleClass::Standard)
        ))]]
    );
    assert!(barrier(&actions).is_empty(), "no barrier before the commit");
    assert_eq!(lane.status().phase, Phase::Committing);
    assert_eq!(lane.occupancy()[&VehicleClass::Standard], 0);

    let actions = lane.step(ok(), at(1020));
    assert_eq!(barrier(&actions), vec![Up]);
    assert_eq!(
        shows(&actions),
        vec![Signal {
            light: Light::Green,
            beep: false,
            text: "Welcome Alice Tran".into()
        }]
    );
    assert!(
        actions.contains(&Action::WakeAt(at(31_020))),
        "pass timeout is due: {actions:?}"
    );
    assert_eq!(lane.occupancy()[&VehicleClass::Standard], 1);
    assert_eq!(lane.status().phase, Phase::Open);
}

#[test]
fn policy_alerts_are_recorded_in_the_passages_transaction() {
    let mut lane = new_lane(Role::Both);
    sensor(&mut lane, Sensor::Arming, Occupied, 0);
    lane.step(Input::Card("04A1".into()), at(0));
    let alert = policy_alert(AlertKind::AntiPassback, "04A1");
    let actions = lane.step(
        Input::Decided(admit(Direction::In, "04A1", None, vec![alert])),
        at(0),
    );
    let drafts = drafts(&actions);
    assert!(
        matches!(&drafts[..], [check_in, alert]
            if matches!(&check_in.body, EventBody::CheckIn(_))
                && matches!(&alert.body, EventBody::Alert(a) if a.alert == AlertKind::AntiPassback
                    && a.related_event_id.as_deref() == Some(check_in.event_id.as_str()))),
        "check_in and its alert, naming it, in one transaction: {drafts:?}"
    );
    assert_eq!(records(&actions).len(), 1, "one transaction");

    let actions = lane.step(ok(), at(10));
    assert!(records(&actions).is_empty(), "nothing left to record");
    assert_eq!(barrier(&actions), vec![Up]);
}

#[test]
fn a_refusal_shows_red_and_records_denied_with_its_alert() {
    let mut lane = new_lane(Role::Entry);
    sensor(&mut lane, Sensor::Arming, Occupied, 0);
    lane.step(Input::Card("0BAD".into()), at(100));
    let actions = lane.step(
        Input::Decided(deny("0BAD", DenyReason::CardRevoked)),
        at(110),
    );
    assert!(barrier(&actions).is_empty());
    assert_eq!(shows(&actions)[0].light, Light::Red);
    let recs = records(&actions);
    assert_eq!(recs.len(), 1);
    assert!(matches!(&recs[0][..],
        [EventBody::Denied(d), EventBody::Alert(a)]
            if d.reason == DenyReason::CardRevoked && a.alert == AlertKind::WrongCard));

    assert!(records(&lane.step(ok(), at(120))).is_empty());
    assert_eq!(lane.status().phase, Phase::Idle);
}

#[test]
fn an_exit_lets_the_vehicle_out_even_when_the_store_fails() {
    let mut lane = new_lane(Role::Exit);
    sensor(&mut lane, Sensor::Arming, Occupied, 0);
    lane.step(Input::Card("04A1".into()), at(0));
    lane.step(
        Input::Decided(admit(
            Direction::Out,
            "04A1",
            Some(VehicleClass::Standard),
            vec![],
        )),
        at(0),
    );
    let actions = lane.step(Input::Committed(Err("disk full".into())), at(10));
    assert_eq!(barrier(&actions), vec![Up]);
    assert_eq!(shows(&actions)[0].light, Light::Green);
    let alerts = alerts_in(&actions);
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].alert, AlertKind::StorageFault);
    assert!(alerts[0].message.contains("disk full"));
    assert_eq!(
        lane.occupancy()[&VehicleClass::Standard],
        0,
        "nothing recorded, nothing counted"
    );
    // Never passed: nothing to void, the arm just comes down.
    let actions = lane.step(Input::Tick, at(30_010));
    assert_eq!(barrier(&actions), vec![Down]);
    assert!(records(&actions).is_empty());
}

#[test]
fn an_entry_stays_shut_when_the_store_fails() {
    let mut lane = new_lane(Role::Entry);
    sensor(&mut lane, Sensor::Arming, Occupied, 0);
    lane.step(Input::Card("04A1".into()), at(0));
    lane.step(
        Input::Decided(admit(
            Direction::In,
            "04A1",
            Some(VehicleClass::Standard),
            vec![],
        )),
        at(0),
    );
    let actions = lane.step(Input::Committed(Err("disk full".into())), at(10));
    assert!(barrier(&actions).is_empty());
    assert_eq!(
        shows(&actions),
        vec![Signal {
            light: Light::Red,
            beep: true,
            text: OUT_OF_ORDER.into()
        }]
    );
    assert_eq!(kinds(&actions), vec![AlertKind::StorageFault]);
    assert_eq!(lane.occupancy()[&VehicleClass::Standard], 0);
}

#[test]
fn an_exit_lane_lets_a_refused_card_out_unidentified() {
    let mut lane = new_lane(Role::Exit);
    sensor(&mut lane, Sensor::Arming, Occupied, 0);
    lane.step(Input::Card("0BAD".into()), at(0));
    let actions = lane.step(Input::Decided(deny("0BAD", DenyReason::CardExpired)), at(0));
    let recs = records(&actions);
    assert!(
        matches!(&recs[..], [ev] if matches!(&ev[..],
            [EventBody::CheckOut(c), EventBody::Alert(a)]
                if c.passage.card.as_deref() == Some("0BAD") && c.passage.vehicle_class.is_none()
                    && a.alert == AlertKind::WrongCard)),
        "the check_out, and the wrong_card alert kept beside it: {recs:?}"
    );
    let actions = lane.step(ok(), at(10));
    assert_eq!(barrier(&actions), vec![Up]);
}

#[test]
fn the_same_card_again_within_the_window_is_one_tap() {
    let mut lane = new_lane(Role::Entry);
    sensor(&mut lane, Sensor::Arming, Occupied, 0);
    lane.step(Input::Card("0BAD".into()), at(1000));
    lane.step(
        Input::Decided(deny("0BAD", DenyReason::UnknownCard)),
        at(1010),
    );
    lane.step(ok(), at(1020));
    // The card is still on the reader: read again and again.
    assert!(lane.step(Input::Card("0BAD".into()), at(3000)).is_empty());
    assert!(
        lane.step(Input::Card("0BAD".into()), at(5500)).is_empty(),
        "the window slides with each read"
    );
    assert_eq!(
        lane.step(Input::Card("0BAD".into()), at(8500)),
        vec![Action::Decide("0BAD".into())]
    );
}

#[test]
fn a_card_without_a_vehicle_is_denied_no_vehicle_present_naming_its_user() {
    let mut lane = new_lane(Role::Entry);
    let actions = lane.step(Input::Card("04A1".into()), at(1000));
    assert_eq!(
        actions,
        vec![Action::Decide("04A1".into())],
        "the policy is asked who it is"
    );
    let decision = admit(Direction::In, "04A1", Some(VehicleClass::Standard), vec![]);
    let actions = lane.step(Input::Decided(decision), at(1010));
    assert!(barrier(&actions).is_empty(), "nobody to let in");
    assert_eq!(
        shows(&actions),
        vec![Signal {
            light: Light::Red,
            beep: true,
            text: NO_VEHICLE.into()
        }]
    );
    let recs = records(&actions);
    assert!(
        matches!(&recs[..], [ev] if matches!(&ev[..], [EventBody::Denied(d)]
            if d.reason == DenyReason::NoVehiclePresent && d.card.as_deref() == Some("04A1")
                && d.user_id.as_deref() == Some("u-17") && d.user_name.as_deref() == Some("Alice Tran"))),
        "{recs:?}"
    );
    lane.step(ok(), at(1020));
    assert!(
        lane.step(Input::Card("04A1".into()), at(1500)).is_empty(),
        "a repeat read"
    );
    // The driver rolls onto the loop and taps again at once.
    sensor(&mut lane, Sensor::Arming, Occupied, 2000);
    assert_eq!(
        lane.step(Input::Card("04A1".into()), at(2100)),
        vec![Action::Decide("04A1".into())]
    );
}

#[test]
fn an_unknown_card_without_a_vehicle_is_no_vehicle_present_and_blames_nobody() {
    let mut lane = new_lane(Role::Exit);
    lane.step(Input::Card("0BAD".into()), at(0));
    let actions = lane.step(Input::Decided(deny("0BAD", DenyReason::UnknownCard)), at(5));
    assert!(
        barrier(&actions).is_empty(),
        "an exit with no car opens for nobody"
    );
    assert!(kinds(&actions).is_empty(), "no wrong_card without a car");
    assert!(matches!(&records(&actions)[..], [ev] if matches!(&ev[..],
        [EventBody::Denied(d)] if d.reason == DenyReason::NoVehiclePresent && d.user_id.is_none())));
}

#[test]
fn without_require_vehicle_a_card_alone_is_decided() {
    let mut cfg = config(Role::Entry);
    cfg.timings.require_vehicle = false;
    let mut lane = started(cfg, Sensors::default());
    assert_eq!(
        lane.step(Input::Card("04A1".into()), at(0)),
        vec![Action::Decide("04A1".into())]
    );
    let actions = lane.step(
        Input::Decided(admit(Direction::In, "04A1", None, vec![])),
        at(1),
    );
    assert!(
        matches!(&records(&actions)[..], [ev] if matches!(&ev[..], [EventBody::CheckIn(_)])),
        "admitted with nothing on the loop"
    );
}

#[test]
fn another_card_while_busy_is_ignored() {
    let mut lane = new_lane(Role::Entry);
    sensor(&mut lane, Sensor::Arming, Occupied, 0);
    lane.step(Input::Card("04A1".into()), at(0));
    assert!(
        lane.step(Input::Card("04B2".into()), at(100)).is_empty(),
        "deciding"
    );
    lane.step(
        Input::Decided(admit(Direction::In, "04A1", None, vec![])),
        at(200),
    );
    assert!(
        lane.step(Input::Card("04B2".into()), at(4000)).is_empty(),
        "committing"
    );
    lane.step(ok(), at(4100));
    assert!(
        lane.step(Input::Card("04B2".into()), at(8000)).is_empty(),
        "open"
    );
    sensor(&mut lane, Sensor::Safety, Occupied, 9000);
    sensor(&mut lane, Sensor::Safety, Clear, 9500);
    let actions = lane.step(Input::Card("04B2".into()), at(12_000));
    assert_eq!(
        actions[0],
        Action::Decide("04B2".into()),
        "free again once the first vehicle passed"
    );
}

#[test]
fn a_stray_answer_changes_nothing() {
    let mut lane = new_lane(Role::Entry);
    assert!(
        lane.step(
            Input::Decided(admit(Direction::In, "04A1", None, vec![])),
            at(0)
        )
        .is_empty()
    );
    assert!(lane.step(ok(), at(0)).is_empty());
    assert_eq!(lane.status().phase, Phase::Idle);
}

#[test]
fn an_open_command_is_one_cardless_passage() {
    for (role, out) in [
        (Role::Entry, false),
        (Role::Both, false),
        (Role::Exit, true),
    ] {
        let mut lane = new_lane(role);
        let actions = lane.step(Input::Command(Command::Open, By::Hq), at(0));
        let recs = records(&actions);
        let expected = if out {
            check_out(Passage::unidentified(None, None, None))
        } else {
            EventBody::CheckIn(Passage::unidentified(None, None, None))
        };
        assert_eq!(recs, vec![vec![expected]], "{role:?}");
        assert!(
            barrier(&actions).is_empty(),
            "{role:?}: no barrier before the commit"
        );
        let actions = lane.step(ok(), at(10));
        assert_eq!(barrier(&actions), vec![Up]);
        assert_eq!(shows(&actions)[0].text, OPENED);
        // Never used: it is voided like any passage.
        let actions = lane.step(Input::Tick, at(30_010));
        assert_eq!(
            records(&actions),
            vec![vec![EventBody::Void {
                related_event_id: id(0)
            }]]
        );
    }
}

#[test]
fn an_open_command_while_busy_waits_its_turn() {
    let mut lane = new_lane(Role::Entry);
    sensor(&mut lane, Sensor::Arming, Occupied, 0);
    lane.step(Input::Card("04A1".into()), at(0));
    assert!(records(&lane.step(Input::Command(Command::Open, By::Hq), at(10))).is_empty());
    let actions = lane.step(
        Input::Decided(deny("04A1", DenyReason::UserSuspended)),
        at(20),
    );
    let recs = records(&actions);
    assert_eq!(recs.len(), 2, "denied, then the queued open: {recs:?}");
    assert!(matches!(&recs[1][..], [EventBody::CheckIn(p)] if p.card.is_none()));
}

#[test]
fn lockdown_is_a_flag_for_the_policy_recorded_and_persisted() {
    let mut lane = new_lane(Role::Entry);
    assert!(!lane.lockdown());
    let actions = lane.step(Input::Command(Command::Lockdown, By::Technician), at(0));
    assert!(lane.lockdown() && lane.status().lockdown);
    let [Action::Record(commit)] = &actions[..] else {
        panic!("one commit: {actions:?}")
    };
    assert_eq!(commit.lockdown, Some(true), "persisted with its alert");
    assert!(matches!(&commit.events[..], [d] if matches!(&d.body,
        EventBody::Alert(a) if a.alert == AlertKind::Lockdown && a.message.contains("technician"))));
    lane.step(ok(), at(0));
    assert!(
        lane.step(Input::Command(Command::Lockdown, By::Hq), at(1))
            .is_empty(),
        "already in lockdown: nothing to record"
    );
    let actions = lane.step(Input::Command(Command::Unlock, By::Hq), at(1));
    assert!(!lane.lockdown());
    assert!(matches!(&actions[..], [Action::Record(c)] if c.lockdown == Some(false)));
    let cfg = LaneConfig {
        lockdown: true,
        ..config(Role::Entry)
    };
    assert!(
        Lane::new(cfg, Sensors::default(), at(0)).lockdown(),
        "restored on restart"
    );
}

#[test]
fn seeded_counters_carry_on() {
    let mut lane = new_lane(Role::Entry);
    let mut seed = Counters::default();
    seed.entered.insert(VehicleClass::Standard, 10);
    seed.exited.insert(VehicleClass::Standard, 4);
    lane.seed_counters(seed);
    assert_eq!(lane.occupancy()[&VehicleClass::Standard], 6);
    assert_eq!(lane.occupancy()[&VehicleClass::Motorcycle], 0);
}
