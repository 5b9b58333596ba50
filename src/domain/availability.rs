//! Free spots per vehicle class, from the lot's capacity and its load.
//!
//! Pure: the store counts who is inside and which reservations hold a spot;
//! this module only does the arithmetic, including the ADA and EV spots that
//! are held for flagged vehicles.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::domain::lot::Capacity;
use crate::domain::model::VehicleClass;

/// What kind of spot a vehicle may take: its class and flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Kind {
    pub class: VehicleClass,
    pub ada: bool,
    pub ev: bool,
}

/// How many vehicles of each kind occupy (or hold) a spot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Load {
    pub counts: BTreeMap<Kind, u32>,
}

impl Load {
    pub fn add(&mut self, kind: Kind, n: u32) {
        *self.counts.entry(kind).or_default() += n;
    }
}

/// Free spots of one class, split by pool.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Free {
    /// Spots any vehicle of the class may take.
    pub general: u32,
    /// Free spots held for ADA vehicles.
    pub ada: u32,
    /// Free spots held for EV vehicles.
    pub ev: u32,
}

impl Free {
    /// All free spots of the class, whatever the pool.
    pub fn total(&self) -> u32 {
        self.general + self.ada + self.ev
    }

    /// Whether a vehicle with these flags finds a spot it may take.
    pub fn fits(&self, ada: bool, ev: bool) -> bool {
        self.general > 0 || (ada && self.ada > 0) || (ev && self.ev > 0)
    }
}

/// Free spots of every class the lot serves (capacity > 0).
///
/// Flagged vehicles take their own pool first and overflow into the general
/// one; a vehicle with both flags tries ADA, then EV, then general. A lot
/// that is over-full (a forced entry, soft anti-passback) saturates at zero.
pub fn free(cap: &Capacity, load: &Load) -> BTreeMap<VehicleClass, Free> {
    VehicleClass::ALL
        .into_iter()
        .filter(|&class| cap.of(class) > 0)
        .map(|class| (class, free_of(cap, load, class)))
        .collect()
}

/// Free spots of one class (all zero if the lot does not serve it).
pub fn free_of(cap: &Capacity, load: &Load, class: VehicleClass) -> Free {
    let ada = cap.ada_of(class).min(cap.of(class));
    let ev = cap.ev_of(class).min(cap.of(class) - ada);
    let mut pools = Free {
        general: cap.of(class) - ada - ev,
        ada,
        ev,
    };
    let count = |a: bool, e: bool| {
        load.counts
            .get(&Kind {
                class,
                ada: a,
                ev: e,
            })
            .copied()
            .unwrap_or(0)
    };
    // Take `n` spots from the named pools in order; the rest are lost (over-full).
    fn take(mut n: u32, pools: &mut [&mut u32]) {
        for pool in pools.iter_mut() {
            let k = n.min(**pool);
            **pool -= k;
            n -= k;
        }
    }
    let Free { general, ada, ev } = &mut pools;
    take(count(false, false), &mut [general]);
    take(count(true, false), &mut [ada, general]);
    take(count(false, true), &mut [ev, general]);
    take(count(true, true), &mut [ada, ev, general]);
    pools
}

/// Whether one more vehicle of this kind fits now.
pub fn has_room(cap: &Capacity, load: &Load, kind: Kind) -> bool {
    free_of(cap, load, kind.class).fits(kind.ada, kind.ev)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cap() -> Capacity {
        Capacity {
            standard: 10,
            compact: 2,
            ada: [(VehicleClass::Standard, 2)].into(),
            ev: [(VehicleClass::Standard, 3)].into(),
            ..Capacity::default()
        }
    }

    fn kind(ada: bool, ev: bool) -> Kind {
        Kind {
            class: VehicleClass::Standard,
            ada,
            ev,
        }
    }

    #[test]
    fn empty_lot_has_every_pool_free() {
        let f = free_of(&cap(), &Load::default(), VehicleClass::Standard);
        assert_eq!(
            f,
            Free {
                general: 5,
                ada: 2,
                ev: 3
            }
        );
        assert_eq!(f.total(), 10);
    }

    #[test]
    fn classes_without_spots_are_not_listed() {
        let all = free(&cap(), &Load::default());
        assert_eq!(
            all.keys().copied().collect::<Vec<_>>(),
            [VehicleClass::Compact, VehicleClass::Standard]
        );
        assert!(!has_room(
            &cap(),
            &Load::default(),
            Kind {
                class: VehicleClass::Large,
                ada: false,
                ev: false
            }
        ));
    }

    #[test]
    fn held_spots_are_kept_for_flagged_vehicles() {
        let mut load = Load::default();
        load.add(kind(false, false), 5);
        // The general pool is full: a plain car is refused, flagged ones still fit.
        assert!(!has_room(&cap(), &load, kind(false, false)));
        assert!(has_room(&cap(), &load, kind(true, false)));
        assert!(has_room(&cap(), &load, kind(false, true)));
        assert_eq!(
            free_of(&cap(), &load, VehicleClass::Standard),
            Free {
                general: 0,
                ada: 2,
                ev: 3
            }
        );
    }

    #[test]
    fn flagged_vehicles_overflow_into_general() {
        let mut load = Load::default();
        load.add(kind(true, false), 3); // 2 ADA spots + 1 general
        load.add(kind(false, true), 1);
        load.add(kind(true, true), 2); // no ADA left: 2 EV spots
        assert_eq!(
            free_of(&cap(), &load, VehicleClass::Standard),
            Free {
                general: 4,
                ada: 0,
                ev: 0
            }
        );
    }

    #[test]
    fn over_full_lot_saturates_at_zero() {
        let mut load = Load::default();
        load.add(kind(false, false), 50);
        load.add(kind(true, true), 50);
        assert_eq!(free_of(&cap(), &load, VehicleClass::Standard).total(), 0);
        assert!(!has_room(&cap(), &load, kind(true, true)));
    }

    #[test]
    fn flag_pools_larger_than_the_class_are_clamped() {
        let cap = Capacity {
            compact: 3,
            ada: [(VehicleClass::Compact, 2)].into(),
            ev: [(VehicleClass::Compact, 5)].into(),
            ..Capacity::default()
        };
        assert_eq!(
            free_of(&cap, &Load::default(), VehicleClass::Compact),
            Free {
                general: 0,
                ada: 2,
                ev: 1
            }
        );
    }
}
