//! parkgate-hal: the hardware of one lane, and nothing about parking.
//!
//! A lane has four pieces of hardware, each behind a trait:
//!
//! - [`CardReader`]: a stream of [`ReaderEvent`]s (a card was read, a read
//!   failed, the reader went offline or came back).
//! - [`Presence`]: the vehicle loops (arming loop before the barrier, safety
//!   loop under it) and the optional barrier-up limit switch, as a stream of
//!   [`SensorEvent`]s plus the current state of each input.
//! - [`Barrier`]: the boom output, raised or lowered by a [`BarrierCommand`].
//! - [`Feedback`]: what the driver sees and hears, a [`Signal`] (light, buzzer,
//!   optional text line).
//!
//! The traits return `impl Future + Send` so a backend can await real I/O
//! (a PN532 over tokio-serial) or nothing at all (a GPIO pin set through
//! rppal), without the async-trait crate. They are meant for generic use
//! (`fn run<R: CardReader>(reader: R)`), not `dyn`.
//!
//! Backends: [`sim`] (feature `sim`, default) is driven over a Unix socket so a
//! test or a technician can play a whole arrival from a shell. [`pi`]
//! (feature `pi`) drives the loops, barrier and lamps on a Raspberry Pi's
//! GPIO through rppal. `pn532` drives a PN532 card reader on a serial port
//! (feature `pn532`) or, on a thread of its own, on SPI or I2C (feature
//! `pn532-bus`; the Pi's buses with `pi` too); it can stand next to either
//! backend's loops and outputs.
//! Feature `cli` (implies `sim`) derives `clap::Subcommand` on
//! `sim::SimRequest`, so a command line drives the sim with the protocol's
//! own requests.
//!
//! What a reading *means* (a fault on a loop counts as a vehicle present, a
//! barrier-up switch that never closes is a `barrier_fault`) is the lane's
//! business; this crate reports what the hardware says.

use std::fmt;
use std::future::Future;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[cfg(feature = "pi")]
pub mod pi;
#[cfg(feature = "sim")]
pub mod sim;

#[cfg(any(feature = "pn532", feature = "pn532-bus"))]
pub mod pn532;

/// Everything that can go wrong talking to the hardware or to the sim.
#[derive(Debug, thiserror::Error)]
pub enum HalError {
    /// A card UID in text form was not hex of a plausible length.
    #[error("card {text:?}: {problem}")]
    BadCard {
        /// The text as given.
        text: String,
        /// What is wrong with it and what a valid one looks like.
        problem: String,
    },
    /// A name (sensor, state, ...) given on the command line or a socket was not one we know.
    #[error("{what} {given:?} is not known (valid: {valid})")]
    UnknownName {
        /// What kind of name it was meant to be, e.g. `sensor`.
        what: &'static str,
        /// The text as given.
        given: String,
        /// The accepted names, comma separated.
        valid: &'static str,
    },
    /// An I/O operation on a named device or socket failed.
    #[error("{what}: {source}")]
    Io {
        /// The device or socket and the operation, e.g. `bind /run/parkgate/sim.sock`.
        what: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The backend behind this handle has stopped for good (its task or device is gone).
    #[error("{0} has stopped")]
    Stopped(&'static str),
    /// A line on the sim control socket was not valid protocol.
    #[error("sim protocol: {0}")]
    Protocol(String),
    /// The sim answered a request with `{"ok":false,"error":...}`.
    #[error("sim refused the request: {0}")]
    Refused(String),
    /// The Pi's GPIO could not be opened, or a pin taken or driven.
    #[cfg(feature = "pi")]
    #[error(transparent)]
    Gpio(#[from] pi::GpioError),
    /// A PN532 on SPI or I2C could not be opened, or its thread started.
    #[cfg(feature = "pn532-bus")]
    #[error(transparent)]
    Pn532Bus(#[from] pn532::bus::BusError),
}

/// What a reader read from a card: its UID.
///
/// The UID is the only identity the lane uses; the contract names it `card`
/// and writes it as upper-case hex ([`Credential::hex`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Credential {
    /// The raw UID bytes as the card sent them (4, 7 or 10 for ISO 14443-A).
    pub uid: Vec<u8>,
}

impl Credential {
    /// The UID lengths ISO 14443-A allows: single, double and triple size.
    pub const UID_LENGTHS: [usize; 3] = [4, 7, 10];

    /// The UID as upper-case hex without separators, e.g. `04A1B2C3D4E5F6`:
    /// the `card` field of the wire contract.
    pub fn hex(&self) -> String {
        self.uid.iter().map(|b| format!("{b:02X}")).collect()
    }

    /// Parses hex (either case, no separators) into a credential, refusing
    /// UIDs that no ISO 14443-A card could have so typos surface early.
    pub fn from_hex(text: &str) -> Result<Credential, HalError> {
        let bad = |problem: String| HalError::BadCard {
            text: text.to_string(),
            problem,
        };
        if let Some(c) = text.chars().find(|c| !c.is_ascii_hexdigit()) {
            return Err(bad(format!(
                "{c:?} is not a hex digit (write the UID as hex, e.g. 04A1B2C3D4E5F6)"
            )));
        }
        if !text.len().is_multiple_of(2) {
            return Err(bad("odd number of hex digits (two per byte)".into()));
        }
        let uid: Vec<u8> = (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("checked hex digits"))
            .collect();
        if !Self::UID_LENGTHS.contains(&uid.len()) {
            return Err(bad(format!(
                "{} bytes, a card UID has 4, 7 or 10 bytes",
                uid.len()
            )));
        }
        Ok(Credential { uid })
    }
}

impl fmt::Display for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.hex())
    }
}

