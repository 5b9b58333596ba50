//! Free spots per vehicle class, from the lot's capacity and its load.
//!
//! Pure: the store counts who is inside and which reservations hold a spot;
//! this module only does the arithmetic, including the ADA and EV spots that
//! are held for flagged vehicles.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::config::Capacity;
use crate::model::VehicleClass;

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
