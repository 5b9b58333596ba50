//! Simulated lane hardware, driven from outside the process over a Unix socket.
//!
//! [`bind`] returns one handle per trait ([`SimReader`], [`SimPresence`],
//! [`SimBarrier`], [`SimFeedback`]) for the daemon, and a [`SimServer`] to
//! spawn. The server listens on a Unix socket; any number of clients (tests,
//! `parkgate sim ...`, `socat - UNIX-CONNECT:/run/parkgate/sim.sock`) play the
//! world: put vehicles on loops, tap cards, take the reader offline, and watch
//! what the gate does with the barrier and the lights.
//!
//! The sim starts with its inputs in the [`SensorStates`] given to [`bind`]
//! (all clear by default), as a real lane may be found after a restart: a car
//! on a loop, the boom up. Those states are what [`Presence::current`] and the
//! `state` request report before any event, and no event is sent for them.
//! If the barrier-up switch starts occupied the boom is up, so the sim
//! remembers `up` as the last barrier command.
//!
//! # Protocol
//!
//! JSON lines: one JSON object per `\n`-terminated line, UTF-8. Every request
//! line gets exactly **one** reply line, in order, so a client waits for the
//! reply instead of sleeping: once the reply is read the input has been
//! applied and its event queued for the daemon.
//!
//! Replies: `{"ok":true, ...}` or `{"ok":false,"error":"what went wrong"}`.
//! A line that is not valid JSON, not UTF-8, or not a known request gets an
//! error reply; the connection and the server keep running.
//!
//! A reply can be late, never lost: a request whose event finds its queue to
//! the daemon full waits for room (see [Queues to the daemon](#queues-to-the-daemon)),
//! and this connection's later lines wait behind it.
//!
//! ## Requests ([`SimRequest`])
//!
//! ```text
//! {"cmd":"vehicle","sensor":"arming","state":"occupied"}
//!     Set a presence input. sensor: arming | safety | barrier_up;
//!     state: clear | occupied | fault. For barrier_up, occupied means the
//!     boom is up (setting it by hand simulates a forced barrier).
//!     ("sensor" is accepted as an alias of "vehicle".)
//!     Reply {"ok":true,"changed":true}; changed is false (and no event is
//!     sent) when the input already had that state, as with a real edge.
//!     While the sensor queue is full the request waits (the input keeps its
//!     state) and its reply comes once the edge is queued: never dropped.
//! {"cmd":"tap","card":"04A1B2C3D4E5F6"}
//!     A card read cleanly: the reader yields ReaderEvent::Card. The UID is
//!     hex, either case, 4/7/10 bytes; anything else gets an error reply.
//! {"cmd":"tap_auth_failed","card":"04A1B2C3D4E5F6"}
//!     A card that gave this UID but failed authentication (a clone):
//!     ReaderEvent::AuthFailed.
//! {"cmd":"tap_corrupt"}
//!     Something was presented but not read cleanly: ReaderEvent::Misread.
//!     All taps are refused with an error while the reader is offline.
//!     A tap that finds the reader's queue full is dropped: nothing is
//!     queued or watched, and the reply says the read was lost:
//!     {"ok":false,"error":"the reader's queue is full: this read was dropped, tap again"}
//! {"cmd":"reader","online":false,"reason":"no answer on /dev/ttyAMA0"}
//!     Take the reader offline (reason optional) or back online (true):
//!     ReaderEvent::Health(Offline(reason) | Ok), only on a change.
//!     Reply {"ok":true,"changed":bool}. A change is never dropped and never
//!     waits behind card reads; it waits only while 4 earlier changes are
//!     still untaken.
//! {"cmd":"barrier_follows","value":false}
//!     By default the simulated barrier-up switch follows barrier commands
//!     at once (Up sets barrier_up occupied, Down clears it). false simulates
//!     a stuck boom: commands no longer move the switch.
//! {"cmd":"state"}
//!     Reply {"ok":true,"state":{"sensors":{"arming":"clear","safety":"clear",
//!     "barrier_up":"clear"},"barrier":"down","barrier_follows":true,
//!     "reader_online":true,"signal":{"light":"off","buzzer":"none","text":null}}}
//!     barrier is the last command given; before any, "up" if the sim
//!     started with barrier_up occupied, else "down".
//! {"cmd":"watch"}
//!     Reply {"ok":true}; from then on this connection also receives one line
//!     per thing that happens (below), interleaved with replies to any later
//!     requests (replies have "ok", watch lines have "out" or "in").
//! ```
//!
//! ## Watch lines ([`WatchLine`])
//!
//! What the gate did (`out`) and what the world did (`in`), in the order it
//! happened:
//!
//! ```text
//! {"out":"barrier","cmd":"up"}
//! {"out":"signal","light":"green","buzzer":"short","text":"Welcome Alice - spot B1-042"}
//! {"out":"lagged","missed":3}          this watcher fell behind and lost 3 lines
//! {"in":"sensor","sensor":"arming","state":"occupied"}   also when barrier_follows moves barrier_up
//! {"in":"tap","card":"04A1B2C3D4E5F6"}
//! {"in":"tap_auth_failed","card":"04A1B2C3D4E5F6"}
//! {"in":"tap_corrupt"}
//! {"in":"reader","online":false,"reason":"simulated"}
//! ```
//!
//! ## An arrival from a shell
//!
//! ```text
//! $ socat - UNIX-CONNECT:/run/parkgate/sim.sock
//! {"cmd":"vehicle","sensor":"arming","state":"occupied"}
//! {"ok":true,"changed":true}
//! {"cmd":"tap","card":"04A1B2C3D4E5F6"}
//! {"ok":true}
//! {"cmd":"state"}
//! {"ok":true,"state":{... "barrier":"up" ... "signal":{"light":"green",...}}}
//! ```
//!
//! The sim is instant: the boom "moves" the moment it is commanded, and no
//! timing is simulated; timers are the lane's business.
//!
//! # Queues to the daemon
//!
//! Both queues are bounded, and each is one channel, so the daemon takes
//! events in the order the sim made them. When one is full, the rule is
//! the one a real lane lives by: *a card read may be dropped with "tap
//! again"; a sensor edge never is*.
//!
//! - Reader ([`SimReader`]): at most [`READ_QUEUE`] (8) card reads,
//!   failed-auth reads and misreads not yet taken. A tap beyond is dropped
//!   with the error reply above. Health changes have [`HEALTH_ROOM`] (4)
//!   more places that reads cannot take, so a `reader` request is answered
//!   at once even when the reads fill the queue, and its change is taken
//!   in order after the reads before it; only past 4 untaken changes does
//!   it wait for room. A health change is never dropped.
//! - Sensors ([`SimPresence`]): at most [`SENSOR_QUEUE`] (256) client edges
//!   not yet taken; a `vehicle` request beyond waits for room. The room is
//!   reserved before the input changes, and the edge is queued under the
//!   same lock as the change, so the queue order is the order the inputs
//!   changed in, whatever the number of clients. The barrier-up edges the
//!   sim makes itself when the switch follows a command have
//!   [`SWITCH_ROOM`] (8) more places that clients cannot take, since
//!   [`SimBarrier::command`] must not wait on the daemon that awaits it.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, broadcast, mpsc};

