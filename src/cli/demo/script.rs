//! `parkgate demo`: a scripted morning at one lane, on simulated hardware
//! and a manual clock, with the real daemon running in-process.
//!
//! The script drives the sim exactly as a technician would over its socket,
//! and waits for what the barrier and the lights do before going on (no
//! sleeps): every step is synchronised on an output line of the sim.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Result, bail};
use parkgate_hal::sim::{SimClient, SimOutput, SimRequest, SimWatch, WatchLine};
use parkgate_hal::{BarrierCommand, Sensor, SensorState, Signal};

use super::cards;
use crate::cli::report;
use crate::config::{self, Config};
use crate::daemon;
use crate::daemon::clock::{Clock, ManualClock};
use crate::daemon::control;
use crate::domain::contract::Event;
use crate::domain::lane::IDLE_TEXT;
use crate::domain::model::Timestamp;
use crate::store::{Db, Ident};

/// What the demo saw, for the caller (and tests) to check.
#[derive(Debug, Default)]
pub struct Scene {
    /// Every signal shown to a driver, in order.
    pub signals: Vec<Signal>,
    /// The journal, oldest first.
    pub events: Vec<Event>,
    /// Events still waiting in the outbox for HQ.
    pub outbox: Vec<Event>,
}

/// The morning starts at 07:58 local time on a fixed day, so the output is
/// the same on every run.
pub fn start() -> Timestamp {
    chrono::DateTime::parse_from_rfc3339("2026-11-23T07:58:00+07:00").expect("valid literal")
}

/// `config/demo.toml` with its store and sockets in `dir`: a gate on
/// simulated hardware (the demo, in-process tests and benchmarks).
pub fn config_in(dir: &Path) -> Result<Config> {
    let mut cfg = config::parse(include_str!("../../../config/demo.toml"))
        .map_err(|d| anyhow::anyhow!("config/demo.toml is invalid: {d:?}"))?;
    cfg.store.path = dir.join("gate.db");
    cfg.hardware.sim_socket = dir.join("sim.sock");
    cfg.control.socket = dir.join("control.sock");
    Ok(cfg)
}

/// Plays the morning in `dir` (a fresh directory), printing the story to stdout
/// when `narrate` is set.
pub async fn play(dir: &Path, narrate: bool) -> Result<Scene> {
    let cfg = config_in(dir)?;

    let (clock, manual) = Clock::manual(start(), cfg.tz());
    let mut db = Db::open(&cfg.store.path, Ident::from(&cfg))?;
    db.apply_batch(&super::replica(&cfg.gate.lot, start()))?;
    let gate = daemon::spawn(cfg.clone(), db, clock).await?;

    let mut lane = Driver {
        sim: SimClient::connect(&cfg.hardware.sim_socket).await?,
        watch: SimClient::connect(&cfg.hardware.sim_socket)
            .await?
            .watch()
            .await?,
        control: cfg.control.socket.clone(),
        cfg: cfg.clone(),
        clock: manual.clone(),
        narrate,
        scene: Scene::default(),
    };
    lane.morning().await?;

    gate.stop().await?;
    let mut scene = lane.scene;
    // The gate has stopped and closed its store: read what it journalled.
    let db = Db::open(&cfg.store.path, Ident::from(&cfg))?;
    scene.events = db.events(1000)?;
    scene.events.reverse();
    scene.outbox = db.outbox(1000)?;
    if narrate {
        print_summary(&cfg, &scene);
    }
    Ok(scene)
}

/// The script's hands on the lane: the sim socket, a watcher and the clock.
struct Driver {
    sim: SimClient,
    watch: SimWatch,
    control: std::path::PathBuf,
    cfg: Config,
    clock: Arc<ManualClock>,
    narrate: bool,
    scene: Scene,
}

impl Driver {
    async fn morning(&mut self) -> Result<()> {
        self.say("Alice arrives for her reserved spot (monthly plan).");
        self.badge(cards::ALICE).await?;
        self.drive_through(1).await?;

        self.pass_time(4).await?;
        self.say("Bob drives in without a reservation (daily plan, a walk-in).");
        self.badge(cards::BOB).await?;
        self.drive_through(1).await?;

        self.pass_time(3).await?;
        self.say("Carol badges with the card she reported stolen last week.");
        self.badge(cards::CAROL_REVOKED).await?;
        self.back_away().await?;

        self.pass_time(2).await?;
        self.say("A stranger tries a card the gate has never seen.");
        self.badge(cards::UNKNOWN).await?;
        self.back_away().await?;

        self.pass_time(5).await?;
        self.say("Dan rides in on his motorcycle, and a car slips in right behind him.");
        self.badge(cards::DAN).await?;
        self.drive_through(2).await?;

        self.say("... the day goes by ...");
        self.pass_time(9 * 60 + 15).await?;
        self.say("Bob leaves and pays for his day.");
        self.badge(cards::BOB).await?;
        self.drive_through(1).await?;
        Ok(())
    }

    fn say(&self, text: &str) {
        if self.narrate {
            let at = report::local(self.clock.now().wall, self.cfg.tz());
            println!("\n{}  {text}", &at[11..16]);
        }
    }

