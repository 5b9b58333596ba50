//! The wire format against the examples and field lists of `shared/CONTRACT.md`.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::*;
use crate::domain::model::ReservationStatus;

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

const ENVELOPE: [&str; 9] = [
    "v", "event_id", "gate_seq", "site", "lot", "gate", "at", "clock", "type",
];

fn envelope(body: EventBody) -> Event {
    Event {
        v: VERSION,
        event_id: "01JD3W6Q8R9S5T4V7X2Y0Z1A2B".into(),
        gate_seq: 1234,
        site: "b1".into(),
        lot: "main".into(),
        gate: "entry-1".into(),
        at: chrono::DateTime::parse_from_rfc3339("2026-11-22T08:01:02.123+07:00").unwrap(),
        clock: Clock::Synced,
        body,
    }
}

fn passage() -> Passage {
    Passage {
        card: Some("04A1B2C3D4E5F6".into()),
        user_id: Some("u-17".into()),
        user_name: Some("Alice Tran".into()),
        vehicle_id: Some("v-9".into()),
        vehicle_class: Some(VehicleClass::Standard),
        reservation_id: None,
        spot_id: None,
        plan: Some(PlanKind::Monthly),
        walk_in: true,
    }
}

const PASSAGE: [&str; 9] = [
    "card",
    "user_id",
    "user_name",
    "vehicle_id",
    "vehicle_class",
    "reservation_id",
    "spot_id",
    "plan",
    "walk_in",
];

/// The envelope's fields plus `extra`.
fn expect(extra: &[&str]) -> BTreeSet<String> {
    ENVELOPE
        .iter()
        .chain(extra)
        .map(|s| s.to_string())
        .collect()
}

#[test]
fn check_in_has_exactly_the_contract_fields() {
    let v = serde_json::to_value(envelope(EventBody::CheckIn(passage()))).unwrap();
    assert_eq!(keys(&v), expect(&PASSAGE));
    assert_eq!(v["type"], "check_in");
    assert_eq!(v["at"], "2026-11-22T08:01:02.123+07:00");
    assert_eq!(v["clock"], "synced");
    assert_eq!(v["reservation_id"], Value::Null, "null, not missing");
}

#[test]
fn an_event_is_published_under_its_gate_root_and_type() {
    let e = envelope(EventBody::Void {
        related_event_id: "x".into(),
    });
    assert_eq!(
        event_topic(&e),
        "parkgate/v1/b1/main/gates/entry-1/events/void"
    );
}

#[test]
fn check_out_adds_the_stay_and_the_fee() {
    let out = CheckOut {
        passage: passage(),
        check_in_at: None,
        duration_s: None,
        fee: Some(Fee {
            amount_minor: 50_000,
            currency: "VND".into(),
            plan: PlanKind::Daily,
        }),
        overstay_s: 0,
    };
    let v = serde_json::to_value(envelope(EventBody::CheckOut(out))).unwrap();
    let mut fields = PASSAGE.to_vec();
    fields.extend(["check_in_at", "duration_s", "fee", "overstay_s"]);
    assert_eq!(keys(&v), expect(&fields));
    assert_eq!(
        v["fee"],
        json!({"amount_minor": 50000, "currency": "VND", "plan": "daily"})
    );
}

#[test]
fn denied_alert_and_void_have_their_fields() {
    let denied = Denied {
        card: Some("0BADC0DE".into()),
        reason: DenyReason::UnknownCard,
        user_id: None,
        user_name: None,
    };
    let v = serde_json::to_value(envelope(EventBody::Denied(denied))).unwrap();
    assert_eq!(
        keys(&v),
        expect(&["card", "reason", "user_id", "user_name"])
    );
    assert_eq!(v["reason"], "unknown_card");

    let alert = Alert {
        alert: AlertKind::Tailgating,
        severity: Severity::Warning,
        message: "A second vehicle passed on one authorisation.".into(),
        card: None,
        user_id: None,
        related_event_id: Some("01JD3W6Q8R9S5T4V7X2Y0Z1A2B".into()),
    };
    let v = serde_json::to_value(envelope(EventBody::Alert(alert))).unwrap();
    assert_eq!(
        keys(&v),
        expect(&["alert", "severity", "message", "related_event_id"])
    );
    assert_eq!(
        (v["alert"].as_str(), v["severity"].as_str()),
        (Some("tailgating"), Some("warning"))
    );

    let v = serde_json::to_value(envelope(EventBody::Void {
        related_event_id: "x".into(),
    }))
    .unwrap();
    assert_eq!(keys(&v), expect(&["related_event_id"]));
}

#[test]
fn events_read_back_unchanged() {
    let e = envelope(EventBody::CheckIn(passage()));
    let text = serde_json::to_string(&e).unwrap();
    assert_eq!(parse::<Event>(text.as_bytes()).unwrap(), e);
}

/// The batch example of the contract, verbatim but for the elided times.
const BATCH: &str = r#"{"v":1, "seq":1042, "at":"2026-11-22T08:00:00+07:00", "ops":[
  {"op":"upsert", "kind":"user",        "data":{"user_id":"u-17", "name":"Alice Tran", "company":"acme", "status":"active"}},
  {"op":"upsert", "kind":"card",        "data":{"card":"04A1B2C3D4E5F6", "user_id":"u-17", "status":"active", "valid_from":"2026-01-01T00:00:00+07:00", "valid_until":"2027-01-01T00:00:00+07:00"}},
  {"op":"upsert", "kind":"vehicle",     "data":{"vehicle_id":"v-9", "user_id":"u-17", "plate":"51F-123.45", "class":"standard", "ada":false, "ev":true, "primary":true}},
  {"op":"upsert", "kind":"plan",        "data":{"user_id":"u-17", "kind":"monthly", "lots":["main"], "valid_until":"2026-12-31T23:59:59+07:00", "status":"paid"}},
  {"op":"upsert", "kind":"reservation", "data":{"reservation_id":"r-88", "user_id":"u-17", "vehicle_id":"v-9", "lot":"main", "spot_id":"B1-042", "class":"standard", "start":"2026-11-22T08:00:00+07:00", "end":"2026-11-22T18:00:00+07:00", "status":"booked"}},
  {"op":"delete", "kind":"reservation", "key":"r-77"}
], "some_future_field": {"ignored": true}}"#;

