//! The typed lines of the sim control protocol (see the [`sim`](super) module doc).

use serde::{Deserialize, Serialize};

use crate::{BarrierCommand, Sensor, SensorEvent, SensorState, Signal};

/// A request line, tagged by `cmd`. Build these in a CLI or a test and send
/// them with [`SimClient::request`](super::SimClient::request).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum SimRequest {
    /// Set a presence input (a vehicle on a loop, or the barrier-up switch).
    #[serde(alias = "sensor")]
    Vehicle {
        /// Which input.
        sensor: Sensor,
        /// Its new state.
        state: SensorState,
    },
    /// A card read cleanly. The UID stays text so the server, not the
    /// client, judges it and every client gets the same error reply.
    Tap {
        /// The UID in hex.
        card: String,
    },
    /// A card that gave this UID but failed authentication.
    TapAuthFailed {
        /// The UID in hex.
        card: String,
    },
    /// A read that did not come out clean.
    TapCorrupt,
    /// Take the reader offline or bring it back.
    Reader {
        /// `false` for offline.
        online: bool,
        /// Why, as the reader would report it; a default is used if absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Whether barrier commands move the barrier-up switch (default `true`).
    BarrierFollows {
        /// `false` simulates a stuck boom.
        value: bool,
    },
    /// Ask for a [`SimSnapshot`].
    State,
    /// Turn this connection into a watcher of [`WatchLine`]s.
    Watch,
}

/// The three presence inputs, as one value (and one JSON object). Also the
/// state the sim starts in (see [`bind`](super::bind)), so an input left out
/// when deserialising reads clear: a start state names only what is not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SensorStates {
    /// The arming loop.
    pub arming: SensorState,
    /// The safety loop.
    pub safety: SensorState,
    /// The barrier-up switch (`occupied` = boom up).
    pub barrier_up: SensorState,
}

impl SensorStates {
    /// The state of one input.
    pub fn get(&self, sensor: Sensor) -> SensorState {
        match sensor {
            Sensor::Arming => self.arming,
            Sensor::Safety => self.safety,
            Sensor::BarrierUp => self.barrier_up,
        }
    }

    /// Sets the state of one input.
    pub fn set(&mut self, sensor: Sensor, state: SensorState) {
        match sensor {
            Sensor::Arming => self.arming = state,
            Sensor::Safety => self.safety = state,
            Sensor::BarrierUp => self.barrier_up = state,
        }
    }
}

/// The whole simulated lane at one moment: the `state` of a `state` reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimSnapshot {
    /// Every presence input.
    pub sensors: SensorStates,
    /// The last barrier command; before any, `up` if the sim started with
    /// the barrier-up switch occupied, else `down`.
    pub barrier: BarrierCommand,
    /// Whether barrier commands move the barrier-up switch.
    pub barrier_follows: bool,
    /// Whether the reader is online.
    pub reader_online: bool,
    /// The last signal shown (all off before any).
    pub signal: Signal,
}

/// Something the gate did, as a watcher sees it (tagged `out`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "out", rename_all = "snake_case")]
pub enum SimOutput {
    /// A barrier command was given.
    Barrier {
        /// Which.
        cmd: BarrierCommand,
    },
    /// A signal was shown (light, buzzer, text).
    Signal(Signal),
    /// This watcher fell behind and lost this many lines.
    Lagged {
        /// How many lines were lost.
        missed: u64,
    },
}

/// Something the world did, as a watcher sees it (tagged `in`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "in", rename_all = "snake_case")]
pub enum SimInput {
    /// A presence input changed (by a request, or by a barrier command while
    /// the switch follows it).
    Sensor(SensorEvent),
    /// A clean card read.
    Tap {
        /// The UID, upper-case hex.
        card: String,
    },
    /// A read that failed authentication.
    TapAuthFailed {
        /// The UID, upper-case hex.
        card: String,
    },
    /// A read that did not come out clean.
    TapCorrupt,
    /// The reader went offline or came back.
    Reader {
        /// Whether it is online now.
        online: bool,
        /// Why it is offline; absent when online.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
}

/// One line a watcher receives: an output of the gate or an input of the world.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum WatchLine {
    /// What the gate did.
    Out(SimOutput),
    /// What the world did.
    In(SimInput),
}
