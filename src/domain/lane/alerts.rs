//! The alerts the lane raises itself, with their severity and the one human
//! sentence the contract asks for. One place, so wording stays consistent.

use super::By;
use crate::domain::contract::{Alert, AlertKind, EventBody, Severity};

/// Who an alert is about, when known: the card, its user, and the passage
/// (check_in or check_out) it follows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct About {
    pub card: Option<String>,
    pub user_id: Option<String>,
    pub event_id: Option<String>,
}

fn alert(kind: AlertKind, severity: Severity, message: String, about: &About) -> EventBody {
    EventBody::Alert(Alert {
        alert: kind,
        severity,
        message,
        card: about.card.clone(),
        user_id: about.user_id.clone(),
        related_event_id: about.event_id.clone(),
    })
}

/// An alert about no card, user or passage in particular.
fn plain(kind: AlertKind, severity: Severity, message: String) -> EventBody {
    alert(kind, severity, message, &About::default())
}

pub(super) fn tailgating(about: &About) -> EventBody {
    let msg = "A second vehicle passed the barrier on one authorisation.".to_string();
    alert(AlertKind::Tailgating, Severity::Warning, msg, about)
}

pub(super) fn unauthorized_vehicle() -> EventBody {
    let msg = "A vehicle passed the barrier without any authorisation.".to_string();
    plain(AlertKind::UnauthorizedVehicle, Severity::Critical, msg)
}

pub(super) fn barrier_forced() -> EventBody {
    let msg = "The barrier went up without a command.".to_string();
    plain(AlertKind::BarrierForced, Severity::Critical, msg)
}

/// `stuck`: the arm was told to come down and the switch still says up.
pub(super) fn barrier_held_open(secs: u64, stuck: bool, about: &About) -> EventBody {
    let msg = if stuck {
        format!("The barrier is still up {secs} s after it was told to close.")
    } else {
        format!("The barrier has been up for {secs} s with no vehicle passing.")
    };
    alert(AlertKind::BarrierHeldOpen, Severity::Warning, msg, about)
}

pub(super) fn barrier_switch_fault() -> EventBody {
    let msg = "The barrier-up switch reports a fault.".to_string();
    plain(AlertKind::BarrierFault, Severity::Warning, msg)
}

/// `occupied_s`: `None` when the loop itself reported a fault.
pub(super) fn loop_fault(name: &str, occupied_s: Option<u64>) -> EventBody {
    let msg = match occupied_s {
        Some(s) => format!(
            "The {name} loop has been occupied for {s} s; it is treated as a vehicle until it clears."
        ),
        None => {
            format!("The {name} loop reports a fault; it is treated as a vehicle until it clears.")
        }
    };
    plain(AlertKind::LoopFault, Severity::Warning, msg)
}

/// The store refused a passage; `let_out`: the vehicle was let out anyway.
pub(super) fn storage_fault(error: &str, let_out: bool, about: &About) -> EventBody {
    let msg = if let_out {
        format!(
            "The journal could not record a check-out, the vehicle was let out anyway: {error}."
        )
    } else {
        format!("The journal could not record a check-in, the lane refused entry: {error}.")
    };
    alert(AlertKind::StorageFault, Severity::Critical, msg, about)
}

pub(super) fn reader_offline(why: &str) -> EventBody {
    let msg = format!("The card reader went offline: {why}.");
    plain(AlertKind::ReaderOffline, Severity::Critical, msg)
}

pub(super) fn reader_online() -> EventBody {
    let msg = "The card reader is back online.".to_string();
    plain(AlertKind::ReaderOnline, Severity::Info, msg)
}

/// `message`: the sentence the clock watch made of the step.
pub(super) fn clock_unsynced(message: String) -> EventBody {
    plain(AlertKind::ClockUnsynced, Severity::Warning, message)
}

/// A lockdown set (`on`) or lifted, and by whom.
pub(super) fn lockdown(on: bool, by: By) -> EventBody {
    let who = match by {
        By::Hq => "head office",
        By::Technician => "a technician on the gate's control socket",
    };
    let (msg, severity) = if on {
        let msg = format!("Lockdown set by {who}: entries are refused, exits stay open.");
        (msg, Severity::Warning)
    } else {
        (format!("Lockdown lifted by {who}."), Severity::Info)
    };
    alert(AlertKind::Lockdown, severity, msg, &About::default())
}

/// An output refused a command (`why` names it).
pub(super) fn output_failed(why: &str) -> EventBody {
    let mut msg = format!("{why}.");
    if let Some(first) = msg.get_mut(..1) {
        first.make_ascii_uppercase();
    }
    plain(AlertKind::BarrierFault, Severity::Critical, msg)
}
