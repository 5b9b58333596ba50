//! The gate's config file: one TOML file per gate, written by a technician.
//!
//! Types and defaults live here (every key is documented, with its default,
//! in `config/example.toml`); [`load`] and [`parse`] read and validate,
//! reporting every problem at once as `file:line:col: message`, and
//! [`summary`] says in words what a good file makes the gate do.
//!
//! The types do not use `deny_unknown_fields`: serde would stop at the first
//! stray key, while a technician wants all of them listed in one run, so
//! unknown keys are collected with `serde_ignored` instead (see [`parse`]).

mod gpio;
mod load;
mod locate;
mod summary;
mod validate;

#[cfg(test)]
mod tests;

use std::path::PathBuf;

use parkgate_hal::sim::SensorStates;
use serde::{Deserialize, Serialize};

use crate::domain::model::Role;
use crate::domain::tariff::Tariff;

pub use crate::domain::lane::LaneTimings;
pub use crate::domain::lot::{Access, Capacity};
pub use gpio::{BarrierMode, GpioConfig};
pub use load::{ConfigError, Diagnostic, load, parse};
pub use summary::summary;

/// A whole gate config. Every section but `[gate]` has defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// `[gate]`: identity, role and time zone (required).
    pub gate: GateId,
    /// `[capacity]`: spots per vehicle class.
    #[serde(default)]
    pub capacity: Capacity,
    /// `[lane]`: loop and barrier timings.
    #[serde(default)]
    pub lane: LaneTimings,
    /// `[access]`: anti-passback and reservation grace windows.
    #[serde(default)]
    pub access: Access,
    /// `[tariff]`: the daily-plan tariff. Read leniently so that unknown
    /// keys in it are reported like everywhere else (see [`load`]).
    #[serde(default, deserialize_with = "load::lenient")]
    pub tariff: Tariff,
    /// `[store]`: the SQLite file and event retention.
    #[serde(default)]
    pub store: StoreConfig,
    /// `[mqtt]`: the HQ link.
    #[serde(default)]
    pub mqtt: MqttConfig,
    /// `[hardware]`: which backend drives the lane, and its wiring.
    #[serde(default)]
    pub hardware: Hardware,
    /// `[control]`: the local control socket.
    #[serde(default)]
    pub control: ControlConfig,
}

impl Config {
    /// The lot's time zone: the calendar days of the tariff and the
    /// reservation windows are in it.
    ///
    /// # Panics
    /// If `gate.timezone` is not an IANA name; a `Config` from [`parse`] or
    /// [`load`] has been checked, so only a hand-built one can panic.
    pub fn tz(&self) -> chrono_tz::Tz {
        self.gate
            .timezone
            .parse()
            .unwrap_or_else(|_| panic!("unchecked config: bad timezone {:?}", self.gate.timezone))
    }
}

/// Who this gate is, and the lot's time zone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateId {
    /// The building, `[a-z0-9-]{1,32}`.
    pub site: String,
    /// The parking lot in it, `[a-z0-9-]{1,32}`.
    pub lot: String,
    /// This lane's controller, `[a-z0-9-]{1,32}`.
    pub gate: String,
    /// Which directions this lane serves.
    pub role: Role,
    /// IANA time zone of the lot, e.g. `Asia/Ho_Chi_Minh`.
    pub timezone: String,
}

/// Where the gate keeps its SQLite store, and for how long events stay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StoreConfig {
    /// The SQLite file; a relative path is relative to the working directory.
    pub path: PathBuf,
    /// Delivered events older than this many days are deleted.
    pub retention_days: u32,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            path: PathBuf::from("/var/lib/parkgate/gate.db"),
            retention_days: 30,
        }
    }
}

/// The HQ link (used from the MQTT issue on).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MqttConfig {
    /// Off: the gate runs alone and queues events in its outbox.
    pub enabled: bool,
    /// The broker's host name or address.
    pub host: String,
    /// The broker's port (1883 plain, 8883 TLS by convention).
    pub port: u16,
    /// Connect over TLS.
    pub tls: bool,
    /// CA bundle to verify the broker with (TLS).
    pub ca_file: Option<PathBuf>,
    /// Client certificate for mutual TLS.
    pub client_cert: Option<PathBuf>,
    /// Private key of `client_cert`.
    pub client_key: Option<PathBuf>,
    /// Broker user name, if the broker wants one.
    pub username: Option<String>,
    /// File holding the broker password (kept out of this file).
    pub password_file: Option<PathBuf>,
    /// HQ's Ed25519 public key (base64) that signs commands.
    pub hq_public_key: Option<String>,
    /// MQTT keep-alive interval in seconds.
    pub keep_alive_s: u64,
    /// Hours without a replica batch from HQ before a `replica_stale` alert.
    pub replica_stale_h: u32,
}

impl Default for MqttConfig {
    fn default() -> Self {
        MqttConfig {
            enabled: false,
            host: "localhost".into(),
            port: 1883,
            tls: false,
            ca_file: None,
            client_cert: None,
            client_key: None,
            username: None,
            password_file: None,
            hq_public_key: None,
            keep_alive_s: 30,
            replica_stale_h: 24,
        }
    }
}

