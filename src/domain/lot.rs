//! How a lot is run: its spots per vehicle class and its access rules (the
//! config file's `[capacity]` and `[access]` sections, used by the policy).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::model::{AntiPassback, VehicleClass};

/// Spots per vehicle class; `ada` and `ev` are the spots of each class held
/// for vehicles with that flag (counted inside the class's number).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Capacity {
    /// If given, must equal the sum of the classes.
    #[serde(default)]
    pub total: Option<u32>,
    /// Spots for compact vehicles.
    #[serde(default)]
    pub compact: u32,
    /// Spots for standard vehicles.
    #[serde(default)]
    pub standard: u32,
    /// Spots for large vehicles.
    #[serde(default)]
    pub large: u32,
    /// Spots for oversize vehicles.
    #[serde(default)]
    pub oversize: u32,
    /// Spots for motorcycle vehicles.
    #[serde(default)]
    pub motorcycle: u32,
    /// ADA spots held inside each class's spots.
    #[serde(default)]
    pub ada: BTreeMap<VehicleClass, u32>,
    /// EV (charger) spots held inside each class's spots.
    #[serde(default)]
    pub ev: BTreeMap<VehicleClass, u32>,
}

impl Capacity {
    /// Spots of one class (0: the lot does not serve it).
    pub fn of(&self, class: VehicleClass) -> u32 {
        match class {
            VehicleClass::Compact => self.compact,
            VehicleClass::Standard => self.standard,
            VehicleClass::Large => self.large,
            VehicleClass::Oversize => self.oversize,
            VehicleClass::Motorcycle => self.motorcycle,
        }
    }
    /// ADA spots held inside `class`'s spots.
    pub fn ada_of(&self, class: VehicleClass) -> u32 {
        self.ada.get(&class).copied().unwrap_or(0)
    }
    /// EV spots held inside `class`'s spots.
    pub fn ev_of(&self, class: VehicleClass) -> u32 {
        self.ev.get(&class).copied().unwrap_or(0)
    }
}

/// Access rules beyond the replica.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Access {
    /// What to do with a second entry, or an exit without an entry.
    pub anti_passback: AntiPassback,
    /// A reservation is honoured from this many minutes before its start...
    pub early_grace_min: u32,
    /// ...until this many minutes after it.
    pub late_grace_min: u32,
}

impl Default for Access {
    fn default() -> Self {
        Access {
            anti_passback: AntiPassback::Soft,
            early_grace_min: 30,
            late_grace_min: 60,
        }
    }
}
