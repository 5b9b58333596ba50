//! One test per rule of [`super::decide`].

use chrono::DateTime;

use super::*;
use crate::domain::model::VehicleClass;

const LOT: &str = "main";

fn t(s: &str) -> Timestamp {
    DateTime::parse_from_rfc3339(s).unwrap()
}

fn now() -> Timestamp {
    t("2026-11-22T08:00:00+07:00")
}

/// Alice: active card, active user, one primary standard car, monthly plan for `main`.
fn alice() -> Facts {
    Facts {
        credential: "04A1B2C3D4E5F6".into(),
        card: Some(Card {
            card: "04A1B2C3D4E5F6".into(),
            user_id: "u-17".into(),
            status: CardStatus::Active,
            valid_from: Some(t("2026-01-01T00:00:00+07:00")),
            valid_until: Some(t("2027-01-01T00:00:00+07:00")),
        }),
        user: Some(User {
            user_id: "u-17".into(),
            name: "Alice Tran".into(),
            company: Some("acme".into()),
            status: UserStatus::Active,
        }),
        vehicles: vec![vehicle("v-9", VehicleClass::Standard, true)],
        plan: Some(Plan {
            user_id: "u-17".into(),
            kind: PlanKind::Monthly,
            lots: vec![LOT.into()],
            valid_until: Some(t("2026-12-31T23:59:59+07:00")),
            status: PlanStatus::Paid,
        }),
        ..Facts::default()
    }
}

fn vehicle(id: &str, class: VehicleClass, primary: bool) -> Vehicle {
    Vehicle {
        vehicle_id: id.into(),
        user_id: "u-17".into(),
        plate: None,
        class,
        ada: false,
        ev: false,
        primary,
    }
}

fn reservation(start: &str, status: ReservationStatus) -> Reservation {
    Reservation {
        reservation_id: "r-88".into(),
        user_id: "u-17".into(),
        vehicle_id: "v-9".into(),
        lot: LOT.into(),
        spot_id: Some("B1-042".into()),
        class: VehicleClass::Standard,
        start: t(start),
        end: t("2026-11-22T18:00:00+07:00"),
        status,
    }
}

fn inside(since: &str, plan: PlanKind, reservation_id: Option<&str>) -> Presence {
    Presence {
        vehicle_id: "v-9".into(),
        user_id: "u-17".into(),
        class: VehicleClass::Standard,
        ada: false,
        ev: false,
        since: t(since),
        reservation_id: reservation_id.map(Into::into),
        spot_id: None,
        plan,
        event_id: "01JD3W6Q8R9S5T4V7X2Y0Z1A2B".into(),
    }
}

fn capacity() -> Capacity {
    Capacity {
        standard: 10,
        compact: 5,
        ada: [(VehicleClass::Standard, 1)].into(),
        ev: [(VehicleClass::Standard, 1)].into(),
        ..Capacity::default()
    }
}

struct Lane {
    role: Role,
    anti_passback: AntiPassback,
    lockdown: bool,
    capacity: Capacity,
    tariff: Tariff,
}

impl Lane {
    fn entry() -> Lane {
        Lane {
            role: Role::Entry,
            anti_passback: AntiPassback::Hard,
            lockdown: false,
            capacity: capacity(),
            tariff: Tariff::default(),
        }
    }
    fn exit() -> Lane {
        Lane {
            role: Role::Exit,
            ..Lane::entry()
        }
    }
    fn decide(&self, facts: &Facts, now: Timestamp) -> Decision {
        let ctx = Context {
            lot: LOT,
            role: self.role,
            anti_passback: self.anti_passback,
            early_grace_min: 30,
            late_grace_min: 60,
            lockdown: self.lockdown,
            capacity: &self.capacity,
            tariff: &self.tariff,
            tz: chrono_tz::Asia::Ho_Chi_Minh,
        };
        decide(facts, &ctx, now)
    }
}

fn denied(d: &Decision) -> (DenyReason, Option<AlertKind>) {
    match d {
        Decision::Deny { denied, alert, .. } => (denied.reason, alert.as_ref().map(|a| a.alert)),
        other => panic!("expected a denial, got {other:?}"),
    }
}