/// Which hardware backend drives the lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// Simulated hardware driven over a local socket.
    Sim,
    /// A Raspberry Pi with GPIO loops and a PN532 reader.
    Pi,
}

/// Which card reader the lane reads cards with: chosen apart from the
/// backend, so a real PN532 on any serial port can stand next to the
/// simulated loops and outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReaderKind {
    /// The sim's reader: cards are tapped over `sim_socket` (sim backend only).
    Sim,
    /// PN532 over a serial port (`reader_device`, e.g. `/dev/ttyAMA0`, `/dev/ttyUSB0`).
    Uart,
    /// PN532 over SPI (`reader_device`, e.g. `/dev/spidev0.0`), on a Pi.
    Spi,
    /// PN532 over I2C (`reader_device`, e.g. `/dev/i2c-1`, address 0x24), on a Pi.
    I2c,
}

impl ReaderKind {
    /// The name written in the config.
    pub fn name(self) -> &'static str {
        match self {
            ReaderKind::Sim => "sim",
            ReaderKind::Uart => "uart",
            ReaderKind::Spi => "spi",
            ReaderKind::I2c => "i2c",
        }
    }

    /// The device a PN532 on this bus is usually found at on a Pi: the
    /// UART on the header, SPI0 with chip select 0, I2C1.
    pub fn default_device(self) -> &'static str {
        match self {
            ReaderKind::Sim | ReaderKind::Uart => "/dev/ttyAMA0",
            ReaderKind::Spi => "/dev/spidev0.0",
            ReaderKind::I2c => "/dev/i2c-1",
        }
    }
}

/// The `[hardware]` section: the backend and, for the Pi, its wiring.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Hardware {
    /// Which backend drives the loops, barrier and lights.
    pub backend: Backend,
    /// The sim backend's control socket.
    pub sim_socket: PathBuf,
    /// Load the demo replica into an empty store at start-up (sim only).
    pub demo_data: bool,
    /// The card reader; unset, it follows the backend (see [`Hardware::reader`]).
    #[serde(rename = "reader", skip_serializing_if = "Option::is_none")]
    pub reader_kind: Option<ReaderKind>,
    /// The reader's device file (PN532 readers); unset, the reader's usual
    /// one (see [`Hardware::reader_device`]).
    #[serde(rename = "reader_device", skip_serializing_if = "Option::is_none")]
    pub reader_path: Option<String>,
    /// GPIO wiring (Pi backend).
    pub pins: Pins,
    /// `[hardware.gpio]`: polarity, debounce, barrier drive (Pi backend).
    pub gpio: GpioConfig,
    /// `[hardware.sim_start]`: the sim's inputs when it starts, as a lane
    /// may be found after a restart (sim backend only; default all clear).
    pub sim_start: SensorStates,
}

impl Hardware {
    /// The card reader in use: as configured, or else the backend's own
    /// (the sim's reader for the sim, a PN532 on the UART for a Pi), so a
    /// sim config without `reader` keeps tapping cards over the socket.
    pub fn reader(&self) -> ReaderKind {
        self.reader_kind.unwrap_or(match self.backend {
            Backend::Sim => ReaderKind::Sim,
            Backend::Pi => ReaderKind::Uart,
        })
    }

    /// The reader's device file: as configured, or else where the reader in
    /// use is usually found ([`ReaderKind::default_device`]), so
    /// `reader = "spi"` alone means `/dev/spidev0.0`.
    pub fn reader_device(&self) -> &str {
        self.reader_path
            .as_deref()
            .unwrap_or(self.reader().default_device())
    }
}

impl Default for Hardware {
    fn default() -> Self {
        Hardware {
            backend: Backend::Sim,
            sim_socket: PathBuf::from("/run/parkgate/sim.sock"),
            demo_data: false,
            reader_kind: None,
            reader_path: None,
            pins: Pins::default(),
            gpio: GpioConfig::default(),
            sim_start: SensorStates::default(),
        }
    }
}

/// BCM GPIO numbers on the Pi header (2-27).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Pins {
    /// Loop detector before the barrier: a vehicle is waiting.
    pub arming_loop: u8,
    /// Loop detector under the barrier: never lower onto a vehicle.
    pub safety_loop: u8,
    /// Optional barrier-up limit switch.
    pub barrier_up: Option<u8>,
    /// Output: the barrier relay (on = raise); in pulse mode the open relay.
    pub barrier: u8,
    /// Output: the close relay, pulsed to lower (pulse mode only).
    pub barrier_close: Option<u8>,
    /// Output: green lamp.
    pub green: u8,
    /// Output: red lamp.
    pub red: u8,
    /// Optional output: buzzer.
    pub buzzer: Option<u8>,
}

impl Default for Pins {
    fn default() -> Self {
        Pins {
            arming_loop: 17,
            safety_loop: 27,
            barrier_up: Some(22),
            barrier: 23,
            barrier_close: None,
            green: 5,
            red: 6,
            buzzer: Some(13),
        }
    }
}

/// The local control socket (`parkgate status`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ControlConfig {
    /// Unix socket path the control server listens on.
    pub socket: PathBuf,
}

impl Default for ControlConfig {
    fn default() -> Self {
        ControlConfig {
            socket: PathBuf::from("/run/parkgate/control.sock"),
        }
    }
}
