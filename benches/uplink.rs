//! How fast a backlog drains to the broker: 100,000 events queued in the
//! outbox, drained by the HQ link to a Mosquitto on loopback, once directly
//! and once through a proxy adding 20 ms each way (a WAN link), next to
//! `mosquitto_pub -q 1` sending the same payloads in the same run.
//!
//! The link's figure is from its start (connect included) until the store
//! says the outbox is empty, i.e. every event PUBACKed and marked delivered.
//! `mosquitto_pub` runs twice, with its default inflight window and with
//! the link's (`-M`); the faster is the baseline.
//!
//!     cargo bench --bench uplink
//!     EVENTS=20000 cargo bench --bench uplink
//!
//! Targets (issue 7): direct at least half of mosquitto_pub's rate; the
//! 20 ms drain of 100,000 events in under 60 s.

#[path = "../tests/common/proxy.rs"]
mod proxy;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use parkgate::cli::demo;
use parkgate::config::Config;
use parkgate::daemon::clock::Clock;
use parkgate::domain::contract::{Alert, AlertKind, Clock as ClockState, EventBody, Severity};
use parkgate::domain::lane::{Commit, Draft};
use parkgate::link::{self, WINDOW};
use parkgate::store::{Db, Ident, Store};

/// A Mosquitto on a free loopback port, killed when dropped.
struct Mosquitto {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Mosquitto {
    fn start() -> Mosquitto {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let conf = dir.path().join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nuser root\nlog_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\nlog_type information\nmax_queued_messages 0\n"
            ),
        )
        .unwrap();
        let program = ["/usr/sbin/mosquitto", "mosquitto"]
            .into_iter()
            .find(|p| Command::new(p).arg("-h").output().is_ok())
            .expect("mosquitto is installed (apt-get install mosquitto)");
        let mut child = Command::new(program)
            .arg("-c")
            .arg(&conf)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        // Ready once it says it listens (an explicit signal, not a sleep).
        for line in lines.by_ref() {
            if line.unwrap().contains("Opening ipv4 listen socket on port") {
                break;
            }
        }
        std::thread::spawn(move || for _ in lines {});
        Mosquitto {
            child,
            port,
            _dir: dir,
        }
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A store at `path` holding `n` undelivered events.
fn backlog(cfg: &Config, path: &Path, n: usize) {
    let mut db = Db::open(path, Ident::from(cfg)).unwrap();
    let mut made = 0;
    while made < n {
        let batch = (n - made).min(1000);
        let events = (0..batch)
            .map(|i| Draft {
                event_id: ulid::Ulid::new().to_string(),
                body: EventBody::Alert(Alert {
                    alert: AlertKind::WrongCard,
                    severity: Severity::Warning,
                    message: format!("An unknown card was presented ({}).", made + i),
                    card: Some("0BADC0DE".into()),
                    user_id: None,
                    related_event_id: None,
                }),
            })
            .collect();
        let commit = Commit {
            events,
            lockdown: None,
        };
        db.record(commit, demo::start(), ClockState::Synced)
            .unwrap();
        made += batch;
    }
}

/// Drains the store at `path` through the link to `port`: seconds taken.
async fn drain(cfg: &Config, path: &Path, port: u16) -> f64 {
    let mut cfg = cfg.clone();
    cfg.mqtt.enabled = true;
    cfg.mqtt.host = "127.0.0.1".into();
    cfg.mqtt.port = port;
    let db = Db::open(path, Ident::from(&cfg)).unwrap();
    let (store, thread) = Store::spawn(db);
    let (clock, _manual) = Clock::manual(demo::start(), cfg.tz());
    let (side, link) = link::start(&cfg, store.clone(), clock);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let start = Instant::now();
    let task = tokio::spawn(link.expect("enabled").run(async move {
        let _ = stopped.await;
    }));
    loop {
        // The first undelivered row, not a COUNT: the probe must not load
        // the store thread the link is using.
        let empty = store
            .call(|db| db.outbox_after(0, 1).map(|rows| rows.is_empty()))
            .await
            .unwrap()
            .unwrap();
        if empty {
            break;
        }
        // Measuring, not synchronising: the drain's end is read off the store.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let took = start.elapsed().as_secs_f64();
    let _ = stop.send(());
    task.await.unwrap();
    drop(side);
    drop(store);
    thread.join().unwrap();
    took
}

/// `mosquitto_pub -q 1 -l` (with `-M inflight` if given) sending
/// `payloads` (one per line): seconds taken.
fn mosquitto_pub(port: u16, payloads: &[String], inflight: Option<usize>) -> f64 {
    let window: Vec<String> = inflight
        .map(|m| vec!["-M".to_string(), m.to_string()])
        .unwrap_or_default();
    let mut child = Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q", "1", "-l"])
        .args(window)
        .args(["-t", "bench/mosquitto_pub"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("mosquitto_pub is installed (apt-get install mosquitto-clients)");
    let mut text = payloads.join("\n");
    text.push('\n');
    let start = Instant::now();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(text.as_bytes()).unwrap();
    drop(stdin);
    assert!(child.wait().unwrap().success());
    start.elapsed().as_secs_f64()
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // RUST_LOG=parkgate=debug shows the link at work.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let n: usize = std::env::var("EVENTS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir().unwrap();
    let cfg = demo::config_in(dir.path()).unwrap();
    let broker = Mosquitto::start();

    let trials: usize = std::env::var("TRIALS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(3);
    // One backlog, copied afresh for every drain (a closed database is one
    // file: its WAL was checkpointed when the last connection closed).
    let queued = dir.path().join("queued.db");
    backlog(&cfg, &queued, n);
    let fresh = |name: &str| {
        let path = dir.path().join(name);
        std::fs::copy(&queued, &path).unwrap();
        path
    };
    let payloads: Vec<String> = {
        let db = Db::open(&queued, Ident::from(&cfg)).unwrap();
        db.outbox_after(0, n)
            .unwrap()
            .into_iter()
            .map(|r| r.json)
            .collect()
    };
    let bytes: usize = payloads.iter().map(String::len).sum();

    let proxy = proxy::Proxy::start(broker.port).await;
    proxy.set_delay(Duration::from_millis(20));
    let (mut pub_default, mut pub_window, mut direct, mut wan) = (vec![], vec![], vec![], vec![]);
    for trial in 0..trials {
        pub_default.push(mosquitto_pub(broker.port, &payloads, None));
        pub_window.push(mosquitto_pub(broker.port, &payloads, Some(WINDOW)));
        direct.push(drain(&cfg, &fresh(&format!("direct-{trial}.db")), broker.port).await);
        wan.push(drain(&cfg, &fresh(&format!("wan-{trial}.db")), proxy.port()).await);
    }
    let (pub_default_s, pub_window_s) = (median(pub_default), median(pub_window));
    let (direct_s, wan_s) = (median(direct), median(wan));
    // The baseline is mosquitto_pub at its best of the two.
    let pub_s = pub_default_s.min(pub_window_s);

    let rate = |s: f64| n as f64 / s;
    println!(
        "draining {n} queued events ({} bytes on average) to Mosquitto on loopback, window {WINDOW}; medians of {trials} runs",
        bytes / n.max(1)
    );
    println!(
        "  mosquitto_pub -q 1:                  {:8.2} s  {:8.0} events/s",
        pub_default_s,
        rate(pub_default_s)
    );
    println!(
        "  mosquitto_pub -q 1 -M {WINDOW}:          {:8.2} s  {:8.0} events/s",
        pub_window_s,
        rate(pub_window_s)
    );
    println!(
        "  parkgate link, direct:              {:8.2} s  {:8.0} events/s  ({:.2}x the faster mosquitto_pub; target >= 0.5x)",
        direct_s,
        rate(direct_s),
        pub_s / direct_s
    );
    println!(
        "  parkgate link, +20 ms each way:     {:8.2} s  {:8.0} events/s  (target: under 60 s)",
        wan_s,
        rate(wan_s)
    );
}