use crate::{
    Barrier, BarrierCommand, CardReader, Feedback, HalError, Presence, ReaderEvent, Sensor,
    SensorEvent, SensorState, Signal,
};

mod client;
mod protocol;
mod server;
#[cfg(test)]
mod tests;

pub use client::{SimClient, SimWatch};
pub use protocol::{SensorStates, SimInput, SimOutput, SimRequest, SimSnapshot, WatchLine};
pub use server::SimServer;

/// How many watch lines a slow watcher may fall behind before it loses some.
const WATCH_BACKLOG: usize = 1024;

/// Card reads (`tap`, `tap_auth_failed`, `tap_corrupt`) queued for the
/// daemon and not yet taken, at most. A tap beyond this is dropped, as a real
/// reader drops a read it has nowhere to put: the client gets an error reply
/// (`... queue is full ... tap again`), nothing is queued and nothing is
/// watched. A driver whose read was lost taps again; small, because a read
/// that waited long is stale anyway.
pub const READ_QUEUE: usize = 8;

/// Places in the reader's queue, beyond the [`READ_QUEUE`] reads, that
/// reads cannot take: kept for health changes, so one never waits behind
/// card reads. Health changes are queued, not kept as a latest value: an
/// offline-and-back the daemon did not look at in time would vanish, an
/// outage nobody hears of. None is ever dropped: once this many are untaken
/// and reads fill the rest, a `reader` request waits for room, as a
/// `vehicle` one does. No reader flaps faster than the daemon reads; four
/// is plenty.
pub const HEALTH_ROOM: usize = 4;

