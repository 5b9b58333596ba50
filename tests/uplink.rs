//! The HQ link against a real broker: every event reaches HQ, through a
//! broker crash, a daemon killed with -9, a link stalled for minutes, TLS;
//! replays of kept and pruned ranges; status and occupancy.
//!
//! Each test starts its own Mosquitto on a free loopback port, and most put
//! the tests' own TCP proxy between the gate and the broker to cut or stall
//! the link. HQ is a test client subscribed to the gate's topics.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::broker::{Broker, BrokerTls};
use common::hq::{Hq, Message};
use common::pki::Pki;
use common::proxy::Proxy;
use common::{Gate, START, WAIT, cards};
use serde_json::{Value, json};

const ROOT: &str = "parkgate/v1/b1/main/gates/entry-1";

/// The config lines that point a gate at a broker on loopback `port`.
fn mqtt(port: u16) -> String {
    format!("true\nhost = \"127.0.0.1\"\nport = {port}")
}

/// HQ, subscribed to everything the gate publishes.
async fn hq(port: u16) -> Hq {
    Hq::builder(port)
        .subscribe(format!("{ROOT}/#"))
        .connect()
        .await
}

/// What HQ has seen of one gate's events, as HQ would keep it.
#[derive(Default)]
struct Received {
    /// Each event by `gate_seq`, as first received.
    by_seq: BTreeMap<u64, Value>,
    /// `gate_seq`s in the order first received, replays left out.
    live_order: Vec<u64>,
    /// Seqs asked for again: they may arrive out of order.
    replayed: BTreeSet<u64>,
    duplicates: usize,
    status: Vec<Value>,
    occupancy: Vec<Value>,
}

impl Received {
    /// Files one message; returns the event's seq if it was an event.
    fn take(&mut self, msg: &Message) -> Option<u64> {
        let value = msg.json();
        if msg.topic.ends_with("/status") {
            self.status.push(value);
            return None;
        }
        if msg.topic.ends_with("/occupancy") {
            self.occupancy.push(value);
            return None;
        }
        if !msg.topic.contains("/events/") {
            return None; // HQ's own requests, echoed by its subscription
        }
        let seq = value["gate_seq"].as_u64().expect("an event has a gate_seq");
        let topic = format!("{ROOT}/events/{}", value["type"].as_str().unwrap());
        assert_eq!(msg.topic, topic, "an event goes on events/{{type}}");
        match self.by_seq.get(&seq) {
            Some(first) => {
                // HQ removes duplicates by event_id: a repeat must be the same event.
                assert_eq!(first, &value, "seq {seq} came twice with different content");
                self.duplicates += 1;
            }
            None => {
                if !self.replayed.contains(&seq) {
                    self.live_order.push(seq);
                }
                self.by_seq.insert(seq, value);
            }
        }
        Some(seq)
    }

    /// Receives until event `seq` has arrived.
    async fn until(&mut self, hq: &mut Hq, seq: u64, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        while !self.by_seq.contains_key(&seq) {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            assert!(
                !left.is_zero(),
                "event {seq} did not reach HQ in {within:?}"
            );
            let msg = hq.next(left).await;
            self.take(&msg);
        }
    }

    /// Seqs of `1..=last` HQ has not seen.
    fn missing(&self, last: u64) -> Vec<u64> {
        (1..=last)
            .filter(|s| !self.by_seq.contains_key(s))
            .collect()
    }

    /// Asks for every gap in `1..=last` again, as HQ does, and waits for it.
    async fn fill_gaps(&mut self, hq: &mut Hq, last: u64) {
        let missing = self.missing(last);
        for (from, to) in ranges(&missing) {
            self.replayed.extend(from..=to);
            let ask = json!({"v": 1, "from_seq": from, "to_seq": to});
            hq.publish(&format!("{ROOT}/replay"), ask.to_string(), true, false)
                .await;
        }
        for seq in missing {
            self.until(hq, seq, WAIT).await;
        }
    }

