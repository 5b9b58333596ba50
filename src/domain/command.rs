//! HQ's signed commands, pure: check an envelope against HQ's public key,
//! and build the ack and the `command_rejected` alert. No I/O, no clock: the
//! time comes in as an argument.
//!
//! The session handles a message on `{gate root}/commands` in this order:
//!
//! 1. [`verify`] the envelope (signature, version, gate, expiry, `cmd`);
//! 2. `Db::note_command(command_id, expires_at)`: `false` means the id was
//!    seen before, so the command is rejected as [`RejectReason::Replayed`].
//!    Only after verifying, so a forged message cannot burn a real id; and
//!    before acting, so a QoS 1 redelivery after a crash mid-act does not
//!    act twice (at most once: an `open` is a barrier going up);
//! 3. act on the command;
//! 4. publish the [`ack`] on `{gate root}/commands/ack`.
//!
//! A rejection at any step does nothing but raise [`rejected_alert`] and,
//! when the command's id is known, ack it with [`rejected_ack`].
//!
//! Time: a command is expired when `now >= expires_at` by the gate's wall
//! clock. `issued_at` is not checked: a command issued in the future (by
//! five minutes or five hours) is accepted if its signature is valid and it
//! has not expired. A Pi's wall clock may be wrong (no battery, NTP not yet
//! synced); refusing HQ's signed command because of the gate's own clock
//! would lock out the one party that can fix things, and the signature,
//! the expiry and the seen-before check already bound what a replay can do.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, VerifyingKey};
use serde::Deserialize;

use super::contract::{
    AckResult, Alert, AlertKind, Cmd, CommandAck, CommandBody, CommandEnvelope, Severity, VERSION,
};
use super::model::Timestamp;

/// A command whose signature verified, addressed to this gate, not expired.
/// Not yet checked for replay: that is the store's `note_command`.
#[derive(Debug, Clone, PartialEq)]
pub struct Verified {
    pub body: CommandBody,
}

/// A command refused, and why.
///
/// `command_id` is set only once the signature verified: an id read from an
/// unverified body could be anyone's, and acking it would let whoever can
/// publish on the topic answer for HQ's real commands.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("command {}: {reason}", command_id.as_deref().unwrap_or("(id unknown)"))]
pub struct Rejected {
    pub command_id: Option<String>,
    pub reason: RejectReason,
}

/// Why a command was refused; the message is the `command_rejected`
/// alert's sentence.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RejectReason {
    /// The envelope is not JSON, or lacks the string fields `body` and `sig`.
    #[error("the envelope is not JSON with string fields body and sig ({0})")]
    MalformedEnvelope(String),
    /// `body` or `sig` is not standard base64.
    #[error("the envelope's {field} is not valid base64")]
    BadBase64 { field: &'static str },
    /// The signature does not verify against `hq_public_key`: forged,
    /// altered, or signed with another key.
    #[error(
        "the signature does not verify against hq_public_key (forged, altered or signed with another key)"
    )]
    BadSignature,
    /// The signed body is not JSON, or a field is missing or of the wrong type.
    #[error("the signed body is not a valid command ({0})")]
    MalformedBody(String),
    /// The body's `v` is a version this gate does not speak.
    #[error("the command is of contract version {0}; this gate speaks {VERSION}")]
    WrongVersion(u64),
    /// The command is addressed to another gate.
    #[error("the command is addressed to gate {to:?}, not to this gate {this:?}")]
    WrongGate { to: String, this: String },
    /// The command expired before it arrived (by the gate's clock).
    #[error("the command expired at {expires_at} (gate clock {now})")]
    Expired {
        expires_at: Timestamp,
        now: Timestamp,
    },
    /// `cmd` names a command this gate does not know.
    #[error("the command {0:?} is unknown to this gate")]
    UnknownCmd(String),
    /// The command's id was seen before (the session's `note_command` said so).
    #[error("the command was already received once (a replay)")]
    Replayed,
}

impl RejectReason {
    /// The snake_case code an ack carries as its `reason`.
    pub fn code(&self) -> &'static str {
        match self {
            RejectReason::MalformedEnvelope(_) => "malformed_envelope",
            RejectReason::BadBase64 { .. } => "bad_base64",
            RejectReason::BadSignature => "bad_signature",
            RejectReason::MalformedBody(_) => "malformed_body",
            RejectReason::WrongVersion(_) => "wrong_version",
            RejectReason::WrongGate { .. } => "wrong_gate",
            RejectReason::Expired { .. } => "expired",
            RejectReason::UnknownCmd(_) => "unknown_cmd",
            RejectReason::Replayed => "replayed",
        }
    }
}

/// Checks a message from `{gate root}/commands` for gate `gate` at `now`.
///
/// The signature is checked over the exact decoded body bytes before the
/// body is parsed, so nothing unsigned is ever interpreted. `verify_strict`
/// also refuses the malleable and small-order forms plain Ed25519 allows.
pub fn verify(
    envelope_bytes: &[u8],
    key: &VerifyingKey,
    gate: &str,
    now: Timestamp,
) -> Result<Verified, Rejected> {
    let anonymous = |reason| Rejected {
        command_id: None,
        reason,
    };
    let env: CommandEnvelope = serde_json::from_slice(envelope_bytes)
        .map_err(|e| anonymous(RejectReason::MalformedEnvelope(e.to_string())))?;
    let body = STANDARD
        .decode(&env.body)
        .map_err(|_| anonymous(RejectReason::BadBase64 { field: "body" }))?;
    let sig = STANDARD
        .decode(&env.sig)
        .map_err(|_| anonymous(RejectReason::BadBase64 { field: "sig" }))?;
    // A signature of the wrong length cannot verify: same answer as a wrong one.
    let sig = Signature::from_slice(&sig).map_err(|_| anonymous(RejectReason::BadSignature))?;
    key.verify_strict(&body, &sig)
        .map_err(|_| anonymous(RejectReason::BadSignature))?;
    check_body(&body, gate, now)
}

