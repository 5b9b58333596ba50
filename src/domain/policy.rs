//! Who may enter or leave, and why not.
//!
//! [`decide`] is pure: the store gathers [`Facts`] about one credential in a
//! single read, the caller passes the lane's [`Context`] and the time, and
//! the result is a [`Decision`] carrying the event to record.

use chrono_tz::Tz;

use crate::domain::availability::{self, Kind, Load};
use crate::domain::contract::{
    Alert, AlertKind, CheckOut, Denied, DenyReason, EventBody, Fee, Passage, Severity,
};
use crate::domain::lot::Capacity;
use crate::domain::model::{
    AntiPassback, Card, CardStatus, Direction, Plan, PlanKind, PlanStatus, Presence, Reservation,
    ReservationStatus, Role, Timestamp, User, UserStatus, Vehicle,
};
use crate::domain::tariff::{self, Tariff};

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
    /// Sibling gates of the lot: each may be letting in a walk-in it has not
    /// told this gate of yet, so that many spots of the class are kept back.
    pub siblings: u32,
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
///
/// Entry rules are checked in the order a security officer would: lockdown,
/// the card, its user, the plan, anti-passback, then a spot (a reservation
/// due now, else room for a walk-in). An exit always lets the vehicle out;
/// what is wrong with the card becomes an alert instead of a denial.
pub fn decide(facts: &Facts, ctx: &Context<'_>, now: Timestamp) -> Decision {
    let leaving = match ctx.role {
        Role::Entry => false,
        Role::Exit => true,
        Role::Both => !facts.inside.is_empty(),
    };
    if leaving {
        exit(facts, ctx, now)
    } else {
        match entry(facts, ctx, now) {
            Ok(decision) => decision,
            Err(refusal) => refusal.into_decision(facts),
        }
    }
}

/// A refused entry, before it becomes a [`Decision::Deny`].
struct Refusal {
    reason: DenyReason,
    /// Set when security must hear of it beyond `wrong_card`.
    alert: Option<(AlertKind, Severity, String)>,
    display: &'static str,
}

impl Refusal {
    fn new(reason: DenyReason, display: &'static str) -> Refusal {
        Refusal {
            reason,
            alert: None,
            display,
        }
    }

    fn into_decision(self, facts: &Facts) -> Decision {
        let user_id = facts.user.as_ref().map(|u| u.user_id.clone());
        let alert = match self.alert {
            Some((kind, severity, message)) => Some(alert(kind, severity, message, facts)),
            None if self.reason.is_wrong_card() => Some(alert(
                AlertKind::WrongCard,
                Severity::Warning,
                format!(
                    "Card {} was refused: {}.",
                    facts.credential,
                    describe(self.reason)
                ),
                facts,
            )),
            None => None,
        };
        Decision::Deny {
            denied: Denied {
                card: Some(facts.credential.clone()),
                reason: self.reason,
                user_id,
                user_name: facts.user.as_ref().map(|u| u.name.clone()),
            },
            alert,
            display: self.display.to_string(),
        }
    }
}