    /// HQ holds the journal exactly: every seq, the same events, and the
    /// live stream in `gate_seq` order.
    fn assert_matches(&self, journal: &[Value]) {
        let seqs: Vec<u64> = journal
            .iter()
            .map(|e| e["gate_seq"].as_u64().unwrap())
            .collect();
        let expected: Vec<u64> = (1..=seqs.len() as u64).collect();
        assert_eq!(seqs, expected, "the journal is gap-free");
        assert_eq!(
            self.missing(seqs.len() as u64),
            Vec::<u64>::new(),
            "every event reached HQ"
        );
        for event in journal {
            let seq = event["gate_seq"].as_u64().unwrap();
            assert_eq!(
                &self.by_seq[&seq], event,
                "HQ has the journal's event {seq}"
            );
        }
        assert!(
            self.live_order.windows(2).all(|w| w[0] < w[1]),
            "first arrivals in gate_seq order: {:?}",
            self.live_order
        );
    }
}

/// Consecutive runs of `seqs` (sorted) as `(from, to)`.
fn ranges(seqs: &[u64]) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for &s in seqs {
        match out.last_mut() {
            Some((_, to)) if *to + 1 == s => *to = s,
            _ => out.push((s, s)),
        }
    }
    out
}

/// `n` taps of cards nobody knows with no vehicle at the barrier: `n`
/// denials. Each is settled before the next (the lane ignores a card while
/// it decides on another, as a reader would a second tap).
async fn storm(gate: &mut Gate, first: usize, n: usize) {
    for i in first..first + n {
        tap(gate, i).await;
    }
}

/// Tap `i` of a storm, settled.
async fn tap(gate: &mut Gate, i: usize) {
    gate.tap(&format!("FE{i:06X}")).await;
    gate.settle().await;
}

/// Waits until the gate's link status satisfies `ok` (polled: the status
/// has no push; every wait bounded).
async fn wait_link(gate: &Gate, what: &str, ok: impl Fn(&parkgate::link::LinkStatus) -> bool) {
    gate.wait_status(Duration::from_secs(90), what, |s| ok(&s.link))
        .await;
}

