//! The running gate: wires the hardware, the lane, the policy and the store.
//!
//! This is the one place with the main `select!` loop. Everything it does is
//! carry out what the pure lane asks ([`Action`](crate::domain::lane::Action)s)
//! and feed back what happened (`Input`s); the decisions themselves are made
//! in `domain::lane` and `domain::policy`. An action that fails (a barrier
//! output, a full disk) becomes an alert or a logged error; the loop keeps
//! running.
//!
//! The loop never waits on the disk: store calls are sent to the store thread
//! and their answers are one more source of the `select!`
//! (`gate`). Timers run on the monotonic clock ([`clock`]).
//!
//! # Queues, and what happens when one is full
//! - Sensor edges (hal → loop): taken first, always, and every queued edge
//!   before anything else (`catch_up`). A backend must never drop one: the
//!   sim holds [`hal::sim::SENSOR_QUEUE`] client edges and a client past
//!   that waits for room. The barrier-up edges the sim makes inside
//!   `Barrier::command`, which this loop awaits, cannot wait; they have
//!   [`hal::sim::SWITCH_ROOM`] places of their own, enough because the loop
//!   takes queued edges between barrier commands. Keep it so.
//! - Card reads and reader health (hal → loop): one queue, in order. A
//!   backend may drop a read when its queue is full (the driver taps
//!   again): the sim holds [`hal::sim::READ_QUEUE`] reads and refuses a tap
//!   past that with "tap again". A health change is never dropped and has
//!   room reads cannot take ([`hal::sim::HEALTH_ROOM`]), but it is taken
//!   only when reads are: the loop stops taking both while
//!   [`MAX_IN_FLIGHT`] store calls are pending.
//! - Store calls (loop → store thread): at most [`MAX_IN_FLIGHT`] sent
//!   for cards and control requests; sensor edges and timers may add the few
//!   commits they cause beyond it, so an edge is never held back.
//! - Control requests: a channel of [`CONTROL_QUEUE`]; a client waits for room.
//! - The HQ link: the loop tells it what the gate looks like through a
//!   `watch` (never waits; the link sees the latest) and takes the alerts it
//!   raises and HQ's commands from a channel of
//!   [`crate::link::RAISED_QUEUE`], where the link waits for room. The link reads the outbox through its own store calls.

pub mod clock;
pub mod control;
mod gate;
mod hal_map;
pub mod notify;
pub mod reader;
pub mod status;
pub mod watchdog;
mod wire;

use std::collections::VecDeque;
use std::future::Future;
use std::time::Duration;

use parkgate_hal as hal;
use tokio::sync::{mpsc, oneshot};

use self::clock::Clock;
use self::gate::Gate;
pub use self::gate::MAX_IN_FLIGHT;
use self::status::Status;
use crate::config::Config;
use crate::domain::lane::{Counters, Input, Lane, LaneConfig};
use crate::domain::model::Timestamp;
use crate::domain::time::ClockWatch;
use crate::store::{PruneRun, Store, StoreError};

pub use wire::{Spawned, serve, spawn, spawn_with};

/// How often delivered events past retention and expired command ids are pruned.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(3600);
/// How often the kernel is asked whether the wall clock is synchronised,
/// and the wall clock compared with the monotonic one when nothing else
/// reads them.
const CLOCK_CHECK_EVERY: Duration = Duration::from_secs(5);
/// How often the replica's age is checked against `[mqtt] replica_stale_h`.
const REPLICA_CHECK_EVERY: Duration = Duration::from_secs(60);
/// Room in the control request queue.
pub const CONTROL_QUEUE: usize = 16;

/// How a gate runs, beyond its config.
pub struct Options {
    /// Where time comes from: the system clock, or a manual one (demo, tests).
    pub clock: Clock,
    /// Print a line per committed event on stdout (`parkgate run`).
    pub print: bool,
    /// Told once the gate is ready (sockets bound, starting sensors read),
    /// when `READY=1` goes to systemd.
    pub ready: Option<oneshot::Sender<()>>,
    /// Where `READY=1` and the watchdog's `WATCHDOG=1` go.
    pub systemd: notify::Systemd,
}

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
    /// Lane state, occupancy, outbox depth, replica seq: answered once the
    /// gate has settled (nothing in flight to the store).
    Status(oneshot::Sender<Result<Status, String>>),
    /// A technician sets (`true`) or lifts the lockdown; answered with the
    /// lockdown state after it.
    Lockdown(bool, oneshot::Sender<Result<bool, String>>),
    /// Move a manual clock forward (demo and tests); refused on the system clock.
    Advance(
        chrono::TimeDelta,
        oneshot::Sender<Result<Timestamp, String>>,
    ),
    /// Step a manual clock's wall clock only (tests of NTP steps).
    StepWall(
        chrono::TimeDelta,
        oneshot::Sender<Result<Timestamp, String>>,
    ),
    /// Set whether a manual clock says the kernel calls it synchronised
    /// (tests of a Pi without NTP); refused on the system clock.
    KernelSynced(bool, oneshot::Sender<Result<bool, String>>),
}

