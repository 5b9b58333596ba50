//! The bookings the load may need, and how many of them hold a spot at the
//! time of the last decision, kept as that time moves.
//!
//! A booking holds its spot from its early grace until its late grace or
//! its end, whichever comes first, unless used or its vehicle is inside:
//! over time `t`, the interval `[enter, leave)` with `enter = start - early`
//! and `leave = min(start + late + 1, end)`. At a busy lot thousands of
//! bookings fall inside the grace windows at once; counting them at every
//! decision was half the decision's time. Instead a [`Tally`] per kind is
//! kept for one time, and moving it to the next decision's time walks only
//! the bookings whose interval starts or ends in between (a handful for
//! decisions seconds apart), found through two ordered indexes; every
//! change to a booking updates the tally in passing.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use crate::domain::availability::Kind;
use crate::domain::model::VehicleClass;

/// One booked reservation of the lot, as the load needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::store) struct Held {
    pub id: Arc<str>,
    pub start: i64,
    pub end: i64,
    pub vehicle: Arc<str>,
    /// The booked class with its vehicle's flags (none if it is unknown).
    pub kind: Kind,
    /// A check_in used it: it holds nothing any more.
    pub used: bool,
    /// Its vehicle is inside: counted there, not here.
    pub inside: bool,
}

/// The grace windows, in ms.
#[derive(Debug, Clone, Copy, Default)]
struct Graces {
    early: i64,
    late: i64,
}

impl Graces {
    fn enter(self, h: &Held) -> i64 {
        h.start - self.early
    }

    fn leave(self, h: &Held) -> i64 {
        (h.start + self.late + 1).min(h.end)
    }

    /// Whether `h` holds a spot at `t`.
    fn holds(self, h: &Held, t: i64) -> bool {
        !h.used && !h.inside && self.enter(h) <= t && t < self.leave(h)
    }
}

/// Every kind a booking can hold: 5 classes, with or without each flag.
const SLOTS: usize = VehicleClass::ALL.len() * 4;

fn slot(k: Kind) -> usize {
    let class = VehicleClass::ALL.iter().position(|&c| c == k.class);
    class.unwrap_or(0) * 4 + usize::from(k.ada) * 2 + usize::from(k.ev)
}

fn kind_of(slot: usize) -> Kind {
    Kind {
        class: VehicleClass::ALL[slot / 4],
        ada: slot & 2 != 0,
        ev: slot & 1 != 0,
    }
}

/// How many of the window's bookings hold a spot at `at`, per kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Tally {
    at: i64,
    counts: [u32; SLOTS],
}

impl Tally {
    /// Counts `h` in (`true`) or out, if it holds at the tally's time.
    fn count(&mut self, g: Graces, h: &Held, counted: bool) {
        if g.holds(h, self.at) {
            let n = &mut self.counts[slot(h.kind)];
            *n = if counted { *n + 1 } else { *n - 1 };
        }
    }

    /// Counts `h`'s change between the tally's time and `now`.
    fn moved(&mut self, g: Graces, h: &Held, now: i64) {
        let (was, is) = (g.holds(h, self.at), g.holds(h, now));
        let n = &mut self.counts[slot(h.kind)];
        match (was, is) {
            (false, true) => *n += 1,
            (true, false) => *n -= 1,
            _ => {}
        }
    }
}

/// The lot's booked reservations starting in `[lo, hi]` (ms): exactly
/// those, whatever was written since, and no others.
#[derive(Debug, Default)]
pub(in crate::store) struct Window {
    pub lo: i64,
    pub hi: i64,
    graces: Graces,
    by_start: BTreeMap<(i64, Arc<str>), Held>,
    start_of: HashMap<Arc<str>, i64>,
    /// (vehicle, start, id) of each: a vehicle's comings and goings touch
    /// its own bookings, not a walk of the thousands kept.
    by_vehicle: BTreeSet<(Arc<str>, i64, Arc<str>)>,
    /// (leave, start, id) of each: the bookings that stop holding between
    /// two times.
    by_leave: BTreeSet<(i64, i64, Arc<str>)>,
    tally: Option<Tally>,
}

impl Window {
    /// An empty window over `[lo, hi]` for grace windows `early` and
    /// `late` (ms).
    pub fn new(lo: i64, hi: i64, early: i64, late: i64) -> Window {
        Window {
            lo,
            hi,
            graces: Graces { early, late },
            ..Window::default()
        }
    }

    /// Adds or replaces a reservation (by id).
    pub fn put(&mut self, held: Held) {
        self.remove(&held.id);
        if let Some(t) = &mut self.tally {
            t.count(self.graces, &held, true);
        }
        let id = held.id.clone();
        self.start_of.insert(id.clone(), held.start);
        self.by_vehicle
            .insert((held.vehicle.clone(), held.start, id.clone()));
        self.by_leave
            .insert((self.graces.leave(&held), held.start, id.clone()));
        self.by_start.insert((held.start, id), held);
    }

    pub fn remove(&mut self, id: &str) -> Option<Held> {
        let (id, start) = self.start_of.remove_entry(id)?;
        let gone = self.by_start.remove(&(start, id))?;
        self.forget(&gone);
        Some(gone)
    }

