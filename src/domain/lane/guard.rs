//! The physical side: loops, the barrier arm and the timers, and the alerts
//! they raise. Everything here keeps one rule first: the arm never comes
//! down on a vehicle.

use std::time::Duration;

use super::alerts;
use super::{Action, Arm, BarrierCommand, Events, Lane, Light, Sensor, SensorState, ms, secs};
use crate::domain::contract::EventBody;
use crate::domain::time::Mono;

impl Lane {
    /// Told to come down less than `fall_ms` ago: still moving, so a vehicle
    /// reaching the safety loop must make it go back up.
    pub(super) fn going_down(&self, now: Mono) -> bool {
        self.arm.commanded == BarrierCommand::Down
            && self
                .arm
                .at
                .is_some_and(|at| now - at < ms(self.cfg.fall_ms))
    }

    /// Down, done falling, and no switch saying otherwise.
    pub(super) fn arm_down(&self, now: Mono) -> bool {
        self.arm.commanded == BarrierCommand::Down
            && !self.going_down(now)
            && self.switch != Some(SensorState::Occupied)
    }

    /// Commands the arm up; "nothing passing" is counted from now.
    pub(super) fn raise(&mut self, now: Mono, out: &mut Vec<Action>) {
        out.push(Action::Barrier(BarrierCommand::Up));
        self.arm = Arm {
            commanded: BarrierCommand::Up,
            at: Some(now),
            held_since: Some(now),
            held_alerted: false,
        };
        self.close_at = None;
    }

    /// Commands the arm down. Callers check the safety loop first.
    pub(super) fn lower(&mut self, now: Mono, out: &mut Vec<Action>) {
        debug_assert!(!self.safety.is_set(), "lowering onto the safety loop");
        out.push(Action::Barrier(BarrierCommand::Down));
        // A switch still saying "up" starts the stuck-arm clock.
        let stuck = self.switch == Some(SensorState::Occupied);
        self.arm = Arm {
            commanded: BarrierCommand::Down,
            at: Some(now),
            held_since: stuck.then_some(now),
            held_alerted: false,
        };
        self.close_at = None;
        if self.light == Some(Light::Green) {
            self.idle(out);
        }
    }

    /// Follows one sensor change: repeat-window reset, arm reversal,
    /// passages, forced or stuck arm.
    pub(super) fn sensor(
        &mut self,
        sensor: Sensor,
        state: SensorState,
        now: Mono,
        out: &mut Vec<Action>,
    ) {
        match sensor {
            Sensor::Arming => {
                let old = std::mem::replace(&mut self.arming, state);
                if !old.is_set()
                    && state.is_set()
                    && self.recent.as_ref().is_some_and(|r| r.no_vehicle)
                {
                    self.recent = None;
                }
                self.arming_ep.track(old, state, now);
            }
            Sensor::Safety => {
                let old = std::mem::replace(&mut self.safety, state);
                if state.is_set() && self.going_down(now) {
                    self.raise(now, out);
                }
                if self.safety_ep.track(old, state, now) {
                    self.pass(now, out);
                }
            }
            Sensor::BarrierUp => {
                let old = self.switch.replace(state);
                let down = self.arm.commanded == BarrierCommand::Down;
                if state == SensorState::Occupied && old != Some(SensorState::Occupied) && down {
                    self.note(vec![alerts::barrier_forced()], out);
                    self.arm.held_since = Some(now);
                    self.arm.held_alerted = false;
                } else if state == SensorState::Clear && down {
                    self.arm.held_since = None;
                    self.arm.held_alerted = false;
                }
                if state != SensorState::Fault {
                    self.switch_fault_alerted = false;
                }
            }
        }
    }

    /// A vehicle left the safety loop.
    pub(super) fn pass(&mut self, now: Mono, out: &mut Vec<Action>) {
        if self.arm.commanded == BarrierCommand::Up {
            self.arm.held_since = Some(now);
        }
        if let Some(grant) = self.grant.take() {
            self.passed = Some(grant.about);
        } else if !self.arm_down(now)
            && let Some(about) = &self.passed
        {
            let alert = alerts::tailgating(about);
            self.note(vec![alert], out);
        } else {
            self.note(vec![alerts::unauthorized_vehicle()], out);
        }
    }