fn check_in(d: &Decision) -> (Passage, Vec<AlertKind>) {
    match d {
        Decision::Admit {
            direction: Direction::In,
            event: EventBody::CheckIn(p),
            alerts,
            ..
        } => (p.clone(), alerts.iter().map(|a| a.alert).collect()),
        other => panic!("expected a check-in, got {other:?}"),
    }
}

fn check_out(d: &Decision) -> (CheckOut, Vec<Alert>) {
    match d {
        Decision::Admit {
            direction: Direction::Out,
            event: EventBody::CheckOut(c),
            alerts,
            ..
        } => (c.clone(), alerts.clone()),
        other => panic!("expected a check-out, got {other:?}"),
    }
}

/// Fills `n` plain standard spots.
fn fill_standard(facts: &mut Facts, n: u32) {
    facts.load.add(
        Kind {
            class: VehicleClass::Standard,
            ada: false,
            ev: false,
        },
        n,
    );
}

#[test]
fn monthly_plan_walk_in_is_admitted() {
    let d = Lane::entry().decide(&alice(), now());
    let (p, alerts) = check_in(&d);
    assert_eq!(p.plan, Some(PlanKind::Monthly));
    assert!(p.walk_in);
    assert_eq!(p.vehicle_id.as_deref(), Some("v-9"));
    assert_eq!(p.user_name.as_deref(), Some("Alice Tran"));
    assert!(alerts.is_empty());
    assert!(matches!(&d, Decision::Admit { display, .. } if display == "Welcome Alice Tran"));
}

#[test]
fn unknown_card_is_refused_with_wrong_card_alert() {
    let facts = Facts {
        credential: "DEADBEEF".into(),
        ..Facts::default()
    };
    assert_eq!(
        denied(&Lane::entry().decide(&facts, now())),
        (DenyReason::UnknownCard, Some(AlertKind::WrongCard))
    );
}

#[test]
fn revoked_and_lost_cards_are_refused() {
    for status in [CardStatus::Revoked, CardStatus::Lost] {
        let mut facts = alice();
        facts.card.as_mut().unwrap().status = status;
        assert_eq!(
            denied(&Lane::entry().decide(&facts, now())),
            (DenyReason::CardRevoked, Some(AlertKind::WrongCard))
        );
    }
}

#[test]
fn expired_card_is_refused() {
    let d = Lane::entry().decide(&alice(), t("2027-01-02T00:00:00+07:00"));
    assert_eq!(
        denied(&d),
        (DenyReason::CardExpired, Some(AlertKind::WrongCard))
    );
}

#[test]
fn card_not_yet_valid_is_refused() {
    let d = Lane::entry().decide(&alice(), t("2025-12-31T00:00:00+07:00"));
    assert_eq!(
        denied(&d),
        (DenyReason::CardNotYetValid, Some(AlertKind::WrongCard))
    );
}

#[test]
fn suspended_user_is_refused_without_wrong_card_alert() {
    let mut facts = alice();
    facts.user.as_mut().unwrap().status = UserStatus::Suspended;
    let d = Lane::entry().decide(&facts, now());
    assert_eq!(denied(&d), (DenyReason::UserSuspended, None));
    assert!(
        matches!(&d, Decision::Deny { denied, .. } if denied.user_name.as_deref() == Some("Alice Tran"))
    );
}

#[test]
fn plan_for_another_lot_is_wrong_lot() {
    let mut facts = alice();
    facts.plan.as_mut().unwrap().lots = vec!["annex".into()];
    assert_eq!(
        denied(&Lane::entry().decide(&facts, now())),
        (DenyReason::WrongLot, Some(AlertKind::WrongCard))
    );
}

#[test]
fn overdue_plan_is_refused() {
    let mut facts = alice();
    facts.plan.as_mut().unwrap().status = PlanStatus::Overdue;
    assert_eq!(
        denied(&Lane::entry().decide(&facts, now())),
        (DenyReason::PaymentOverdue, None)
    );
}

#[test]
fn expired_monthly_plan_parks_on_the_daily_tariff() {
    let mut facts = alice();
    facts.plan.as_mut().unwrap().valid_until = Some(t("2026-10-31T23:59:59+07:00"));
    assert_eq!(
        check_in(&Lane::entry().decide(&facts, now())).0.plan,
        Some(PlanKind::Daily)
    );
}

