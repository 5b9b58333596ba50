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
//! {"cmd":"tap","card":"04A1B2C3D4E5F6"}
//!     A card read cleanly: the reader yields ReaderEvent::Card. The UID is
//!     hex, either case, 4/7/10 bytes; anything else gets an error reply.
//! {"cmd":"tap_auth_failed","card":"04A1B2C3D4E5F6"}
//!     A card that gave this UID but failed authentication (a clone):
//!     ReaderEvent::AuthFailed.
//! {"cmd":"tap_corrupt"}
//!     Something was presented but not read cleanly: ReaderEvent::Misread.
//!     All taps are refused with an error while the reader is offline.
//! {"cmd":"reader","online":false,"reason":"no answer on /dev/ttyAMA0"}
//!     Take the reader offline (reason optional) or back online (true):
//!     ReaderEvent::Health(Offline(reason) | Ok), only on a change.
//!     Reply {"ok":true,"changed":bool}.
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
//! timing is simulated; timers are the lane's business. Event queues to the
//! daemon are unbounded (a test tool; nothing reads faster than a human types).

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{broadcast, mpsc};

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
    let (reader_tx, reader_rx) = mpsc::unbounded_channel();
    let (sensor_tx, sensor_rx) = mpsc::unbounded_channel();
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
        sensor_tx,
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
struct Shared {
    state: Mutex<State>,
    reader_tx: mpsc::UnboundedSender<ReaderEvent>,
    sensor_tx: mpsc::UnboundedSender<SensorEvent>,
    /// Pre-serialised watch lines, one subscriber per watching connection.
    watch_tx: broadcast::Sender<String>,
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

    /// Sets one input; on a change queues its event and tells watchers.
    /// Returns whether it changed.
    fn set_sensor(&self, state: &mut State, sensor: Sensor, value: SensorState) -> bool {
        if state.sensors.get(sensor) == value {
            return false;
        }
        state.sensors.set(sensor, value);
        let event = SensorEvent {
            sensor,
            state: value,
        };
        // Nobody holding SimPresence only means nobody listens; the state stands.
        let _ = self.sensor_tx.send(event);
        self.publish(WatchLine::In(SimInput::Sensor(event)));
        true
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
    rx: mpsc::UnboundedReceiver<ReaderEvent>,
}

impl CardReader for SimReader {
    async fn next_event(&mut self) -> Result<ReaderEvent, HalError> {
        self.rx.recv().await.ok_or(HalError::Stopped("sim reader"))
    }
}

/// The simulated loops and barrier-up switch ([`Presence`]); all fitted.
pub struct SimPresence {
    rx: mpsc::UnboundedReceiver<SensorEvent>,
    shared: Arc<Shared>,
}

impl Presence for SimPresence {
    async fn next_event(&mut self) -> Result<SensorEvent, HalError> {
        self.rx
            .recv()
            .await
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
            shared.set_sensor(&mut state, Sensor::BarrierUp, up);
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
