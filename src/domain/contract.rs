//! Serde types of `shared/CONTRACT.md` (version 1): the only module that knows
//! the wire format between a gate and HQ.
//!
//! Every payload carries `"v": 1`; unknown fields are ignored on input.
//! Replica records themselves live in [`crate::domain::model`] because the store and
//! the policy use them too; their serde shape is the contract's `data` object.

use serde::{Deserialize, Serialize};

use crate::domain::model::{
    Card, Plan, PlanKind, Reservation, Timestamp, User, Vehicle, VehicleClass,
};

/// The contract version this gate speaks.
pub const VERSION: u32 = 1;

/// The root of one gate's topics: `parkgate/v1/{site}/{lot}/gates/{gate}`.
pub fn gate_root(site: &str, lot: &str, gate: &str) -> String {
    format!("parkgate/v1/{site}/{lot}/gates/{gate}")
}

/// The topic an event is published on: `{gate root}/events/{type}`.
pub fn event_topic(event: &Event) -> String {
    format!(
        "{}/events/{}",
        gate_root(&event.site, &event.lot, &event.gate),
        event.type_name()
    )
}

/// The root of one lot's topics: `parkgate/v1/{site}/{lot}`.
pub fn lot_root(site: &str, lot: &str) -> String {
    format!("parkgate/v1/{site}/{lot}")
}

/// The topic of an event of type `type_name` from a gate: `{gate root}/events/{type}`.
pub fn event_type_topic(gate_root: &str, type_name: &str) -> String {
    format!("{gate_root}/events/{type_name}")
}

/// Why a payload from HQ (or a file) was refused.
#[derive(Debug, thiserror::Error)]
pub enum ContractError {
    /// Not JSON, or a required field is missing or has the wrong type.
    #[error("malformed payload: {0}")]
    Malformed(#[from] serde_json::Error),
    /// The `v` field names a version this gate does not speak.
    #[error("unsupported contract version {0} (this gate speaks {VERSION})")]
    Version(u64),
}

/// Parses a versioned payload: rejects bad JSON, a missing field or a wrong `v`.
pub fn parse<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ContractError> {
    #[derive(Deserialize)]
    struct V {
        v: u64,
    }
    let v: V = serde_json::from_slice(bytes)?;
    if v.v != u64::from(VERSION) {
        return Err(ContractError::Version(v.v));
    }
    Ok(serde_json::from_slice(bytes)?)
}

// ---------------------------------------------------------------- replica

/// One replica operation: `upsert` replaces the whole record of its key,
/// `delete` names the key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    Upsert(Record),
    Delete { kind: Kind, key: String },
}

/// The record an upsert carries, tagged by `kind`, payload in `data`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "data", rename_all = "snake_case")]
pub enum Record {
    User(User),
    Card(Card),
    Vehicle(Vehicle),
    Plan(Plan),
    Reservation(Reservation),
}

/// The kinds of replica record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    User,
    Card,
    Vehicle,
    Plan,
    Reservation,
}

/// A batch of replica changes, `{lot root}/replica/changes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeBatch {
    pub v: u32,
    pub seq: u64,
    pub at: Timestamp,
    pub ops: Vec<Op>,
}

/// One chunk of a full snapshot, `{gate root}/replica/snapshot`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotChunk {
    pub v: u32,
    pub snapshot_id: String,
    pub seq: u64,
    pub chunk: u32,
    pub chunks: u32,
    pub ops: Vec<Op>,
}

/// What the gate asks HQ for, `{gate root}/replica/request`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Want {
    Changes,
    Snapshot,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplicaRequest {
    pub v: u32,
    pub have_seq: u64,
    pub want: Want,
}

// ---------------------------------------------------------------- events

/// Whether the wall clock was known good when an event was stamped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Clock {
    Synced,
    Unsynced,
}

/// An event as published on `{gate root}/events/{type}` and kept in the journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub v: u32,
    pub event_id: String,
    pub gate_seq: u64,
    pub site: String,
    pub lot: String,
    pub gate: String,
    pub at: Timestamp,
    pub clock: Clock,
    #[serde(flatten)]
    pub body: EventBody,
}

impl Event {
    /// The `{type}` part of the event's topic.
    pub fn type_name(&self) -> &'static str {
        self.body.type_name()
    }
}

/// The type-specific part of an event; `type` is the tag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventBody {
    CheckIn(Passage),
    CheckOut(CheckOut),
    Denied(Denied),
    Alert(Alert),
    Void { related_event_id: String },
}

impl EventBody {
    pub fn type_name(&self) -> &'static str {
        match self {
            EventBody::CheckIn(_) => "check_in",
            EventBody::CheckOut(_) => "check_out",
            EventBody::Denied(_) => "denied",
            EventBody::Alert(_) => "alert",
            EventBody::Void { .. } => "void",
        }
    }
}

/// The fields of a `check_in` (and the first half of a `check_out`).
///
/// `card` is null for a passage opened by an HQ `open` command; `user_id`,
/// `vehicle_id` and `vehicle_class` are null only when the gate let out a
/// vehicle it could not identify (an exit never traps a car).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Passage {
    pub card: Option<String>,
    pub user_id: Option<String>,
    pub user_name: Option<String>,
    pub vehicle_id: Option<String>,
    pub vehicle_class: Option<VehicleClass>,
    pub reservation_id: Option<String>,
    pub spot_id: Option<String>,
    pub plan: Option<PlanKind>,
    pub walk_in: bool,
}