/// Sensor edges from clients queued for the daemon and not yet taken, at
/// most. An edge is never dropped (a missed loop edge could lower the boom
/// onto a car): past this, a `vehicle` request waits for room and its reply
/// comes once the edge is queued.
pub const SENSOR_QUEUE: usize = 256;

/// Room beyond [`SENSOR_QUEUE`] kept for the barrier-up edges the sim makes
/// itself when the switch follows a barrier command. Those are made inside
/// [`SimBarrier::command`], which the daemon awaits; the daemon is the only
/// one that takes sensor edges, so waiting there for room could wait
/// forever. Client edges cannot use this room, so it is full only if the
/// daemon gave more than this many barrier commands without taking a sensor
/// edge in between. It never does (it takes every queued edge before
/// anything else, and one command makes at most one edge); if it ever did,
/// the switch still moves, the edge is lost and an error is logged.
pub const SWITCH_ROOM: usize = 8;

/// The simulated hardware of one lane: one handle per trait, and the server.
pub struct SimParts {
    /// The card reader; events come from `tap*` and `reader` requests.
    pub reader: SimReader,
    /// The loops and barrier-up switch; events come from `vehicle` requests
    /// and from barrier commands while the switch follows them.
    pub presence: SimPresence,
    /// The barrier output.
    pub barrier: SimBarrier,
    /// The driver feedback output.
    pub feedback: SimFeedback,
    /// The control socket server: spawn [`SimServer::run`].
    pub server: SimServer,
}

/// Binds the control socket at `path` and builds the simulated lane, its
/// inputs starting in the states `start` (see the module doc).
///
/// A stale socket file left by a crashed run is replaced; a socket someone
/// still listens on, or a file that is not a socket, is an error. Must be
/// called inside a tokio runtime. Nothing is served until
/// [`SimServer::run`] is polled.
pub fn bind(path: impl AsRef<Path>, start: SensorStates) -> Result<SimParts, HalError> {
    let path = path.as_ref();
    let (reader_tx, reader_rx) = mpsc::channel(READ_QUEUE + HEALTH_ROOM);
    let (sensor_tx, sensor_rx) = mpsc::channel(SENSOR_QUEUE + SWITCH_ROOM);
    let (watch_tx, _) = broadcast::channel(WATCH_BACKLOG);
    // A boom found up was raised by some command; remembering `down` would
    // contradict the switch in every `state` reply until the next command.
    let barrier = match start.barrier_up {
        SensorState::Occupied => BarrierCommand::Up,
        SensorState::Clear | SensorState::Fault => BarrierCommand::Down,
    };
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            sensors: start,
            barrier,
            barrier_follows: true,
            reader_online: true,
            signal: Signal::default(),
        }),
        reader_tx,
        reads: Arc::new(Semaphore::new(READ_QUEUE)),
        sensor_tx,
        client_edges: Arc::new(Semaphore::new(SENSOR_QUEUE)),
        watch_tx,
    });
    let server = SimServer::bind(path, shared.clone())?;
    Ok(SimParts {
        reader: SimReader { rx: reader_rx },
        presence: SimPresence {
            rx: sensor_rx,
            shared: shared.clone(),
        },
        barrier: SimBarrier {
            shared: shared.clone(),
        },
        feedback: SimFeedback { shared },
        server,
    })
}

