//! The gate around the pure lane: carries out the lane's actions and feeds
//! back what happened, without ever waiting on the disk.
//!
//! A store call (a card's facts, a commit, a status read) is sent to the
//! store thread and joins [`Gate::in_flight`]; the loop goes on taking
//! sensor edges, timers and control requests, and each answer is fed to the
//! lane when it arrives. The store thread answers in the order it was asked,
//! so only the oldest call is ever awaited.

use std::collections::VecDeque;

use parkgate_hal as hal;
use tokio::sync::oneshot;

use super::clock::Clock;
use super::notify::Systemd;
use super::status::Status;
use super::watchdog::{Tick, Watchdog};
use super::{DaemonError, Hardware, Request};
use crate::cli::report;
use crate::config::Config;
use crate::domain::contract::Event;
use crate::domain::lane::{Action, Input, Lane};
use crate::domain::lane::{By, Command};
use crate::domain::model::{Presence, Timestamp};
use crate::domain::policy::{self, Context, Facts};
use crate::domain::time::{ClockWatch, Mono, Now};
use crate::link::{GateSide, GateView};
use crate::store::{Store, StoreError};

/// Store calls in flight above this, the loop stops taking cards and
/// control requests (sensor edges are always taken) until the store catches
/// up: the queue to the store thread stays bounded.
pub const MAX_IN_FLIGHT: usize = 64;

/// A store call's answer, to be fed back in order.
pub(super) enum Answer {
    /// The facts on a card read at wall time `at`.
    Facts {
        card: String,
        at: Timestamp,
        facts: Result<Box<Facts>, String>,
    },
    /// A lane commit: the events as journalled, or why it failed.
    Committed(Result<Vec<Event>, String>),
    /// What the status needs from the store.
    Status(Result<StoreStatus, String>),
    /// When HQ's replica feed was last heard, and the replica's seq.
    ReplicaHeard(Result<(Option<chrono::DateTime<chrono::Utc>>, u64), String>),
    /// The watchdog's probe sent at this reading (of [`Gate::origin`]) came back.
    Alive(Mono),
}

/// The store's part of a [`Status`].
pub(super) struct StoreStatus {
    outbox: crate::store::OutboxFacts,
    replica_heard: Option<chrono::DateTime<chrono::Utc>>,
    presence: Vec<Presence>,
}

/// Waits for the oldest store call's answer (cancel-safe: the call stays
/// queued if another branch of the loop wins).
pub(super) async fn next_answer(
    in_flight: &mut VecDeque<oneshot::Receiver<Answer>>,
) -> Result<Answer, DaemonError> {
    let front = in_flight.front_mut().ok_or(StoreError::Closed)?;
    let answer = front.await.map_err(|_| StoreError::Closed);
    in_flight.pop_front();
    Ok(answer?)
}

/// The gate's running state around the pure lane.
pub(super) struct Gate<R, P, B, F> {
    pub cfg: Config,
    pub store: Store,
    pub hw: Hardware<R, P, B, F>,
    pub clock: Clock,
    pub watch: ClockWatch,
    pub lane: Lane,
    /// When the lane wants its next tick.
    pub wake: Option<Mono>,
    /// Store calls not answered yet, oldest first.
    pub in_flight: VecDeque<oneshot::Receiver<Answer>>,
    /// Status requests waiting for the gate to settle (nothing in flight).
    pub status_wanted: Vec<oneshot::Sender<Result<Status, String>>>,
    /// Print each committed event (stdout, for `parkgate run`).
    pub print: bool,
    /// The HQ link's channels.
    pub link: GateSide,
    /// The highest `gate_seq` recorded (for the link).
    pub last_seq: u64,
    /// When the daemon started: the replica's age counts from here if HQ
    /// was never heard.
    pub started: Timestamp,
    /// The quiet spell a `replica_stale` alert was raised for: when the feed
    /// was last heard before it (None inside: never). One alert a spell.
    pub replica_stale: Option<Option<chrono::DateTime<chrono::Utc>>>,
    /// systemd's watchdog, if it wants pings.
    pub watchdog: Option<Watchdog>,
    /// Where `READY=1` and `WATCHDOG=1` go.
    pub systemd: Systemd,
    /// The watchdog's clock: real monotonic time (tokio's), also when the
    /// gate runs on a manual clock.
    pub origin: tokio::time::Instant,
}