fn entry(facts: &Facts, ctx: &Context<'_>, now: Timestamp) -> Result<Decision, Refusal> {
    use DenyReason as R;
    if ctx.lockdown {
        return Err(Refusal::new(R::Lockdown, "Lot closed - call security"));
    }
    let card = facts
        .card
        .as_ref()
        .ok_or(Refusal::new(R::UnknownCard, CARD_NOT_VALID))?;
    card_problem(card, now).map_or(Ok(()), |reason| Err(Refusal::new(reason, CARD_NOT_VALID)))?;
    let user = facts
        .user
        .as_ref()
        .ok_or(Refusal::new(R::UnknownCard, CARD_NOT_VALID))?;
    if user.status == UserStatus::Suspended {
        return Err(Refusal::new(
            R::UserSuspended,
            "Access suspended - call security",
        ));
    }
    let plan = plan_kind(facts.plan.as_ref(), ctx.lot, now)?;
    let reservation = facts.reservations.iter().find(|r| is_due(r, ctx, now));
    let vehicle = pick_vehicle(facts, reservation).ok_or(Refusal::new(
        R::VehicleClassNotServed,
        "No vehicle registered - see parking office",
    ))?;
    if ctx.capacity.of(vehicle.class) == 0 {
        return Err(Refusal::new(
            R::VehicleClassNotServed,
            "Vehicle type not served here",
        ));
    }

    let mut alerts = Vec::new();
    if let Some(inside) = facts.inside.first() {
        let message = format!(
            "{} badged in again while vehicle {} is already inside since {}.",
            user.name, inside.vehicle_id, inside.since
        );
        match ctx.anti_passback {
            AntiPassback::Hard => {
                return Err(Refusal {
                    reason: R::AntiPassback,
                    alert: Some((AlertKind::AntiPassback, Severity::Warning, message)),
                    display: "Already inside - call security",
                });
            }
            AntiPassback::Soft => alerts.push(alert(
                AlertKind::AntiPassback,
                Severity::Warning,
                message,
                facts,
            )),
            AntiPassback::Off => {}
        }
    }

    let kind = Kind {
        class: vehicle.class,
        ada: vehicle.ada,
        ev: vehicle.ev,
    };
    // While gates are connected each has at most one walk-in on its way
    // that the others have not heard of (a lane takes one vehicle at a
    // time, a passage takes seconds, its check_in milliseconds to arrive):
    // keeping one spot back per sibling, the lot never over-fills.
    let mut load = facts.load.clone();
    let plain = Kind {
        ada: false,
        ev: false,
        ..kind
    };
    load.add(plain, facts.siblings);
    if reservation.is_none() && !availability::has_room(ctx.capacity, &load, kind) {
        return Err(Refusal::new(R::NoCapacity, "Lot full - sorry"));
    }
    let spot = reservation.and_then(|r| r.spot_id.clone());
    let display = match &spot {
        Some(spot) => format!("Welcome {} - spot {spot}", user.name),
        None => format!("Welcome {}", user.name),
    };
    Ok(Decision::Admit {
        direction: Direction::In,
        event: EventBody::CheckIn(Passage {
            card: Some(facts.credential.clone()),
            user_id: Some(user.user_id.clone()),
            user_name: Some(user.name.clone()),
            vehicle_id: Some(vehicle.vehicle_id.clone()),
            vehicle_class: Some(vehicle.class),
            reservation_id: reservation.map(|r| r.reservation_id.clone()),
            spot_id: spot,
            plan: Some(plan),
            walk_in: reservation.is_none(),
        }),
        alerts,
        display,
    })
}