#[test]
fn no_plan_or_daily_plan_parks_daily() {
    let mut facts = alice();
    facts.plan = None;
    assert_eq!(
        check_in(&Lane::entry().decide(&facts, now())).0.plan,
        Some(PlanKind::Daily)
    );
    let mut facts = alice();
    facts.plan.as_mut().unwrap().kind = PlanKind::Daily;
    assert_eq!(
        check_in(&Lane::entry().decide(&facts, now())).0.plan,
        Some(PlanKind::Daily)
    );
}

#[test]
fn reservation_within_grace_returns_its_spot_even_when_full() {
    let mut facts = alice();
    fill_standard(&mut facts, 100);
    for start in ["2026-11-22T08:30:00+07:00", "2026-11-22T07:00:00+07:00"] {
        facts.reservations = vec![reservation(start, ReservationStatus::Booked)];
        let d = Lane::entry().decide(&facts, now());
        let (p, _) = check_in(&d);
        assert_eq!(p.reservation_id.as_deref(), Some("r-88"));
        assert_eq!(p.spot_id.as_deref(), Some("B1-042"));
        assert!(!p.walk_in);
        assert!(
            matches!(&d, Decision::Admit { display, .. } if display == "Welcome Alice Tran - spot B1-042")
        );
    }
}

#[test]
fn reservation_too_early_or_too_late_is_a_walk_in_if_room() {
    for start in ["2026-11-22T08:31:00+07:00", "2026-11-22T06:59:00+07:00"] {
        let mut facts = alice();
        facts.reservations = vec![reservation(start, ReservationStatus::Booked)];
        let (p, _) = check_in(&Lane::entry().decide(&facts, now()));
        assert!(p.walk_in, "start {start}");
        assert_eq!(p.reservation_id, None);
        fill_standard(&mut facts, 8);
        assert_eq!(
            denied(&Lane::entry().decide(&facts, now())).0,
            DenyReason::NoCapacity,
            "start {start}"
        );
    }
}

#[test]
fn cancelled_reservation_is_ignored() {
    let mut facts = alice();
    facts.reservations = vec![reservation(
        "2026-11-22T08:00:00+07:00",
        ReservationStatus::Cancelled,
    )];
    let (p, _) = check_in(&Lane::entry().decide(&facts, now()));
    assert!(p.walk_in);
    assert_eq!(p.spot_id, None);
}

#[test]
fn reservation_of_another_lot_is_ignored() {
    let mut facts = alice();
    let mut r = reservation("2026-11-22T08:00:00+07:00", ReservationStatus::Booked);
    r.lot = "annex".into();
    facts.reservations = vec![r];
    assert!(check_in(&Lane::entry().decide(&facts, now())).0.walk_in);
}

#[test]
fn walk_in_needs_room_after_held_reservations() {
    // 10 standard spots, 1 ADA + 1 EV: 8 general. The store counts held
    // reservations into the load, so 7 inside + 1 held leaves none.
    let mut facts = alice();
    fill_standard(&mut facts, 7);
    check_in(&Lane::entry().decide(&facts, now()));
    fill_standard(&mut facts, 1);
    assert_eq!(
        denied(&Lane::entry().decide(&facts, now())),
        (DenyReason::NoCapacity, None)
    );
}

#[test]
fn each_sibling_gate_keeps_one_spot_back_from_walk_ins() {
    // 8 general standard spots, 6 inside: room for two walk-ins here alone.
    let mut facts = alice();
    fill_standard(&mut facts, 6);
    facts.siblings = 1;
    check_in(&Lane::entry().decide(&facts, now()));
    facts.siblings = 2;
    assert_eq!(
        denied(&Lane::entry().decide(&facts, now())),
        (DenyReason::NoCapacity, None)
    );
    // A reservation's spot is its own: siblings do not hold it back.
    facts.reservations = vec![reservation(
        "2026-11-22T08:00:00+07:00",
        ReservationStatus::Booked,
    )];
    assert!(!check_in(&Lane::entry().decide(&facts, now())).0.walk_in);
}

