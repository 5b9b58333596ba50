//! The running gate: wires the hardware, the lane, the policy and the store.
//!
//! This is the one place with the main `select!` loop. Everything it does is
//! carry out what the pure [`Lane`] asks ([`Action`]s) and feed back what
//! happened ([`Input`]s); the decisions themselves are made in `lane` and
//! `policy`. An action that fails (a barrier output, a full disk) becomes an
//! alert or a logged error; the loop keeps running.

pub mod clock;
pub mod control;
pub mod notify;
use std::collections::{BTreeMap, VecDeque};
use std::future::Future;

use parkgate_hal as hal;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use crate::cli::report;
use crate::config::Config;
use crate::daemon::clock::Clock;
use crate::domain::contract::{Alert, AlertKind, Denied, DenyReason, Event, EventBody, Severity};
use crate::domain::lane::{self, Action, Counters, Input, Lane, LaneConfig, Sensors};
use crate::domain::model::{Timestamp, VehicleClass};
use crate::domain::policy::{self, Context, Decision, Facts};
use crate::store::{Store, StoreError};

/// How often old events and expired command ids are pruned.
const HOUSEKEEPING_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// A lane's four pieces of hardware.
pub struct Hardware<R, P, B, F> {
    pub reader: R,
    pub presence: P,
    pub barrier: B,
    pub feedback: F,
}

/// What the local control socket can ask the running daemon.
#[derive(Debug)]
pub enum Request {
    /// Lane state, occupancy, outbox depth, replica seq.
    Status(oneshot::Sender<Result<Status, String>>),
    /// Move a manual clock forward (demo and tests); refused on the system clock.
    Advance(
        chrono::TimeDelta,
        oneshot::Sender<Result<Timestamp, String>>,
    ),
}

/// The answer to `parkgate status`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Status {
    pub site: String,
    pub lot: String,
    pub gate: String,
    pub at: Timestamp,
    /// The lane's phase: idle, deciding, committing, open, closing.
    pub lane: &'static str,
    /// The last command given to the barrier: up or down.
    pub barrier: &'static str,
    pub lockdown: bool,
    /// A loop or the barrier switch is in a fault episode.
    pub fault: bool,
    pub reader: &'static str,
    /// Vehicles in the lot per class, as this gate knows them.
    pub occupancy: BTreeMap<VehicleClass, u64>,
    /// This gate's own counters.
    pub entered: BTreeMap<VehicleClass, u64>,
    pub exited: BTreeMap<VehicleClass, u64>,
    pub outbox_depth: u64,
    pub replica_seq: u64,
}

/// Why the daemon stopped.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The store failed at start-up or its thread died.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// A piece of hardware stopped for good.
    #[error("hardware: {0}")]
    Hardware(#[from] hal::HalError),
}

/// The gate's running state around the pure lane.
struct Gate<R, P, B, F> {
    cfg: Config,
    store: Store,
    hw: Hardware<R, P, B, F>,
    clock: Clock,
    lane: Lane,
    wake: Option<Timestamp>,
    reader_online: bool,
    /// Where each committed event line is printed (stdout for `run`).
    print: bool,
}

