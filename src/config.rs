//! The gate's config file: one TOML file per gate, written by a technician.
//!
//! Types and defaults live here; [`load`] parses and validates, reporting
//! every problem as `file:line:col: message`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::model::{AntiPassback, Role, VehicleClass};
use crate::tariff::Tariff;

/// A whole gate config. Every section but `[gate]` has defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub gate: GateId,
    #[serde(default)]
    pub capacity: Capacity,
    #[serde(default)]
    pub lane: LaneTimings,
    #[serde(default)]
    pub access: Access,
    #[serde(default)]
    pub tariff: Tariff,
    #[serde(default)]
    pub store: StoreConfig,
    #[serde(default)]
    pub mqtt: MqttConfig,
    #[serde(default)]
    pub hardware: Hardware,
    #[serde(default)]
    pub control: ControlConfig,
}

/// Who this gate is, and the lot's time zone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateId {
    /// The building, `[a-z0-9-]{1,32}`.
    pub site: String,
    /// The parking lot in it, `[a-z0-9-]{1,32}`.
    pub lot: String,
    /// This lane's controller, `[a-z0-9-]{1,32}`.
    pub gate: String,
    pub role: Role,
    /// IANA time zone of the lot, e.g. `Asia/Ho_Chi_Minh`.
    pub timezone: String,
}

/// Spots per vehicle class; `ada` and `ev` are the spots of each class held
/// for vehicles with that flag (counted inside the class's number).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Capacity {
    /// If given, must equal the sum of the classes.
    #[serde(default)]
    pub total: Option<u32>,
    #[serde(default)]
    pub compact: u32,
    #[serde(default)]
    pub standard: u32,
    #[serde(default)]
    pub large: u32,
    #[serde(default)]
    pub oversize: u32,
    #[serde(default)]
    pub motorcycle: u32,
    #[serde(default)]
    pub ada: BTreeMap<VehicleClass, u32>,
    #[serde(default)]
    pub ev: BTreeMap<VehicleClass, u32>,
}

impl Capacity {
    /// Spots of one class (0: the lot does not serve it).
    pub fn of(&self, class: VehicleClass) -> u32 {
        match class {
            VehicleClass::Compact => self.compact,
            VehicleClass::Standard => self.standard,
            VehicleClass::Large => self.large,
            VehicleClass::Oversize => self.oversize,
            VehicleClass::Motorcycle => self.motorcycle,
        }
    }
    pub fn ada_of(&self, class: VehicleClass) -> u32 {
        self.ada.get(&class).copied().unwrap_or(0)
    }
    pub fn ev_of(&self, class: VehicleClass) -> u32 {
        self.ev.get(&class).copied().unwrap_or(0)
    }
}

/// Lane timings, all in milliseconds or seconds as named.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LaneTimings {
    /// Accept a card only while a vehicle is on the arming loop.
    pub require_vehicle: bool,
    /// The same card read again within this window is the same tap.
    pub repeat_read_ms: u64,
    /// An accepted vehicle that has not passed by then is voided.
    pub pass_timeout_s: u64,
    /// A barrier up this long with nothing passing raises `barrier_held_open`.
    pub held_open_s: u64,
    /// A loop occupied this long raises `loop_fault`.
    pub loop_fault_s: u64,
    /// Wait this long after the safety loop clears before lowering.
    pub close_delay_ms: u64,
}

impl Default for LaneTimings {
    fn default() -> Self {
        LaneTimings {
            require_vehicle: true,
            repeat_read_ms: 3000,
            pass_timeout_s: 30,
            held_open_s: 60,
            loop_fault_s: 600,
            close_delay_ms: 500,
        }
    }
}

/// Access rules beyond the replica.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Access {
    pub anti_passback: AntiPassback,
    /// A reservation is honoured from this many minutes before its start...
    pub early_grace_min: u32,
    /// ...until this many minutes after it.
    pub late_grace_min: u32,
}

impl Default for Access {
    fn default() -> Self {
        Access {
            anti_passback: AntiPassback::Soft,
            early_grace_min: 30,
            late_grace_min: 60,
        }
    }
}

/// Where the gate keeps its SQLite store, and for how long events stay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    pub path: PathBuf,
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
#[serde(deny_unknown_fields, default)]
pub struct MqttConfig {
    pub enabled: bool,
    pub host: String,
    pub port: u16,
    pub tls: bool,
    pub ca_file: Option<PathBuf>,
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    pub username: Option<String>,
    pub password_file: Option<PathBuf>,
    /// HQ's Ed25519 public key (base64) that signs commands.
    pub hq_public_key: Option<String>,
    pub keep_alive_s: u64,
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

/// Card reader connection (Pi backend).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReaderBus {
    Uart,
    Spi,
    I2c,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Hardware {
    pub backend: Backend,
    /// The sim backend's control socket.
    pub sim_socket: PathBuf,
    pub reader: ReaderBus,
    pub reader_device: String,
    pub pins: Pins,
}

impl Default for Hardware {
    fn default() -> Self {
        Hardware {
            backend: Backend::Sim,
            sim_socket: PathBuf::from("/run/parkgate/sim.sock"),
            reader: ReaderBus::Uart,
            reader_device: "/dev/ttyAMA0".into(),
            pins: Pins::default(),
        }
    }
}

/// BCM GPIO numbers on the Pi header (2-27).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Pins {
    pub arming_loop: u8,
    pub safety_loop: u8,
    /// Optional barrier-up limit switch.
    pub barrier_up: Option<u8>,
    pub barrier: u8,
    pub green: u8,
    pub red: u8,
    pub buzzer: Option<u8>,
}

impl Default for Pins {
    fn default() -> Self {
        Pins {
            arming_loop: 17,
            safety_loop: 27,
            barrier_up: Some(22),
            barrier: 23,
            green: 5,
            red: 6,
            buzzer: Some(13),
        }
    }
}

/// The local control socket (`parkgate status`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ControlConfig {
    pub socket: PathBuf,
}

impl Default for ControlConfig {
    fn default() -> Self {
        ControlConfig {
            socket: PathBuf::from("/run/parkgate/control.sock"),
        }
    }
}