#[test]
fn ada_and_ev_spots_are_held_for_flagged_vehicles() {
    let mut facts = alice();
    fill_standard(&mut facts, 8);
    assert_eq!(
        denied(&Lane::entry().decide(&facts, now())).0,
        DenyReason::NoCapacity
    );
    facts.vehicles[0].ada = true;
    check_in(&Lane::entry().decide(&facts, now()));
    facts.vehicles[0].ada = false;
    facts.vehicles[0].ev = true;
    check_in(&Lane::entry().decide(&facts, now()));
}

#[test]
fn class_not_served_is_refused() {
    let mut facts = alice();
    facts.vehicles = vec![vehicle("v-9", VehicleClass::Oversize, true)];
    assert_eq!(
        denied(&Lane::entry().decide(&facts, now())).0,
        DenyReason::VehicleClassNotServed
    );
}

#[test]
fn reservation_vehicle_wins_over_primary() {
    let mut facts = alice();
    facts
        .vehicles
        .push(vehicle("v-10", VehicleClass::Compact, false));
    let mut r = reservation("2026-11-22T08:00:00+07:00", ReservationStatus::Booked);
    r.vehicle_id = "v-10".into();
    r.class = VehicleClass::Compact;
    facts.reservations = vec![r];
    let (p, _) = check_in(&Lane::entry().decide(&facts, now()));
    assert_eq!(
        (p.vehicle_id.as_deref(), p.vehicle_class),
        (Some("v-10"), Some(VehicleClass::Compact))
    );
    facts.reservations.clear();
    assert_eq!(
        check_in(&Lane::entry().decide(&facts, now()))
            .0
            .vehicle_id
            .as_deref(),
        Some("v-9")
    );
}

#[test]
fn anti_passback_in_each_mode() {
    let mut facts = alice();
    facts.inside = vec![inside("2026-11-22T07:00:00+07:00", PlanKind::Monthly, None)];
    let mut lane = Lane::entry();
    assert_eq!(
        denied(&lane.decide(&facts, now())),
        (DenyReason::AntiPassback, Some(AlertKind::AntiPassback))
    );
    lane.anti_passback = AntiPassback::Soft;
    assert_eq!(
        check_in(&lane.decide(&facts, now())).1,
        [AlertKind::AntiPassback]
    );
    lane.anti_passback = AntiPassback::Off;
    assert!(check_in(&lane.decide(&facts, now())).1.is_empty());
}

#[test]
fn lockdown_refuses_entry_but_lets_cars_leave() {
    let mut lane = Lane::entry();
    lane.lockdown = true;
    assert_eq!(
        denied(&lane.decide(&alice(), now())),
        (DenyReason::Lockdown, None)
    );
    lane.role = Role::Exit;
    let mut facts = alice();
    facts.inside = vec![inside("2026-11-22T07:00:00+07:00", PlanKind::Monthly, None)];
    check_out(&lane.decide(&facts, now()));
}

#[test]
fn exit_of_a_vehicle_never_seen_entering_leaves_with_info_alert() {
    let d = Lane::exit().decide(&alice(), now());
    let (c, alerts) = check_out(&d);
    assert_eq!((c.check_in_at, c.duration_s, &c.fee), (None, None, &None));
    assert_eq!(alerts.len(), 1);
    assert_eq!(
        (alerts[0].alert, alerts[0].severity),
        (AlertKind::AntiPassback, Severity::Info)
    );
}

#[test]
fn daily_exit_carries_duration_and_fee() {
    let mut facts = alice();
    facts.plan = None;
    facts.inside = vec![inside("2026-11-22T07:00:00+07:00", PlanKind::Daily, None)];
    let (c, alerts) = check_out(&Lane::exit().decide(&facts, now()));
    assert!(alerts.is_empty());
    assert_eq!(c.check_in_at, Some(t("2026-11-22T07:00:00+07:00")));
    assert_eq!(c.duration_s, Some(3600));
    let fee = c.fee.as_ref().unwrap();
    assert_eq!((fee.plan, fee.currency.as_str()), (PlanKind::Daily, "VND"));
    assert_eq!(fee.amount_minor, Tariff::default().day_rate_minor);
}