/// State and channels shared by the handles and every client connection.
///
/// Each queue to the daemon is one channel (so the daemon takes events in
/// the order they were queued) plus a semaphore capping what clients may
/// put in it: the channel's extra room ([`HEALTH_ROOM`], [`SWITCH_ROOM`])
/// is kept for the events that must never be refused.
struct Shared {
    state: Mutex<State>,
    /// Card reads and health changes, in the order they happened.
    reader_tx: mpsc::Sender<Queued<ReaderEvent>>,
    /// [`READ_QUEUE`] permits, one held by each queued read until taken.
    reads: Arc<Semaphore>,
    /// Sensor edges, in the order the inputs changed.
    sensor_tx: mpsc::Sender<Queued<SensorEvent>>,
    /// [`SENSOR_QUEUE`] permits, one held by each queued client edge until taken.
    client_edges: Arc<Semaphore>,
    /// Pre-serialised watch lines, one subscriber per watching connection.
    watch_tx: broadcast::Sender<String>,
}

/// An event in a queue to the daemon, with the permit (if any) that counts
/// it against its sender's cap: dropped, and so given back, when the daemon
/// takes the event.
struct Queued<E> {
    event: E,
    _held: Option<OwnedSemaphorePermit>,
}

/// A place in a queue to the daemon, reserved before the event is made: the
/// event is then queued under the state lock without waiting, so the queue
/// order is the order the state changed in, even with many clients.
struct Room<'a, E> {
    slot: mpsc::Permit<'a, Queued<E>>,
    held: Option<OwnedSemaphorePermit>,
}

impl<E> Room<'_, E> {
    fn send(self, event: E) {
        self.slot.send(Queued {
            event,
            _held: self.held,
        });
    }
}

/// The simulated world. Changed only under the lock, and events are queued
/// under the same lock, so `current()` and the event order never disagree.
struct State {
    sensors: SensorStates,
    barrier: BarrierCommand,
    barrier_follows: bool,
    reader_online: bool,
    signal: Signal,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic under the lock leaves plain data; keep serving it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends a watch line to every watcher; no watcher is fine.
    fn publish(&self, line: WatchLine) {
        let text = serde_json::to_string(&line).expect("watch lines serialise");
        let _ = self.watch_tx.send(text);
    }

    /// Room for one client sensor edge, waiting while [`SENSOR_QUEUE`] are
    /// not taken yet. Call it before taking the lock: the std mutex is never
    /// held across an await. `None` when nobody holds [`SimPresence`]: the
    /// input still changes, nobody hears of it.
    async fn edge_room(&self) -> Option<Room<'_, SensorEvent>> {
        if self.sensor_tx.is_closed() {
            return None;
        }
        // The semaphore is never closed. Events still queued when the
        // receiver goes are dropped with it, giving their permits back, so
        // this wait ends then too.
        let held = self.client_edges.clone().acquire_owned().await.ok()?;
        // Client edges hold at most SENSOR_QUEUE places, so this waits only
        // if the daemon left more than SWITCH_ROOM switch edges untaken.
        let slot = self.sensor_tx.reserve().await.ok()?;
        Some(Room {
            slot,
            held: Some(held),
        })
    }

    /// Room for a reader health change: HEALTH_ROOM places that reads cannot
    /// take, so this waits only when that many changes are not taken yet.
    /// `None` when nobody holds [`SimReader`]. Call it before taking the lock.
    async fn health_room(&self) -> Option<Room<'_, ReaderEvent>> {
        let slot = self.reader_tx.reserve().await.ok()?;
        Some(Room { slot, held: None })
    }

    /// Room for one card read now, or why the read is lost. Never waits: a
    /// tap that finds [`READ_QUEUE`] reads untaken is dropped.
    fn read_room(&self) -> Result<Room<'_, ReaderEvent>, String> {
        let nobody = || "nobody is reading the simulated card reader".to_string();
        let full = || "the reader's queue is full: this read was dropped, tap again".to_string();
        if self.reader_tx.is_closed() {
            return Err(nobody());
        }
        let held = self.reads.clone().try_acquire_owned().map_err(|_| full())?;
        let slot = self.reader_tx.try_reserve().map_err(|e| match e {
            // Only if HEALTH_ROOM health changes already fill the rest.
            mpsc::error::TrySendError::Full(()) => full(),
            mpsc::error::TrySendError::Closed(()) => nobody(),
        })?;
        Ok(Room {
            slot,
            held: Some(held),
        })
    }

    /// Sets one input and, on a change, tells watchers and returns its
    /// event, which the caller queues before letting go of the lock.
    fn set_sensor(
        &self,
        state: &mut State,
        sensor: Sensor,
        value: SensorState,
    ) -> Option<SensorEvent> {
        if state.sensors.get(sensor) == value {
            return None;
        }
        state.sensors.set(sensor, value);
        let event = SensorEvent {
            sensor,
            state: value,
        };
        self.publish(WatchLine::In(SimInput::Sensor(event)));
        Some(event)
    }

    /// Queues a barrier-up edge made by a barrier command, without waiting
    /// (see [`SWITCH_ROOM`] for why it must not wait and why room is there).
    fn queue_switch_edge(&self, event: SensorEvent) {
        let queued = Queued { event, _held: None };
        match self.sensor_tx.try_send(queued) {
            Ok(()) => {}
            // Nobody holding SimPresence only means nobody listens; the state stands.
            Err(mpsc::error::TrySendError::Closed(_)) => {}
            Err(mpsc::error::TrySendError::Full(_)) => tracing::error!(
                ?event,
                room = SWITCH_ROOM,
                "sim: the barrier-up edge is lost: the sensor queue is full, so more than \
                 SWITCH_ROOM barrier commands were given without taking a sensor edge"
            ),
        }
    }

    fn snapshot(&self) -> SimSnapshot {
        let s = self.lock();
        SimSnapshot {
            sensors: s.sensors,
            barrier: s.barrier,
            barrier_follows: s.barrier_follows,
            reader_online: s.reader_online,
            signal: s.signal.clone(),
        }
    }
}

