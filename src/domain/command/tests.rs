//! Signed commands: each way an envelope is accepted or refused, and the key.

use ed25519_dalek::{Signer, SigningKey};
use serde_json::json;

use super::*;

/// HQ's key in these tests: fixed bytes, so no RNG is needed.
fn hq() -> SigningKey {
    SigningKey::from_bytes(&[7u8; 32])
}

fn at(rfc3339: &str) -> Timestamp {
    chrono::DateTime::parse_from_rfc3339(rfc3339).unwrap()
}

/// The gate's clock in these tests: a minute after the command was issued.
fn now() -> Timestamp {
    at("2026-11-22T08:01:00+07:00")
}

const EXPIRES: &str = "2026-11-22T08:05:00+07:00";

/// The contract's example body with `cmd` and the times filled in.
fn body(cmd: &str) -> String {
    format!(
        r#"{{"v":1, "command_id":"c-1", "gate":"entry-1", "cmd":"{cmd}", "issued_at":"2026-11-22T08:00:00+07:00", "expires_at":"{EXPIRES}"}}"#
    )
}

fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// `body` in an envelope, signed by `signer`.
fn envelope(signer: &SigningKey, body: &str) -> Vec<u8> {
    let sig = signer.sign(body.as_bytes()).to_bytes();
    json!({"body": b64(body.as_bytes()), "sig": b64(&sig)})
        .to_string()
        .into_bytes()
}

/// What gate `entry-1` makes of `envelope` at `now()`.
fn check(envelope: &[u8]) -> Result<Verified, Rejected> {
    verify(envelope, &hq().verifying_key(), "entry-1", now())
}

/// The reason `envelope` is refused, checking whether its id is known.
fn reason(envelope: &[u8], id: Option<&str>) -> RejectReason {
    let r = check(envelope).expect_err("should be rejected");
    assert_eq!(r.command_id.as_deref(), id, "{r}");
    r.reason
}

#[test]
fn a_good_command_of_each_kind_verifies() {
    for (name, cmd) in [
        ("open", Cmd::Open),
        ("lockdown", Cmd::Lockdown),
        ("unlock", Cmd::Unlock),
        ("resync", Cmd::Resync),
    ] {
        let v = check(&envelope(&hq(), &body(name))).unwrap();
        let expected = CommandBody {
            v: 1,
            command_id: "c-1".into(),
            gate: "entry-1".into(),
            cmd,
            issued_at: at("2026-11-22T08:00:00+07:00"),
            expires_at: at(EXPIRES),
        };
        assert_eq!(v.body, expected);
    }
}

