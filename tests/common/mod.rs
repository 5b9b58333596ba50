//! The black-box harness: starts the real `parkgate` binary on simulated
//! hardware and a manual clock in a temp dir, plays the world through the
//! sim socket, talks to the control socket, and reads the journal back
//! through the CLI, as a technician would.
//!
//! Nothing here sleeps to wait for the daemon. Start-up ends on the
//! daemon's `READY=1` on a notify socket (systemd's protocol); every later
//! step is synchronised on a reply: the sim answers a request once the input is queued for the
//! daemon, the daemon handles queued hardware events and due timers before
//! a control request, so a `status` reply ([`Gate::settle`]) means "all
//! of that has been handled and committed".
//!
//! For the link to HQ: [`broker`] runs a real Mosquitto per test, [`proxy`]
//! sits between a client and it to cut, stall or slow the connection,
//! [`pki`] makes certificates for TLS, and [`hq`] is HQ's MQTT client.

// Each test binary uses a different part of the harness.
#![allow(dead_code)]

pub mod broker;
pub mod hq;
pub mod pki;
pub mod proxy;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::Duration;

use parkgate::daemon::control;
use parkgate_hal::sim::{SimClient, SimOutput, SimRequest, SimSnapshot, SimWatch, WatchLine};
use parkgate_hal::{BarrierCommand, Light, Sensor, SensorState, Signal};
use serde_json::Value;
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

// Not every test binary plays cards (`#![allow(dead_code)]` does not
// cover re-exports).
#[allow(unused_imports)]
pub use parkgate::cli::demo::cards;
pub use parkgate::domain::lane::IDLE_TEXT;

/// Where every test's manual clock starts (Alice's reservation starts here).
pub const START: &str = "2026-11-23T07:58:00+07:00";

/// The longest any single wait may take before the test fails instead of hanging.
pub const WAIT: Duration = Duration::from_secs(20);

/// [`WAIT`] for work that an emulator stretches (staging a big snapshot,
/// a PN532 reader settling after its first polls): ten times longer when
/// the daemon runs under one (`PARKGATE_TEST_RUNNER`), where it is tens of
/// times slower. Only how long a failing test takes to fail changes.
pub fn long_wait() -> Duration {
    match std::env::var("PARKGATE_TEST_RUNNER") {
        Ok(runner) if !runner.trim().is_empty() => WAIT * 10,
        _ => WAIT,
    }
}

/// The binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_parkgate")
}

/// A command that runs the binary under test: directly, or through the
/// emulator `PARKGATE_TEST_RUNNER` names (e.g. `qemu-aarch64 -L /`, when
/// CI runs the Pi's build of these tests under qemu-user: the test binary
/// is emulated, and the daemon it starts must be too).
pub fn binary() -> Command {
    let runner = std::env::var("PARKGATE_TEST_RUNNER").unwrap_or_default();
    let mut words = runner.split_whitespace();
    match words.next() {
        Some(emulator) => {
            let mut cmd = Command::new(emulator);
            cmd.args(words).arg(bin());
            cmd
        }
        None => Command::new(bin()),
    }
}

/// Runs the CLI to completion with `args` (nothing on stdin).
pub fn cli(args: &[&str]) -> Output {
    binary()
        .args(args)
        .stdin(Stdio::null())
        .env_remove("PARKGATE_CONFIG")
        .env("RUST_LOG", "warn")
        .output()
        .expect("the parkgate binary runs")
}

/// Stdout of a CLI run as text.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Parses an RFC 3339 timestamp from the journal or a status.
pub fn time(v: &Value) -> chrono::DateTime<chrono::FixedOffset> {
    let text = v.as_str().unwrap_or_else(|| panic!("{v} is not a time"));
    chrono::DateTime::parse_from_rfc3339(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

/// `config/demo.toml` with its paths moved into `dir` and each `(key, value)`
/// of `tweaks` replacing that key's line (values are TOML, e.g. `"\"exit\""`).
pub fn config_text(dir: &Path, tweaks: &[(&str, &str)]) -> String {
    let quoted = |name: &str| {
        let path = dir.join(name).display().to_string();
        assert!(
            !path.contains(['"', '\\']),
            "a temp path TOML can't hold as is"
        );
        format!("\"{path}\"")
    };
    let mut replace: Vec<(String, String, usize)> = vec![
        ("path".into(), quoted("gate.db"), 0),
        ("sim_socket".into(), quoted("sim.sock"), 0),
        ("socket".into(), quoted("control.sock"), 0),
    ];
    replace.extend(
        tweaks
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string(), 0)),
    );
    let mut text = String::new();
    for line in include_str!("../../config/demo.toml").lines() {
        let key = line.split(" = ").next().unwrap_or_default();
        match replace.iter_mut().find(|(k, _, _)| k == key) {
            Some((k, v, seen)) => {
                *seen += 1;
                text.push_str(&format!("{k} = {v}\n"));
            }
            None => text.push_str(&format!("{line}\n")),
        }
    }
    for (key, _, seen) in &replace {
        assert_eq!(*seen, 1, "config/demo.toml should have one `{key} = ` line");
    }
    text
}

