//! A card's way through the lane: repeat window, decision, vehicle check,
//! commit, and the authorisation that raises the barrier; and the other
//! things a driver or technician does to the lane (garbled reads, reader
//! health, commands).

use super::alerts::{self, About};
use super::{
    Action, By, Command, Draft, Events, Grant, Lane, Light, NO_VEHICLE, OPENED, OUT_OF_ORDER,
    Pending, PendingPassage, ReaderHealth, RecentCard, TAP_AGAIN, ms,
};
use crate::domain::contract::{Alert, CheckOut, Denied, DenyReason, EventBody, Passage};
use crate::domain::model::{Direction, Role, VehicleClass};
use crate::domain::policy::{self, Decision};
use crate::domain::time::Mono;

/// A card being decided on.
#[derive(Debug, Clone)]
pub(super) struct Deciding {
    /// Whether a vehicle was on the arming loop (or none was required)
    /// when the card was read.
    pub vehicle: bool,
}

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

/// A decision on a card read with no vehicle to let through: refused for
/// that, naming whoever the decision found (the card is not blamed).
fn no_vehicle(decision: Decision) -> Decision {
    let (card, user_id, user_name) = match decision {
        Decision::Admit { event, .. } => match event {
            EventBody::CheckIn(p) | EventBody::CheckOut(CheckOut { passage: p, .. }) => {
                (p.card, p.user_id, p.user_name)
            }
            _ => (None, None, None),
        },
        Decision::Deny { denied, .. } => (denied.card, denied.user_id, denied.user_name),
    };
    Decision::Deny {
        denied: Denied {
            card,
            reason: DenyReason::NoVehiclePresent,
            user_id,
            user_name,
        },
        alert: None,
        display: NO_VEHICLE.to_string(),
    }
}

impl Lane {
    /// A card read: ignored as a repeat or while busy; otherwise decided (a
    /// card that failed authentication by the policy's fixed rule, any other
    /// by the store's facts).
    pub(super) fn card(
        &mut self,
        card: String,
        auth_failed: bool,
        now: Mono,
        out: &mut Vec<Action>,
    ) {
        if let Some(recent) = &mut self.recent
            && recent.card == card
            && now - recent.at < ms(self.cfg.timings.repeat_read_ms)
        {
            recent.at = now;
            return;
        }
        let busy = self.busy();
        let vehicle = !self.cfg.timings.require_vehicle || self.arming.is_set();
        self.recent = Some(RecentCard {
            card: card.clone(),
            at: now,
            no_vehicle: !busy && !vehicle,
        });
        if busy {
            return;
        }
        if auth_failed {
            self.apply(policy::auth_failed(&card), vehicle, now, out);
        } else {
            self.deciding = Some(Deciding { vehicle });
            out.push(Action::Decide(card));
        }
    }

    /// A garbled read: "tap again", unless another vehicle is being handled
    /// (its driver's green must not turn red).
    pub(super) fn misread(&mut self, now: Mono, out: &mut Vec<Action>) {
        if !self.busy() {
            self.show(Light::Red, TAP_AGAIN, now, out);
        }
    }

    /// The reader's health: one alert per change.
    pub(super) fn reader(&mut self, health: ReaderHealth, out: &mut Vec<Action>) {
        let alert = match health {
            ReaderHealth::Offline(why) if self.reader_online => alerts::reader_offline(&why),
            ReaderHealth::Online if !self.reader_online => alerts::reader_online(),
            _ => return,
        };
        self.reader_online = !self.reader_online;
        self.note(vec![alert], out);
    }

    /// HQ's or a technician's command. A lockdown change is recorded as an
    /// alert and persisted in the same transaction.
    pub(super) fn command(&mut self, command: Command, by: By, out: &mut Vec<Action>) {
        let on = match command {
            Command::Open => {
                self.open_pending = true;
                return;
            }
            Command::Lockdown => true,
            Command::Unlock => false,
        };
        if self.lockdown == on {
            return;
        }
        self.lockdown = on;
        let draft = self.mint(alerts::lockdown(on, by));
        let mut events = Events::of(vec![draft]);
        events.lockdown = true;
        self.record_events(events, out);
    }

