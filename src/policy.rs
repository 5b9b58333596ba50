//! Who may enter or leave, and why not.
//!
//! [`decide`] is pure: the store gathers [`Facts`] about one credential in a
//! single read, the caller passes the lane's [`Context`] and the time, and
//! the result is a [`Decision`] carrying the event to record.

use chrono_tz::Tz;

use crate::availability::Load;
use crate::config::Capacity;
use crate::contract::{Alert, Denied, EventBody};
use crate::model::{AntiPassback, Direction, Card, Plan, Presence, Reservation, Role, Timestamp, User, Vehicle};
use crate::tariff::Tariff;

/// Everything the store knows that bears on one credential, read at once.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facts {
    /// The credential as read (upper-case hex UID).
    pub credential: String,
    pub card: Option<Card>,
    pub user: Option<User>,
    /// All of the card user's vehicles.
    pub vehicles: Vec<Vehicle>,
    pub plan: Option<Plan>,
    /// The user's reservations in this lot whose window
    /// `[start - early grace, end]` contains now or whose start is within a day
    /// of now, cancelled ones included (the policy tells them apart).
    pub reservations: Vec<Reservation>,
    /// The user's vehicles the lot believes are inside.
    pub inside: Vec<Presence>,
    /// Vehicles inside the lot, plus booked reservations due now that have
    /// not arrived (their spots are held).
    pub load: Load,
}

/// The lane's side of a decision: who it is and what it is configured to do.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    pub lot: &'a str,
    pub role: Role,
    pub anti_passback: AntiPassback,
    /// Minutes before a reservation's start from which it is honoured.
    pub early_grace_min: u32,
    /// Minutes after its start until which it is honoured.
    pub late_grace_min: u32,
    /// HQ's lockdown: deny every entry (a car inside may still leave).
    pub lockdown: bool,
    pub capacity: &'a Capacity,
    pub tariff: &'a Tariff,
    pub tz: Tz,
}

/// What the lane should do with one credential.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Let the vehicle pass: record `event` (a `check_in` or `check_out`) and
    /// `alerts` in one transaction, then raise the barrier.
    Admit {
        direction: Direction,
        event: EventBody,
        alerts: Vec<Alert>,
        /// The driver's display line, e.g. "Welcome Alice - spot B1-042".
        display: String,
    },
    /// Keep the barrier down: record `denied` (and `alert`, if security must know).
    Deny {
        denied: Denied,
        alert: Option<Alert>,
        /// The driver's display line, e.g. "Card not valid - call security".
        display: String,
    },
}

/// Decides on one credential. Pure: no I/O, time is `now`.
pub fn decide(facts: &Facts, ctx: &Context<'_>, now: Timestamp) -> Decision {
    let _ = (facts, ctx, now);
    todo!("policy::decide")
}