impl Passage {
    /// A passage of nothing known but, perhaps, the card and its user: an HQ
    /// `open`, or a vehicle an exit lets out without identifying it.
    pub fn unidentified(
        card: Option<String>,
        user_id: Option<String>,
        user_name: Option<String>,
    ) -> Passage {
        Passage {
            card,
            user_id,
            user_name,
            vehicle_id: None,
            vehicle_class: None,
            reservation_id: None,
            spot_id: None,
            plan: None,
            walk_in: false,
        }
    }
}

/// The fields of a `check_out`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckOut {
    #[serde(flatten)]
    pub passage: Passage,
    pub check_in_at: Option<Timestamp>,
    pub duration_s: Option<i64>,
    pub fee: Option<Fee>,
    pub overstay_s: i64,
}

/// What a daily-plan stay cost, in minor units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fee {
    pub amount_minor: i64,
    pub currency: String,
    pub plan: PlanKind,
}

/// The fields of a `denied`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Denied {
    pub card: Option<String>,
    pub reason: DenyReason,
    pub user_id: Option<String>,
    pub user_name: Option<String>,
}

/// Why a credential was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DenyReason {
    UnknownCard,
    CardRevoked,
    CardExpired,
    CardNotYetValid,
    UserSuspended,
    WrongLot,
    AntiPassback,
    NoCapacity,
    VehicleClassNotServed,
    NoVehiclePresent,
    Lockdown,
    CredentialAuthFailed,
    PaymentOverdue,
}

impl DenyReason {
    /// Whether security should hear of it as a `wrong_card` alert.
    pub fn is_wrong_card(self) -> bool {
        matches!(
            self,
            DenyReason::UnknownCard
                | DenyReason::CardRevoked
                | DenyReason::CardExpired
                | DenyReason::CardNotYetValid
                | DenyReason::WrongLot
                | DenyReason::CredentialAuthFailed
        )
    }
}

/// The fields of an `alert`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub alert: AlertKind,
    pub severity: Severity,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub related_event_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    WrongCard,
    AntiPassback,
    Tailgating,
    UnauthorizedVehicle,
    BarrierForced,
    BarrierHeldOpen,
    BarrierFault,
    LoopFault,
    ReaderOffline,
    ReaderOnline,
    ClockUnsynced,
    ReplicaStale,
    StorageFault,
    BadMessage,
    CommandRejected,
    ReplayUnavailable,
    /// A lockdown was set or lifted (an addition: the contract's list is open).
    Lockdown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

// ---------------------------------------------------------------- replay

/// HQ asks for events `from_seq..=to_seq` again, `{gate root}/replay`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayRequest {
    pub v: u32,
    pub from_seq: u64,
    pub to_seq: u64,
}

// ---------------------------------------------------------------- status

/// `online`, or `offline` in the last will (and on a clean stop).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkState {
    Online,
    Offline,
}

/// The card reader as the status topic reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReaderState {
    Ok,
    Offline,
}

/// `normal`, or `lockdown` (every credential denied until unlocked).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Normal,
    Lockdown,
}

/// The gate's status, `{gate root}/status` (retained; also the last will).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateStatus {
    pub v: u32,
    pub state: LinkState,
    pub at: Timestamp,
    pub version: String,
    pub started_at: Timestamp,
    pub replica_seq: u64,
    pub outbox_depth: u64,
    pub lane: crate::domain::lane::Phase,
    pub reader: ReaderState,
    pub clock: Clock,
    pub mode: Mode,
}

/// The gate's counters, `{gate root}/occupancy` (retained).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Occupancy {
    pub v: u32,
    pub gate: String,
    pub at: Timestamp,
    pub entered: std::collections::BTreeMap<VehicleClass, u64>,
    pub exited: std::collections::BTreeMap<VehicleClass, u64>,
}

// ---------------------------------------------------------------- commands

/// The topic HQ sends a gate its signed commands on: `{gate root}/commands`.
pub fn command_topic(gate_root: &str) -> String {
    format!("{gate_root}/commands")
}

/// The topic a gate acks commands on: `{gate root}/commands/ack`.
pub fn command_ack_topic(gate_root: &str) -> String {
    format!("{gate_root}/commands/ack")
}

/// A command as it arrives on `{gate root}/commands`: the body's exact JSON
/// bytes and HQ's Ed25519 signature over them, both base64 (standard
/// alphabet, padded). No `v`: the version is inside the signed body, so it
/// cannot be altered. Checked by [`crate::domain::command::verify`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandEnvelope {
    pub body: String,
    pub sig: String,
}

/// A command's signed body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandBody {
    pub v: u32,
    pub command_id: String,
    pub gate: String,
    pub cmd: Cmd,
    pub issued_at: Timestamp,
    pub expires_at: Timestamp,
}

/// What HQ asks of the gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cmd {
    /// One passage, reported as a check_in or check_out with `card` null.
    Open,
    /// Deny every credential until `unlock` (a car inside may still leave).
    Lockdown,
    /// Lift a lockdown.
    Unlock,
    /// Request a replica snapshot.
    Resync,
}

/// A command's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AckResult {
    Done,
    Rejected,
}

/// The gate's answer to a command, `{gate root}/commands/ack`. `reason` is
/// null when done, a snake_case code when rejected (like a denial's reason).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandAck {
    pub v: u32,
    pub command_id: String,
    pub result: AckResult,
    pub reason: Option<String>,
    pub at: Timestamp,
}

#[cfg(test)]
mod tests;