#[test]
fn the_contract_batch_example_parses() {
    let batch: ChangeBatch = parse(BATCH.as_bytes()).unwrap();
    assert_eq!((batch.seq, batch.ops.len()), (1042, 6));
    assert!(matches!(&batch.ops[2], Op::Upsert(Record::Vehicle(v)) if v.ev && v.primary && !v.ada));
    assert!(
        matches!(&batch.ops[4], Op::Upsert(Record::Reservation(r)) if r.status == ReservationStatus::Booked)
    );
    assert_eq!(
        batch.ops[5],
        Op::Delete {
            kind: Kind::Reservation,
            key: "r-77".into()
        }
    );
}

#[test]
fn bad_payloads_are_rejected() {
    assert!(matches!(
        parse::<ChangeBatch>(b"not json"),
        Err(ContractError::Malformed(_))
    ));
    let wrong_v = BATCH.replacen(r#""v":1"#, r#""v":2"#, 1);
    assert!(matches!(
        parse::<ChangeBatch>(wrong_v.as_bytes()),
        Err(ContractError::Version(2))
    ));
    let no_seq = BATCH.replacen(r#""seq":1042, "#, "", 1);
    assert!(matches!(
        parse::<ChangeBatch>(no_seq.as_bytes()),
        Err(ContractError::Malformed(_))
    ));
    let bad_class = BATCH.replacen(r#""class":"standard""#, r#""class":"truck""#, 1);
    assert!(matches!(
        parse::<ChangeBatch>(bad_class.as_bytes()),
        Err(ContractError::Malformed(_))
    ));
}

// ---------------------------------------------------------------- commands

/// The contract's command body, its elided times filled in.
const COMMAND_BODY: &str = r#"{"v":1, "command_id":"c-1", "gate":"entry-1", "cmd":"open", "issued_at":"2026-11-22T08:00:00+07:00", "expires_at":"2026-11-22T08:05:00+07:00"}"#;

/// The contract's ack, its elided time filled in.
const ACK: &str = r#"{"v":1, "command_id":"c-1", "result":"done", "reason":null, "at":"2026-11-22T08:00:01+07:00"}"#;

/// Parses `text` as a `T`, writes it back, and checks nothing changed.
fn round_trip<T>(text: &str) -> T
where
    T: serde::de::DeserializeOwned + Serialize,
{
    let value: T = serde_json::from_str(text).unwrap();
    let expected: Value = serde_json::from_str(text).unwrap();
    assert_eq!(serde_json::to_value(&value).unwrap(), expected);
    value
}

#[test]
fn the_contract_command_envelope_reads_back_unchanged() {
    let env: CommandEnvelope = round_trip(r#"{"body":"eyJ2IjoxfQ==", "sig":"c2ln"}"#);
    assert_eq!(
        (env.body.as_str(), env.sig.as_str()),
        ("eyJ2IjoxfQ==", "c2ln")
    );
}

#[test]
fn the_contract_command_body_reads_back_unchanged() {
    let body: CommandBody = round_trip(COMMAND_BODY);
    assert_eq!((body.cmd, body.command_id.as_str()), (Cmd::Open, "c-1"));
    for (cmd, name) in [
        (Cmd::Open, "open"),
        (Cmd::Lockdown, "lockdown"),
        (Cmd::Unlock, "unlock"),
        (Cmd::Resync, "resync"),
    ] {
        let text = COMMAND_BODY.replace(r#""open""#, &format!("{name:?}"));
        assert_eq!(round_trip::<CommandBody>(&text).cmd, cmd);
    }
}

#[test]
fn the_contract_ack_reads_back_unchanged() {
    let ack: CommandAck = round_trip(ACK);
    assert_eq!((ack.result, ack.reason), (AckResult::Done, None));
    let rejected = ACK
        .replace(r#""done""#, r#""rejected""#)
        .replace("null", r#""expired""#);
    let ack: CommandAck = round_trip(&rejected);
    assert_eq!(ack.result, AckResult::Rejected);
    // Written from scratch, a done ack is the example: `reason` null, not missing.
    let expected: Value = serde_json::from_str(ACK).unwrap();
    assert_eq!(serde_json::to_value(ack_done()).unwrap(), expected);
}

fn ack_done() -> CommandAck {
    CommandAck {
        v: VERSION,
        command_id: "c-1".into(),
        result: AckResult::Done,
        reason: None,
        at: chrono::DateTime::parse_from_rfc3339("2026-11-22T08:00:01+07:00").unwrap(),
    }
}

#[test]
fn commands_and_acks_have_their_topics() {
    let root = gate_root("b1", "main", "entry-1");
    assert_eq!(
        command_topic(&root),
        "parkgate/v1/b1/main/gates/entry-1/commands"
    );
    assert_eq!(
        command_ack_topic(&root),
        "parkgate/v1/b1/main/gates/entry-1/commands/ack"
    );
}