/// One thing a card reader has to say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReaderEvent {
    /// A card was presented and its UID read cleanly.
    Card(Credential),
    /// A card answered with this UID but failed authentication (wrong key,
    /// likely a clone): the contract's `credential_auth_failed`. Readers that
    /// only read UIDs never send it.
    AuthFailed(Credential),
    /// Something was presented but could not be read cleanly (pulled away too
    /// soon, a corrupt frame). Worth a "please tap again", nothing more.
    Misread,
    /// The reader's health changed; sent on every change, not repeated.
    Health(ReaderHealth),
}

/// Whether a reader can read cards right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReaderHealth {
    /// Answering normally.
    Ok,
    /// Not answering; the text says what was seen, for a technician.
    Offline(String),
}

/// A stream of card reads and health changes from one reader.
///
/// A backend retries a flaky reader by itself and reports that as
/// [`ReaderEvent::Health`]; `Err` means the backend has stopped for good.
pub trait CardReader: Send {
    /// Waits for the next event. Cancel-safe: dropping the future loses nothing.
    fn next_event(&mut self) -> impl Future<Output = Result<ReaderEvent, HalError>> + Send;

    /// The reader's firmware as it reported it, e.g. `PN532 v1.6`, once
    /// known; `None` for a reader that has none to report (the sim) or has
    /// not answered yet.
    fn firmware(&self) -> Option<String> {
        None
    }
}

/// One presence input of a lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sensor {
    /// The loop before the barrier: a vehicle is waiting to be let through.
    Arming,
    /// The loop under the barrier: never lower onto it.
    Safety,
    /// The optional limit switch that closes when the boom is fully up.
    BarrierUp,
}

impl Sensor {
    /// Every sensor, in a fixed order (for state dumps and start-up reads).
    pub const ALL: [Sensor; 3] = [Sensor::Arming, Sensor::Safety, Sensor::BarrierUp];
}

/// What a presence input reports.
///
/// For the loops `Occupied` means a vehicle is detected. For
/// [`Sensor::BarrierUp`] it means the switch is made: the boom is up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SensorState {
    /// Nothing detected (boom not up, for the limit switch).
    #[default]
    Clear,
    /// Vehicle detected (boom up, for the limit switch).
    Occupied,
    /// The detector reports a fault (open loop, stuck relay). The lane should
    /// treat a faulted loop as occupied; the hal only reports it.
    Fault,
}

/// A presence input changed to a new state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SensorEvent {
    /// Which input.
    pub sensor: Sensor,
    /// Its state from now on (absolute, so a repeated event is harmless).
    pub state: SensorState,
}

/// The loops and limit switch of a lane.
pub trait Presence: Send {
    /// Waits for the next change. Cancel-safe: dropping the future loses nothing.
    fn next_event(&mut self) -> impl Future<Output = Result<SensorEvent, HalError>> + Send;

    /// The state of one input now. Read at start-up, before any event, since
    /// inputs already occupied at boot produce no change event. An input that
    /// is not fitted reads [`SensorState::Clear`].
    fn current(&self, sensor: Sensor) -> SensorState;

    /// Whether this input exists on this lane (the barrier-up switch is
    /// optional); the lane must not wait for an input that is not fitted.
    fn fitted(&self, sensor: Sensor) -> bool {
        let _ = sensor;
        true
    }
}

/// What to do with the boom.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BarrierCommand {
    /// Raise it (and keep it up until told otherwise).
    Up,
    /// Lower it. The safety loop check is the lane's job, not the hal's.
    Down,
}