    pub(super) fn decided(&mut self, decision: Decision, now: Mono, out: &mut Vec<Action>) {
        let Some(deciding) = self.deciding.take() else {
            return; // nothing asked: a stray answer
        };
        self.apply(decision, deciding.vehicle, now, out);
    }

    /// Carries out a decision on a card read with or without a vehicle there.
    fn apply(&mut self, decision: Decision, vehicle: bool, now: Mono, out: &mut Vec<Action>) {
        let decision = if vehicle {
            decision
        } else {
            no_vehicle(decision)
        };
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
                let denied = self.mint(EventBody::Denied(denied));
                let alert = alert.map(|mut a| {
                    a.related_event_id = Some(denied.event_id.clone());
                    self.mint(EventBody::Alert(a))
                });
                let mut events = vec![denied];
                events.extend(alert);
                self.record_events(Events::of(events), out);
                self.show(Light::Red, &display, now, out);
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
        let (class, mut about) = passage_of(&event);
        let passage = self.mint(event);
        about.event_id = Some(passage.event_id.clone());
        // The policy's alerts go in the passage's transaction and name it,
        // so a crash cannot keep one without the other.
        let alerts: Vec<Draft> = alerts
            .into_iter()
            .map(|mut a| {
                a.related_event_id
                    .get_or_insert_with(|| passage.event_id.clone());
                self.mint(EventBody::Alert(a))
            })
            .collect();
        let mut events = vec![passage];
        events.extend(alerts.iter().cloned());
        let pending = PendingPassage {
            direction,
            class,
            display,
            about,
            alerts,
        };
        self.record(events, pending, out);
    }

    pub(super) fn committed(
        &mut self,
        result: Result<(), String>,
        now: Mono,
        out: &mut Vec<Action>,
    ) {
        let Some(pending) = self.pending.pop_front() else {
            return; // nothing asked: a stray answer
        };
        match pending {
            Pending::Passage(p) => self.passage_committed(p, result, now, out),
            Pending::Events(events) if result.is_ok() => {
                // A committed void takes its passage back out of the counters.
                for (direction, class) in events.drafts.into_iter().filter_map(|(_, v)| v) {
                    let undo = match direction {
                        Direction::In => Direction::Out,
                        Direction::Out => Direction::In,
                    };
                    self.count(undo, class);
                }
            }
            Pending::Events(events) => self.unrecorded(events, now),
        }
    }

    pub(super) fn passage_committed(
        &mut self,
        p: PendingPassage,
        result: Result<(), String>,
        now: Mono,
        out: &mut Vec<Action>,
    ) {
        let let_out = p.direction == Direction::Out;
        if let Err(error) = &result {
            // Nothing was recorded: the alerts must not name the passage.
            let about = About {
                event_id: None,
                ..p.about.clone()
            };
            let fault = self.mint(alerts::storage_fault(error, let_out, &about));
            let mut notes = vec![fault];
            notes.extend(p.alerts.into_iter().map(|mut d| {
                if let EventBody::Alert(a) = &mut d.body {
                    a.related_event_id = None;
                }
                d
            }));
            self.record_events(Events::of(notes), out);
            if !let_out {
                self.show(Light::Red, OUT_OF_ORDER, now, out);
                return;
            }
        }
        let recorded = result.is_ok();
        if recorded {
            self.count(p.direction, p.class);
        }
        self.grant = Some(Grant {
            direction: p.direction,
            // An exit the store failed to record has nothing to count or void.
            class: p.class.filter(|_| recorded),
            about: About {
                event_id: p.about.event_id.filter(|_| recorded),
                ..p.about
            },
            at: now,
        });
        self.passed = None;
        self.raise(now, out);
        self.show(Light::Green, &p.display, now, out);
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