/// Runs the gate until `shutdown` resolves. Takes its hardware, store, clock,
/// control requests and shutdown signal as arguments, so tests and the demo
/// run it in-process exactly as `parkgate run` does.
pub async fn run<R, P, B, F>(
    cfg: Config,
    store: Store,
    hw: Hardware<R, P, B, F>,
    clock: Clock,
    mut control: mpsc::Receiver<Request>,
    print: bool,
    shutdown: impl Future<Output = ()>,
) -> Result<(), DaemonError>
where
    R: hal::CardReader,
    P: hal::Presence,
    B: hal::Barrier,
    F: hal::Feedback,
{
    let now = clock.now();
    let sensors = Sensors {
        arming: sensor_state(hw.presence.current(hal::Sensor::Arming)),
        safety: sensor_state(hw.presence.current(hal::Sensor::Safety)),
        barrier_up: hw
            .presence
            .fitted(hal::Sensor::BarrierUp)
            .then(|| sensor_state(hw.presence.current(hal::Sensor::BarrierUp))),
    };
    let mut lane = Lane::new(
        LaneConfig::new(cfg.gate.role, cfg.lane.clone()),
        sensors,
        now,
    );
    let (entered, exited) = store.call(|db| db.counters()).await??;
    lane.seed_counters(Counters { entered, exited });
    let mut gate = Gate {
        cfg,
        store,
        hw,
        clock,
        lane,
        wake: None,
        reader_online: true,
        print,
    };
    tracing::info!(gate = %gate.cfg.gate.gate, role = ?gate.cfg.gate.role, "gate running");
    gate.feed(Input::Tick).await?;
    // The lane has read the sensors it starts from: from here on every
    // change is an event it sees. Tell systemd (and the black-box tests).
    crate::daemon::notify::notify("READY=1");

    tokio::pin!(shutdown);
    let mut housekeeping = tokio::time::interval(HOUSEKEEPING_EVERY);
    loop {
        let wake = gate.wake;
        let clock = gate.clock.clone();
        let timer = async move {
            match wake {
                Some(at) => clock.sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        // Events come from several queues, so which is polled first is not
        // which happened first: a card may be taken while the loop change
        // queued just before it sits unread in the other queue. So before
        // acting on anything, the gate takes in every hardware event already
        // queued (`catch_up`): a card is decided on the loops as they are,
        // and a timer or control request (a test's next step comes only once
        // the sim queued the previous one) never overtakes the hardware.
        tokio::select! {
            biased;
            _ = &mut shutdown => break,
            event = gate.hw.presence.next_event() => gate.sensor(event?).await?,
            event = gate.hw.reader.next_event() => {
                gate.catch_up_sensors().await?;
                gate.reader(event?).await?;
            }
            _ = timer => {
                gate.catch_up().await?;
                gate.wake = None;
                gate.feed(Input::Tick).await?;
            }
            Some(request) = control.recv() => {
                gate.catch_up().await?;
                gate.control(request).await;
            }
            _ = housekeeping.tick() => gate.housekeeping().await?,
        }
    }
    tracing::info!("gate stopped");
    Ok(())
}

impl<R, P, B, F> Gate<R, P, B, F>
where
    R: hal::CardReader,
    P: hal::Presence,
    B: hal::Barrier,
    F: hal::Feedback,
{
    async fn sensor(&mut self, event: hal::SensorEvent) -> Result<(), DaemonError> {
        let input = Input::Sensor(lane_sensor(event.sensor), sensor_state(event.state));
        self.feed(input).await
    }

    /// Takes in the sensor changes already queued, without waiting.
    async fn catch_up_sensors(&mut self) -> Result<(), DaemonError> {
        while let Some(event) = ready_now(self.hw.presence.next_event()) {
            self.sensor(event?).await?;
        }
        Ok(())
    }

    /// Takes in every hardware event already queued, without waiting.
    async fn catch_up(&mut self) -> Result<(), DaemonError> {
        loop {
            self.catch_up_sensors().await?;
            match ready_now(self.hw.reader.next_event()) {
                Some(event) => self.reader(event?).await?,
                None => return Ok(()),
            }
        }
    }

    /// Steps the lane with `input` and carries out its actions, feeding the
    /// answers (decisions, commits) back until the lane has nothing left to ask.
    async fn feed(&mut self, input: Input) -> Result<(), DaemonError> {
        let mut inputs = VecDeque::from([input]);
        while let Some(input) = inputs.pop_front() {
            let now = self.clock.now();
            tracing::debug!(?input, %now, "lane input");
            for action in self.lane.step(input, now) {
                tracing::debug!(?action, "lane action");
                match action {
                    Action::Decide(card) => {
                        inputs.push_back(Input::Decided(self.decide(card, now).await?))
                    }
                    Action::Record(bodies) => {
                        inputs.push_back(Input::Committed(self.record(bodies, now).await?))
                    }
                    Action::Barrier(cmd) => self.barrier(cmd, now).await?,
                    Action::Show(signal) => self.show(&signal).await,
                    Action::WakeAt(at) => self.wake = Some(at),
                }
            }
        }
        Ok(())
    }

    async fn decide(&mut self, card: String, now: Timestamp) -> Result<Decision, DaemonError> {
        let (lot, early, late) = (
            self.cfg.gate.lot.clone(),
            self.cfg.access.early_grace_min,
            self.cfg.access.late_grace_min,
        );
        let credential = card.clone();
        let read = self
            .store
            .call(move |db| db.facts(&credential, &lot, now, early, late))
            .await?;
        let unreadable = read.is_err();
        let facts = match read {
            Ok(facts) => facts,
            Err(e) => {
                // Decide on what we know (nothing): an exit still opens, an entry is refused.
                tracing::error!(error = %e, "reading facts failed");
                self.alert(
                    AlertKind::StorageFault,
                    Severity::Critical,
                    format!("Reading the store failed: {e}."),
                    now,
                )
                .await?;
                Facts {
                    credential: card,
                    ..Facts::default()
                }
            }
        };
        let ctx = Context {
            lot: &self.cfg.gate.lot,
            role: self.cfg.gate.role,
            anti_passback: self.cfg.access.anti_passback,
            early_grace_min: self.cfg.access.early_grace_min,
            late_grace_min: self.cfg.access.late_grace_min,
            lockdown: self.lane.lockdown(),
            capacity: &self.cfg.capacity,
            tariff: &self.cfg.tariff,
            tz: self.cfg.tz(),
        };
        let decision = policy::decide(&facts, &ctx, now);
        Ok(if unreadable {
            without_blame(decision)
        } else {
            decision
        })
    }

    /// Commits events in one transaction; a store error is the lane's to
    /// handle (an entry stays closed, an exit opens anyway).
    async fn record(
        &mut self,
        bodies: Vec<EventBody>,
        now: Timestamp,
    ) -> Result<Result<Vec<String>, String>, DaemonError> {
        let clock = crate::domain::contract::Clock::Synced;
        match self
            .store
            .call(move |db| db.record(bodies, now, clock))
            .await?
        {
            Ok(events) => {
                self.printed(&events);
                Ok(Ok(events.into_iter().map(|e| e.event_id).collect()))
            }
            Err(e) => {
                tracing::error!(error = %e, "recording events failed");
                Ok(Err(e.to_string()))
            }
        }
    }

    /// Records events the daemon itself notices (reader health, store faults).
    async fn record_own(
        &mut self,
        bodies: Vec<EventBody>,
        now: Timestamp,
    ) -> Result<(), DaemonError> {
        if let Err(e) = self.record(bodies, now).await? {
            tracing::error!(error = %e, "an alert could not be recorded");
        }
        Ok(())
    }

    async fn alert(
        &mut self,
        kind: AlertKind,
        severity: Severity,
        message: String,
        now: Timestamp,
    ) -> Result<(), DaemonError> {
        let alert = Alert {
            alert: kind,
            severity,
            message,
            card: None,
            user_id: None,
            related_event_id: None,
        };
        self.record_own(vec![EventBody::Alert(alert)], now).await
    }

    fn printed(&self, events: &[Event]) {
        if self.print {
            for e in events {
                println!("{}", report::event_line(e, self.cfg.tz()));
            }
        }
    }

    async fn barrier(
        &mut self,
        cmd: lane::BarrierCommand,
        now: Timestamp,
    ) -> Result<(), DaemonError> {
        let hal_cmd = match cmd {
            lane::BarrierCommand::Up => hal::BarrierCommand::Up,
            lane::BarrierCommand::Down => hal::BarrierCommand::Down,
        };
        if let Err(e) = self.hw.barrier.command(hal_cmd).await {
            tracing::error!(error = %e, ?cmd, "barrier output failed");
            let message = format!("The barrier did not take the {cmd:?} command: {e}.");
            self.alert(AlertKind::BarrierFault, Severity::Critical, message, now)
                .await?;
        }
        Ok(())
    }

    async fn show(&mut self, signal: &lane::Signal) {
        let signal = hal::Signal {
            light: match signal.light {
                lane::Light::Green => hal::Light::Green,
                lane::Light::Red => hal::Light::Red,
            },
            buzzer: if signal.beep {
                hal::Buzz::Short
            } else {
                hal::Buzz::None
            },
            text: Some(signal.text.clone()),
        };
        if let Err(e) = self.hw.feedback.show(&signal).await {
            tracing::warn!(error = %e, "driver feedback failed");
        }
    }

    async fn reader(&mut self, event: hal::ReaderEvent) -> Result<(), DaemonError> {
        let now = self.clock.now();
        match event {
            hal::ReaderEvent::Card(credential) => self.feed(Input::Card(credential.hex())).await?,
            hal::ReaderEvent::AuthFailed(credential) => {
                let card = credential.hex();
                let denied = Denied {
                    card: Some(card.clone()),
                    reason: DenyReason::CredentialAuthFailed,
                    user_id: None,
                    user_name: None,
                };
                let alert = Alert {
                    alert: AlertKind::WrongCard,
                    severity: Severity::Warning,
                    message: format!(
                        "Card {card} failed authentication (cloned or damaged card?)."
                    ),
                    card: Some(card),
                    user_id: None,
                    related_event_id: None,
                };
                self.record_own(
                    vec![EventBody::Denied(denied), EventBody::Alert(alert)],
                    now,
                )
                .await?;
                self.show(&lane::Signal {
                    light: lane::Light::Red,
                    beep: true,
                    text: "Card not valid - call security".into(),
                })
                .await;
            }
            hal::ReaderEvent::Misread => {
                self.show(&lane::Signal {
                    light: lane::Light::Red,
                    beep: true,
                    text: "Please tap your card again".into(),
                })
                .await;
            }
            hal::ReaderEvent::Health(hal::ReaderHealth::Offline(why)) if self.reader_online => {
                self.reader_online = false;
                let message = format!("The card reader went offline: {why}.");
                self.alert(AlertKind::ReaderOffline, Severity::Critical, message, now)
                    .await?;
            }
            hal::ReaderEvent::Health(hal::ReaderHealth::Ok) if !self.reader_online => {
                self.reader_online = true;
                self.alert(
                    AlertKind::ReaderOnline,
                    Severity::Info,
                    "The card reader is back online.".into(),
                    now,
                )
                .await?;
            }
            hal::ReaderEvent::Health(_) => {}
        }
        Ok(())
    }

    /// Drops delivered events past the retention period (the contract's
    /// replay window) and expired command ids.
    async fn housekeeping(&mut self) -> Result<(), DaemonError> {
        let now = self.clock.now();
        let cutoff = now - chrono::TimeDelta::days(self.cfg.store.retention_days.into());
        match self.store.call(move |db| db.prune(cutoff, now)).await? {
            Ok(pruned) => tracing::debug!(?pruned, "housekeeping"),
            Err(e) => tracing::warn!(error = %e, "pruning the journal failed"),
        }
        Ok(())
    }

    async fn control(&mut self, request: Request) {
        match request {
            Request::Status(reply) => {
                let _ = reply.send(self.status().await.map_err(|e| e.to_string()));
            }
            Request::Advance(by, reply) => {
                let result = match &self.clock {
                    Clock::Manual(m) => Ok(m.advance(by)),
                    Clock::System(_) => Err(
                        "the daemon runs on the system clock; only a manual clock can be advanced"
                            .into(),
                    ),
                };
                let _ = reply.send(result);
            }
        }
    }

    async fn status(&mut self) -> Result<Status, StoreError> {
        let (outbox_depth, replica_seq, presence) = self
            .store
            .call(|db| Ok::<_, StoreError>((db.outbox_depth()?, db.replica_seq()?, db.presence()?)))
            .await??;
        let mut occupancy = BTreeMap::new();
        for p in presence {
            *occupancy.entry(p.class).or_default() += 1;
        }
        let lane = self.lane.status();
        let counters = self.lane.counters();
        Ok(Status {
            site: self.cfg.gate.site.clone(),
            lot: self.cfg.gate.lot.clone(),
            gate: self.cfg.gate.gate.clone(),
            at: self.clock.now(),
            lane: lane.phase.as_str(),
            barrier: match lane.barrier {
                lane::BarrierCommand::Up => "up",
                lane::BarrierCommand::Down => "down",
            },
            lockdown: lane.lockdown,
            fault: lane.fault,
            reader: if self.reader_online { "ok" } else { "offline" },
            occupancy,
            entered: counters.entered.clone(),
            exited: counters.exited.clone(),
            outbox_depth,
            replica_seq,
        })
    }
}

/// The output of `fut` if it is ready right now. Unconstrained: tokio's
/// cooperative budget must not make a queued event look absent.
fn ready_now<T>(fut: impl Future<Output = T>) -> Option<T> {
    let fut = std::pin::pin!(tokio::task::unconstrained(fut));
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match fut.poll(&mut cx) {
        std::task::Poll::Ready(out) => Some(out),
        std::task::Poll::Pending => None,
    }
}

/// A decision taken on an unreadable store: the card may well be good, so
/// no `wrong_card` alert accuses it, and an entry shows "out of order"
/// instead of "card not valid". (The storage fault itself is alerted.)
fn without_blame(decision: Decision) -> Decision {
    match decision {
        Decision::Deny { denied, .. } => Decision::Deny {
            denied,
            alert: None,
            display: lane::OUT_OF_ORDER.into(),
        },
        Decision::Admit {
            direction,
            event,
            display,
            ..
        } => Decision::Admit {
            direction,
            event,
            alerts: Vec::new(),
            display,
        },
    }
}

fn sensor_state(s: hal::SensorState) -> lane::SensorState {
    match s {
        hal::SensorState::Clear => lane::SensorState::Clear,
        hal::SensorState::Occupied => lane::SensorState::Occupied,
        hal::SensorState::Fault => lane::SensorState::Fault,
    }
}

fn lane_sensor(s: hal::Sensor) -> lane::Sensor {
    match s {
        hal::Sensor::Arming => lane::Sensor::Arming,
        hal::Sensor::Safety => lane::Sensor::Safety,
        hal::Sensor::BarrierUp => lane::Sensor::BarrierUp,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::contract::Passage;
    use crate::domain::model::Direction;

    fn wrong_card() -> Alert {
        Alert {
            alert: AlertKind::WrongCard,
            severity: Severity::Warning,
            message: "Card 0BADC0DE was refused.".into(),
            card: Some("0BADC0DE".into()),
            user_id: None,
            related_event_id: None,
        }
    }

    #[test]
    fn an_unreadable_store_blames_no_card() {
        let deny = Decision::Deny {
            denied: Denied {
                card: Some("0BADC0DE".into()),
                reason: DenyReason::UnknownCard,
                user_id: None,
                user_name: None,
            },
            alert: Some(wrong_card()),
            display: "Card not valid - call security".into(),
        };
        let Decision::Deny {
            alert,
            display,
            denied,
        } = without_blame(deny)
        else {
            panic!("still a denial")
        };
        assert_eq!(
            (alert, display.as_str(), denied.reason),
            (None, lane::OUT_OF_ORDER, DenyReason::UnknownCard)
        );

        let passage = Passage::unidentified(Some("0BADC0DE".into()), None, None);
        let exit = Decision::Admit {
            direction: Direction::Out,
            event: EventBody::CheckIn(passage),
            alerts: vec![wrong_card()],
            display: "Goodbye driver".into(),
        };
        let Decision::Admit {
            alerts, direction, ..
        } = without_blame(exit)
        else {
            panic!("an exit still opens")
        };
        assert_eq!((alerts.len(), direction), (0, Direction::Out));
    }
}
