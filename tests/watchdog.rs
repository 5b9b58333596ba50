//! systemd's watchdog is fed only while the lane loop and the store thread
//! both work: `WATCHDOG=1` datagrams reach the notify socket while the
//! gate is healthy, stop while the store thread is stuck in a commit, and
//! come back once it is free. The stuck commit is held by an explicit
//! signal (`Db::before_commit`), not a timer.
//!
//! Showing that pings *stop* needs a window in which none arrives: that
//! window (a few watchdog intervals) is the assertion itself, as systemd
//! would see it, not a wait for something to happen.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parkgate::cli::demo::{self, cards};
use parkgate::daemon::{self, clock::Clock, notify::Systemd};
use parkgate::store::{Db, Ident};
use parkgate_hal::sim::{SimClient, SimRequest};
use parkgate_hal::{Sensor, SensorState};
use tokio::net::UnixDatagram;

const WAIT: Duration = Duration::from_secs(20);
/// systemd's `WatchdogSec=` for these tests: probes every 100 ms.
const INTERVAL: Duration = Duration::from_millis(400);

/// The next datagram on the notify socket, within `within`.
async fn next(notify: &UnixDatagram, within: Duration) -> Option<String> {
    let mut buf = [0u8; 256];
    let n = tokio::time::timeout(within, notify.recv(&mut buf))
        .await
        .ok()?
        .expect("notify socket");
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// Waits for `count` `WATCHDOG=1` in a row.
async fn pings(notify: &UnixDatagram, count: usize) {
    for i in 0..count {
        let got = next(notify, WAIT).await;
        assert_eq!(got.as_deref(), Some("WATCHDOG=1"), "ping {i}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pings_stop_while_the_store_thread_is_stuck_and_resume_after() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = demo::config_in(dir.path()).unwrap();
    let mut db = Db::open(&cfg.store.path, Ident::from(&cfg)).unwrap();
    db.apply_batch(&demo::replica(&cfg.gate.lot, demo::start()))
        .unwrap();
    let hold = Arc::new(AtomicBool::new(false));
    let (reached_tx, reached_rx) = std::sync::mpsc::channel::<()>();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let held = hold.clone();
    db.before_commit(move || {
        if held.load(Ordering::SeqCst) {
            let _ = reached_tx.send(());
            let _ = release_rx.recv();
        }
    });

    let path = dir.path().join("notify.sock");
    let notify = UnixDatagram::bind(&path).unwrap();
    let (clock, _manual) = Clock::manual(demo::start(), cfg.tz());
    let systemd = Systemd::new(path.as_os_str(), Some(INTERVAL));
    let gate = daemon::spawn_with(cfg.clone(), db, clock, systemd)
        .await
        .expect("the gate got ready");
    assert_eq!(next(&notify, WAIT).await.as_deref(), Some("READY=1"));
    pings(&notify, 3).await;

    // A stranger taps; the denial's commit reaches the disk and sticks.
    hold.store(true, Ordering::SeqCst);
    let mut sim = SimClient::connect(&cfg.hardware.sim_socket).await.unwrap();
    let vehicle = SimRequest::Vehicle {
        sensor: Sensor::Arming,
        state: SensorState::Occupied,
    };
    sim.request(&vehicle).await.unwrap();
    sim.request(&SimRequest::Tap {
        card: cards::UNKNOWN.into(),
    })
    .await
    .unwrap();
    tokio::task::spawn_blocking(move || reached_rx.recv_timeout(WAIT))
        .await
        .unwrap()
        .expect("the denial's commit reached the store");

    // A probe answered just before the commit stuck may still earn a ping.
    // The loop takes every answer already there before a control request
    // (its `select!` is biased that way), so once one is answered, such a
    // ping is in the socket: drain it. Then none may come, for three intervals.
    daemon::control::advance(&cfg.control.socket, 0)
        .await
        .expect("the loop answers while the store is stuck");
    let mut buf = [0u8; 256];
    while let Ok(n) = notify.try_recv(&mut buf) {
        assert_eq!(&buf[..n], b"WATCHDOG=1");
    }
    let starved = next(&notify, 3 * INTERVAL).await;
    assert_eq!(starved, None, "no ping while the store thread is stuck");

    // Unstuck: the late probe earns nothing, the next ones do.
    hold.store(false, Ordering::SeqCst);
    release_tx.send(()).unwrap();
    pings(&notify, 2).await;
    let status = tokio::time::timeout(WAIT, daemon::control::status(&cfg.control.socket))
        .await
        .expect("a status in time")
        .unwrap();
    assert_eq!(status.outbox_depth, 2, "denied, wrong_card: committed");
    gate.stop().await.unwrap();
}

#[tokio::test]
async fn parkgate_run_pings_the_watchdog_systemd_asks_for() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gate.toml");
    std::fs::write(&config, common::config_text(dir.path(), &[])).unwrap();
    let path = dir.path().join("notify.sock");
    let notify = UnixDatagram::bind(&path).unwrap();
    let child = common::binary()
        .args([
            "run",
            "--demo-data",
            "--manual-clock",
            common::START,
            "--config",
        ])
        .arg(&config)
        .env("NOTIFY_SOCKET", &path)
        .env("WATCHDOG_USEC", INTERVAL.as_micros().to_string())
        .env_remove("WATCHDOG_PID")
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("parkgate run starts");
    let child = scopeguard(child);
    assert_eq!(next(&notify, WAIT).await.as_deref(), Some("READY=1"));
    pings(&notify, 3).await;
    let exit = common::sigterm(child.into_inner()).await;
    assert_eq!(exit.and_then(|s| s.code()), Some(0));
}

/// Kills the child if the test fails before it is stopped.
struct Guard(Option<std::process::Child>);

fn scopeguard(child: std::process::Child) -> Guard {
    Guard(Some(child))
}

impl Guard {
    fn into_inner(mut self) -> std::process::Child {
        self.0.take().expect("the child")
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        common::reap(self.0.take());
    }
}