/// A daemon process that is killed if the test ends without stopping it.
struct Process {
    child: Option<Child>,
    log: PathBuf,
}

impl Process {
    /// What the daemon wrote to stderr so far, for failure messages.
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        reap(self.child.take());
    }
}

/// SIGKILLs and reaps a child the test did not stop itself (it failed
/// first), so no process outlives its test; for `Drop`.
pub fn reap(child: Option<Child>) {
    if let Some(mut child) = child {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Sends SIGTERM, as systemd or `kill` would, and reaps the child; `None`
/// if it did not exit within [`WAIT`] (it is then SIGKILLed).
pub async fn sigterm(mut child: Child) -> Option<ExitStatus> {
    let pid = child.id().to_string();
    let sent = Command::new("kill").args(["-TERM", &pid]).status();
    assert!(sent.is_ok_and(|s| s.success()), "kill -TERM {pid}");
    // `wait` blocks: off the runtime, so the deadline can fire.
    let wait = tokio::task::spawn_blocking(move || child.wait());
    match tokio::time::timeout(WAIT, wait).await {
        Ok(status) => Some(status.expect("wait task").expect("wait for the child")),
        Err(_) => {
            let _ = Command::new("kill").args(["-KILL", &pid]).status();
            None
        }
    }
}

/// A running `parkgate run` in its own temp dir, with a sim client and a
/// sim watcher connected.
pub struct Gate {
    // Field order matters: the process is killed (Drop) before the dir goes.
    process: Process,
    /// Requests to the simulated world.
    pub sim: SimClient,
    watch: SimWatch,
    /// The gate's config file.
    pub config: PathBuf,
    dir: Option<TempDir>,
}

impl Gate {
    /// Starts a daemon on `config/demo.toml` changed by `tweaks` (see
    /// [`config_text`]), with the demo data, the clock at [`START`].
    pub async fn start(tweaks: &[(&str, &str)]) -> Gate {
        let dir = tempfile::tempdir().expect("a temp dir");
        let config = dir.path().join("gate.toml");
        std::fs::write(&config, config_text(dir.path(), tweaks)).expect("config written");
        Gate::launch(dir, config, START).await
    }

    /// Starts the daemon again on the same dir (store, config) after
    /// [`Gate::terminate`], its manual clock at `start`.
    pub async fn restart(mut self, start: &str) -> Gate {
        assert!(self.process.child.is_none(), "terminate the daemon first");
        let dir = self.dir.take().expect("the dir is still there");
        Gate::launch(dir, self.config.clone(), start).await
    }

    async fn launch(dir: TempDir, config: PathBuf, start: &str) -> Gate {
        let log = dir.path().join("stderr.log");
        let out = File::create(dir.path().join("stdout.log")).expect("stdout log");
        // The daemon says READY=1 here once its sockets are bound (systemd's
        // notify protocol): an explicit signal, nothing to poll.
        let notify_path = dir.path().join("notify.sock");
        let _ = std::fs::remove_file(&notify_path);
        let notify = tokio::net::UnixDatagram::bind(&notify_path).expect("notify socket");
        let child = binary()
            .arg("run")
            .arg("--config")
            .arg(&config)
            .args(["--demo-data", "--manual-clock", start])
            .env("RUST_LOG", "info,parkgate::daemon=debug")
            .env("NOTIFY_SOCKET", &notify_path)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(File::create(&log).expect("stderr log"))
            .spawn()
            .expect("parkgate run starts");
        let mut process = Process {
            child: Some(child),
            log,
        };
        let mut buf = [0u8; 64];
        match tokio::time::timeout(Duration::from_secs(20), notify.recv(&mut buf)).await {
            Ok(Ok(n)) => assert_eq!(&buf[..n], b"READY=1"),
            _ => {
                let status = process.child.as_mut().and_then(|c| c.try_wait().ok()?);
                panic!(
                    "parkgate run did not get ready ({status:?}):\n{}",
                    process.log()
                );
            }
        }
        let sim_socket = dir.path().join("sim.sock");
        let sim = SimClient::connect(&sim_socket).await.expect("sim socket");
        let watch = SimClient::connect(&sim_socket)
            .await
            .expect("sim socket")
            .watch()
            .await
            .expect("watching the sim");
        Gate {
            process,
            sim,
            watch,
            config,
            dir: Some(dir),
        }
    }

    /// The gate's temp dir.
    pub fn dir(&self) -> &Path {
        self.dir.as_ref().expect("the dir is there").path()
    }

    /// The control socket's path.
    pub fn control_socket(&self) -> PathBuf {
        self.dir().join("control.sock")
    }

    /// What the daemon logged so far.
    pub fn log(&self) -> String {
        self.process.log()
    }

    /// Waits for a control call; panics unless it is answered in time.
    async fn control<T, E: std::fmt::Display>(
        &self,
        what: &str,
        call: impl std::future::Future<Output = Result<T, E>>,
    ) -> T {
        tokio::time::timeout(WAIT, call)
            .await
            .unwrap_or_else(|_| panic!("no reply to {what} in 20 s"))
            .unwrap_or_else(|e| panic!("control socket, {what}: {e}\n{}", self.log()))
    }

    /// The daemon's status, typed.
    pub async fn status(&self) -> parkgate::daemon::status::Status {
        let socket = self.control_socket();
        self.control("status", control::status(&socket)).await
    }

    /// Waits until the daemon has handled every input sent so far and every
    /// timer already due: a status round trip (see the module doc). The
    /// status comes back as JSON, as `parkgate status --json` prints it.
    pub async fn settle(&self) -> Value {
        serde_json::to_value(self.status().await).expect("a status serialises")
    }

    /// Moves the daemon's manual clock forward.
    pub async fn advance(&self, ms: i64) {
        let socket = self.control_socket();
        self.control("advance", control::advance(&socket, ms)).await;
    }

    /// Steps the daemon's manual wall clock (either way), leaving its
    /// monotonic clock alone; returns the new wall time.
    pub async fn step_wall(&self, ms: i64) -> chrono::DateTime<chrono::FixedOffset> {
        let socket = self.control_socket();
        self.control("step_wall", control::step_wall(&socket, ms))
            .await
    }

    /// Sets whether the daemon's manual clock says the kernel calls it
    /// synchronised; the daemon takes it in before it replies.
    pub async fn kernel_clock(&self, synced: bool) {
        let socket = self.control_socket();
        let told = self
            .control("kernel_clock", control::kernel_clock(&socket, synced))
            .await;
        assert_eq!(told, synced);
    }

    /// A technician sets or lifts the lockdown; returns the state after.
    pub async fn lockdown(&self, on: bool) -> bool {
        let socket = self.control_socket();
        self.control("lockdown", control::lockdown(&socket, on))
            .await
    }

    async fn sim_request(&mut self, request: SimRequest) -> Value {
        tokio::time::timeout(WAIT, self.sim.request(&request))
            .await
            .unwrap_or_else(|_| panic!("no sim reply to {request:?} in 20 s"))
            .unwrap_or_else(|e| panic!("sim request {request:?}: {e}"))
    }

    /// Sets a loop (or the barrier-up switch).
    pub async fn sensor(&mut self, sensor: Sensor, state: SensorState) {
        let reply = self
            .sim_request(SimRequest::Vehicle { sensor, state })
            .await;
        assert_eq!(reply["changed"], true, "{sensor:?} was already {state:?}");
    }

    /// A card read cleanly.
    pub async fn tap(&mut self, card: &str) {
        self.sim_request(SimRequest::Tap { card: card.into() })
            .await;
    }

    /// A card that fails authentication.
    pub async fn tap_auth_failed(&mut self, card: &str) {
        self.sim_request(SimRequest::TapAuthFailed { card: card.into() })
            .await;
    }

    /// Whether the barrier-up switch follows barrier commands.
    pub async fn barrier_follows(&mut self, value: bool) {
        self.sim_request(SimRequest::BarrierFollows { value }).await;
    }

    /// The simulated lane as it is now.
    pub async fn sim_state(&mut self) -> SimSnapshot {
        tokio::time::timeout(WAIT, self.sim.state())
            .await
            .expect("sim state in 20 s")
            .expect("sim state")
    }

    /// The next thing the gate did to the barrier or the lights, passing
    /// over the lamps going back to idle (see [`Gate::next_raw`]).
    pub async fn next_out(&mut self) -> SimOutput {
        loop {
            match self.next_raw().await {
                SimOutput::Signal(s) if s.text.as_deref() == Some(IDLE_TEXT) => continue,
                out => return out,
            }
        }
    }

    /// The next thing the gate did to the barrier or the lights, idle lamps
    /// included.
    pub async fn next_raw(&mut self) -> SimOutput {
        loop {
            let line = tokio::time::timeout(WAIT, self.watch.next())
                .await
                .unwrap_or_else(|_| panic!("the gate did nothing for 20 s:\n{}", self.log()))
                .expect("watch line");
            match line {
                Some(WatchLine::Out(SimOutput::Lagged { missed })) => {
                    panic!("the watcher lost {missed} lines")
                }
                Some(WatchLine::Out(out)) => return out,
                Some(WatchLine::In(_)) => continue,
                None => panic!("the sim closed the watch:\n{}", self.log()),
            }
        }
    }

    /// Everything the gate did to the barrier and the lights that the
    /// watcher has not read yet, up to the sim closing the watch (the
    /// daemon exited): call after [`Gate::terminate`].
    pub async fn outputs_until_closed(&mut self) -> Vec<SimOutput> {
        let mut outputs = Vec::new();
        loop {
            let line = tokio::time::timeout(WAIT, self.watch.next())
                .await
                .unwrap_or_else(|_| panic!("the watch stayed open 20 s:\n{}", self.log()));
            match line {
                Ok(Some(WatchLine::Out(out))) => outputs.push(out),
                Ok(Some(WatchLine::In(_))) => continue,
                Ok(None) | Err(_) => return outputs,
            }
        }
    }

    /// Asserts the next output is a barrier command `cmd`.
    pub async fn expect_barrier(&mut self, cmd: BarrierCommand) {
        let out = self.next_out().await;
        assert_eq!(out, SimOutput::Barrier { cmd }, "expected barrier {cmd:?}");
    }

    /// Asserts the next output is a signal with `light`; returns its text.
    pub async fn expect_signal(&mut self, light: Light) -> String {
        match self.next_out().await {
            SimOutput::Signal(Signal {
                light: shown, text, ..
            }) => {
                assert_eq!(shown, light, "signal {text:?}");
                text.unwrap_or_default()
            }
            other => panic!("expected a {light:?} signal, got {other:?}"),
        }
    }

    /// Sends several sim requests in one write on a new connection, so the
    /// sim queues their events back to back (the daemon has no chance to
    /// handle one before the next is queued); returns the replies.
    pub async fn sim_burst(&self, requests: &[Value]) -> Vec<Value> {
        let burst = async {
            let stream = UnixStream::connect(self.dir().join("sim.sock")).await?;
            let (read, mut write) = stream.into_split();
            let text: String = requests.iter().map(|r| format!("{r}\n")).collect();
            write.write_all(text.as_bytes()).await?;
            let mut lines = BufReader::new(read).lines();
            let mut replies: Vec<Value> = Vec::new();
            for _ in requests {
                let line = lines.next_line().await?.unwrap_or_default();
                replies.push(serde_json::from_str(&line).map_err(std::io::Error::other)?);
            }
            std::io::Result::Ok(replies)
        };
        let replies = tokio::time::timeout(WAIT, burst)
            .await
            .expect("sim replies in 20 s")
            .expect("sim burst");
        for reply in &replies {
            assert_eq!(reply["ok"], true, "{reply}");
        }
        replies
    }

    /// A vehicle rolls onto the arming loop and its driver taps `card`.
    pub async fn badge(&mut self, card: &str) {
        self.sensor(Sensor::Arming, SensorState::Occupied).await;
        self.tap(card).await;
    }

    /// A vehicle rolls onto the arming loop and taps a card that fails
    /// authentication.
    pub async fn badge_auth_failed(&mut self, card: &str) {
        self.sensor(Sensor::Arming, SensorState::Occupied).await;
        self.tap_auth_failed(card).await;
    }

    /// A vehicle on the arming loop is let in or out: barrier up, then green
    /// light; returns the text shown.
    pub async fn badge_admitted(&mut self, card: &str) -> String {
        self.badge(card).await;
        self.expect_barrier(BarrierCommand::Up).await;
        self.expect_signal(Light::Green).await
    }

    /// `vehicles` vehicles leave the arming loop and cross the safety loop
    /// one after another; the close delay passes and the barrier comes down.
    pub async fn drive_through(&mut self, vehicles: usize) {
        self.sensor(Sensor::Arming, SensorState::Clear).await;
        self.cross(vehicles).await;
        self.close().await;
    }

    /// `vehicles` vehicles cross the safety loop.
    pub async fn cross(&mut self, vehicles: usize) {
        for _ in 0..vehicles {
            self.sensor(Sensor::Safety, SensorState::Occupied).await;
            self.sensor(Sensor::Safety, SensorState::Clear).await;
        }
    }

    /// The close delay passes; the next output must be the barrier down.
    pub async fn close(&mut self) {
        self.advance(self.close_delay_ms() + 1).await;
        self.expect_barrier(BarrierCommand::Down).await;
    }

    fn close_delay_ms(&self) -> i64 {
        let text = std::fs::read_to_string(&self.config).expect("config");
        text.lines()
            .find_map(|l| l.strip_prefix("close_delay_ms = "))
            .and_then(|v| v.trim().parse().ok())
            .expect("close_delay_ms in the config")
    }

    /// Runs the CLI against this gate's config.
    pub fn cli(&self, args: &[&str]) -> Output {
        binary()
            .args(args)
            .stdin(Stdio::null())
            .env("PARKGATE_CONFIG", &self.config)
            .env("RUST_LOG", "warn")
            .output()
            .expect("the parkgate binary runs")
    }

    /// The whole journal, oldest first, as `parkgate events --json` prints it.
    pub fn events(&self) -> Vec<Value> {
        let config = self.config.display().to_string();
        let out = self.cli(&["events", "--config", &config, "--json", "-n", "1000"]);
        assert!(out.status.success(), "parkgate events: {out:?}");
        let mut events: Vec<Value> = stdout(&out)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
            .collect();
        events.reverse();
        events
    }

    /// The journal's alerts of kind `kind`.
    pub fn alerts(&self, kind: &str) -> Vec<Value> {
        self.events()
            .into_iter()
            .filter(|e| e["type"] == "alert" && e["alert"] == kind)
            .collect()
    }

    /// Waits until the daemon's status satisfies `ok` and returns it. The
    /// status has no push, so it is asked again every 20 ms; the test fails
    /// after `within`, saying the gate never did `what`.
    pub async fn wait_status(
        &self,
        within: Duration,
        what: &str,
        ok: impl Fn(&parkgate::daemon::status::Status) -> bool,
    ) -> parkgate::daemon::status::Status {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let status = self.status().await;
            if ok(&status) {
                return status;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the gate never {what}: {status:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGKILLs the daemon wherever it is (a crash, a power cut of the
    /// process) and reaps it; [`Gate::restart`] starts it again.
    pub fn kill(&mut self) {
        let mut child = self.process.child.take().expect("the daemon is running");
        // Child::kill is SIGKILL on Unix.
        child.kill().expect("kill -9 the daemon");
        child.wait().expect("reap the daemon");
    }

    /// Sends SIGTERM and waits for the daemon to exit; returns how it exited.
    pub async fn terminate(&mut self) -> ExitStatus {
        let child = self.process.child.take().expect("the daemon is running");
        match sigterm(child).await {
            Some(status) => status,
            None => panic!(
                "the daemon did not exit in 20 s after SIGTERM:\n{}",
                self.log()
            ),
        }
    }
}

/// The events of `events` of type `kind` (`check_in`, `denied`, ...).
pub fn of_type<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["type"] == kind).collect()
}

/// The `type` (and `alert` kind) of each event, for readable assertions:
/// `["check_in", "alert:tailgating"]`.
pub fn kinds(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| match e["alert"].as_str() {
            Some(alert) => format!("alert:{alert}"),
            None => e["type"].as_str().unwrap_or("?").to_string(),
        })
        .collect()
}