/// The simulated card reader ([`CardReader`]).
pub struct SimReader {
    rx: mpsc::Receiver<Queued<ReaderEvent>>,
}

impl CardReader for SimReader {
    async fn next_event(&mut self) -> Result<ReaderEvent, HalError> {
        // recv is cancel-safe; taking the event gives its place back.
        let queued = self.rx.recv().await;
        queued
            .map(|q| q.event)
            .ok_or(HalError::Stopped("sim reader"))
    }
}

/// The simulated loops and barrier-up switch ([`Presence`]); all fitted.
pub struct SimPresence {
    rx: mpsc::Receiver<Queued<SensorEvent>>,
    shared: Arc<Shared>,
}

impl Presence for SimPresence {
    async fn next_event(&mut self) -> Result<SensorEvent, HalError> {
        // recv is cancel-safe; taking the event gives its place back.
        let queued = self.rx.recv().await;
        queued
            .map(|q| q.event)
            .ok_or(HalError::Stopped("sim presence"))
    }

    fn current(&self, sensor: Sensor) -> SensorState {
        self.shared.lock().sensors.get(sensor)
    }
}

/// The simulated barrier output ([`Barrier`]); see `barrier_follows`.
pub struct SimBarrier {
    shared: Arc<Shared>,
}

impl Barrier for SimBarrier {
    async fn command(&mut self, cmd: BarrierCommand) -> Result<(), HalError> {
        let shared = &self.shared;
        let mut state = shared.lock();
        state.barrier = cmd;
        shared.publish(WatchLine::Out(SimOutput::Barrier { cmd }));
        if state.barrier_follows {
            let up = match cmd {
                BarrierCommand::Up => SensorState::Occupied,
                BarrierCommand::Down => SensorState::Clear,
            };
            if let Some(event) = shared.set_sensor(&mut state, Sensor::BarrierUp, up) {
                shared.queue_switch_edge(event);
            }
        }
        Ok(())
    }
}

/// The simulated light, buzzer and display ([`Feedback`]).
pub struct SimFeedback {
    shared: Arc<Shared>,
}

impl Feedback for SimFeedback {
    async fn show(&mut self, signal: &Signal) -> Result<(), HalError> {
        let mut state = self.shared.lock();
        state.signal = signal.clone();
        self.shared
            .publish(WatchLine::Out(SimOutput::Signal(signal.clone())));
        Ok(())
    }
}

/// An I/O error naming the operation and the socket path.
fn io_err(what: impl std::fmt::Display, path: &Path, source: std::io::Error) -> HalError {
    HalError::Io {
        what: format!("{what} {}", path.display()),
        source,
    }
}
