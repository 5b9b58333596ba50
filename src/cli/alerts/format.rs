//! What `parkgate alerts` makes of one message: a line for the security
//! desk, the payload itself (`--json`), a complaint about a malformed
//! payload, or nothing for an event already shown.
//!
//! Pure: no broker, no clock. [`Follower::on_message`] takes a topic and a
//! payload and says what to print where, so every case is tested here.

use std::collections::{HashSet, VecDeque};

use crate::domain::contract::{
    self, Alert, AlertKind, Denied, DenyReason, Event, EventBody, Severity,
};

/// How many recent `event_id`s [`Follower`] remembers: far more than a QoS 1
/// redelivery or a replay of a lot's gap can bring back at once, and only a
/// few hundred kilobytes.
pub const REMEMBERED: usize = 10_000;

/// What to do with one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Print this line on stdout.
    Print(String),
    /// Print this line on stderr: `bad message on <topic>: <why>`.
    Bad(String),
    /// An event already printed (a redelivery or a replay): print nothing.
    Repeat,
}

/// The state of one `parkgate alerts` run between messages: the output
/// mode and the ids of the events already shown.
#[derive(Debug)]
pub struct Follower {
    json: bool,
    seen: Seen,
}

impl Follower {
    /// Human lines, or the payloads unchanged with `json`.
    pub fn new(json: bool) -> Follower {
        Follower {
            json,
            seen: Seen::new(REMEMBERED),
        }
    }

    /// Reads one message received on `topic`. An event is checked against
    /// the contract (JSON, `v`, required fields) and against its topic
    /// before it is shown, and is shown once however often it arrives.
    pub fn on_message(&mut self, topic: &str, payload: &[u8]) -> Outcome {
        let event = match read(topic, payload) {
            Ok(event) => event,
            Err(why) => {
                return Outcome::Bad(one_line(&format!("bad message on {topic}: {why}")));
            }
        };
        if !self.seen.first_time(&event.event_id) {
            return Outcome::Repeat;
        }
        if self.json {
            // A parsed payload is UTF-8, and a raw line break in JSON can
            // only be whitespace between tokens (inside a string it must be
            // escaped), so a space in its place leaves the same JSON on one
            // line, as a reader of JSON lines needs.
            let text = String::from_utf8_lossy(payload);
            Outcome::Print(text.replace(['\n', '\r'], " "))
        } else {
            match line(&event) {
                Some(line) => Outcome::Print(line),
                // `read` lets through alerts and denials only.
                None => Outcome::Bad(format!("bad message on {topic}: not an alert or a denial")),
            }
        }
    }
}

/// The payload as an alert or denial event that belongs on `topic`, or why not.
fn read(topic: &str, payload: &[u8]) -> Result<Event, String> {
    let event: Event = contract::parse(payload).map_err(|e| e.to_string())?;
    if !matches!(event.body, EventBody::Alert(_) | EventBody::Denied(_)) {
        return Err(format!(
            "a {} event, not an alert or a denial",
            event.type_name()
        ));
    }
    // A gate publishes an event only on its own topic; one that names
    // another gate or type would be shown under the wrong lot.
    let own = contract::event_topic(&event);
    if own != topic {
        return Err(format!("the event belongs on {own}"));
    }
    Ok(event)
}

/// One alert or denial for the security desk:
///
/// `2026-11-22 08:01:02  b1/main/entry-1  CRITICAL  tailgating: A second vehicle passed.  card 04A1B2C3D4E5F6 · u-17`
///
/// The time is the event's own, in the offset the gate stamped it with (the
/// lot's local time), so the desk reads the lot's clock wherever it sits.
/// `None` for other event types.
pub fn line(e: &Event) -> Option<String> {
    let (severity, what, who) = match &e.body {
        EventBody::Alert(a) => (severity(a.severity), alert_what(a), alert_who(a)),
        EventBody::Denied(d) => (
            "DENIED",
            format!("denied: {}", reason(d.reason)),
            denied_who(d),
        ),
        _ => return None,
    };
    Some(one_line(&format!(
        "{}  {}/{}/{}  {severity}  {what}  {who}",
        e.at.format("%Y-%m-%d %H:%M:%S"),
        e.site,
        e.lot,
        e.gate,
    )))
}

