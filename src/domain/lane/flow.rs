//! A card's way through the lane: repeat window, vehicle check, decision,
//! commit, and the authorisation that raises the barrier.

use super::alerts::{self, About};
use super::{
    Action, Grant, Lane, Light, NO_VEHICLE, OPENED, OUT_OF_ORDER, Pending, PendingPassage,
    RecentCard, ms, show,
};
use crate::domain::contract::{Alert, CheckOut, Denied, DenyReason, EventBody, Passage};
use crate::domain::model::{Direction, Role, Timestamp, VehicleClass};
use crate::domain::policy::Decision;

/// The class and the who of a check_in or check_out.
fn passage_of(event: &EventBody) -> (Option<VehicleClass>, About) {
    let p = match event {
        EventBody::CheckIn(p) => p,
        EventBody::CheckOut(c) => &c.passage,
        _ => return (None, About::default()),
    };
    let about = About {
        card: p.card.clone(),
        user_id: p.user_id.clone(),
        event_id: None,
    };
    (p.vehicle_class, about)
}

/// A check_out with nothing known about the stay (HQ settles it).
pub(super) fn check_out(passage: Passage) -> EventBody {
    EventBody::CheckOut(CheckOut {
        passage,
        check_in_at: None,
        duration_s: None,
        fee: None,
        overstay_s: 0,
    })
}

impl Lane {
    /// A card read: ignored as a repeat or while busy, refused without a
    /// vehicle, otherwise handed to the policy.
    pub(super) fn card(&mut self, card: String, now: Timestamp, out: &mut Vec<Action>) {
        if let Some(recent) = &mut self.recent
            && recent.card == card
            && now - recent.at < ms(self.cfg.timings.repeat_read_ms)
        {
            recent.at = now;
            return;
        }
        let busy = self.busy();
        let no_vehicle = !busy && self.cfg.timings.require_vehicle && !self.arming.is_set();
        self.recent = Some(RecentCard {
            card: card.clone(),
            at: now,
            no_vehicle,
        });
        if busy {
            return;
        }
        if no_vehicle {
            let denied = Denied {
                card: Some(card),
                reason: DenyReason::NoVehiclePresent,
                user_id: None,
                user_name: None,
            };
            self.record(vec![EventBody::Denied(denied)], Pending::Denial(None), out);
            out.push(show(Light::Red, NO_VEHICLE));
            return;
        }
        self.deciding = Some(card.clone());
        out.push(Action::Decide(card));
    }

    pub(super) fn decided(&mut self, decision: Decision, out: &mut Vec<Action>) {
        if self.deciding.take().is_none() {
            return; // nothing asked: a stray answer
        }
        match decision {
            Decision::Admit {
                direction,
                event,
                alerts,
                display,
            } => {
                self.start_passage(direction, event, alerts, display, out);
            }
            Decision::Deny {
                denied,
                alert,
                display,
            } if self.cfg.role == Role::Exit && denied.reason != DenyReason::NoVehiclePresent => {
                // An exit never traps a car: let it out unidentified.
                let passage = Passage::unidentified(denied.card, denied.user_id, denied.user_name);
                self.start_passage(
                    Direction::Out,
                    check_out(passage),
                    alert.into_iter().collect(),
                    display,
                    out,
                );
            }
            Decision::Deny {
                denied,
                alert,
                display,
            } => {
                // The alert goes in the denial's transaction (the store links it).
                let mut events = vec![EventBody::Denied(denied)];
                events.extend(alert.clone().map(EventBody::Alert));
                self.record(events, Pending::Denial(alert), out);
                out.push(show(Light::Red, &display));
            }
        }
    }

    pub(super) fn start_passage(
        &mut self,
        direction: Direction,
        event: EventBody,
        alerts: Vec<Alert>,
        display: String,
        out: &mut Vec<Action>,
    ) {
        let (class, about) = passage_of(&event);
        // The policy's alerts go in the passage's transaction: the store
        // links each to it, so a crash cannot keep one without the other.
        let mut events = vec![event];
        events.extend(alerts.iter().cloned().map(EventBody::Alert));
        let pending = PendingPassage {
            direction,
            class,
            display,
            about,
            alerts,
        };
        self.record(events, Pending::Passage(pending), out);
    }

    pub(super) fn committed(
        &mut self,
        result: Result<Vec<String>, String>,
        now: Timestamp,
        out: &mut Vec<Action>,
    ) {
        let Some(pending) = self.pending.pop_front() else {
            return; // nothing asked: a stray answer
        };
        match pending {
            Pending::Passage(p) => self.passage_committed(p, result, now, out),
            // The denial's transaction failed: the alert, at least, may still go in.
            Pending::Denial(Some(alert)) if result.is_err() => {
                self.record(vec![EventBody::Alert(alert)], Pending::Note, out);
            }
            Pending::Void(direction, class) if result.is_ok() => {
                let undo = match direction {
                    Direction::In => Direction::Out,
                    Direction::Out => Direction::In,
                };
                self.count(undo, class);
            }
            // A failed void leaves the passage in the journal, and so in the counters.
            Pending::Denial(_) | Pending::Void(..) | Pending::Note => {}
        }
    }

    pub(super) fn passage_committed(
        &mut self,
        p: PendingPassage,
        result: Result<Vec<String>, String>,
        now: Timestamp,
        out: &mut Vec<Action>,
    ) {
        match result {
            Ok(ids) => {
                let id = ids.into_iter().next();
                self.count(p.direction, p.class);
                let about = About {
                    event_id: id,
                    ..p.about
                };
                self.grant = Some(Grant {
                    direction: p.direction,
                    class: p.class,
                    about,
                    at: now,
                });
                self.passed = None;
                self.raise(now, out);
                out.push(show(Light::Green, &p.display));
            }
            Err(error) => {
                let let_out = p.direction == Direction::Out;
                let mut notes = vec![alerts::storage_fault(&error, let_out, &p.about)];
                notes.extend(p.alerts.into_iter().map(EventBody::Alert));
                if let_out {
                    // Nothing recorded, so nothing to count or void.
                    self.grant = Some(Grant {
                        direction: p.direction,
                        class: None,
                        about: p.about,
                        at: now,
                    });
                    self.passed = None;
                    self.raise(now, out);
                    out.push(show(Light::Green, &p.display));
                } else {
                    out.push(show(Light::Red, OUT_OF_ORDER));
                }
                self.record(notes, Pending::Note, out);
            }
        }
    }

    /// Starts a queued HQ `Open` once no other vehicle is being handled.
    pub(super) fn start_open(&mut self, out: &mut Vec<Action>) {
        if !self.open_pending
            || self.deciding.is_some()
            || self.grant.is_some()
            || self.committing()
        {
            return;
        }
        self.open_pending = false;
        let (direction, event) = match self.cfg.role {
            Role::Exit => (
                Direction::Out,
                check_out(Passage::unidentified(None, None, None)),
            ),
            Role::Entry | Role::Both => (
                Direction::In,
                EventBody::CheckIn(Passage::unidentified(None, None, None)),
            ),
        };
        self.start_passage(direction, event, Vec::new(), OPENED.to_string(), out);
    }
}
