//! How fast the lane reacts to a sensor edge, and whether a slow commit
//! delays it.
//!
//! A gate runs in-process on the sim (wired by `daemon::serve`, as `run`
//! does) with a store whose commits can be slowed to 500 ms, as a Pi's SD
//! card under load can be. Each trial lowers the arm behind a car, then a
//! second car reaches the safety loop while the arm is still falling; the
//! figure is the time from the sim request that sets the loop to the
//! barrier-up line on the sim's watch stream. Baseline: nothing in flight.
//! Slow: a denial's commit is held 500 ms in the store at that moment.
//!
//!     cargo bench --bench reaction            # 15 trials of each
//!     TRIALS=5 cargo bench --bench reaction

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use parkgate::cli::demo::{self, cards};
use parkgate::daemon::{self, clock::Clock, control};
use parkgate::store::{Db, Ident};
use parkgate_hal::sim::{SimClient, SimOutput, SimRequest, SimWatch, WatchLine};
use parkgate_hal::{BarrierCommand, Sensor, SensorState};

const SLOW_COMMIT: Duration = Duration::from_millis(500);

struct Lane {
    sim: SimClient,
    watch: SimWatch,
    control: std::path::PathBuf,
}

impl Lane {
    async fn set(&mut self, sensor: Sensor, state: SensorState) {
        let request = SimRequest::Vehicle { sensor, state };
        let reply = self.sim.request(&request).await.expect("sim reply");
        assert_eq!(reply["ok"], true);
    }

    async fn tap(&mut self, card: &str) {
        let tap = SimRequest::Tap { card: card.into() };
        self.sim.request(&tap).await.expect("sim reply");
    }

    async fn barrier(&mut self) -> BarrierCommand {
        loop {
            match self.watch.next().await.expect("watch") {
                Some(WatchLine::Out(SimOutput::Barrier { cmd })) => return cmd,
                Some(_) => continue,
                None => panic!("the sim closed its watch"),
            }
        }
    }

    async fn advance(&mut self, ms: i64) {
        control::advance(&self.control, ms).await.expect("advance");
    }

    /// A car passes and the arm is commanded down: it is falling now.
    async fn pass_and_lower(&mut self, card: &str) {
        self.advance(5_000).await; // past every repeat window and fall time
        self.set(Sensor::Arming, SensorState::Occupied).await;
        self.tap(card).await;
        assert_eq!(self.barrier().await, BarrierCommand::Up);
        self.set(Sensor::Arming, SensorState::Clear).await;
        self.set(Sensor::Safety, SensorState::Occupied).await;
        self.set(Sensor::Safety, SensorState::Clear).await;
        self.advance(501).await;
        assert_eq!(self.barrier().await, BarrierCommand::Down);
    }

    /// A car reaches the falling arm: time to the barrier-up line.
    async fn reaction(&mut self) -> Duration {
        let start = Instant::now();
        self.set(Sensor::Safety, SensorState::Occupied).await;
        assert_eq!(self.barrier().await, BarrierCommand::Up);
        let took = start.elapsed();
        self.set(Sensor::Safety, SensorState::Clear).await;
        self.advance(501).await;
        assert_eq!(self.barrier().await, BarrierCommand::Down);
        took
    }
}

fn stats(mut xs: Vec<Duration>) -> (f64, f64) {
    xs.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let p90 = xs[(xs.len() * 9 / 10).min(xs.len() - 1)];
    (us(xs[xs.len() / 2]), us(p90))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let trials: usize = std::env::var("TRIALS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(15);
    let dir = tempfile::tempdir().unwrap();
    let cfg = demo::config_in(dir.path()).unwrap();
    let mut db = Db::open(&cfg.store.path, Ident::from(&cfg)).unwrap();
    db.apply_batch(&demo::replica(&cfg.gate.lot, demo::start()))
        .unwrap();
    let slow = Arc::new(AtomicBool::new(false));
    let (reached_tx, reached_rx) = std::sync::mpsc::channel::<()>();
    let reached_rx = Arc::new(std::sync::Mutex::new(reached_rx));
    let slowed = slow.clone();
    db.before_commit(move || {
        if slowed.swap(false, Ordering::SeqCst) {
            let _ = reached_tx.send(());
            std::thread::sleep(SLOW_COMMIT);
        }
    });
    let (clock, _manual) = Clock::manual(demo::start(), cfg.tz());
    let gate = daemon::spawn(cfg.clone(), db, clock)
        .await
        .expect("the gate got ready");
    let socket = &cfg.hardware.sim_socket;
    let mut lane = Lane {
        sim: SimClient::connect(socket).await.unwrap(),
        watch: SimClient::connect(socket)
            .await
            .unwrap()
            .watch()
            .await
            .unwrap(),
        control: cfg.control.socket.clone(),
    };

    let (mut idle, mut during) = (Vec::new(), Vec::new());
    for _ in 0..trials {
        lane.pass_and_lower(cards::ALICE).await;
        idle.push(lane.reaction().await);

        lane.pass_and_lower(cards::ALICE).await;
        slow.store(true, Ordering::SeqCst);
        lane.set(Sensor::Arming, SensorState::Occupied).await;
        lane.tap(cards::UNKNOWN).await;
        let rx = reached_rx.clone();
        tokio::task::spawn_blocking(move || rx.lock().unwrap().recv())
            .await
            .unwrap()
            .expect("the slow commit started");
        let start = Instant::now();
        during.push(lane.reaction().await);
        lane.set(Sensor::Arming, SensorState::Clear).await;
        // The slow commit ends before the next trial (a status settles the gate).
        control::status(&lane.control).await.unwrap();
        assert!(start.elapsed() >= SLOW_COMMIT, "the commit was slowed");
    }
    let (idle_med, idle_p90) = stats(idle);
    let (slow_med, slow_p90) = stats(during);
    println!(
        "reaction to a safety-loop edge (sim request -> barrier-up line), {trials} trials each"
    );
    println!(
        "  nothing in flight (baseline):      median {idle_med:8.0} us   p90 {idle_p90:8.0} us"
    );
    println!(
        "  during a {} ms commit:             median {slow_med:8.0} us   p90 {slow_p90:8.0} us",
        SLOW_COMMIT.as_millis()
    );
    println!(
        "  ratio slow/baseline:               median {:.2}x  (a loop that awaited the commit would take >= {} ms)",
        slow_med / idle_med,
        SLOW_COMMIT.as_millis()
    );
    gate.stop().await.unwrap();
}