fn severity(s: Severity) -> &'static str {
    match s {
        Severity::Info => "INFO",
        Severity::Warning => "WARNING",
        Severity::Critical => "CRITICAL",
    }
}

fn alert_what(a: &Alert) -> String {
    let kind = kind(a.alert);
    match a.message.trim() {
        "" => kind,
        message => format!("{kind}: {message}"),
    }
}

/// The alert's contract name (`barrier_forced`): the word staff search
/// the logs and HQ's tools for.
fn kind(k: AlertKind) -> String {
    match serde_json::to_value(k) {
        Ok(serde_json::Value::String(s)) => s,
        other => format!("{other:?}"),
    }
}

/// A denial's reason in the words a guard would say at the barrier.
pub fn reason(r: DenyReason) -> &'static str {
    match r {
        DenyReason::UnknownCard => "unknown card",
        DenyReason::CardRevoked => "card revoked",
        DenyReason::CardExpired => "card expired",
        DenyReason::CardNotYetValid => "card not yet valid",
        DenyReason::UserSuspended => "user suspended",
        DenyReason::WrongLot => "wrong lot",
        DenyReason::AntiPassback => "anti-passback",
        DenyReason::NoCapacity => "no free space",
        DenyReason::VehicleClassNotServed => "vehicle class not served",
        DenyReason::NoVehiclePresent => "no vehicle present",
        DenyReason::Lockdown => "lockdown",
        DenyReason::CredentialAuthFailed => "card authentication failed",
        DenyReason::PaymentOverdue => "payment overdue",
    }
}

fn alert_who(a: &Alert) -> String {
    who(a.card.as_deref(), a.user_id.as_deref(), None)
}

fn denied_who(d: &Denied) -> String {
    who(
        d.card.as_deref(),
        d.user_id.as_deref(),
        d.user_name.as_deref(),
    )
}

/// `card 04A1B2C3D4E5F6 · Alice Tran (u-17)`, whichever parts are known,
/// or `-` for none (a barrier fault is nobody's).
fn who(card: Option<&str>, user_id: Option<&str>, user_name: Option<&str>) -> String {
    let card = card.map(|c| format!("card {c}"));
    let user = match (user_name, user_id) {
        (Some(name), Some(id)) => Some(format!("{name} ({id})")),
        (Some(name), None) => Some(name.to_string()),
        (None, Some(id)) => Some(id.to_string()),
        (None, None) => None,
    };
    let parts: Vec<String> = card.into_iter().chain(user).collect();
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(" · ")
    }
}

/// Control characters from the wire (a message, a name, a topic) become
/// spaces: a line break would split a line in two, and an escape sequence
/// could rewrite what the desk's terminal shows.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// The last `cap` distinct ids seen, oldest forgotten first.
#[derive(Debug)]
struct Seen {
    cap: usize,
    ids: HashSet<String>,
    order: VecDeque<String>,
}

impl Seen {
    fn new(cap: usize) -> Seen {
        Seen {
            cap,
            ids: HashSet::new(),
            order: VecDeque::new(),
        }
    }