/// The journal's last seq.
fn last_seq(gate: &Gate) -> u64 {
    gate.events()
        .last()
        .map_or(0, |e| e["gate_seq"].as_u64().unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn events_status_and_occupancy_reach_hq() {
    let broker = Broker::start().await;
    let mut hq = hq(broker.port()).await;
    let mut gate = Gate::start(&[("enabled", &mqtt(broker.port()))]).await;
    let mut got = Received::default();

    assert_eq!(
        gate.badge_admitted(cards::ALICE).await,
        "Welcome Alice Tran - spot B1-042"
    );
    gate.drive_through(1).await;
    gate.tap("DEADBEEF").await;
    gate.settle().await;
    let last = last_seq(&gate);
    got.until(&mut hq, last, WAIT).await;
    got.assert_matches(&gate.events());
    let kinds: Vec<&str> = got
        .by_seq
        .values()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds[0], "check_in");

    // Retained status: online, what the gate is doing; occupancy counters.
    let status = got.status.last().expect("a status").clone();
    assert_eq!(status["state"], "online");
    assert_eq!(status["mode"], "normal");
    assert_eq!(status["reader"], "ok");
    assert!(status["started_at"].is_string(), "{status}");
    // Occupancy after the passage (retained, counters only growing).
    while got
        .occupancy
        .last()
        .is_none_or(|o| o["entered"] != json!({"standard": 1}))
    {
        let msg = hq.next(WAIT).await;
        got.take(&msg);
    }
    assert_eq!(got.occupancy.last().unwrap()["gate"], "entry-1");

    // `parkgate status` shows the link.
    let s = gate.status().await;
    assert!(s.link.enabled && s.link.connected, "{:?}", s.link);
    let out = gate.cli(&["status"]);
    let text = common::stdout(&out);
    assert!(
        text.contains("hq link   connected to mqtt://127.0.0.1:"),
        "{text}"
    );

    // A clean stop replaces the last will with an explicit `offline`.
    gate.terminate().await;
    loop {
        let msg = hq.next(WAIT).await;
        if msg.topic.ends_with("/status") && msg.json()["state"] == "offline" {
            break;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gate_without_its_broker_decides_and_journals_then_catches_up() {
    let broker = Broker::start().await;
    let proxy = Proxy::start(broker.port()).await;
    proxy.cut().await;
    let mut gate = Gate::start(&[("enabled", &mqtt(proxy.port()))]).await;
    assert_eq!(
        gate.badge_admitted(cards::ALICE).await,
        "Welcome Alice Tran - spot B1-042"
    );
    gate.drive_through(1).await;
    storm(&mut gate, 0, 8).await;
    wait_link(&gate, "said why it is down", |l| {
        !l.connected && l.error.as_deref().is_some_and(|e| e != "not connected yet")
    })
    .await;
    let s = gate.status().await;
    assert_eq!(
        s.outbox_depth,
        last_seq(&gate),
        "everything waits in the outbox"
    );
    assert!(s.outbox_oldest.is_some());
    let text = common::stdout(&gate.cli(&["status"]));
    assert!(
        text.contains("hq link   NOT connected to mqtt://127.0.0.1:"),
        "{text}"
    );
    assert!(
        gate.log().contains("the HQ broker is not reachable"),
        "a clear log line"
    );

    let mut hq = hq(broker.port()).await;
    proxy.restore();
    let mut got = Received::default();
    got.until(&mut hq, last_seq(&gate), WAIT).await;
    got.assert_matches(&gate.events());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broker_crash_mid_storm_loses_nothing() {
    let mut broker = Broker::start().await;
    let mut hq = hq(broker.port()).await;
    let mut gate = Gate::start(&[("enabled", &mqtt(broker.port()))]).await;
    let mut got = Received::default();
    storm(&mut gate, 0, 150).await;
    // Killed without persistence: sessions, queues, retained messages gone.
    broker.kill();
    storm(&mut gate, 150, 100).await;
    broker.restart().await;
    hq.wait_subscribed(2).await;
    storm(&mut gate, 250, 100).await;
    let last = last_seq(&gate);
    got.until(&mut hq, last, Duration::from_secs(60)).await;
    // What the broker acknowledged and lost in the crash, HQ asks again for.
    got.fill_gaps(&mut hq, last).await;
    got.assert_matches(&gate.events());
    assert_eq!(last, 350, "a storm of 350 events");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_daemon_killed_with_9_again_and_again_loses_nothing() {
    let broker = Broker::start().await;
    let mut hq = hq(broker.port()).await;
    let mut gate = Gate::start(&[("enabled", &mqtt(broker.port()))]).await;
    let mut got = Received::default();
    let mut tapped = 0;
    for round in 0..6 {
        // A random number of taps, then SIGKILL wherever the daemon is.
        let n = fastrand::usize(1..25);
        for i in tapped..tapped + n {
            // Unsettled taps now and then: the kill may catch one mid-commit.
            if fastrand::bool() {
                tap(&mut gate, i).await;
            } else {
                gate.tap(&format!("FE{i:06X}")).await;
            }
        }
        tapped += n;
        if round == 0 {
            // Connected (its will registered) before the first kill.
            while !got.status.iter().any(|s| s["state"] == "online") {
                let msg = hq.next(WAIT).await;
                got.take(&msg);
            }
        }
        gate.kill();
        if round == 0 {
            // The broker says so for it: the last will, `offline`, retained.
            while got.status.last().is_none_or(|s| s["state"] != "offline") {
                let msg = hq.next(WAIT).await;
                got.take(&msg);
            }
        }
        gate = gate.restart(START).await;
        // Nothing to wait for: the next round's taps race the resend.
    }
    storm(&mut gate, tapped, 4).await;
    let last = last_seq(&gate);
    got.until(&mut hq, last, Duration::from_secs(60)).await;
    got.assert_matches(&gate.events());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_link_stalled_for_minutes_resumes_and_delivers() {
    let broker = Broker::start().await;
    let proxy = Proxy::start(broker.port()).await;
    let mut hq = hq(broker.port()).await;
    let mut gate = Gate::start(&[("enabled", &mqtt(proxy.port()))]).await;
    let mut got = Received::default();
    storm(&mut gate, 0, 4).await;
    let before = last_seq(&gate);
    got.until(&mut hq, before, WAIT).await;
    gate.wait_status(Duration::from_secs(90), "emptied its outbox", |s| {
        s.outbox_depth == 0
    })
    .await;

    // Packets go nowhere, and no error says so: only the keep-alive
    // (30 s) notices. The gate goes on deciding and journalling meanwhile.
    proxy.stall();
    let stalled_at = tokio::time::Instant::now();
    storm(&mut gate, 4, 8).await;
    wait_link(&gate, "noticed the dead link", |l| !l.connected).await;
    storm(&mut gate, 12, 8).await;
    // The scenario is minutes of stall; its length is the point, not a
    // synchronisation.
    tokio::time::sleep_until(stalled_at + Duration::from_secs(120)).await;
    storm(&mut gate, 20, 4).await;
    let s = gate.status().await;
    assert!(!s.link.connected, "still down: {:?}", s.link);
    assert_eq!(
        s.outbox_depth,
        last_seq(&gate) - before,
        "the stall's events wait"
    );
    assert!(s.outbox_oldest_age_s.is_some());

    proxy.resume();
    got.until(&mut hq, last_seq(&gate), Duration::from_secs(120))
        .await;
    got.assert_matches(&gate.events());
}

#[tokio::test(flavor = "multi_thread")]
async fn replays_serve_kept_events_and_name_the_first_seq_of_a_pruned_range() {
    let broker = Broker::start().await;
    let mut hq = hq(broker.port()).await;
    let mut gate = Gate::start(&[("enabled", &mqtt(broker.port())), ("retention_days", "1")]).await;
    let mut got = Received::default();
    storm(&mut gate, 0, 5).await;
    let first_batch = last_seq(&gate);
    got.until(&mut hq, first_batch, WAIT).await;

    // A kept range comes again, byte for byte.
    let ask = json!({"v": 1, "from_seq": 2, "to_seq": 4});
    hq.publish(&format!("{ROOT}/replay"), ask.to_string(), true, false)
        .await;
    let mut again = Vec::new();
    while again.len() < 3 {
        let msg = hq.next(WAIT).await;
        if msg.topic.contains("/events/") {
            again.push(msg.json());
        }
    }
    let journal = gate.events();
    assert_eq!(again, journal[1..4].to_vec());

    // Two days later (a restart prunes at once) the first events are gone.
    gate.terminate().await;
    gate = gate.restart("2026-11-25T08:00:00+07:00").await;
    storm(&mut gate, 5, 1).await;
    let kept: Vec<u64> = gate
        .events()
        .iter()
        .map(|e| e["gate_seq"].as_u64().unwrap())
        .collect();
    let first_kept = kept[0];
    assert!(first_kept > first_batch, "pruned: {kept:?}");

    let ask = json!({"v": 1, "from_seq": 1, "to_seq": first_kept});
    hq.publish(&format!("{ROOT}/replay"), ask.to_string(), true, false)
        .await;
    // The alert, and what is kept of the range anyway, in either order.
    let (mut alert, mut kept_again) = (None, false);
    while alert.is_none() || !kept_again {
        let v = hq.next(WAIT).await.json();
        if v["type"] == "alert" && v["alert"] == "replay_unavailable" {
            alert = Some(v);
        } else if v["gate_seq"] == first_kept {
            kept_again = true;
        }
    }
    let alert = alert.unwrap();
    let message = alert["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("first seq still kept is {first_kept}")),
        "{message}"
    );
    assert_eq!(gate.alerts("replay_unavailable").len(), 1, "one alert");

    // A replay request that is not one is refused with bad_message.
    hq.publish(
        &format!("{ROOT}/replay"),
        "{\"v\":1,\"from_seq\":9}",
        true,
        false,
    )
    .await;
    loop {
        let v = hq.next(WAIT).await.json();
        if v["alert"] == "bad_message" {
            assert!(v["message"].as_str().unwrap().contains("/replay"), "{v}");
            break;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn mutual_tls_with_generated_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let broker = Broker::builder().tls(BrokerTls::mutual(&pki)).start().await;
    let hq_cert = pki.client("hq");
    let mut hq = Hq::builder(broker.port())
        .host("localhost")
        .tls(&pki.ca, Some(&hq_cert))
        .subscribe(format!("{ROOT}/#"))
        .connect()
        .await;
    let gate_cert = pki.client("b1-main-entry-1");
    let tls = format!(
        "true\nhost = \"localhost\"\nport = {}\ntls = true\nca_file = \"{}\"\nclient_cert = \"{}\"\nclient_key = \"{}\"",
        broker.port(),
        pki.ca.display(),
        gate_cert.cert.display(),
        gate_cert.key.display()
    );
    let mut gate = Gate::start(&[("enabled", &tls)]).await;
    storm(&mut gate, 0, 2).await;
    let mut got = Received::default();
    got.until(&mut hq, last_seq(&gate), WAIT).await;
    got.assert_matches(&gate.events());
    let text = common::stdout(&gate.cli(&["status"]));
    assert!(text.contains("connected to mqtts://localhost:"), "{text}");

    // Without its certificate the broker refuses the gate: the status says so.
    let plain = format!(
        "true\nhost = \"localhost\"\nport = {}\ntls = true\nca_file = \"{}\"",
        broker.port(),
        pki.ca.display()
    );
    let other = Gate::start(&[("enabled", &plain)]).await;
    wait_link(&other, "said why it is refused", |l| {
        !l.connected && l.error.as_deref().is_some_and(|e| e != "not connected yet")
    })
    .await;
    assert!(broker.log().contains("certificate"), "{}", broker.log());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gate_logs_in_with_its_password_file_under_the_shipped_acl() {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("passwd");
    common::broker::password_file(&users, &[("hq", "hq-pw"), ("b1-main-entry-1", "gate-pw")]);
    let broker = Broker::builder()
        .password_file(&users)
        .acl_file(concat!(env!("CARGO_MANIFEST_DIR"), "/config/mosquitto/acl"))
        .start()
        .await;
    let mut hq = Hq::builder(broker.port())
        .login("hq", "hq-pw")
        .subscribe(format!("{ROOT}/#"))
        .connect()
        .await;
    // The password file as an editor leaves it: a trailing newline.
    let secret = dir.path().join("gate.pass");
    std::fs::write(&secret, "gate-pw\n").unwrap();
    let login = format!(
        "{}\nusername = \"b1-main-entry-1\"\npassword_file = \"{}\"",
        mqtt(broker.port()),
        secret.display()
    );
    let mut gate = Gate::start(&[("enabled", &login)]).await;
    storm(&mut gate, 0, 3).await;
    let mut got = Received::default();
    got.until(&mut hq, 3, WAIT).await;
    got.assert_matches(&gate.events());
    // The ACL lets the gate read its replay topic: a replay is served.
    let ask = json!({"v": 1, "from_seq": 1, "to_seq": 1});
    hq.publish(&format!("{ROOT}/replay"), ask.to_string(), true, false)
        .await;
    let before = got.duplicates;
    while got.duplicates == before {
        let msg = hq.next(WAIT).await;
        got.take(&msg);
    }
    // Status and occupancy were let through too (retained, so HQ has them).
    assert!(got.status.iter().any(|s| s["state"] == "online"));
    assert!(!got.occupancy.is_empty());

    // A wrong password: refused, and the status says so.
    let wrong = dir.path().join("wrong.pass");
    std::fs::write(&wrong, "nope\n").unwrap();
    let login = format!(
        "{}\nusername = \"b1-main-entry-1\"\npassword_file = \"{}\"",
        mqtt(broker.port()),
        wrong.display()
    );
    let other = Gate::start(&[("enabled", &login)]).await;
    wait_link(&other, "said it was refused", |l| {
        !l.connected && l.error.as_deref().is_some_and(|e| e.contains("refused"))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_status_is_refreshed_every_minute_when_nothing_changes() {
    let broker = Broker::start().await;
    let mut hq = Hq::builder(broker.port())
        .subscribe(format!("{ROOT}/status"))
        .connect()
        .await;
    let _gate = Gate::start(&[("enabled", &mqtt(broker.port()))]).await;
    let first = hq.next(WAIT).await;
    assert_eq!(first.json()["state"], "online");
    let since = tokio::time::Instant::now();
    // Nothing happens at the gate: the next status is the minute's refresh.
    let next = hq.next(Duration::from_secs(90)).await;
    assert_eq!(next.json()["state"], "online");
    assert_eq!(next.json()["lane"], "idle");
    assert!(
        since.elapsed() >= Duration::from_secs(50),
        "a refresh, not a change: {:?}",
        since.elapsed()
    );
}