/// Lets the vehicle out, whatever is wrong: an exit never traps a car.
fn exit(facts: &Facts, ctx: &Context<'_>, now: Timestamp) -> Decision {
    let mut alerts = Vec::new();
    let problem = match &facts.card {
        None => Some(DenyReason::UnknownCard),
        Some(card) if matches!(card.status, CardStatus::Revoked | CardStatus::Lost) => {
            Some(DenyReason::CardRevoked)
        }
        Some(_) => None,
    };
    if let Some(reason) = problem {
        let message = format!(
            "Card {} was used to leave: {}.",
            facts.credential,
            describe(reason)
        );
        alerts.push(alert(
            AlertKind::WrongCard,
            Severity::Warning,
            message,
            facts,
        ));
    }
    let user = facts.user.as_ref();
    let name = user.map_or("driver", |u| u.name.as_str());
    let inside = facts.inside.first();
    let vehicle = pick_vehicle(facts, None);
    let mut passage = Passage {
        card: Some(facts.credential.clone()),
        user_id: user.map(|u| u.user_id.clone()),
        user_name: user.map(|u| u.name.clone()),
        vehicle_id: inside
            .map(|p| p.vehicle_id.clone())
            .or_else(|| vehicle.map(|v| v.vehicle_id.clone())),
        vehicle_class: inside.map(|p| p.class).or_else(|| vehicle.map(|v| v.class)),
        reservation_id: inside.and_then(|p| p.reservation_id.clone()),
        spot_id: inside.and_then(|p| p.spot_id.clone()),
        plan: None,
        walk_in: inside.is_none_or(|p| p.reservation_id.is_none()),
    };
    let Some(inside) = inside else {
        // No gate of the lot saw it enter: HQ settles the fee.
        passage.plan =
            user.map(|_| plan_kind(facts.plan.as_ref(), ctx.lot, now).unwrap_or(PlanKind::Daily));
        if user.is_some() && ctx.anti_passback != AntiPassback::Off {
            let message = format!("{name} left, but no gate of the lot saw the vehicle enter.");
            alerts.push(alert(
                AlertKind::AntiPassback,
                Severity::Info,
                message,
                facts,
            ));
        }
        return Decision::Admit {
            direction: Direction::Out,
            event: EventBody::CheckOut(CheckOut {
                passage,
                check_in_at: None,
                duration_s: None,
                fee: None,
                overstay_s: 0,
            }),
            alerts,
            display: format!("Goodbye {name}"),
        };
    };
    passage.plan = Some(inside.plan);
    let reservation_end = inside
        .reservation_id
        .as_ref()
        .and_then(|id| facts.reservations.iter().find(|r| &r.reservation_id == id))
        .map(|r| r.end);
    let charge = tariff::charge(
        ctx.tariff,
        ctx.tz,
        inside.plan,
        inside.since,
        now,
        reservation_end,
    );
    let display = match (inside.plan, charge.amount_minor) {
        (PlanKind::Daily, amount) if amount > 0 => {
            format!(
                "Goodbye {name} - fee {}",
                super::money::money(amount, &charge.currency)
            )
        }
        _ => format!("Goodbye {name}"),
    };
    Decision::Admit {
        direction: Direction::Out,
        event: EventBody::CheckOut(CheckOut {
            passage,
            check_in_at: Some(inside.since),
            // From the charge, whose stay is never negative: the wall clock
            // can be stepped back between check-in and check-out.
            duration_s: Some(charge.duration_s),
            fee: Some(Fee {
                amount_minor: charge.amount_minor,
                currency: charge.currency,
                plan: inside.plan,
            }),
            overstay_s: charge.overstay_s,
        }),
        alerts,
        display,
    }
}

/// What is wrong with a card at `now`, if anything.
fn card_problem(card: &Card, now: Timestamp) -> Option<DenyReason> {
    match card.status {
        CardStatus::Revoked | CardStatus::Lost => Some(DenyReason::CardRevoked),
        CardStatus::Active if card.valid_from.is_some_and(|t| now < t) => {
            Some(DenyReason::CardNotYetValid)
        }
        CardStatus::Active if card.valid_until.is_some_and(|t| now > t) => {
            Some(DenyReason::CardExpired)
        }
        CardStatus::Active => None,
    }
}

/// The plan the user parks on here. No plan, or a monthly plan past its
/// end, parks on the daily tariff; a plan for other lots or overdue refuses.
fn plan_kind(plan: Option<&Plan>, lot: &str, now: Timestamp) -> Result<PlanKind, Refusal> {
    let Some(plan) = plan else {
        return Ok(PlanKind::Daily);
    };
    if !plan.lots.iter().any(|l| l == lot) {
        return Err(Refusal::new(DenyReason::WrongLot, "Not valid in this lot"));
    }
    if plan.status == PlanStatus::Overdue {
        return Err(Refusal::new(
            DenyReason::PaymentOverdue,
            "Payment overdue - see parking office",
        ));
    }
    let current = plan.valid_until.is_none_or(|until| now <= until);
    Ok(if plan.kind == PlanKind::Monthly && current {
        PlanKind::Monthly
    } else {
        PlanKind::Daily
    })
}