    /// Drops `gone`, already out of `by_start` and `start_of`, from the
    /// other indexes and the tally.
    fn forget(&mut self, gone: &Held) {
        let g = self.graces;
        if let Some(t) = &mut self.tally {
            t.count(g, gone, false);
        }
        self.by_vehicle
            .remove(&(gone.vehicle.clone(), gone.start, gone.id.clone()));
        self.by_leave
            .remove(&(g.leave(gone), gone.start, gone.id.clone()));
    }

    pub fn get(&self, id: &str) -> Option<&Held> {
        let (id, &start) = self.start_of.get_key_value(id)?;
        self.by_start.get(&(start, id.clone()))
    }

    /// Marks booking `id` used (a check_in named it) or not.
    pub fn set_used(&mut self, id: &str, used: bool) {
        self.update(id, |h| h.used = used);
    }

    /// Marks booking `id`'s vehicle inside or not.
    pub fn set_inside(&mut self, id: &str, inside: bool) {
        self.update(id, |h| h.inside = inside);
    }

    /// Changes a booking's flags (never its times or keys).
    fn update(&mut self, id: &str, change: impl FnOnce(&mut Held)) {
        let Some((id, &start)) = self.start_of.get_key_value(id) else {
            return;
        };
        let Some(h) = self.by_start.get_mut(&(start, id.clone())) else {
            return;
        };
        if let Some(t) = &mut self.tally {
            t.count(self.graces, h, false);
            change(h);
            t.count(self.graces, h, true);
        } else {
            change(h);
        }
    }

    /// The ids of `vehicle`'s bookings kept.
    pub fn of_vehicle(&self, vehicle: &str) -> Vec<Arc<str>> {
        let from = (Arc::from(vehicle), i64::MIN, Arc::from(""));
        self.by_vehicle
            .range(from..)
            .take_while(|(v, _, _)| &**v == vehicle)
            .map(|(_, _, id)| id.clone())
            .collect()
    }

    /// Forgets reservations starting before `lo`: with time going forward
    /// they can never hold a spot again (a clock stepped back reads them
    /// again).
    pub fn trim(&mut self, lo: i64) {
        if lo <= self.lo {
            return;
        }
        let kept = self.by_start.split_off(&(lo, Arc::from("")));
        for (_, gone) in std::mem::replace(&mut self.by_start, kept) {
            self.start_of.remove(&gone.id);
            self.forget(&gone);
        }
        self.lo = lo;
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.by_start.len()
    }

    /// How many bookings of each kind hold a spot at `now`. The window
    /// must cover `[now - late, now + early]` for that to be all of them.
    pub fn holding(&mut self, now: i64) -> impl Iterator<Item = (Kind, u32)> + use<> {
        let tally = match self.tally {
            Some(t) => self.moved(t, now),
            None => self.counted(now),
        };
        self.tally = Some(tally);
        (tally.counts.into_iter().enumerate())
            .filter(|&(_, n)| n > 0)
            .map(|(i, n)| (kind_of(i), n))
    }

    /// The tally at `now`, counted afresh from every booking in the grace
    /// windows.
    fn counted(&self, now: i64) -> Tally {
        let g = self.graces;
        let mut t = Tally {
            at: now,
            counts: [0; SLOTS],
        };
        let (from, until) = ((now - g.late, Arc::from("")), now + g.early);
        for h in (self.by_start.range(from..))
            .take_while(|((start, _), _)| *start <= until)
            .map(|(_, h)| h)
        {
            t.count(g, h, true);
        }
        t
    }

    /// Tally `t` moved to `now`: only the bookings that start or stop
    /// holding between the two times can change it.
    fn moved(&self, mut t: Tally, now: i64) -> Tally {
        let g = self.graces;
        let (lo, hi) = (t.at.min(now), t.at.max(now));
        if lo == hi {
            return t;
        }
        let entering = |h: &Held| (lo + 1..=hi).contains(&g.enter(h));
        // Entering in (lo, hi]: starting in (lo + early, hi + early].
        let from = (lo + g.early + 1, Arc::from(""));
        for (_, h) in (self.by_start.range(from..)).take_while(|((s, _), _)| *s <= hi + g.early) {
            t.moved(g, h, now);
        }
        // Leaving in (lo, hi], unless counted above as entering too.
        let from = (lo + 1, i64::MIN, Arc::from(""));
        for (_, start, id) in (self.by_leave.range(from..)).take_while(|(l, _, _)| *l <= hi) {
            if let Some(h) = self.by_start.get(&(*start, id.clone()))
                && !entering(h)
            {
                t.moved(g, h, now);
            }
        }
        t.at = now;
        t
    }

    /// The tally kept, checked against one counted afresh (tests).
    #[cfg(test)]
    pub fn check(&mut self, now: i64) {
        let kept: Vec<_> = self.holding(now).collect();
        self.tally = Some(self.counted(now));
        assert_eq!(kept, self.holding(now).collect::<Vec<_>>(), "at {now}");
    }
}
