//! `parkgate doctor` run as a technician would, on the sim backend with no
//! daemon (doctor opens the sim itself): its PASS/FAIL lines, a card tapped
//! while it waits for one, the loops watched live, the barrier moved only
//! on a clear safety loop, and the hardware left alone while a daemon runs.
//!
//! Every step waits for the line doctor prints before it (its prompts are
//! the signal that it is ready), never for time to pass.

mod common;

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ExitStatus, Stdio};

use common::{Gate, WAIT, binary, config_text, reap};
use parkgate_hal::sim::{SimClient, SimOutput, SimRequest, SimWatch, WatchLine};
use parkgate_hal::{BarrierCommand, Sensor, SensorState};
use tokio::sync::mpsc;

/// A gate's files with no daemon: `config/demo.toml` in a temp dir.
fn gate_dir(tweaks: &[(&str, &str)]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gate.toml");
    std::fs::write(&config, config_text(dir.path(), tweaks)).unwrap();
    (dir, config)
}

/// Runs doctor to the end with nothing on stdin; its exit and its lines.
fn doctor(config: &Path, args: &[&str]) -> (ExitStatus, Vec<String>) {
    let out = binary()
        .arg("doctor")
        .arg("--config")
        .arg(config)
        .args(args)
        .stdin(Stdio::null())
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let lines = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    (out.status, lines)
}

/// The result line of check `name` (`PASS  store      ...`).
fn result<'a>(lines: &'a [String], name: &str) -> &'a str {
    lines
        .iter()
        .find(|l| {
            ["PASS", "FAIL", "SKIP"].contains(&l.get(..4).unwrap_or(""))
                && l[6..].split("  ").next().map(str::trim) == Some(name)
        })
        .unwrap_or_else(|| panic!("no {name} line in\n{}", lines.join("\n")))
}

/// The hint printed under check `name`'s line.
fn hint<'a>(lines: &'a [String], name: &str) -> &'a str {
    let line = result(lines, name);
    let at = lines.iter().position(|l| l == line).unwrap();
    lines
        .get(at + 1)
        .and_then(|l| l.strip_prefix("      hint: "))
        .unwrap_or_else(|| panic!("no hint under {line:?}"))
}

/// Exit status 1 exactly when some line is a FAIL (the clock's outcome
/// depends on the machine running the test, so it is not assumed).
fn assert_exit_matches(status: ExitStatus, lines: &[String]) {
    let failed = lines.iter().any(|l| l.starts_with("FAIL"));
    assert_eq!(
        status.success(),
        !failed,
        "{status:?}\n{}",
        lines.join("\n")
    );
}

#[test]
fn non_interactive_on_the_sim_passes_each_check_it_can() {
    let (dir, config) = gate_dir(&[]);
    let (status, lines) = doctor(&config, &["--no-wait"]);
    assert!(result(&lines, "config").starts_with("PASS"), "{lines:?}");
    assert!(
        result(&lines, "config").contains("gate b1/main/entry-1 (both), backend sim, reader sim")
    );
    let store = result(&lines, "store");
    assert!(store.starts_with("PASS"), "{store}");
    assert!(
        store.contains("outbox 0 event(s) waiting for HQ, replica seq 0"),
        "{store}"
    );
    assert_eq!(
        result(&lines, "integrity"),
        "PASS  integrity  main ok, replica ok"
    );
    // The disk's outcome, like the clock's, depends on the machine: a PASS,
    // or a FAIL that says what to do (the thresholds are unit-tested).
    assert!(result(&lines, "disk").starts_with("PASS") || !hint(&lines, "disk").is_empty());
    assert!(result(&lines, "clock").starts_with("PASS") || !hint(&lines, "clock").is_empty());
    assert!(result(&lines, "broker").starts_with("SKIP  broker     [mqtt] enabled = false"));
    assert!(result(&lines, "reader").starts_with("PASS  reader     the sim's reader on "));
    assert!(result(&lines, "card").starts_with("SKIP"));
    assert_eq!(
        result(&lines, "loops"),
        "PASS  loops      arming clear, safety clear, barrier_up clear"
    );
    assert!(result(&lines, "lamps").starts_with("SKIP"));
    assert!(result(&lines, "barrier").starts_with("SKIP"));
    assert_exit_matches(status, &lines);
    // It let go of the sim: the socket is gone, the store was created.
    assert!(!dir.path().join("sim.sock").exists());
    assert!(dir.path().join("gate.db").exists());
}