/// Why the daemon stopped.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The store failed at start-up or its thread died.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// A piece of hardware stopped for good, or could not be set up. Not a
    /// `#[source]`: the message holds it already, and `parkgate: {e:#}`
    /// would print it twice.
    #[error("hardware: {0}")]
    Hardware(hal::HalError),
    /// The control socket could not be bound.
    #[error("{0}")]
    Control(#[from] control::ControlError),
    /// The config asks for something this build cannot do.
    #[error("config: {0}")]
    Config(String),
    /// An in-process gate's task ended abnormally (see [`Spawned`]).
    #[error("the gate's task: {0}")]
    Task(String),
}

impl From<hal::HalError> for DaemonError {
    fn from(e: hal::HalError) -> Self {
        DaemonError::Hardware(e)
    }
}

/// Runs the gate until `shutdown` resolves. Takes its hardware, store, clock,
/// control requests and shutdown signal as arguments; [`serve`] wires them
/// from the config for `parkgate run`, the demo and the tests alike.
pub async fn run<R, P, B, F>(
    cfg: Config,
    store: Store,
    hw: Hardware<R, P, B, F>,
    options: Options,
    mut control: mpsc::Receiver<Request>,
    link: crate::link::GateSide,
    shutdown: impl Future<Output = ()>,
) -> Result<(), DaemonError>
where
    R: hal::CardReader,
    P: hal::Presence,
    B: hal::Barrier,
    F: hal::Feedback,
{
    let Options {
        clock,
        print,
        ready,
        systemd,
    } = options;
    let now = clock.now();
    let ((entered, exited), lockdown) = store
        .call(|db| Ok::<_, StoreError>((db.counters()?, db.lockdown()?)))
        .await??;
    let mut lane_cfg = LaneConfig::new(cfg.gate.role, cfg.lane.clone(), ulid::Ulid::new());
    lane_cfg.lockdown = lockdown;
    let mut lane = Lane::new(lane_cfg, hal_map::sensors(&hw.presence), now.mono);
    lane.seed_counters(Counters { entered, exited });
    let mut watch = ClockWatch::new(
        ClockWatch::DEFAULT_THRESHOLD,
        ClockWatch::DEFAULT_SETTLE,
        true,
    );
    watch.observe(now);
    let mut gate = Gate {
        cfg,
        store,
        hw,
        clock,
        watch,
        lane,
        wake: None,
        in_flight: VecDeque::new(),
        status_wanted: Vec::new(),
        print,
        link,
        last_seq: 0,
        started: now.wall,
        replica_stale: None,
        watchdog: systemd.watchdog().map(watchdog::Watchdog::new),
        systemd,
        origin: tokio::time::Instant::now(),
    };
    tracing::info!(gate = %gate.cfg.gate.gate, role = ?gate.cfg.gate.role, lockdown, "gate running");
    // The kernel is asked before the first event is stamped.
    gate.check_clock().await?;
    gate.feed(Input::Tick).await?;
    // Ready: the store is open and has answered (the counters above), the
    // loops and outputs were read and the lane has acted on them, so from
    // here on every change is an event it sees. The card reader is not
    // waited for: a gate with a dead reader must still guard its barrier,
    // and says `reader_offline` instead. Tell systemd (and the black-box tests).
    gate.systemd.notify("READY=1");
    if let Some(ready) = ready {
        let _ = ready.send(());
    }

    tokio::pin!(shutdown);
    let mut housekeeping = tokio::time::interval(HOUSEKEEPING_EVERY);
    let mut pruning: Option<Pruning> = None;
    let mut clock_check = tokio::time::interval(CLOCK_CHECK_EVERY);
    let mut replica_check = tokio::time::interval(REPLICA_CHECK_EVERY);
    // On tokio's clock, not the gate's: the watchdog is about real time even
    // when the gate runs on a manual clock.
    let mut probe = gate
        .systemd
        .watchdog()
        .map(|w| tokio::time::interval(watchdog::Watchdog::probe_every(w)));
    loop {
        let wake = gate.wake;
        let clock = gate.clock.clone();
        let timer = async move {
            match wake {
                Some(at) => clock.sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        let room = gate.in_flight.len() < MAX_IN_FLIGHT;
        // Events come from several queues, so which is polled first is not
        // which happened first: a card may be taken while the loop change
        // queued just before it sits unread in the other queue. So before
        // acting on anything else, the gate takes in every sensor edge
        // already queued (`catch_up`): a card is decided on the loops as
        // they are, and a timer or control request (a test's next step comes
        // only once the sim queued the previous one) never overtakes the
        // hardware. Sensor edges come first of all, and are taken while
        // store calls are in flight.
        tokio::select! {
            biased;
            _ = &mut shutdown => break,
            event = gate.hw.presence.next_event() => gate.feed(event?.into()).await?,
            answer = gate::next_answer(&mut gate.in_flight), if !gate.in_flight.is_empty() => {
                gate.answered(answer?).await?;
            }
            event = gate.hw.reader.next_event(), if room => {
                gate.catch_up(false).await?;
                gate.feed(event?.into()).await?;
            }
            _ = timer => {
                gate.catch_up(room).await?;
                gate.wake = None;
                gate.feed(Input::Tick).await?;
            }
            Some(request) = control.recv(), if room => {
                gate.catch_up(true).await?;
                gate.control(request).await?;
            }
            Some(asked) = gate.link.raised.recv() => {
                let input = match asked {
                    crate::link::ToGate::Raise(alert) => crate::domain::lane::Input::Raise(alert),
                    crate::link::ToGate::Command(cmd) => {
                        crate::domain::lane::Input::Command(cmd, crate::domain::lane::By::Hq)
                    }
                };
                gate.feed(input).await?;
            }
            _ = clock_check.tick() => gate.check_clock().await?,
            _ = tick(&mut probe) => gate.probe_store()?,
            _ = replica_check.tick() => gate.check_replica()?,
            // A pruning still under way an hour on goes on; none starts beside it.
            _ = housekeeping.tick(), if pruning.is_none() => pruning = gate.housekeeping(),
            // No step is sent while the gate waits on the store: a card's
            // facts and its commit then find at most one step ahead of them
            // (the one running when the facts were asked), not one each.
            done = pruned(&mut pruning), if gate.in_flight.is_empty() => {
                pruning = None;
                match done {
                    Ok(run) => tracing::debug!(
                        pruned = ?run.pruned,
                        steps = run.steps.len(),
                        longest_ms = run.longest().as_secs_f64() * 1e3,
                        "housekeeping"
                    ),
                    // As for any store call: the daemon stops.
                    Err(StoreError::Closed) => return Err(StoreError::Closed.into()),
                    Err(e) => tracing::warn!(error = %e, "pruning the journal failed"),
                }
            }
        }
        gate.settle_status()?;
        gate.show_link();
    }
    // Commits already sent are finished by the store thread before it ends
    // (nothing is lost); their answers are not acted on any more.
    tracing::info!(in_flight = gate.in_flight.len(), "gate stopped");
    Ok(())
}

/// The journal's pruning under way, driven by the loop ([`Gate::housekeeping`]).
type Pruning = std::pin::Pin<Box<dyn Future<Output = Result<PruneRun, StoreError>> + Send>>;

/// The end of the pruning under way; never without one.
async fn pruned(pruning: &mut Option<Pruning>) -> Result<PruneRun, StoreError> {
    match pruning {
        Some(pruning) => pruning.await,
        None => std::future::pending().await,
    }
}

/// The next tick of `interval`; never without one.
async fn tick(interval: &mut Option<tokio::time::Interval>) {
    match interval {
        Some(interval) => {
            interval.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// The output of `fut` if it is ready right now. Unconstrained: tokio's
/// cooperative budget must not make a queued event look absent.
pub(crate) fn ready_now<T>(fut: impl Future<Output = T>) -> Option<T> {
    let fut = std::pin::pin!(tokio::task::unconstrained(fut));
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match fut.poll(&mut cx) {
        std::task::Poll::Ready(out) => Some(out),
        std::task::Poll::Pending => None,
    }
}