/// A booked reservation of this lot inside its grace window around `start`.
fn is_due(r: &Reservation, ctx: &Context<'_>, now: Timestamp) -> bool {
    let early = chrono::Duration::minutes(ctx.early_grace_min.into());
    let late = chrono::Duration::minutes(ctx.late_grace_min.into());
    r.status == ReservationStatus::Booked
        && r.lot == ctx.lot
        && r.start - early <= now
        && now <= r.start + late
}

/// The vehicle at the gate: the reservation's, else the primary, else the
/// user's only one.
fn pick_vehicle<'f>(facts: &'f Facts, reservation: Option<&Reservation>) -> Option<&'f Vehicle> {
    let by_id = |id: &str| facts.vehicles.iter().find(|v| v.vehicle_id == id);
    let only = match facts.vehicles.as_slice() {
        [only] => Some(only),
        _ => None,
    };
    reservation
        .and_then(|r| by_id(&r.vehicle_id))
        .or_else(|| facts.vehicles.iter().find(|v| v.primary))
        .or(only)
}

fn alert(kind: AlertKind, severity: Severity, message: String, facts: &Facts) -> Alert {
    Alert {
        alert: kind,
        severity,
        message,
        card: Some(facts.credential.clone()),
        user_id: facts.user.as_ref().map(|u| u.user_id.clone()),
        related_event_id: None,
    }
}

/// Shown when the gate cannot check a card or record a passage.
pub const OUT_OF_ORDER: &str = "Out of order - call security";
/// Shown for a refused card.
pub const CARD_NOT_VALID: &str = "Card not valid - call security";

/// A card that gave its UID but failed authentication (a clone, a damaged
/// card): refused with a `wrong_card` alert, whoever the UID claims to be,
/// without asking the store.
pub fn auth_failed(card: &str) -> Decision {
    let facts = Facts {
        credential: card.to_string(),
        ..Facts::default()
    };
    Refusal::new(DenyReason::CredentialAuthFailed, CARD_NOT_VALID).into_decision(&facts)
}

/// A card the store could not be read for. The card may well be good, so no
/// `wrong_card` alert accuses it and the driver sees "out of order": the
/// refusal says only that the gate does not know the card right now, and a
/// `storage_fault` alert says why. (On an exit lane the lane lets the
/// vehicle out anyway, as for any refusal.)
pub fn unreadable(card: &str, error: &str) -> Decision {
    Decision::Deny {
        denied: Denied {
            card: Some(card.to_string()),
            reason: DenyReason::UnknownCard,
            user_id: None,
            user_name: None,
        },
        alert: Some(Alert {
            alert: AlertKind::StorageFault,
            severity: Severity::Critical,
            message: format!("The store could not be read to check card {card}: {error}."),
            card: Some(card.to_string()),
            user_id: None,
            related_event_id: None,
        }),
        display: OUT_OF_ORDER.to_string(),
    }
}

/// A denial reason in words, for alert messages.
pub fn describe(reason: DenyReason) -> &'static str {
    use DenyReason as R;
    match reason {
        R::UnknownCard => "the card is not known",
        R::CardRevoked => "the card is revoked or reported lost",
        R::CardExpired => "the card has expired",
        R::CardNotYetValid => "the card is not valid yet",
        R::UserSuspended => "the user is suspended",
        R::WrongLot => "the plan is not valid for this lot",
        R::AntiPassback => "the vehicle is already inside",
        R::NoCapacity => "no spot is free for the vehicle's class",
        R::VehicleClassNotServed => "the lot has no spots for the vehicle's class",
        R::NoVehiclePresent => "no vehicle was at the barrier",
        R::Lockdown => "the lot is in lockdown",
        R::CredentialAuthFailed => "the card failed authentication",
        R::PaymentOverdue => "the plan's payment is overdue",
    }
}

#[cfg(test)]
mod tests;