/// The barrier output.
pub trait Barrier: Send {
    /// Drives the output. Returns once the command is given, not once the boom
    /// has moved: the barrier-up switch, if fitted, tells when it is up.
    fn command(&mut self, cmd: BarrierCommand)
    -> impl Future<Output = Result<(), HalError>> + Send;
}

/// The driver-facing light.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Light {
    /// Dark.
    #[default]
    Off,
    /// Go.
    Green,
    /// Stop / refused.
    Red,
}

/// A buzzer sound, played once when the signal is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Buzz {
    /// Silent.
    #[default]
    None,
    /// A short beep: accepted.
    Short,
    /// A long tone: refused or attention.
    Long,
}

/// Everything the driver sees and hears at once. Showing a signal replaces
/// the previous one entirely (the light stays until the next signal).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Signal {
    /// The light, held until the next signal.
    pub light: Light,
    /// A sound played once.
    pub buzzer: Buzz,
    /// A line for the display, e.g. `Welcome Alice - spot B1-042`; `None`
    /// clears it. Lanes without a display ignore it.
    pub text: Option<String>,
}

/// The driver feedback output (light, buzzer, optional display).
pub trait Feedback: Send {
    /// Shows a signal, replacing whatever was shown before.
    fn show(&mut self, signal: &Signal) -> impl Future<Output = Result<(), HalError>> + Send;
}

/// Display and parsing through the snake_case names the sim protocol uses, so
/// a CLI can take `arming` or `occupied` as arguments (`clap` `value_parser`).
macro_rules! named {
    ($ty:ident, $what:literal, $valid:literal, $($variant:ident => $name:literal),+) => {
        impl $ty {
            /// The snake_case name used on the sim socket and the CLI.
            pub fn name(self) -> &'static str {
                match self { $($ty::$variant => $name),+ }
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }
        impl FromStr for $ty {
            type Err = HalError;
            fn from_str(s: &str) -> Result<Self, HalError> {
                match s {
                    $($name => Ok($ty::$variant),)+
                    _ => Err(HalError::UnknownName { what: $what, given: s.to_string(), valid: $valid }),
                }
            }
        }
    };
}

named!(Sensor, "sensor", "arming, safety, barrier_up",
    Arming => "arming", Safety => "safety", BarrierUp => "barrier_up");
named!(SensorState, "sensor state", "clear, occupied, fault",
    Clear => "clear", Occupied => "occupied", Fault => "fault");
named!(BarrierCommand, "barrier command", "up, down", Up => "up", Down => "down");
named!(Light, "light", "off, green, red", Off => "off", Green => "green", Red => "red");
named!(Buzz, "buzzer", "none, short, long", None => "none", Short => "short", Long => "long");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_upper_case_without_separators() {
        let c = Credential {
            uid: vec![0x04, 0xa1, 0xb2, 0xc3, 0xd4, 0xe5, 0xf6],
        };
        assert_eq!(c.hex(), "04A1B2C3D4E5F6");
        assert_eq!(c.to_string(), "04A1B2C3D4E5F6");
    }

    #[test]
    fn from_hex_round_trips_any_case() {
        let c = Credential::from_hex("04a1B2c3").unwrap();
        assert_eq!(c.uid, vec![0x04, 0xa1, 0xb2, 0xc3]);
        assert_eq!(c.hex(), "04A1B2C3");
    }

    #[test]
    fn from_hex_refuses_bad_text_and_says_why() {
        let msg = |t: &str| Credential::from_hex(t).unwrap_err().to_string();
        assert!(msg("04A1B2C3D4E5G6").contains("'G' is not a hex digit"));
        assert!(msg("04A1B2C").contains("odd number"));
        assert!(msg("04A1B2").contains("3 bytes"));
        assert!(msg("").contains("0 bytes"));
        assert!(Credential::from_hex("00112233445566778899").is_ok());
    }

    #[test]
    fn names_parse_and_print_like_the_protocol() {
        for s in Sensor::ALL {
            assert_eq!(s.name().parse::<Sensor>().unwrap(), s);
            assert_eq!(serde_json::to_value(s).unwrap(), s.name());
        }
        assert_eq!(
            "occupied".parse::<SensorState>().unwrap(),
            SensorState::Occupied
        );
        let err = "loop".parse::<Sensor>().unwrap_err().to_string();
        assert_eq!(
            err,
            "sensor \"loop\" is not known (valid: arming, safety, barrier_up)"
        );
        assert_eq!(serde_json::to_value(Buzz::None).unwrap(), "none");
    }
}