    /// Everything that follows from the time and the state, after each input.
    pub(super) fn settle(&mut self, now: Mono, out: &mut Vec<Action>) {
        let t = &self.cfg.timings;
        let (loop_fault, pass_timeout, close_delay, held_open) = (
            secs(t.loop_fault_s),
            secs(t.pass_timeout_s),
            ms(t.close_delay_ms),
            secs(t.held_open_s),
        );

        for name in ["arming", "safety"] {
            let (state, ep) = match name {
                "arming" => (self.arming, &mut self.arming_ep),
                _ => (self.safety, &mut self.safety_ep),
            };
            let Some(since) = ep.since.filter(|_| !ep.alerted) else {
                continue;
            };
            let alert = if state == SensorState::Fault {
                alerts::loop_fault(name, None)
            } else if now - since >= loop_fault {
                alerts::loop_fault(name, Some((now - since).as_secs()))
            } else {
                continue;
            };
            ep.alerted = true;
            self.note(vec![alert], out);
        }
        if self.switch == Some(SensorState::Fault) && !self.switch_fault_alerted {
            self.switch_fault_alerted = true;
            self.note(vec![alerts::barrier_switch_fault()], out);
        }

        // The accepted vehicle turned away: undo its passage. A vehicle on
        // the safety loop may still be passing, so wait for it to clear.
        if let Some(grant) = self
            .grant
            .take_if(|g| !self.safety.is_set() && now - g.at >= pass_timeout)
        {
            if let Some(id) = grant.about.event_id {
                let void = EventBody::Void {
                    related_event_id: id,
                };
                let void = self.mint(void);
                let events = Events {
                    drafts: vec![(void, Some((grant.direction, grant.class)))],
                    lockdown: false,
                };
                self.record_events(events, out);
            }
            self.lower(now, out);
        }

        if self.arm.commanded == BarrierCommand::Up && self.grant.is_none() {
            if self.safety.is_set() {
                self.close_at = None;
            } else if now >= *self.close_at.get_or_insert(now + close_delay) {
                self.lower(now, out);
            }
        }

        if let Some(since) = self.arm.held_since
            && !self.arm.held_alerted
            && now - since >= held_open
        {
            self.arm.held_alerted = true;
            let stuck = self.arm.commanded == BarrierCommand::Down;
            let about = self
                .grant
                .as_ref()
                .map(|g| &g.about)
                .or(self.passed.as_ref());
            let alert = alerts::barrier_held_open(
                self.cfg.timings.held_open_s,
                stuck,
                &about.cloned().unwrap_or_default(),
            );
            self.note(vec![alert], out);
        }

        self.start_open(out);

        // Events a failed commit left over: try them again.
        if self.retry_at.is_some_and(|t| now >= t) {
            self.retry_at = None;
            let events = std::mem::take(&mut self.unrecorded);
            if !events.drafts.is_empty() {
                self.record_events(events, out);
            }
        }

        // The lamps: idle at start-up, and once a signal has been shown long
        // enough (a green stays while its vehicle may still pass).
        if self.light.is_none()
            || (self.grant.is_none() && self.signal_until.is_some_and(|t| now >= t))
        {
            self.idle(out);
        }

        let next = self
            .deadlines(pass_timeout, loop_fault, held_open)
            .filter(|&d| d > now)
            .min();
        if next != self.wake {
            self.wake = next;
            out.extend(next.map(Action::WakeAt));
        }
    }

    /// Every time at which something would happen if nothing else did.
    pub(super) fn deadlines(
        &self,
        pass_timeout: Duration,
        loop_fault: Duration,
        held_open: Duration,
    ) -> impl Iterator<Item = Mono> {
        let grant = self
            .grant
            .as_ref()
            .filter(|_| !self.safety.is_set())
            .map(|g| g.at + pass_timeout);
        let held = self
            .arm
            .held_since
            .filter(|_| !self.arm.held_alerted)
            .map(|t| t + held_open);
        let loops = [&self.arming_ep, &self.safety_ep]
            .map(|ep| ep.since.filter(|_| !ep.alerted).map(|t| t + loop_fault));
        let signal = self.signal_until.filter(|_| self.grant.is_none());
        [grant, self.close_at, held, signal, self.retry_at]
            .into_iter()
            .chain(loops)
            .flatten()
    }
}