#[test]
fn an_unwritable_store_and_an_unreachable_broker_fail_with_hints() {
    // A port just freed: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mqtt = format!("true\nhost = \"127.0.0.1\"\nport = {port}");
    let (dir, config) = gate_dir(&[("enabled", &mqtt)]);
    // The store's directory is a file: no user, root included, can write there.
    let blocker = dir.path().join("blocked");
    std::fs::write(&blocker, "").unwrap();
    let text = std::fs::read_to_string(&config).unwrap().replace(
        &format!("{}/gate.db", dir.path().display()),
        &format!("{}/gate.db", blocker.display()),
    );
    std::fs::write(&config, text).unwrap();

    let (status, lines) = doctor(&config, &["--no-wait"]);
    assert_eq!(status.code(), Some(1), "{lines:?}");
    assert!(result(&lines, "store").starts_with("FAIL"), "{lines:?}");
    assert!(hint(&lines, "store").contains("writable by the daemon's user"));
    assert!(result(&lines, "integrity").starts_with("SKIP"));
    let broker = result(&lines, "broker");
    assert!(
        broker.starts_with(&format!("FAIL  broker     mqtt://127.0.0.1:{port}: ")),
        "{broker}"
    );
    assert!(hint(&lines, "broker").contains("nothing listens there"));
    // The rest still ran.
    assert!(result(&lines, "reader").starts_with("PASS"));
    assert!(lines.last().unwrap().starts_with("doctor: "), "{lines:?}");
}

#[test]
fn a_config_that_does_not_load_fails_first_and_alone() {
    let (_dir, config) = gate_dir(&[("role", "\"sideways\"")]);
    let (status, lines) = doctor(&config, &["--no-wait"]);
    assert_eq!(status.code(), Some(1));
    assert!(result(&lines, "config").contains("sideways"), "{lines:?}");
    assert!(hint(&lines, "config").contains("parkgate check-config"));
    assert_eq!(lines.len(), 3, "{lines:?}");
}

/// Doctor running interactively: its stdin ours, its stdout read line by line.
struct Live {
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    lines: mpsc::UnboundedReceiver<String>,
    seen: Vec<String>,
}