#[test]
fn a_check_out_stepped_back_before_its_check_in_is_a_zero_length_stay() {
    // Checked in at 09:00 on a reservation that ended at 08:30, then NTP
    // stepped the wall clock back: the check-out reads 08:00.
    let mut facts = alice();
    facts.plan = None;
    facts.reservations = vec![Reservation {
        start: t("2026-11-22T07:00:00+07:00"),
        end: t("2026-11-22T08:30:00+07:00"),
        ..reservation("2026-11-22T07:00:00+07:00", ReservationStatus::Booked)
    }];
    facts.inside = vec![inside(
        "2026-11-22T09:00:00+07:00",
        PlanKind::Daily,
        Some("r-88"),
    )];
    // No grace: the fee is what the tariff charges a zero-length stay.
    let lane = Lane {
        tariff: Tariff {
            grace_minutes: 0,
            ..Tariff::default()
        },
        ..Lane::exit()
    };
    let (c, _) = check_out(&lane.decide(&facts, now()));
    assert_eq!(c.check_in_at, Some(t("2026-11-22T09:00:00+07:00")));
    assert_eq!(c.duration_s, Some(0));
    let fee = c.fee.as_ref().unwrap();
    assert_eq!((fee.amount_minor, fee.plan), (0, PlanKind::Daily));
    assert_eq!(c.overstay_s, 0);
}

#[test]
fn monthly_exit_pays_nothing() {
    let mut facts = alice();
    facts.inside = vec![inside("2026-11-22T07:00:00+07:00", PlanKind::Monthly, None)];
    let (c, _) = check_out(&Lane::exit().decide(&facts, now()));
    let fee = c.fee.as_ref().unwrap();
    assert_eq!((fee.amount_minor, fee.plan), (0, PlanKind::Monthly));
}

#[test]
fn exit_never_traps_even_a_bad_card() {
    let unknown = Facts {
        credential: "DEADBEEF".into(),
        ..Facts::default()
    };
    let (c, alerts) = check_out(&Lane::exit().decide(&unknown, now()));
    assert_eq!(c.passage.user_id, None);
    assert_eq!(
        alerts.iter().map(|a| a.alert).collect::<Vec<_>>(),
        [AlertKind::WrongCard]
    );
    let mut revoked = alice();
    revoked.card.as_mut().unwrap().status = CardStatus::Revoked;
    revoked.user.as_mut().unwrap().status = UserStatus::Suspended;
    revoked.inside = vec![inside("2026-11-22T07:00:00+07:00", PlanKind::Monthly, None)];
    let (_, alerts) = check_out(&Lane::exit().decide(&revoked, now()));
    assert_eq!(
        alerts.iter().map(|a| a.alert).collect::<Vec<_>>(),
        [AlertKind::WrongCard]
    );
}

#[test]
fn both_lane_goes_out_when_inside_and_in_otherwise() {
    let lane = Lane {
        role: Role::Both,
        ..Lane::entry()
    };
    check_in(&lane.decide(&alice(), now()));
    let mut facts = alice();
    facts.inside = vec![inside("2026-11-22T07:00:00+07:00", PlanKind::Monthly, None)];
    check_out(&lane.decide(&facts, now()));
}

#[test]
fn a_failed_authentication_is_refused_whoever_the_uid_claims_to_be() {
    let Decision::Deny {
        denied,
        alert,
        display,
    } = auth_failed("04A1B2C3D4E5F6")
    else {
        panic!("a clone is never admitted")
    };
    assert_eq!(denied.reason, DenyReason::CredentialAuthFailed);
    assert_eq!(denied.card.as_deref(), Some("04A1B2C3D4E5F6"));
    assert_eq!(denied.user_id, None, "the UID of a clone names nobody");
    let alert = alert.expect("security hears of it");
    assert_eq!(alert.alert, AlertKind::WrongCard);
    assert_eq!(display, CARD_NOT_VALID);
}

#[test]
fn an_unreadable_store_blames_no_card_and_says_why() {
    let Decision::Deny {
        denied,
        alert,
        display,
    } = unreadable("04A1B2C3D4E5F6", "disk I/O error")
    else {
        panic!("nothing is admitted on facts it could not read")
    };
    assert_eq!(display, OUT_OF_ORDER);
    assert_eq!(denied.user_id, None);
    let alert = alert.expect("the fault is alerted");
    assert_eq!(
        (alert.alert, alert.severity),
        (AlertKind::StorageFault, Severity::Critical),
        "a storage fault, not a wrong card"
    );
    assert!(
        alert.message.contains("disk I/O error"),
        "{}",
        alert.message
    );
}
