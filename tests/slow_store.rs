//! The loop never waits on the disk: with a commit held in the store (as a
//! slow SD card holds an fsync), a safety-loop edge is still acted on at
//! once. The gate runs in-process, wired by `daemon::serve` like `run`, on
//! the sim and a manual clock; the commit is held by an explicit signal,
//! not a timer, so the test proves the ordering rather than a race.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parkgate::cli::demo::{self, cards};
use parkgate::daemon::{self, clock::Clock, control};
use parkgate::store::{Db, Ident};
use parkgate_hal::sim::{SimClient, SimOutput, SimRequest, SimWatch, WatchLine};
use parkgate_hal::{BarrierCommand, Sensor, SensorState};

const WAIT: Duration = Duration::from_secs(20);

async fn next_barrier(watch: &mut SimWatch) -> BarrierCommand {
    loop {
        let line = tokio::time::timeout(WAIT, watch.next())
            .await
            .expect("the gate did nothing for 20 s")
            .expect("a watch line");
        match line {
            Some(WatchLine::Out(SimOutput::Barrier { cmd })) => return cmd,
            Some(_) => continue,
            None => panic!("the sim closed its watch"),
        }
    }
}

async fn set(sim: &mut SimClient, sensor: Sensor, state: SensorState) {
    let reply = sim.request(&SimRequest::Vehicle { sensor, state }).await;
    assert_eq!(reply.expect("sim reply")["ok"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_safety_edge_during_a_held_commit_is_acted_on_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = demo::config_in(dir.path()).unwrap();
    let mut db = Db::open(&cfg.store.path, Ident::from(&cfg)).unwrap();
    db.apply_batch(&demo::replica(&cfg.gate.lot, demo::start()))
        .unwrap();

    // While `hold` is set, a commit tells the test it has reached the disk
    // and then waits for the test's word.
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

    let (clock, manual) = Clock::manual(demo::start(), cfg.tz());
    let gate = daemon::spawn(cfg.clone(), db, clock)
        .await
        .expect("the gate got ready");
    let socket = &cfg.hardware.sim_socket;
    let mut sim = SimClient::connect(socket).await.unwrap();
    let mut watch = SimClient::connect(socket)
        .await
        .unwrap()
        .watch()
        .await
        .unwrap();

    // Alice drives through; the arm starts coming down behind her.
    set(&mut sim, Sensor::Arming, SensorState::Occupied).await;
    sim.request(&SimRequest::Tap {
        card: cards::ALICE.into(),
    })
    .await
    .unwrap();
    assert_eq!(next_barrier(&mut watch).await, BarrierCommand::Up);
    set(&mut sim, Sensor::Arming, SensorState::Clear).await;
    set(&mut sim, Sensor::Safety, SensorState::Occupied).await;
    set(&mut sim, Sensor::Safety, SensorState::Clear).await;
    control::advance(&cfg.control.socket, 501).await.unwrap();
    assert_eq!(next_barrier(&mut watch).await, BarrierCommand::Down);

    // A stranger taps; the denial's commit reaches the disk and is held.
    hold.store(true, Ordering::SeqCst);
    set(&mut sim, Sensor::Arming, SensorState::Occupied).await;
    sim.request(&SimRequest::Tap {
        card: cards::UNKNOWN.into(),
    })
    .await
    .unwrap();
    tokio::task::spawn_blocking(move || reached_rx.recv_timeout(WAIT))
        .await
        .unwrap()
        .expect("the denial's commit reached the store");

    // The car behind noses under the falling arm while the commit is held.
    set(&mut sim, Sensor::Safety, SensorState::Occupied).await;
    assert_eq!(
        next_barrier(&mut watch).await,
        BarrierCommand::Up,
        "acted on before the commit finished"
    );
    let status = tokio::time::timeout(WAIT, control::status(&cfg.control.socket));
    hold.store(false, Ordering::SeqCst);
    release_tx.send(()).unwrap();
    // A status waits for the gate to settle: the denial is now committed.
    let status = status.await.expect("a status in time").unwrap();
    assert_eq!(status.outbox_depth, 3, "check_in, denied, wrong_card");
    assert_eq!(manual.now().mono.as_ms(), 501, "no time had to pass");

    gate.stop().await.unwrap();
}