impl Live {
    fn start(config: &Path) -> Live {
        let mut child = binary()
            .arg("doctor")
            .arg("--config")
            .arg(config)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Live {
            stdin: child.stdin.take(),
            child: Some(child),
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a line containing `text`; returns it.
    async fn expect(&mut self, text: &str) -> String {
        loop {
            let line = tokio::time::timeout(WAIT, self.lines.recv())
                .await
                .unwrap_or_else(|_| panic!("no {text:?} in 20 s after\n{}", self.seen.join("\n")))
                .unwrap_or_else(|| {
                    panic!("doctor ended before {text:?}:\n{}", self.seen.join("\n"))
                });
            self.seen.push(line.clone());
            if line.contains(text) {
                return line;
            }
        }
    }

    /// Types a line.
    fn answer(&mut self, text: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{text}").unwrap();
        stdin.flush().unwrap();
    }

    /// Waits for doctor to end; its exit and every line it printed.
    async fn finish(mut self) -> (ExitStatus, Vec<String>) {
        while let Ok(Some(line)) = tokio::time::timeout(WAIT, self.lines.recv()).await {
            self.seen.push(line);
        }
        let mut child = self.child.take().unwrap();
        let status = tokio::task::spawn_blocking(move || child.wait())
            .await
            .unwrap()
            .unwrap();
        (status, std::mem::take(&mut self.seen))
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        reap(self.child.take());
    }
}

async fn sim(config_dir: &Path) -> SimClient {
    SimClient::connect(config_dir.join("sim.sock"))
        .await
        .unwrap()
}

async fn vehicle(sim: &mut SimClient, sensor: Sensor, state: SensorState) {
    sim.request(&SimRequest::Vehicle { sensor, state })
        .await
        .unwrap();
}

/// The barrier commands a watcher saw until the sim went away.
async fn barrier_commands(mut watch: SimWatch) -> Vec<BarrierCommand> {
    let mut commands = Vec::new();
    while let Some(line) = tokio::time::timeout(WAIT, watch.next())
        .await
        .expect("the sim closes when doctor ends")
        .unwrap()
    {
        if let WatchLine::Out(SimOutput::Barrier { cmd }) = line {
            commands.push(cmd);
        }
    }
    commands
}

#[tokio::test]
async fn a_technician_taps_a_card_exercises_the_loops_and_moves_the_barrier() {
    let (dir, config) = gate_dir(&[]);
    let mut live = Live::start(&config);

    live.expect("present a card to the reader").await;
    let mut sim = sim(dir.path()).await;
    sim.request(&SimRequest::Tap {
        card: "04a1b2c3d4e5f6".into(),
    })
    .await
    .unwrap();
    let card = live.expect("card").await;
    assert_eq!(card, "PASS  card       read 04A1B2C3D4E5F6 (7 bytes)");

    live.expect("drive or walk over the arming loop").await;
    vehicle(&mut sim, Sensor::Arming, SensorState::Occupied).await;
    assert!(
        live.expect("arming")
            .await
            .ends_with("arming clear -> occupied")
    );
    vehicle(&mut sim, Sensor::Arming, SensorState::Clear).await;
    vehicle(&mut sim, Sensor::Safety, SensorState::Occupied).await;
    vehicle(&mut sim, Sensor::Safety, SensorState::Clear).await;
    assert!(
        live.expect("safety occupied -> clear")
            .await
            .starts_with("  -   loop test")
    );
    live.answer("");
    let verdict = live.expect("loop test ").await;
    assert_eq!(
        verdict,
        "PASS  loop test  arming and safety each seen occupied and clear (4 change(s))"
    );

    live.expect("Lamp test").await;
    live.answer("no");
    assert!(live.expect("lamps").await.starts_with("SKIP"));

    live.expect("Raise the barrier").await;
    let watch = sim.watch().await.unwrap();
    live.answer("yes");
    let commands = barrier_commands(watch).await;
    let (status, lines) = live.finish().await;
    assert_eq!(
        commands,
        [BarrierCommand::Up, BarrierCommand::Down],
        "{lines:#?}"
    );
    assert!(
        result(&lines, "barrier").starts_with("PASS  barrier    up and down"),
        "{lines:?}"
    );
    assert_exit_matches(status, &lines);
}

#[tokio::test]
async fn the_barrier_is_refused_while_the_safety_loop_is_occupied() {
    let (dir, config) = gate_dir(&[("safety", "\"occupied\"")]);
    // Asked for by flag: still refused, and not even a question.
    let (status, lines) = doctor(&config, &["--no-wait", "--move-barrier"]);
    assert_eq!(status.code(), Some(1));
    assert_eq!(
        result(&lines, "loops"),
        "PASS  loops      arming clear, safety occupied, barrier_up clear"
    );
    assert_eq!(
        result(&lines, "barrier"),
        "FAIL  barrier    refused: the safety loop reads occupied"
    );
    assert!(hint(&lines, "barrier").contains("never moves the barrier"));

    // Interactively, with a watcher on the sim to see that no command is given.
    let mut live = Live::start(&config);
    live.expect("present a card").await;
    live.answer("");
    live.expect("drive or walk over").await;
    let watch = sim(dir.path()).await.watch().await.unwrap();
    live.answer("");
    live.expect("Lamp test").await;
    live.answer("no");
    assert!(barrier_commands(watch).await.is_empty());
    let (status, lines) = live.finish().await;
    assert!(
        result(&lines, "barrier").starts_with("FAIL  barrier    refused"),
        "{lines:?}"
    );
    assert!(
        !lines.iter().any(|l| l.contains("Raise the barrier")),
        "{lines:?}"
    );
    assert_eq!(status.code(), Some(1));
}

#[tokio::test]
async fn with_the_daemon_running_the_hardware_is_left_alone() {
    let mut gate = Gate::start(&[]).await;
    let (status, lines) = doctor(&gate.config, &["--no-wait", "--move-barrier"]);
    assert!(result(&lines, "store").starts_with("PASS"), "{lines:?}");
    for name in ["reader", "card", "loops", "loop test", "lamps", "barrier"] {
        let line = result(&lines, name);
        assert!(
            line.starts_with("SKIP") && line.contains("the daemon is running"),
            "{line}"
        );
    }
    assert!(hint(&lines, "barrier").contains("systemctl stop parkgate"));
    assert_exit_matches(status, &lines);
    // The daemon still has its sim (doctor neither took nor removed it).
    gate.sim_state().await;
}

#[tokio::test]
async fn a_reachable_broker_passes() {
    let broker = common::broker::Broker::start().await;
    let mqtt = format!("true\nhost = \"127.0.0.1\"\nport = {}", broker.port());
    let (_dir, config) = gate_dir(&[("enabled", &mqtt)]);
    let (status, lines) = tokio::task::spawn_blocking(move || doctor(&config, &["--no-wait"]))
        .await
        .unwrap();
    let line = result(&lines, "broker");
    assert!(
        line.starts_with(&format!(
            "PASS  broker     mqtt://127.0.0.1:{}",
            broker.port()
        )),
        "{lines:#?}"
    );
    assert_exit_matches(status, &lines);
}
