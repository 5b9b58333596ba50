//! The gate's domain vocabulary: the replica's records and the enums they use.
//!
//! The serde shape of each record is exactly the `data` object of the
//! matching replica op in `shared/CONTRACT.md`, so HQ's JSON deserialises
//! straight into these types and the store keeps them as they came.

use std::fmt;

use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};

/// A timestamp as the contract writes it: RFC 3339 with an explicit offset.
pub type Timestamp = DateTime<FixedOffset>;

/// The kinds of vehicle a lot has spots for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VehicleClass {
    Compact,
    Standard,
    Large,
    Oversize,
    Motorcycle,
}

impl VehicleClass {
    /// Every class, in a stable order (the order reports print them in).
    pub const ALL: [VehicleClass; 5] = [
        VehicleClass::Compact,
        VehicleClass::Standard,
        VehicleClass::Large,
        VehicleClass::Oversize,
        VehicleClass::Motorcycle,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            VehicleClass::Compact => "compact",
            VehicleClass::Standard => "standard",
            VehicleClass::Large => "large",
            VehicleClass::Oversize => "oversize",
            VehicleClass::Motorcycle => "motorcycle",
        }
    }

    pub fn parse(s: &str) -> Option<VehicleClass> {
        VehicleClass::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

impl fmt::Display for VehicleClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which way traffic goes through a lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Entry,
    Exit,
    /// One lane for both: the direction follows from whether the vehicle is inside.
    Both,
}

/// The direction of one passage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    In,
    Out,
}

/// How strictly a second entry (or an exit without an entry) is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AntiPassback {
    /// Refuse a second entry of a vehicle already inside.
    Hard,
    /// Let it in, but raise an `anti_passback` alert.
    Soft,
    /// Do not check.
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserStatus {
    Active,
    Suspended,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CardStatus {
    Active,
    Revoked,
    Lost,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanKind {
    Monthly,
    Daily,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanStatus {
    Paid,
    Due,
    Overdue,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReservationStatus {
    Booked,
    Cancelled,
}

/// An employee (or visitor) known to HQ. Key: `user_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub user_id: String,
    pub name: String,
    #[serde(default)]
    pub company: Option<String>,
    pub status: UserStatus,
}

/// An RFID/NFC card. Key: `card`, the UID in upper-case hex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Card {
    pub card: String,
    pub user_id: String,
    pub status: CardStatus,
    #[serde(default)]
    pub valid_from: Option<Timestamp>,
    #[serde(default)]
    pub valid_until: Option<Timestamp>,
}

/// A vehicle registered to a user. Key: `vehicle_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vehicle {
    pub vehicle_id: String,
    pub user_id: String,
    #[serde(default)]
    pub plate: Option<String>,
    pub class: VehicleClass,
    #[serde(default)]
    pub ada: bool,
    #[serde(default)]
    pub ev: bool,
    #[serde(default)]
    pub primary: bool,
}

/// A user's parking plan (at most one per user). Key: `user_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub user_id: String,
    pub kind: PlanKind,
    pub lots: Vec<String>,
    #[serde(default)]
    pub valid_until: Option<Timestamp>,
    pub status: PlanStatus,
}

/// A booked (or cancelled) stay with an assigned spot. Key: `reservation_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    pub reservation_id: String,
    pub user_id: String,
    pub vehicle_id: String,
    pub lot: String,
    #[serde(default)]
    pub spot_id: Option<String>,
    pub class: VehicleClass,
    pub start: Timestamp,
    pub end: Timestamp,
    pub status: ReservationStatus,
}

/// A vehicle the gate believes is inside the lot, from check-in events
/// (its own and its sibling gates').
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Presence {
    pub vehicle_id: String,
    pub user_id: String,
    pub class: VehicleClass,
    pub ada: bool,
    pub ev: bool,
    pub since: Timestamp,
    pub reservation_id: Option<String>,
    pub spot_id: Option<String>,
    pub plan: PlanKind,
    /// The check_in event that put it there.
    pub event_id: String,
}
