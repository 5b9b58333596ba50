use super::*;

fn ident() -> Ident {
    Ident {
        site: "b1".into(),
        lot: "main".into(),
        gate: "entry-1".into(),
    }
}

const LOT: &str = "parkgate/v1/b1/main";
const GATE: &str = "parkgate/v1/b1/main/gates/entry-1";

fn event(gate: &str, kind: &str) -> String {
    let body = match kind {
        "void" => r#""related_event_id":"01X""#.to_string(),
        "alert" => r#""alert":"wrong_card","severity":"warning","message":"m""#.to_string(),
        _ => r#""card":"04A1B2C3D4E5F6","user_id":"u-1","user_name":"A","vehicle_id":"v-1","vehicle_class":"standard","reservation_id":null,"spot_id":null,"plan":"monthly","walk_in":true"#.to_string(),
    };
    format!(
        r#"{{"v":1,"event_id":"01E","gate_seq":3,"site":"b1","lot":"main","gate":"{gate}","at":"2026-11-23T08:00:00+07:00","clock":"synced","type":"{kind}",{body}}}"#
    )
}

fn why(inbound: Inbound) -> String {
    match inbound {
        Inbound::Bad { why, .. } => why,
        other => panic!("not bad: {other:?}"),
    }
}

#[test]
fn each_subscribed_topic_is_read_as_what_the_contract_says() {
    let id = ident();
    let replay = route(
        &id,
        &format!("{GATE}/replay"),
        br#"{"v":1,"from_seq":1,"to_seq":2}"#,
    );
    assert!(matches!(replay, Inbound::Replay(r) if r.to_seq == 2));
    let changes = route(
        &id,
        &format!("{LOT}/replica/changes"),
        br#"{"v":1,"seq":5,"at":"2026-11-23T08:00:00+07:00","ops":[]}"#,
    );
    assert!(matches!(changes, Inbound::Changes(b) if b.seq == 5));
    let chunk = br#"{"v":1,"snapshot_id":"s","seq":9,"chunk":0,"chunks":2,"ops":[]}"#;
    let snapshot = route(&id, &format!("{GATE}/replica/snapshot"), chunk);
    assert!(matches!(snapshot, Inbound::Snapshot(c) if c.chunks == 2));
    let command = route(&id, &format!("{GATE}/commands"), b"{}");
    assert_eq!(command, Inbound::Command(b"{}".to_vec()));
    for kind in ["check_in", "check_out", "void"] {
        let payload = if kind == "check_out" {
            event("exit-1", kind).replace(
                r#""walk_in":true"#,
                r#""walk_in":true,"check_in_at":null,"duration_s":null,"fee":null,"overstay_s":0"#,
            )
        } else {
            event("exit-1", kind)
        };
        let topic = format!("{LOT}/gates/exit-1/events/{kind}");
        assert!(
            matches!(route(&id, &topic, payload.as_bytes()), Inbound::Passage(_)),
            "{kind}"
        );
    }
    // Our own check_in comes back through the lot's filter.
    let own = route(
        &id,
        &format!("{GATE}/events/check_in"),
        event("entry-1", "check_in").as_bytes(),
    );
    assert!(matches!(own, Inbound::Passage(e) if e.gate == "entry-1"));
    let occupancy = br#"{"v":1,"gate":"exit-1","at":"2026-11-23T08:00:00+07:00","entered":{},"exited":{"standard":2}}"#;
    assert!(matches!(
        route(&id, &format!("{LOT}/gates/exit-1/occupancy"), occupancy),
        Inbound::Occupancy(o) if o.gate == "exit-1"
    ));
}

#[test]
fn junk_on_any_topic_is_bad_and_says_why() {
    let id = ident();
    for topic in super::subscriptions(&id) {
        let topic = topic.replace('+', "exit-1");
        if topic.ends_with("/commands") {
            continue; // verified by the command module, bytes as they are
        }
        for junk in [&b"not json"[..], br#"{"v":2}"#, br#"{"v":1}"#] {
            let what = why(route(&id, &topic, junk));
            assert!(!what.is_empty(), "{topic}");
        }
    }
    let big = vec![b' '; MAX_PAYLOAD + 1];
    assert!(why(route(&id, &format!("{LOT}/replica/changes"), &big)).contains("bytes"));
}

#[test]
fn an_event_must_match_its_topic() {
    let id = ident();
    // exit-1's event on entry-2's topic; an alert on a check_in topic.
    let topic = format!("{LOT}/gates/entry-2/events/check_in");
    assert!(why(route(&id, &topic, event("exit-1", "check_in").as_bytes())).contains("exit-1"));
    let topic = format!("{LOT}/gates/exit-1/events/check_in");
    assert!(why(route(&id, &topic, event("exit-1", "alert").as_bytes())).contains("alert"));
    let occupancy =
        br#"{"v":1,"gate":"x","at":"2026-11-23T08:00:00+07:00","entered":{},"exited":{}}"#;
    assert!(
        why(route(
            &id,
            &format!("{LOT}/gates/exit-1/occupancy"),
            occupancy
        ))
        .contains("gate x")
    );
    assert!(why(route(&id, "parkgate/v1/b1/other/replica/changes", b"{}")).contains("subscribe"));
}

#[test]
fn bad_messages_make_one_alert_a_minute_and_count_the_rest() {
    let mut bad = BadMessages::default();
    let t0 = tokio::time::Instant::now();
    assert_eq!(bad.admit(t0), Some(0));
    for s in 1..=5 {
        assert_eq!(bad.admit(t0 + Duration::from_secs(s)), None);
    }
    assert_eq!(bad.admit(t0 + Duration::from_secs(60)), Some(5));
    assert_eq!(bad.admit(t0 + Duration::from_secs(61)), None);
    assert_eq!(bad.admit(t0 + Duration::from_secs(200)), Some(1));
}