    /// True the first time `id` comes, false while it is remembered.
    fn first_time(&mut self, id: &str) -> bool {
        if self.ids.contains(id) {
            return false;
        }
        if self.order.len() == self.cap
            && let Some(old) = self.order.pop_front()
        {
            self.ids.remove(&old);
        }
        self.ids.insert(id.to_string());
        self.order.push_back(id.to_string());
        true
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    const ALERT_TOPIC: &str = "parkgate/v1/b1/main/gates/entry-1/events/alert";
    const DENIED_TOPIC: &str = "parkgate/v1/b1/main/gates/entry-1/events/denied";

    fn envelope(id: &str, kind: &str, fields: Value) -> Vec<u8> {
        let mut v = json!({
            "v": 1, "event_id": id, "gate_seq": 7,
            "site": "b1", "lot": "main", "gate": "entry-1",
            "at": "2026-11-22T08:01:02.123+07:00", "clock": "synced",
            "type": kind,
        });
        v.as_object_mut()
            .unwrap()
            .extend(fields.as_object().unwrap().clone());
        serde_json::to_vec(&v).unwrap()
    }

    fn tailgating() -> Vec<u8> {
        envelope(
            "e-1",
            "alert",
            json!({"alert": "tailgating", "severity": "critical",
                   "message": "A second vehicle passed on one authorisation.",
                   "card": "04A1B2C3D4E5F6", "user_id": "u-17"}),
        )
    }

    fn revoked() -> Vec<u8> {
        envelope(
            "e-2",
            "denied",
            json!({"card": "04C4C4C4C4C4C4", "reason": "card_revoked",
                   "user_id": "u-21", "user_name": "Carol Ngo"}),
        )
    }

    fn printed(outcome: Outcome) -> String {
        match outcome {
            Outcome::Print(line) => line,
            other => panic!("expected a line, got {other:?}"),
        }
    }

    fn bad(outcome: Outcome) -> String {
        match outcome {
            Outcome::Bad(line) => line,
            other => panic!("expected a complaint, got {other:?}"),
        }
    }

    #[test]
    fn an_alert_shows_time_gate_severity_kind_message_and_who() {
        let mut f = Follower::new(false);
        assert_eq!(
            printed(f.on_message(ALERT_TOPIC, &tailgating())),
            "2026-11-22 08:01:02  b1/main/entry-1  CRITICAL  \
             tailgating: A second vehicle passed on one authorisation.  \
             card 04A1B2C3D4E5F6 · u-17"
        );
    }

    #[test]
    fn a_denial_shows_its_reason_in_words_and_the_named_user() {
        let mut f = Follower::new(false);
        assert_eq!(
            printed(f.on_message(DENIED_TOPIC, &revoked())),
            "2026-11-22 08:01:02  b1/main/entry-1  DENIED  denied: card revoked  \
             card 04C4C4C4C4C4C4 · Carol Ngo (u-21)"
        );
    }

    #[test]
    fn the_time_is_the_gates_own_offset_not_this_machines() {
        let payload = String::from_utf8(revoked())
            .unwrap()
            .replace("08:01:02.123+07:00", "23:59:59-05:00");
        let mut f = Follower::new(false);
        let line = printed(f.on_message(DENIED_TOPIC, payload.as_bytes()));
        assert!(line.starts_with("2026-11-22 23:59:59  "), "{line}");
    }

    #[test]
    fn nobody_known_is_a_dash_and_a_card_alone_is_the_card() {
        let fault = envelope(
            "e-3",
            "alert",
            json!({"alert": "barrier_fault", "severity": "warning",
                   "message": "The barrier did not reach the top."}),
        );
        let unknown = envelope(
            "e-4",
            "denied",
            json!({"card": "0BADC0DE", "reason": "unknown_card",
                   "user_id": null, "user_name": null}),
        );
        let mut f = Follower::new(false);
        assert_eq!(
            printed(f.on_message(ALERT_TOPIC, &fault)),
            "2026-11-22 08:01:02  b1/main/entry-1  WARNING  \
             barrier_fault: The barrier did not reach the top.  -"
        );
        assert_eq!(
            printed(f.on_message(DENIED_TOPIC, &unknown)),
            "2026-11-22 08:01:02  b1/main/entry-1  DENIED  denied: unknown card  card 0BADC0DE"
        );
    }

    #[test]
    fn every_denial_reason_has_words_without_underscores() {
        let all = [
            "unknown_card",
            "card_revoked",
            "card_expired",
            "card_not_yet_valid",
            "user_suspended",
            "wrong_lot",
            "anti_passback",
            "no_capacity",
            "vehicle_class_not_served",
            "no_vehicle_present",
            "lockdown",
            "credential_auth_failed",
            "payment_overdue",
        ];
        for name in all {
            let r: DenyReason = serde_json::from_value(json!(name)).unwrap();
            let words = reason(r);
            assert!(!words.contains('_') && !words.is_empty(), "{name}: {words}");
        }
        assert_eq!(reason(DenyReason::AntiPassback), "anti-passback");
    }

    #[test]
    fn bad_payloads_are_named_with_their_topic_and_why() {
        let mut f = Follower::new(false);
        let junk = bad(f.on_message(ALERT_TOPIC, b"not json {"));
        assert!(
            junk.starts_with(&format!(
                "bad message on {ALERT_TOPIC}: malformed payload: "
            )),
            "{junk}"
        );
        let v2 = String::from_utf8(tailgating())
            .unwrap()
            .replace("\"v\":1", "\"v\":2");
        let version = bad(f.on_message(ALERT_TOPIC, v2.as_bytes()));
        assert!(
            version.contains("unsupported contract version 2"),
            "{version}"
        );
        let mut missing: Value = serde_json::from_slice(&tailgating()).unwrap();
        missing.as_object_mut().unwrap().remove("severity");
        let missing = bad(f.on_message(ALERT_TOPIC, &serde_json::to_vec(&missing).unwrap()));
        assert!(missing.contains("missing field `severity`"), "{missing}");
        // None of them took an id: the real event still shows.
        printed(f.on_message(ALERT_TOPIC, &tailgating()));
    }

    #[test]
    fn other_event_types_and_misrouted_events_are_refused() {
        let check_in = envelope(
            "e-5",
            "check_in",
            json!({"card": "04A1B2C3D4E5F6", "user_id": "u-17", "user_name": "Alice Tran",
                   "vehicle_id": "v-9", "vehicle_class": "standard", "reservation_id": null,
                   "spot_id": null, "plan": "monthly", "walk_in": true}),
        );
        let mut f = Follower::new(false);
        let line = bad(f.on_message(ALERT_TOPIC, &check_in));
        assert!(
            line.ends_with("a check_in event, not an alert or a denial"),
            "{line}"
        );
        let elsewhere = "parkgate/v1/b1/annex/gates/entry-1/events/alert";
        let line = bad(f.on_message(elsewhere, &tailgating()));
        assert!(
            line.ends_with(&format!("the event belongs on {ALERT_TOPIC}")),
            "{line}"
        );
    }

    #[test]
    fn an_event_is_shown_once_however_often_it_comes() {
        let mut f = Follower::new(false);
        printed(f.on_message(ALERT_TOPIC, &tailgating()));
        assert_eq!(f.on_message(ALERT_TOPIC, &tailgating()), Outcome::Repeat);
        printed(f.on_message(DENIED_TOPIC, &revoked()));
        assert_eq!(f.on_message(ALERT_TOPIC, &tailgating()), Outcome::Repeat);
    }

    #[test]
    fn the_oldest_ids_are_forgotten_beyond_the_bound() {
        let mut seen = Seen::new(3);
        for id in ["a", "b", "c"] {
            assert!(seen.first_time(id));
        }
        assert!(!seen.first_time("a"));
        assert!(seen.first_time("d"), "d pushes a out");
        assert!(seen.first_time("a"), "a was forgotten");
        assert!(!seen.first_time("d"));
        assert_eq!(seen.ids.len(), 3);
    }

    #[test]
    fn json_mode_prints_the_payload_unchanged_on_one_line() {
        let mut f = Follower::new(true);
        let payload = tailgating();
        assert_eq!(
            printed(f.on_message(ALERT_TOPIC, &payload)),
            String::from_utf8(payload.clone()).unwrap()
        );
        assert_eq!(f.on_message(ALERT_TOPIC, &payload), Outcome::Repeat);
        let pretty =
            serde_json::to_string_pretty(&serde_json::from_slice::<Value>(&revoked()).unwrap())
                .unwrap();
        let line = printed(f.on_message(DENIED_TOPIC, pretty.as_bytes()));
        assert!(!line.contains('\n'));
        assert_eq!(
            serde_json::from_str::<Value>(&line).unwrap(),
            serde_json::from_str::<Value>(&pretty).unwrap()
        );
        bad(f.on_message(ALERT_TOPIC, b"[]"));
    }

    #[test]
    fn control_characters_from_the_wire_cannot_break_the_line() {
        let payload = String::from_utf8(tailgating())
            .unwrap()
            .replace("one authorisation.", "one\\nauthorisation.\\u001b[2J");
        let mut f = Follower::new(false);
        let line = printed(f.on_message(ALERT_TOPIC, payload.as_bytes()));
        assert!(line.contains("on one authorisation. [2J"), "{line}");
        assert!(!line.chars().any(char::is_control), "{line:?}");
    }
}
