//! What a message from the broker is: routed by topic, size-checked and
//! parsed against the contract, before anything acts on it. Pure.
//!
//! Anything that is not what its topic promises (not JSON, a wrong `v`, a
//! missing field, too big, a topic this gate never subscribed to) is
//! [`Inbound::Bad`]: it changes nothing and becomes a `bad_message` alert,
//! rate-limited by [`BadMessages`] so a flood of junk is one alert a minute.

use std::time::Duration;

use crate::domain::contract::{
    self, ChangeBatch, Event, EventBody, Occupancy, ReplayRequest, SnapshotChunk, lot_root,
};
use crate::store::Ident;

/// The largest payload taken on any topic but snapshots: a change batch of
/// a busy day is well under it.
pub const MAX_PAYLOAD: usize = 1 << 20;
/// The largest snapshot chunk taken.
pub const MAX_SNAPSHOT_CHUNK: usize = 8 << 20;
/// What rumqttc is told to accept: above our own limits, so an oversized
/// message reaches [`route`] (and becomes an alert) instead of breaking the
/// connection, which the broker would only redeliver it on.
pub const MAX_PACKET: usize = 16 << 20;

/// A message from the broker, understood.
#[derive(Debug, Clone, PartialEq)]
pub enum Inbound {
    /// HQ asks for events again.
    Replay(ReplayRequest),
    /// A replica change batch for the lot.
    Changes(ChangeBatch),
    /// One chunk of a snapshot for this gate.
    Snapshot(SnapshotChunk),
    /// A passage (`check_in`, `check_out`, `void`) at a gate of the lot,
    /// this one's echoes included.
    Passage(Box<Event>),
    /// A gate's occupancy counters.
    Occupancy(Occupancy),
    /// A signed command for this gate (verified later, not here).
    Command(Vec<u8>),
    /// Not what its topic promises: changes nothing, raises `bad_message`.
    Bad { topic: String, why: String },
}

/// The topics this gate subscribes to (QoS 1), for `ident`.
pub fn subscriptions(ident: &Ident) -> Vec<String> {
    let lot = lot_root(&ident.site, &ident.lot);
    let gate = contract::gate_root(&ident.site, &ident.lot, &ident.gate);
    vec![
        format!("{gate}/replay"),
        format!("{gate}/commands"),
        format!("{gate}/replica/snapshot"),
        format!("{lot}/replica/changes"),
        format!("{lot}/gates/+/events/check_in"),
        format!("{lot}/gates/+/events/check_out"),
        format!("{lot}/gates/+/events/void"),
        format!("{lot}/gates/+/occupancy"),
    ]
}

/// Reads the message `payload` received on `topic` by gate `ident`.
pub fn route(ident: &Ident, topic: &str, payload: &[u8]) -> Inbound {
    let bad = |why: String| Inbound::Bad {
        topic: topic.to_string(),
        why,
    };
    let lot = lot_root(&ident.site, &ident.lot);
    let gate = contract::gate_root(&ident.site, &ident.lot, &ident.gate);
    let limit = if topic == format!("{gate}/replica/snapshot") {
        MAX_SNAPSHOT_CHUNK
    } else {
        MAX_PAYLOAD
    };
    if payload.len() > limit {
        return bad(format!(
            "{} bytes, more than the {limit} this topic takes",
            payload.len()
        ));
    }
    let parsed =
        |r: Result<Inbound, contract::ContractError>| r.unwrap_or_else(|e| bad(e.to_string()));
    if let Some(leaf) = topic.strip_prefix(&format!("{gate}/")) {
        return match leaf {
            "replay" => parsed(contract::parse(payload).map(Inbound::Replay)),
            "replica/snapshot" => parsed(contract::parse(payload).map(Inbound::Snapshot)),
            "commands" => Inbound::Command(payload.to_vec()),
            // Our own gate's events and occupancy come back through the lot's
            // filters below; nothing else of our root is ours to read.
            _ => sibling(&lot, topic, payload, bad),
        };
    }
    if topic == format!("{lot}/replica/changes") {
        return parsed(contract::parse(payload).map(Inbound::Changes));
    }
    sibling(&lot, topic, payload, bad)
}

/// A message under `{lot}/gates/{gate}/...`: a passage or occupancy.
fn sibling(lot: &str, topic: &str, payload: &[u8], bad: impl Fn(String) -> Inbound) -> Inbound {
    let Some((gate, leaf)) = topic
        .strip_prefix(&format!("{lot}/gates/"))
        .and_then(|rest| rest.split_once('/'))
    else {
        return bad("not a topic this gate subscribes to".into());
    };
    match leaf {
        "occupancy" => match contract::parse::<Occupancy>(payload) {
            Ok(o) if o.gate == gate => Inbound::Occupancy(o),
            Ok(o) => bad(format!(
                "occupancy of gate {} on gate {gate}'s topic",
                o.gate
            )),
            Err(e) => bad(e.to_string()),
        },
        "events/check_in" | "events/check_out" | "events/void" => {
            match contract::parse::<Event>(payload) {
                Ok(e) if e.gate != gate || Some(e.type_name()) != leaf.strip_prefix("events/") => {
                    bad(format!("a {} of gate {} on {topic}", e.type_name(), e.gate))
                }
                Ok(e)
                    if matches!(
                        e.body,
                        EventBody::CheckIn(_) | EventBody::CheckOut(_) | EventBody::Void { .. }
                    ) =>
                {
                    Inbound::Passage(Box::new(e))
                }
                Ok(e) => bad(format!("a {} is not a passage", e.type_name())),
                Err(e) => bad(e.to_string()),
            }
        }
        _ => bad("not a topic this gate subscribes to".into()),
    }
}

/// One `bad_message` alert per [`BadMessages::EVERY`] at most; the next
/// says how many were left unsaid. Time comes in as a parameter.
#[derive(Debug, Default)]
pub struct BadMessages {
    last: Option<tokio::time::Instant>,
    unsaid: u64,
}

impl BadMessages {
    /// The shortest time between two `bad_message` alerts.
    pub const EVERY: Duration = Duration::from_secs(60);

    /// A bad message arrived at `now`: `Some(n)` if an alert is due, `n`
    /// more having been left unsaid since the last; `None` to stay quiet.
    pub fn admit(&mut self, now: tokio::time::Instant) -> Option<u64> {
        match self.last {
            Some(last) if now.duration_since(last) < Self::EVERY => {
                self.unsaid += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.unsaid))
            }
        }
    }
}

#[cfg(test)]
mod tests;