impl<R, P, B, F> Gate<R, P, B, F>
where
    R: hal::CardReader,
    P: hal::Presence,
    B: hal::Barrier,
    F: hal::Feedback,
{
    /// Reads both clocks; a wall-clock step is fed to the lane first (its
    /// alert), so every later event is stamped with the clock in doubt.
    async fn now(&mut self) -> Result<Now, DaemonError> {
        let now = self.clock.now();
        if let Some(step) = self.watch.observe(now) {
            tracing::warn!(by_ms = step.by_ms, "the wall clock stepped");
            self.step(Input::ClockUnsynced(step.message()), now).await?;
        }
        Ok(now)
    }

    /// Asks the kernel whether the wall clock is synchronised (at start and
    /// every [`super::CLOCK_CHECK_EVERY`], on the monotonic clock), and
    /// notices a wall-clock step even when nothing else happens. The watch
    /// decides whether a loss of sync is news (one alert a spell).
    pub async fn check_clock(&mut self) -> Result<(), DaemonError> {
        let said = self.clock.kernel_sync();
        let now = self.now().await?;
        if let Some(message) = self.watch.kernel(said) {
            tracing::warn!(%message, "the kernel says the clock is not synchronised");
            self.step(Input::ClockUnsynced(message), now).await?;
        }
        Ok(())
    }

    /// Feeds one input to the lane at the current time.
    pub async fn feed(&mut self, input: Input) -> Result<(), DaemonError> {
        let now = self.now().await?;
        self.step(input, now).await
    }

    /// Steps the lane and carries out its actions: store calls are sent,
    /// not awaited; outputs are driven at once.
    async fn step(&mut self, input: Input, now: Now) -> Result<(), DaemonError> {
        tracing::debug!(?input, mono = now.mono.as_ms(), wall = %now.wall, "lane input");
        for action in self.lane.step(input, now.mono) {
            tracing::debug!(?action, "lane action");
            match action {
                Action::Decide(card) => self.ask_facts(card, now.wall)?,
                Action::Record(commit) => {
                    let clock = self.watch.clock(now.mono);
                    let at = now.wall;
                    self.send(move |db| {
                        Answer::Committed(db.record(commit, at, clock).map_err(|e| {
                            tracing::error!(error = %e, "recording events failed");
                            e.to_string()
                        }))
                    })?;
                }
                Action::Barrier(cmd) => {
                    if let Err(e) = self.hw.barrier.command(cmd.into()).await {
                        tracing::error!(error = %e, ?cmd, "barrier output failed");
                        let why = format!("the barrier did not take the {cmd:?} command: {e}");
                        Box::pin(self.step(Input::OutputFailed(why), now)).await?;
                    }
                }
                Action::Show(signal) => {
                    if let Err(e) = self.hw.feedback.show(&(&signal).into()).await {
                        tracing::warn!(error = %e, "driver feedback failed");
                    }
                }
                Action::WakeAt(at) => self.wake = Some(at),
            }
        }
        Ok(())
    }

    /// Sends a job to the store thread; its answer joins the queue.
    fn send(
        &mut self,
        job: impl FnOnce(&mut crate::store::Db) -> Answer + Send + 'static,
    ) -> Result<(), DaemonError> {
        self.in_flight.push_back(self.store.submit(job)?);
        Ok(())
    }

    fn ask_facts(&mut self, card: String, at: Timestamp) -> Result<(), DaemonError> {
        let (lot, early, late) = (
            self.cfg.gate.lot.clone(),
            self.cfg.access.early_grace_min,
            self.cfg.access.late_grace_min,
        );
        self.send(move |db| {
            let facts = db
                .facts(&card, &lot, at, early, late)
                .map(Box::new)
                .map_err(|e| e.to_string());
            Answer::Facts { card, at, facts }
        })
    }

    /// Feeds a store answer back: a decision, a commit, a status.
    pub async fn answered(&mut self, answer: Answer) -> Result<(), DaemonError> {
        match answer {
            Answer::Facts { card, at, facts } => {
                let decision = match facts {
                    Ok(facts) => policy::decide(&facts, &self.context(), at),
                    Err(e) => {
                        tracing::error!(error = %e, "reading facts failed");
                        policy::unreadable(&card, &e)
                    }
                };
                self.feed(Input::Decided(decision)).await
            }
            Answer::Committed(result) => {
                if let Ok(events) = &result {
                    self.printed(events);
                    if let Some(last) = events.iter().map(|e| e.gate_seq).max() {
                        self.last_seq = self.last_seq.max(last);
                    }
                }
                self.feed(Input::Committed(result.map(|_| ()))).await
            }
            Answer::ReplicaHeard(Ok((heard, seq))) => self.replica_checked(heard, seq).await,
            Answer::ReplicaHeard(Err(e)) => {
                tracing::warn!(error = %e, "reading the replica's age failed");
                Ok(())
            }
            Answer::Alive(sent) => {
                let now = self.watchdog_now();
                if let Some(watchdog) = &mut self.watchdog {
                    if watchdog.answered(sent, now) {
                        self.systemd.notify("WATCHDOG=1");
                    } else {
                        let took = now - sent;
                        tracing::warn!(
                            ?took,
                            "the store answered the watchdog's probe late: no ping"
                        );
                    }
                }
                Ok(())
            }
            Answer::Status(result) => {
                let status = result.map(|s| self.status(s));
                for reply in self.status_wanted.drain(..) {
                    let _ = reply.send(status.clone());
                }
                Ok(())
            }
        }
    }

    /// Tells the link what the gate looks like now, if that changed (a
    /// `watch`: never waits, the link sees the latest).
    pub fn show_link(&mut self) {
        let lane = self.lane.status();
        let counters = self.lane.counters();
        let view = GateView {
            last_seq: self.last_seq,
            lane: lane.phase,
            reader_online: lane.reader_online,
            clock: self.watch.clock(self.clock.now().mono),
            lockdown: lane.lockdown,
            entered: counters.entered.clone(),
            exited: counters.exited.clone(),
        };
        self.link.view.send_if_modified(|shown| {
            let changed = *shown != view;
            if changed {
                *shown = view;
            }
            changed
        });
    }

    /// A probe tick of systemd's watchdog: sends the store a job that does
    /// nothing, behind whatever is queued; its answer, taken by this loop,
    /// earns the ping (see `watchdog.rs`).
    pub fn probe_store(&mut self) -> Result<(), DaemonError> {
        let now = self.watchdog_now();
        let Some(watchdog) = &mut self.watchdog else {
            return Ok(());
        };
        match watchdog.tick(now) {
            Tick::Probe(sent) => self.send(move |_| Answer::Alive(sent)),
            Tick::Wait => Ok(()),
            Tick::Late(waited) => {
                tracing::error!(
                    ?waited,
                    "the store thread has not answered: systemd's watchdog is not fed"
                );
                Ok(())
            }
        }
    }

    /// Now on the watchdog's clock.
    fn watchdog_now(&self) -> Mono {
        let since = self.origin.elapsed();
        Mono::from_ms(u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
    }

    /// Once nothing is in flight, reads what the waiting status requests need.
    pub fn settle_status(&mut self) -> Result<(), DaemonError> {
        if self.status_wanted.is_empty() || !self.in_flight.is_empty() {
            return Ok(());
        }
        self.send(|db| {
            let read = || -> Result<StoreStatus, StoreError> {
                Ok(StoreStatus {
                    outbox: db.outbox_facts()?,
                    replica_heard: db.replica_heard_at()?,
                    presence: db.presence()?,
                })
            };
            Answer::Status(read().map_err(|e| e.to_string()))
        })
    }

    fn context(&self) -> Context<'_> {
        Context {
            lot: &self.cfg.gate.lot,
            role: self.cfg.gate.role,
            anti_passback: self.cfg.access.anti_passback,
            early_grace_min: self.cfg.access.early_grace_min,
            late_grace_min: self.cfg.access.late_grace_min,
            lockdown: self.lane.lockdown(),
            capacity: &self.cfg.capacity,
            tariff: &self.cfg.tariff,
            tz: self.cfg.tz(),
        }
    }

    fn printed(&self, events: &[Event]) {
        if self.print {
            for e in events {
                println!("{}", report::event_line(e, self.cfg.tz()));
            }
        }
    }

    fn status(&self, store: StoreStatus) -> Status {
        let mut occupancy = std::collections::BTreeMap::new();
        for p in store.presence {
            *occupancy.entry(p.class).or_default() += 1;
        }
        let lane = self.lane.status();
        let counters = self.lane.counters();
        let now = self.clock.now();
        Status {
            site: self.cfg.gate.site.clone(),
            lot: self.cfg.gate.lot.clone(),
            gate: self.cfg.gate.gate.clone(),
            at: now.wall,
            clock: self.watch.clock(now.mono),
            clock_synced: self.watch.kernel_synced(),
            clock_doubt: self.watch.doubt_why(now.mono),
            lane: lane.phase,
            barrier: lane.barrier,
            lockdown: lane.lockdown,
            fault: lane.fault,
            reader_online: lane.reader_online,
            reader_firmware: hal::CardReader::firmware(&self.hw.reader),
            occupancy,
            entered: counters.entered.clone(),
            exited: counters.exited.clone(),
            outbox_depth: store.outbox.depth,
            outbox_oldest: store.outbox.oldest,
            outbox_oldest_age_s: store
                .outbox
                .oldest
                .map(|t| (now.wall - t).num_seconds().max(0) as u64),
            link: self.link.status.borrow().clone(),
            replica_seq: store.outbox.replica_seq,
            replica_heard: store
                .replica_heard
                .map(|t| t.with_timezone(&now.wall.timezone())),
            replica_age_s: store
                .replica_heard
                .map(|t| (now.wall.to_utc() - t).num_seconds().max(0) as u64),
        }
    }

    /// Takes in every hardware event already queued, without waiting: sensor
    /// edges always, card reads too if `cards`.
    pub async fn catch_up(&mut self, cards: bool) -> Result<(), DaemonError> {
        loop {
            while let Some(event) = super::ready_now(self.hw.presence.next_event()) {
                self.feed(event?.into()).await?;
            }
            if !cards {
                return Ok(());
            }
            match super::ready_now(self.hw.reader.next_event()) {
                Some(event) => self.feed(event?.into()).await?,
                None => return Ok(()),
            }
        }
    }

    /// Carries out a control socket request.
    pub async fn control(&mut self, request: Request) -> Result<(), DaemonError> {
        let manual_only = "the daemon runs on the system clock; only a manual clock can be moved";
        match request {
            Request::Status(reply) => self.status_wanted.push(reply),
            Request::Lockdown(on, reply) => {
                let command = if on {
                    Command::Lockdown
                } else {
                    Command::Unlock
                };
                self.feed(Input::Command(command, By::Technician)).await?;
                let _ = reply.send(Ok(self.lane.lockdown()));
            }
            Request::Advance(by, reply) => {
                let moved = match self.clock.as_manual() {
                    Some(m) => Ok(m.advance(by).wall),
                    None => Err(manual_only.to_string()),
                };
                // Time moved in a jump: what the periodic checks would have
                // seen along the way is looked at now.
                self.check_replica()?;
                let _ = reply.send(moved);
            }
            Request::StepWall(by, reply) => {
                let moved = match self.clock.as_manual() {
                    Some(m) => Ok(m.step_wall(by).wall),
                    None => Err(manual_only.to_string()),
                };
                // Noticed now, as the next reading anywhere would.
                self.check_clock().await?;
                let _ = reply.send(moved);
            }
            Request::KernelSynced(synced, reply) => {
                let told = match self.clock.as_manual() {
                    Some(m) => {
                        m.set_kernel_synced(synced);
                        Ok(synced)
                    }
                    None => Err(manual_only.to_string()),
                };
                // Taken in now, as the next periodic check would.
                self.check_clock().await?;
                let _ = reply.send(told);
            }
        }
        Ok(())
    }

    /// Asks the store when HQ's replica feed was last heard (a gate with
    /// the link off follows no feed, so it is never stale).
    pub fn check_replica(&mut self) -> Result<(), DaemonError> {
        if !self.cfg.mqtt.enabled {
            return Ok(());
        }
        self.send(|db| {
            let read = || Ok::<_, StoreError>((db.replica_heard_at()?, db.replica_seq()?));
            Answer::ReplicaHeard(read().map_err(|e| e.to_string()))
        })
    }

    /// One `replica_stale` alert when the feed has been quiet too long,
    /// by a wall clock that is trusted; another only after it was heard again.
    async fn replica_checked(
        &mut self,
        heard: Option<chrono::DateTime<chrono::Utc>>,
        seq: u64,
    ) -> Result<(), DaemonError> {
        let now = self.clock.now();
        if self.watch.clock(now.mono) == crate::domain::contract::Clock::Unsynced {
            return Ok(());
        }
        let since = heard.unwrap_or(self.started.to_utc());
        let quiet = now.wall.to_utc() - since;
        let limit = chrono::TimeDelta::hours(self.cfg.mqtt.replica_stale_h.into());
        if quiet < limit || self.replica_stale == Some(heard) {
            return Ok(());
        }
        self.replica_stale = Some(heard);
        let hours = quiet.num_hours();
        let message = match heard {
            Some(_) => format!(
                "No replica change from HQ for {hours} h; deciding on the replica at seq {seq}."
            ),
            None => format!(
                "Nothing from HQ's replica feed in the {hours} h since the gate started; deciding on the replica at seq {seq}."
            ),
        };
        tracing::warn!(%message, "the replica is stale");
        let alert = crate::domain::contract::Alert {
            alert: crate::domain::contract::AlertKind::ReplicaStale,
            severity: crate::domain::contract::Severity::Warning,
            message,
            card: None,
            user_id: None,
            related_event_id: None,
        };
        self.feed(Input::Raise(alert)).await
    }

    /// The journal's pruning, for the loop to drive beside everything else
    /// ([`Store::prune`]: small steps, each a store job of its own, so a
    /// card read waits for one step at most, never for a day of journal).
    /// `None` while the wall clock is in doubt.
    pub fn housekeeping(&self) -> Option<super::Pruning> {
        let reading = self.clock.now();
        if self.watch.clock(reading.mono) == crate::domain::contract::Clock::Unsynced {
            // A wall clock months ahead would prune the replay window away.
            tracing::info!("the wall clock is in doubt: pruning waits");
            return None;
        }
        let now = reading.wall;
        let cutoff = now - chrono::TimeDelta::days(self.cfg.store.retention_days.into());
        let store = self.store.clone();
        Some(Box::pin(async move {
            store.prune(cutoff, now, crate::store::PRUNE_STEP).await
        }))
    }
}
