//! The typed lines of the sim control protocol (see the [`sim`](super) module doc).

use serde::{Deserialize, Serialize};

use crate::{BarrierCommand, Sensor, SensorEvent, SensorState, Signal};

/// A request line, tagged by `cmd`. Build these in a CLI or a test and send
/// them with [`SimClient::request`](super::SimClient::request).
///
/// With feature `cli` this is also a `clap::Subcommand`, so a CLI offers
/// exactly the requests the sim understands: each variant is a subcommand
/// named in kebab-case (`tap-auth-failed`), its fields are positional
/// arguments (`reason` is `--reason`), and the doc comments below are the
/// help text, which is why they name the words a shell user types.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::Subcommand))]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum SimRequest {
    /// Set a loop or the barrier-up switch: `vehicle arming occupied`.
    #[serde(alias = "sensor")]
    Vehicle {
        /// arming, safety or barrier_up.
        sensor: Sensor,
        /// clear, occupied or fault (barrier_up occupied: the boom is up).
        state: SensorState,
    },
    /// Tap a card that reads cleanly: `tap 04A1B2C3D4E5F6`.
    Tap {
        // Text, not a Credential: the server judges it, so every client gets
        // the same error reply for a bad UID.
        /// The card's UID in hex (4, 7 or 10 bytes).
        card: String,
    },
    /// Tap a card that gives this UID but fails authentication (a clone).
    TapAuthFailed {
        /// The card's UID in hex (4, 7 or 10 bytes).
        card: String,
    },
    /// Present something that does not read cleanly (a garbled read).
    TapCorrupt,
    /// Take the reader offline or bring it back: `reader offline`.
    Reader {
        /// online or offline (`true` or `false` on the socket).
        #[cfg_attr(
            feature = "cli",
            arg(value_name = "STATE", action = clap::ArgAction::Set, value_parser = online_or_offline())
        )]
        online: bool,
        /// Why it is offline, as the reader would report it; a default is
        /// used if absent.
        #[cfg_attr(feature = "cli", arg(long))]
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Whether the barrier-up switch follows barrier commands (false: a stuck boom).
    BarrierFollows {
        /// true (the default) or false.
        #[cfg_attr(feature = "cli", arg(action = clap::ArgAction::Set))]
        value: bool,
    },
    /// The sim's sensors, barrier, reader and last signal (a snapshot).
    State,
    /// Watch every input and output of the sim from now on, one JSON line each.
    Watch,
}

/// The CLI's words for [`SimRequest::Reader`]'s `online`, which reads
/// better on a command line than `true`/`false`.
#[cfg(feature = "cli")]
fn online_or_offline() -> impl clap::builder::TypedValueParser<Value = bool> {
    use clap::builder::TypedValueParser as _;
    clap::builder::PossibleValuesParser::new(["online", "offline"]).map(|word| word == "online")
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
