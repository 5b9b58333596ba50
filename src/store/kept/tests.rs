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
    let mut k = Kept::new(to(), (-1_000 * MIN, 1_000 * MIN), (0, 0));
    for h in bookings {
        k.window.put(h);
    }
    k
}

fn of_vehicle(w: &Window, vehicle: &str) -> Vec<String> {
    w.of_vehicle(vehicle)
        .iter()
        .map(|id| id.to_string())
        .collect()
}

fn standard(load: &Load) -> u32 {
    load.counts
        .get(&kind(VehicleClass::Standard))
        .copied()
        .unwrap_or(0)
}

#[test]
fn a_booking_holds_from_early_grace_until_its_end_unless_a_no_show() {
    let mut k = kept(vec![held("r-1", "v-1", 100, 200)]);
    let mut at = |m: i64| standard(&k.load(m * MIN));
    assert_eq!(at(84), 0, "before the early grace");
    assert_eq!(at(85), 1, "early grace begins");
    assert_eq!(at(130), 1, "late grace ends");
    assert_eq!(at(131), 0, "a no-show after the late grace");
    let mut k = kept(vec![held("r-1", "v-1", 100, 110)]);
    assert_eq!(standard(&k.load(110 * MIN)), 0, "over at its end");
}

#[test]
fn a_vehicle_inside_counts_once_and_its_booking_holds_again_when_it_leaves() {
    let mut k = kept(vec![held("r-1", "v-1", 100, 200)]);
    k.set_inside("v-1", Some((kind(VehicleClass::Standard), "u-1")));
    assert_eq!(standard(&k.load(100 * MIN)), 1);
    k.set_inside("v-1", Some((kind(VehicleClass::Standard), "u-1")));
    assert_eq!(
        standard(&k.load(100 * MIN)),
        1,
        "the same vehicle twice is one"
    );
    k.set_inside("v-1", None);
    assert_eq!(standard(&k.load(100 * MIN)), 1, "the booking holds again");
    k.window.set_used("r-1", true);
    assert_eq!(
        standard(&k.load(100 * MIN)),
        0,
        "a used booking holds nothing"
    );
}

#[test]
fn a_vehicle_changing_kind_moves_between_counts() {
    let mut k = kept(vec![]);
    k.set_inside("v-1", Some((kind(VehicleClass::Standard), "u-1")));
    k.set_inside("v-1", Some((kind(VehicleClass::Compact), "u-1")));
    let load = k.load(0);
    assert_eq!(standard(&load), 0);
    assert_eq!(load.counts.get(&kind(VehicleClass::Compact)), Some(&1));
}

#[test]
fn a_vehicle_inside_is_listed_under_the_user_it_came_in_for() {
    let mut k = kept(vec![]);
    let standard = kind(VehicleClass::Standard);
    k.set_inside("v-1", Some((standard, "u-1")));
    k.set_inside("v-2", Some((standard, "u-1")));
    assert_eq!(k.inside_of("u-1"), ["v-1", "v-2"]);
    k.set_inside("v-1", Some((standard, "u-2")));
    assert_eq!(k.inside_of("u-1"), ["v-2"]);
    assert_eq!(k.inside_of("u-2"), ["v-1"]);
    k.set_inside("v-2", None);
    k.set_inside("v-1", None);
    assert!(k.inside_of("u-1").is_empty() && k.inside_of("u-2").is_empty());
    assert_eq!(k.load(0), Load::default());
}

#[test]
fn counters_beyond_the_vehicles_seen_count_as_plain_vehicles() {
    let mut k = kept(vec![]);
    k.set_inside("v-1", Some((kind(VehicleClass::Standard), "u-1")));
    k.counters.insert(VehicleClass::Standard, 3);
    k.counters.insert(VehicleClass::Compact, -2);
    let load = k.load(0);
    assert_eq!(standard(&load), 3, "one seen, two more counted");
    assert_eq!(load.counts.get(&kind(VehicleClass::Compact)), None);
}