#[test]
fn unknown_body_fields_are_ignored() {
    let extra = body("open").replacen('{', r#"{"priority":"high", "#, 1);
    assert_eq!(check(&envelope(&hq(), &extra)).unwrap().body.cmd, Cmd::Open);
}

#[test]
fn a_command_issued_in_the_future_is_accepted() {
    // The gate's clock may be behind HQ's by far more than any skew.
    let future = body("open").replace("2026-11-22T08:00:00", "2026-11-22T10:00:00");
    let v = check(&envelope(&hq(), &future)).unwrap();
    assert!(v.body.issued_at > now() + chrono::Duration::minutes(5));
}

#[test]
fn a_command_signed_by_another_key_is_forged() {
    let mallory = SigningKey::from_bytes(&[8u8; 32]);
    let env = envelope(&mallory, &body("open"));
    assert_eq!(reason(&env, None), RejectReason::BadSignature);
}

#[test]
fn an_altered_body_fails_the_signature() {
    let signed = body("lockdown");
    let sig = hq().sign(signed.as_bytes()).to_bytes();
    for altered in [
        signed.replace("lockdown", "unlock"),
        // Same JSON, other bytes: the signature is over the bytes.
        signed.replace(", ", ","),
    ] {
        let env = json!({"body": b64(altered.as_bytes()), "sig": b64(&sig)}).to_string();
        assert_eq!(reason(env.as_bytes(), None), RejectReason::BadSignature);
    }
}

#[test]
fn a_signature_of_the_wrong_length_does_not_verify() {
    let env = json!({"body": b64(body("open").as_bytes()), "sig": b64(&[0u8; 63])}).to_string();
    assert_eq!(reason(env.as_bytes(), None), RejectReason::BadSignature);
}

#[test]
fn a_command_for_another_gate_is_rejected_with_its_id() {
    let env = envelope(&hq(), &body("open").replace("entry-1", "exit-1"));
    let expected = RejectReason::WrongGate {
        to: "exit-1".into(),
        this: "entry-1".into(),
    };
    assert_eq!(reason(&env, Some("c-1")), expected);
}

#[test]
fn a_command_expires_at_its_expiry_instant() {
    let env = envelope(&hq(), &body("open"));
    let key = hq().verifying_key();
    let just_before = at(EXPIRES) - chrono::Duration::milliseconds(1);
    assert!(verify(&env, &key, "entry-1", just_before).is_ok());
    let r = verify(&env, &key, "entry-1", at(EXPIRES)).unwrap_err();
    let expected = RejectReason::Expired {
        expires_at: at(EXPIRES),
        now: at(EXPIRES),
    };
    assert_eq!((r.command_id.as_deref(), r.reason), (Some("c-1"), expected));
}

#[test]
fn a_malformed_envelope_is_rejected() {
    let good_body = b64(body("open").as_bytes());
    for env in [
        "not json".to_string(),
        json!({"body": good_body}).to_string(),
        json!({"body": good_body, "sig": 42}).to_string(),
        json!({"body": good_body, "sig": null}).to_string(),
    ] {
        let r = reason(env.as_bytes(), None);
        assert!(
            matches!(r, RejectReason::MalformedEnvelope(_)),
            "{env}: {r:?}"
        );
    }
}

#[test]
fn bad_base64_names_the_field() {
    let sig = b64(&hq().sign(body("open").as_bytes()).to_bytes());
    let env = json!({"body": "not base64!", "sig": sig}).to_string();
    let expected = RejectReason::BadBase64 { field: "body" };
    assert_eq!(reason(env.as_bytes(), None), expected);

    let env = json!({"body": b64(body("open").as_bytes()), "sig": "***"}).to_string();
    let expected = RejectReason::BadBase64 { field: "sig" };
    assert_eq!(reason(env.as_bytes(), None), expected);
}

#[test]
fn a_wrong_version_is_rejected() {
    let env = envelope(&hq(), &body("open").replace(r#""v":1"#, r#""v":2"#));
    assert_eq!(reason(&env, Some("c-1")), RejectReason::WrongVersion(2));
}

#[test]
fn an_unknown_cmd_is_named() {
    let env = envelope(&hq(), &body("self_destruct"));
    let expected = RejectReason::UnknownCmd("self_destruct".into());
    assert_eq!(reason(&env, Some("c-1")), expected);
}

#[test]
fn a_signed_body_that_is_not_a_command_is_malformed() {
    let no_v = body("open").replace(r#""v":1, "#, "");
    let no_expiry = body("open").replace(&format!(r#", "expires_at":"{EXPIRES}""#), "");
    for (signed, id) in [
        ("not json".to_string(), None),
        (no_v, Some("c-1")),
        (no_expiry, Some("c-1")),
    ] {
        let r = reason(&envelope(&hq(), &signed), id);
        assert!(
            matches!(r, RejectReason::MalformedBody(_)),
            "{signed}: {r:?}"
        );
    }
}

#[test]
fn parse_key_reads_a_standard_base64_key() {
    let public = hq().verifying_key();
    // What `openssl pkey -pubout -outform DER | tail -c 32 | base64` prints
    // for the seed [7; 32]: OpenSSL and dalek agree on the key.
    let from_openssl = "6kpsY+KcUgq+9VB7Ey7F+ZVHdq6+vnuSQh7qaRRG0iw=";
    assert_eq!(parse_key(from_openssl), Ok(public));
    // As pasted from `base64`, with its newline.
    assert_eq!(
        parse_key(&format!(" {}\n", b64(public.as_bytes()))),
        Ok(public)
    );
}

#[test]
fn a_key_of_the_wrong_length_is_refused() {
    for len in [0, 31, 33, 44, 64] {
        let key = b64(&vec![9u8; len]);
        assert_eq!(parse_key(&key), Err(KeyError::Length(len)), "{len} bytes");
    }
    let msg = KeyError::Length(44).to_string();
    assert!(msg.contains("44 bytes") && msg.contains("32"), "{msg}");
}

#[test]
fn a_key_that_is_not_base64_or_a_point_is_refused() {
    assert!(matches!(parse_key("base64..."), Err(KeyError::Base64(_))));
    // y = 2 has no x on the curve.
    let mut off_curve = [0u8; 32];
    off_curve[0] = 2;
    assert_eq!(parse_key(&b64(&off_curve)), Err(KeyError::NotAKey));
    // The identity point: a "signature" by it verifies for any message.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    assert_eq!(parse_key(&b64(&identity)), Err(KeyError::Weak));
}

#[test]
fn a_rejection_is_alerted_and_acked_by_its_code() {
    let env = envelope(&hq(), &body("open"));
    let r = verify(&env, &hq().verifying_key(), "entry-1", at(EXPIRES)).unwrap_err();
    let alert = rejected_alert(&r);
    assert_eq!(
        (alert.alert, alert.severity),
        (AlertKind::CommandRejected, Severity::Warning)
    );
    assert!(
        alert
            .message
            .starts_with(r#"HQ command "c-1" was rejected: the command expired at"#),
        "{}",
        alert.message
    );
    let ack = rejected_ack(&r, now()).unwrap();
    assert_eq!(
        ack,
        CommandAck {
            v: 1,
            command_id: "c-1".into(),
            result: AckResult::Rejected,
            reason: Some("expired".into()),
            at: now(),
        }
    );
}

#[test]
fn a_forgery_is_alerted_without_an_id_and_not_acked() {
    let r = check(&envelope(
        &SigningKey::from_bytes(&[8u8; 32]),
        &body("open"),
    ))
    .unwrap_err();
    assert_eq!(rejected_ack(&r, now()), None);
    let message = rejected_alert(&r).message;
    assert_eq!(
        message,
        "A command from HQ was rejected: the signature does not verify against \
         hq_public_key (forged, altered or signed with another key)."
    );
}

#[test]
fn a_replay_reads_as_one_sentence() {
    let r = Rejected {
        command_id: Some("c-1".into()),
        reason: RejectReason::Replayed,
    };
    assert_eq!(
        rejected_alert(&r).message,
        r#"HQ command "c-1" was rejected: the command was already received once (a replay)."#
    );
    assert_eq!(
        rejected_ack(&r, now()).unwrap().reason.as_deref(),
        Some("replayed")
    );
}

#[test]
fn a_done_ack_has_a_null_reason() {
    let a = ack("c-1", AckResult::Done, None, now());
    assert_eq!((a.v, a.result, a.reason), (1, AckResult::Done, None));
}