    /// A vehicle rolls onto the arming loop and its driver taps `card`;
    /// returns once the lane has shown its answer.
    async fn badge(&mut self, card: &str) -> Result<Signal> {
        self.sensor(Sensor::Arming, SensorState::Occupied).await?;
        self.sim
            .request(&SimRequest::Tap { card: card.into() })
            .await?;
        // The lane's answer, not the idle lamps it may have gone back to
        // while time passed before the tap.
        let signal = loop {
            if let SimOutput::Signal(s) = self.next_output().await?
                && s.text.as_deref() != Some(IDLE_TEXT)
            {
                break s;
            }
        };
        if self.narrate {
            let light = if signal.light == parkgate_hal::Light::Green {
                "GREEN"
            } else {
                "RED  "
            };
            println!("       [{light}] {}", signal.text.as_deref().unwrap_or(""));
        }
        self.scene.signals.push(signal.clone());
        Ok(signal)
    }

    /// `vehicles` vehicles cross the safety loop one after another, then the
    /// close delay passes; returns once the barrier is down.
    async fn drive_through(&mut self, vehicles: usize) -> Result<()> {
        self.sensor(Sensor::Arming, SensorState::Clear).await?;
        for _ in 0..vehicles {
            self.sensor(Sensor::Safety, SensorState::Occupied).await?;
            self.sensor(Sensor::Safety, SensorState::Clear).await?;
        }
        self.advance(self.cfg.lane.close_delay_ms as i64 + 1)
            .await?;
        loop {
            if let SimOutput::Barrier {
                cmd: BarrierCommand::Down,
            } = self.next_output().await?
            {
                break;
            }
        }
        if self.narrate {
            println!("       barrier down");
        }
        Ok(())
    }

    async fn back_away(&mut self) -> Result<()> {
        self.sensor(Sensor::Arming, SensorState::Clear).await
    }

    async fn pass_time(&mut self, minutes: i64) -> Result<()> {
        self.advance(minutes * 60_000).await
    }

    async fn sensor(&mut self, sensor: Sensor, state: SensorState) -> Result<()> {
        self.sim
            .request(&SimRequest::Vehicle { sensor, state })
            .await?;
        Ok(())
    }

    /// Moves the daemon's clock through its control socket, so the move is
    /// ordered after the sensor changes already sent.
    async fn advance(&mut self, ms: i64) -> Result<()> {
        control::advance(&self.control, ms).await?;
        Ok(())
    }

    async fn next_output(&mut self) -> Result<SimOutput> {
        loop {
            match self.watch.next().await? {
                Some(WatchLine::Out(out)) => return Ok(out),
                Some(WatchLine::In(_)) => continue,
                None => bail!("the sim closed its watch stream"),
            }
        }
    }
}

fn print_summary(cfg: &Config, scene: &Scene) {
    println!("\nThe journal ({} events):", scene.events.len());
    print!("{}", report::events(&scene.events, cfg.tz()));
    println!(
        "\nQueued for HQ ({} events in the outbox, no broker configured):",
        scene.outbox.len()
    );
    for e in &scene.outbox {
        let payload = serde_json::to_string(e).unwrap_or_default();
        println!("{}  {payload}", crate::domain::contract::event_topic(e));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::contract::{AlertKind, DenyReason, EventBody};
    use parkgate_hal::Light;

    /// The whole stack (sim, daemon, lane, policy, store) plays the morning,
    /// and the journal tells exactly the story the demo narrates.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_morning_is_journalled_as_told() {
        let dir = tempfile::tempdir().unwrap();
        let scene = play(dir.path(), false).await.unwrap();

        let lights: Vec<Light> = scene.signals.iter().map(|s| s.light).collect();
        use Light::{Green, Red};
        assert_eq!(lights, [Green, Green, Red, Red, Green, Green]);
        assert_eq!(
            scene.signals[0].text.as_deref(),
            Some("Welcome Alice Tran - spot B1-042")
        );
        assert_eq!(
            scene.signals[5].text.as_deref(),
            Some("Goodbye Bob Nguyen - fee 50,000 VND")
        );

        let kinds: Vec<&str> = scene.events.iter().map(Event::type_name).collect();
        assert_eq!(
            kinds,
            [
                "check_in",
                "check_in",
                "denied",
                "alert",
                "denied",
                "alert",
                "check_in",
                "alert",
                "check_out"
            ]
        );
        let seqs: Vec<u64> = scene.events.iter().map(|e| e.gate_seq).collect();
        assert_eq!(seqs, (1..=9).collect::<Vec<_>>());
        let reasons: Vec<DenyReason> = scene
            .events
            .iter()
            .filter_map(|e| match &e.body {
                EventBody::Denied(d) => Some(d.reason),
                _ => None,
            })
            .collect();
        assert_eq!(reasons, [DenyReason::CardRevoked, DenyReason::UnknownCard]);
        let alerts: Vec<AlertKind> = scene
            .events
            .iter()
            .filter_map(|e| match &e.body {
                EventBody::Alert(a) => Some(a.alert),
                _ => None,
            })
            .collect();
        assert_eq!(
            alerts,
            [
                AlertKind::WrongCard,
                AlertKind::WrongCard,
                AlertKind::Tailgating
            ]
        );
        let EventBody::CheckOut(out) = &scene.events[8].body else {
            panic!("last event is not a check_out")
        };
        assert_eq!(out.fee.as_ref().map(|f| f.amount_minor), Some(50_000));
        assert_eq!(out.duration_s, Some(9 * 3600 + 25 * 60 + 1));
        // Nothing was delivered (no broker): the outbox holds the whole journal.
        assert_eq!(scene.outbox, scene.events);
    }
}