/// The body as signed, `cmd` still a string so an unknown one is named.
#[derive(Deserialize)]
struct RawBody {
    v: u32,
    command_id: String,
    gate: String,
    cmd: String,
    issued_at: Timestamp,
    expires_at: Timestamp,
}

/// The checks after the signature: version, fields, gate, expiry, `cmd`.
fn check_body(body: &[u8], gate: &str, now: Timestamp) -> Result<Verified, Rejected> {
    let malformed = |e: serde_json::Error| Rejected {
        command_id: None,
        reason: RejectReason::MalformedBody(e.to_string()),
    };
    let value: serde_json::Value = serde_json::from_slice(body).map_err(malformed)?;
    // The id, if there is one, names the command in the ack and the alert
    // even when a later check fails.
    let command_id = value["command_id"].as_str().map(str::to_owned);
    let reject = |reason| Rejected {
        command_id: command_id.clone(),
        reason,
    };
    // The version first: a future version may have other fields.
    if let Some(v) = value["v"].as_u64().filter(|&v| v != u64::from(VERSION)) {
        return Err(reject(RejectReason::WrongVersion(v)));
    }
    let raw: RawBody = serde_json::from_value(value)
        .map_err(|e| reject(RejectReason::MalformedBody(e.to_string())))?;
    if raw.gate != gate {
        return Err(reject(RejectReason::WrongGate {
            to: raw.gate,
            this: gate.to_owned(),
        }));
    }
    if now >= raw.expires_at {
        return Err(reject(RejectReason::Expired {
            expires_at: raw.expires_at,
            now,
        }));
    }
    let cmd = serde_json::from_value::<Cmd>(serde_json::Value::String(raw.cmd.clone()))
        .map_err(|_| reject(RejectReason::UnknownCmd(raw.cmd.clone())))?;
    Ok(Verified {
        body: CommandBody {
            v: raw.v,
            command_id: raw.command_id,
            gate: raw.gate,
            cmd,
            issued_at: raw.issued_at,
            expires_at: raw.expires_at,
        },
    })
}

/// Why `[mqtt] hq_public_key` is not a usable key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Not standard base64.
    #[error("hq_public_key is not valid base64 ({0})")]
    Base64(String),
    /// Decodes to something other than the 32 bytes of an Ed25519 key.
    #[error(
        "hq_public_key decodes to {0} bytes; an Ed25519 public key is 32 (the last 32 bytes of the DER public key)"
    )]
    Length(usize),
    /// 32 bytes, but not a point on the curve.
    #[error("hq_public_key is not an Ed25519 public key (not a curve point)")]
    NotAKey,
    /// A small-order point: signatures by it prove nothing.
    #[error("hq_public_key is a weak (small-order) key that anyone could sign for")]
    Weak,
}

/// Reads `[mqtt] hq_public_key`: 32 raw bytes in standard base64.
/// Surrounding whitespace (from a copy and paste) is ignored.
pub fn parse_key(base64: &str) -> Result<VerifyingKey, KeyError> {
    let bytes = STANDARD
        .decode(base64.trim())
        .map_err(|e| KeyError::Base64(e.to_string()))?;
    let bytes: [u8; 32] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| KeyError::Length(bytes.len()))?;
    let key = VerifyingKey::from_bytes(&bytes).map_err(|_| KeyError::NotAKey)?;
    if key.is_weak() {
        return Err(KeyError::Weak);
    }
    Ok(key)
}

/// The ack of command `command_id`; `reason` is null when done.
pub fn ack(
    command_id: &str,
    result: AckResult,
    reason: Option<String>,
    at: Timestamp,
) -> CommandAck {
    CommandAck {
        v: VERSION,
        command_id: command_id.to_owned(),
        result,
        reason,
        at,
    }
}

/// The `rejected` ack of a refused command, its reason's code; `None` when
/// the command's id is not known (an ack must name one).
pub fn rejected_ack(rejected: &Rejected, at: Timestamp) -> Option<CommandAck> {
    let id = rejected.command_id.as_deref()?;
    let code = rejected.reason.code().to_owned();
    Some(ack(id, AckResult::Rejected, Some(code), at))
}

/// The `command_rejected` alert: which command, if known, and why.
pub fn rejected_alert(rejected: &Rejected) -> Alert {
    let message = match &rejected.command_id {
        Some(id) => format!("HQ command {id:?} was rejected: {}.", rejected.reason),
        None => format!("A command from HQ was rejected: {}.", rejected.reason),
    };
    Alert {
        alert: AlertKind::CommandRejected,
        severity: Severity::Warning,
        message,
        card: None,
        user_id: None,
        related_event_id: None,
    }
}

#[cfg(test)]
mod tests;
