//! The in-memory part alone: which bookings hold at a time, and how the
//! vehicles inside and the counters add up.

use super::*;

const MIN: i64 = 60_000;

fn to() -> For {
    For {
        lot: "main".into(),
        early: 15 * MIN,
        late: 30 * MIN,
    }
}

fn kind(class: VehicleClass) -> Kind {
    Kind {
        class,
        ada: false,
        ev: false,
    }
}

fn held(id: &str, vehicle: &str, start: i64, end: i64) -> Held {
    Held {
        id: id.into(),
        start: start * MIN,
        end: end * MIN,
        vehicle: vehicle.into(),
        kind: kind(VehicleClass::Standard),
        used: false,
        inside: false,
    }
}

fn kept(bookings: Vec<Held>) -> Kept {
    let mut window = Window::new(-1_000 * MIN, 1_000 * MIN);
    for h in bookings {
        window.put(h);
    }
    Kept::new(to(), window, (0, 0))
}

fn standard(load: &Load) -> u32 {
    load.counts
        .get(&kind(VehicleClass::Standard))
        .copied()
        .unwrap_or(0)
}

#[test]
fn a_booking_holds_from_early_grace_until_its_end_unless_a_no_show() {
    let k = kept(vec![held("r-1", "v-1", 100, 200)]);
    let at = |m: i64| standard(&k.load(m * MIN));
    assert_eq!(at(84), 0, "before the early grace");
    assert_eq!(at(85), 1, "early grace begins");
    assert_eq!(at(130), 1, "late grace ends");
    assert_eq!(at(131), 0, "a no-show after the late grace");
    let k = kept(vec![held("r-1", "v-1", 100, 110)]);
    assert_eq!(standard(&k.load(110 * MIN)), 0, "over at its end");
}

#[test]
fn a_vehicle_inside_counts_once_and_its_booking_holds_again_when_it_leaves() {
    let mut k = kept(vec![held("r-1", "v-1", 100, 200)]);
    k.set_inside("v-1", Some(kind(VehicleClass::Standard)));
    assert_eq!(standard(&k.load(100 * MIN)), 1);
    k.set_inside("v-1", Some(kind(VehicleClass::Standard)));
    assert_eq!(
        standard(&k.load(100 * MIN)),
        1,
        "the same vehicle twice is one"
    );
    k.set_inside("v-1", None);
    assert_eq!(standard(&k.load(100 * MIN)), 1, "the booking holds again");
    k.window.get_mut("r-1").unwrap().used = true;
    assert_eq!(
        standard(&k.load(100 * MIN)),
        0,
        "a used booking holds nothing"
    );
}

#[test]
fn a_vehicle_changing_kind_moves_between_counts() {
    let mut k = kept(vec![]);
    k.set_inside("v-1", Some(kind(VehicleClass::Standard)));
    k.set_inside("v-1", Some(kind(VehicleClass::Compact)));
    let load = k.load(0);
    assert_eq!(standard(&load), 0);
    assert_eq!(load.counts.get(&kind(VehicleClass::Compact)), Some(&1));
}

#[test]
fn counters_beyond_the_vehicles_seen_count_as_plain_vehicles() {
    let mut k = kept(vec![]);
    k.set_inside("v-1", Some(kind(VehicleClass::Standard)));
    k.counters.insert(VehicleClass::Standard, 3);
    k.counters.insert(VehicleClass::Compact, -2);
    let load = k.load(0);
    assert_eq!(standard(&load), 3, "one seen, two more counted");
    assert_eq!(load.counts.get(&kind(VehicleClass::Compact)), None);
}

#[test]
fn trimming_forgets_only_bookings_starting_before_the_new_low() {
    let mut w = Window::new(0, 100 * MIN);
    w.put(held("r-1", "v-1", 10, 20));
    w.put(held("r-2", "v-2", 50, 60));
    w.trim(50 * MIN);
    assert_eq!(w.len(), 1);
    assert!(w.get_mut("r-1").is_none());
    assert!(w.get_mut("r-2").is_some());
    // Putting the same id again replaces it, wherever it starts now.
    w.put(held("r-2", "v-2", 70, 80));
    assert_eq!(w.len(), 1);
    assert_eq!(w.remove("r-2").unwrap().start, 70 * MIN);
}

#[test]
fn a_booking_follows_its_vehicle_when_rebooked_removed_or_trimmed() {
    let mut k = kept(vec![
        held("r-1", "v-1", 100, 200),
        held("r-2", "v-1", 300, 400),
        held("r-3", "v-2", 100, 200),
    ]);
    assert_eq!(k.window.of_vehicle("v-1"), ["r-1", "r-2"]);
    // r-1 moves to v-2: v-1 coming in no longer covers it.
    k.window.put(held("r-1", "v-2", 100, 200));
    k.set_inside("v-1", Some(kind(VehicleClass::Standard)));
    assert_eq!(k.window.of_vehicle("v-1"), ["r-2"]);
    assert_eq!(
        standard(&k.load(100 * MIN)),
        3,
        "v-1 inside, r-1 and r-3 held"
    );
    k.set_inside("v-2", Some(kind(VehicleClass::Standard)));
    assert_eq!(standard(&k.load(100 * MIN)), 2, "both inside, nothing held");
    k.window.remove("r-3");
    k.window.trim(200 * MIN);
    assert!(k.window.of_vehicle("v-2").is_empty());
    assert_eq!(k.window.of_vehicle("v-1"), ["r-2"]);
    k.set_inside("v-1", None);
    assert_eq!(
        standard(&k.load(300 * MIN)),
        2,
        "v-2 inside, r-2 held again"
    );
}