#[test]
fn trimming_forgets_only_bookings_starting_before_the_new_low() {
    let mut w = Window::new(0, 100 * MIN, 15 * MIN, 30 * MIN);
    w.put(held("r-1", "v-1", 10, 20));
    w.put(held("r-2", "v-2", 50, 60));
    w.trim(50 * MIN);
    assert_eq!(w.len(), 1);
    assert!(w.get("r-1").is_none());
    assert!(w.get("r-2").is_some());
    // Putting the same id again replaces it, wherever it starts now.
    w.put(held("r-2", "v-2", 70, 80));
    assert_eq!(w.len(), 1);
    assert_eq!(w.remove("r-2").unwrap().start, 70 * MIN);
    assert_eq!(w.len(), 0);
}

#[test]
fn a_booking_follows_its_vehicle_when_rebooked_removed_or_trimmed() {
    let mut k = kept(vec![
        held("r-1", "v-1", 100, 200),
        held("r-2", "v-1", 300, 400),
        held("r-3", "v-2", 100, 200),
    ]);
    assert_eq!(of_vehicle(&k.window, "v-1"), ["r-1", "r-2"]);
    // r-1 moves to v-2: v-1 coming in no longer covers it.
    k.window.put(held("r-1", "v-2", 100, 200));
    k.set_inside("v-1", Some((kind(VehicleClass::Standard), "u-1")));
    assert_eq!(of_vehicle(&k.window, "v-1"), ["r-2"]);
    assert_eq!(
        standard(&k.load(100 * MIN)),
        3,
        "v-1 inside, r-1 and r-3 held"
    );
    k.set_inside("v-2", Some((kind(VehicleClass::Standard), "u-1")));
    assert_eq!(standard(&k.load(100 * MIN)), 2, "both inside, nothing held");
    k.window.remove("r-3");
    k.window.trim(200 * MIN);
    assert!(k.window.of_vehicle("v-2").is_empty());
    assert_eq!(of_vehicle(&k.window, "v-1"), ["r-2"]);
    k.set_inside("v-1", None);
    assert_eq!(
        standard(&k.load(300 * MIN)),
        2,
        "v-2 inside, r-2 held again"
    );
}

/// One change to a window, or a decision at a time (minutes).
#[derive(Debug, Clone)]
enum Change {
    /// A booking (re)put: id, vehicle, start, length, class, ADA, EV.
    Put(u8, u8, i64, i64, u8, bool, bool),
    Remove(u8),
    Used(u8, bool),
    Inside(u8, bool),
    Trim(i64),
    At(i64),
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        4 => (0..12u8, 0..6u8, -120..240i64, 1..200i64, 0..5u8, any::<bool>(), any::<bool>())
            .prop_map(|(r, v, s, l, c, a, e)| Change::Put(r, v, s, l, c, a, e)),
        1 => (0..12u8).prop_map(Change::Remove),
        2 => (0..12u8, any::<bool>()).prop_map(|(r, u)| Change::Used(r, u)),
        2 => (0..12u8, any::<bool>()).prop_map(|(r, i)| Change::Inside(r, i)),
        1 => (-120..240i64).prop_map(Change::Trim),
        6 => prop_oneof![-150..270i64, Just(0), Just(15), Just(30), Just(45)].prop_map(Change::At),
    ]
}

use proptest::prelude::*;

proptest! {
    /// The tally kept as time moves either way, bookings come and go and
    /// their flags change, equals one counted afresh at every step, on the
    /// minute marks where bookings enter and leave their grace windows too.
    #[test]
    fn the_tally_kept_is_the_tally_counted(changes in prop::collection::vec(change(), 1..80)) {
        let mut w = Window::new(-1_000 * MIN, 1_000 * MIN, 15 * MIN, 30 * MIN);
        let mut now = 0;
        w.check(now);
        for c in changes {
            match c {
                Change::Put(r, v, s, l, c, ada, ev) => w.put(Held {
                    kind: Kind { class: VehicleClass::ALL[usize::from(c)], ada, ev },
                    ..held(&format!("r-{r}"), &format!("v-{v}"), s, s + l)
                }),
                Change::Remove(r) => {
                    w.remove(&format!("r-{r}"));
                }
                Change::Used(r, used) => w.set_used(&format!("r-{r}"), used),
                Change::Inside(r, inside) => w.set_inside(&format!("r-{r}"), inside),
                Change::Trim(m) => w.trim(m * MIN),
                Change::At(m) => now = m * MIN + (m % 3) - 1,
            }
            w.check(now);
        }
    }
}
