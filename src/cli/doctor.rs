//! `parkgate doctor`: commissioning a gate. Checks the config, the store,
//! the clock and the broker, then (with the daemon stopped, as doctor opens
//! the hardware itself) the reader, the loops, the lamps and the barrier,
//! printing one PASS/FAIL/SKIP line per check with a hint under each
//! failure. Any failure makes the command exit non-zero.
//!
//! - [`report`]: the result lines, pure.
//! - [`session`] and [`console`]: printing as results come, and the
//!   technician's answers as lines on a channel (stdin, or a test).
//! - `store`, `clock`, `broker`: one module per check that needs no hardware.
//! - `reader`, `loops`, `outputs`: the hardware checks, generic over the
//!   hal traits, so tests run them on fakes and the binary on the sim or
//!   the Pi through the same code the daemon opens them with.

pub mod broker;
pub mod clock;
pub mod console;
pub mod loops;
pub mod outputs;
pub mod reader;
pub mod report;
pub mod session;
pub mod store;

#[cfg(test)]
mod fakes;

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use parkgate_hal::{Barrier, Feedback, Presence};

use crate::config::{self, Backend, Config, ReaderKind};
use report::Check;
use session::Session;

/// What the technician asked for, and how long to wait for them.
#[derive(Debug, Clone)]
pub struct Options {
    /// Run the lamp test without asking.
    pub lamp_test: bool,
    /// Raise and lower the barrier without asking (still only on a clear lane).
    pub move_barrier: bool,
    /// How long the reader has to report its firmware.
    pub reader_wait: Duration,
    /// How long to wait for a card.
    pub card_wait: Duration,
    /// How long the loops are watched live.
    pub loop_watch: Duration,
    /// Lamp and barrier pacing.
    pub pace: outputs::Pace,
    /// How long the broker has to answer.
    pub broker_wait: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            lamp_test: false,
            move_barrier: false,
            reader_wait: Duration::from_secs(5),
            card_wait: Duration::from_secs(30),
            loop_watch: Duration::from_secs(60),
            pace: outputs::Pace {
                lamp: Duration::from_secs(1),
                boom: Duration::from_secs(10),
                clear: Duration::from_secs(60),
            },
            broker_wait: broker::WAIT,
        }
    }
}

/// The hardware checks, in the order they are made.
const HARDWARE: [&str; 6] = ["reader", "card", "loops", "loop test", "lamps", "barrier"];

/// How long the sim may take, when doctor is done, to hand its watchers
/// what the last checks did.
const SIM_DRAIN: Duration = Duration::from_secs(2);

/// Runs every check against the config at `path`, printing as it goes.
pub async fn run<W: Write>(path: &Path, options: &Options, s: &mut Session<W>) {
    let cfg = match config::load(path) {
        Ok(cfg) => cfg,
        Err(e) => {
            s.record(Check::fail(
                "config",
                e.to_string(),
                format!(
                    "`parkgate check-config {}` lists every problem with its line; nothing else is checked \
                     without a config",
                    path.display()
                ),
            ));
            return;
        }
    };
    // The config's own words for the enums (`both`, `sim`).
    let word = |v: serde_json::Result<serde_json::Value>| match v {
        Ok(serde_json::Value::String(w)) => w,
        _ => "?".into(),
    };
    s.record(Check::pass(
        "config",
        format!(
            "{}: gate {}/{}/{} ({}), backend {}, reader {}",
            path.display(),
            cfg.gate.site,
            cfg.gate.lot,
            cfg.gate.gate,
            word(serde_json::to_value(cfg.gate.role)),
            word(serde_json::to_value(cfg.hardware.backend)),
            cfg.hardware.reader().name()
        ),
    ));
    let daemon = daemon_running(&cfg.control.socket).await;

    let store_cfg = cfg.clone();
    match tokio::task::spawn_blocking(move || store::checks(&store_cfg)).await {
        Ok(checks) => checks.into_iter().for_each(|c| s.record(c)),
        Err(e) => s.record(Check::fail(
            "store",
            format!("the check panicked: {e}"),
            "report this",
        )),
    }
    let now = chrono::Local::now().with_timezone(&cfg.tz());
    s.record(clock::check(
        &clock::probe(),
        &now.format("%Y-%m-%d %H:%M:%S %Z").to_string(),
    ));
    s.record(broker::check(&cfg, options.broker_wait).await);

    if daemon {
        for name in HARDWARE {
            s.record(
                Check::skip(
                    name,
                    format!(
                        "the daemon is running (its control socket {} answers): doctor leaves its hardware alone",
                        cfg.control.socket.display()
                    ),
                )
                .with_hint("stop it first (`systemctl stop parkgate`), then run doctor again"),
            );
        }
        return;
    }
    hardware(&cfg, options, s).await;
}

/// Whether a daemon listens on the control socket.
async fn daemon_running(socket: &Path) -> bool {
    tokio::net::UnixStream::connect(socket).await.is_ok()
}

/// Opens the configured hardware as the daemon would and checks it.
async fn hardware<W: Write>(cfg: &Config, options: &Options, s: &mut Session<W>) {
    match cfg.hardware.backend {
        Backend::Sim => {
            let parts =
                match parkgate_hal::sim::bind(&cfg.hardware.sim_socket, cfg.hardware.sim_start) {
                    Ok(parts) => parts,
                    Err(e) => {
                        return unopened(
                            s,
                            &format!("the sim: {e}"),
                            "is another parkgate using the sim socket?",
                        );
                    }
                };
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let server = tokio::spawn(async move {
                let stopped = async move {
                    let _ = stopped.await;
                };
                if let Err(e) = parts.server.run_until(stopped).await {
                    tracing::error!(error = %e, "the sim socket stopped");
                }
            });
            let reader = crate::daemon::reader::open(&cfg.hardware, Some(parts.reader));
            let (mut presence, mut barrier, mut feedback) =
                (parts.presence, parts.barrier, parts.feedback);
            checks(
                cfg,
                options,
                s,
                reader,
                &mut presence,
                &mut barrier,
                &mut feedback,
            )
            .await;
            // Watchers get what the last checks did, then the socket goes
            // (bounded: a watcher that does not read must not hold doctor).
            let _ = stop.send(());
            let abort = server.abort_handle();
            if tokio::time::timeout(SIM_DRAIN, server).await.is_err() {
                abort.abort();
            }
        }
        Backend::Pi => {
            let reader = crate::daemon::reader::open(&cfg.hardware, None);
            match parkgate_hal::pi::open(&cfg.hardware.wiring()) {
                Ok(gpio) => {
                    let (mut presence, mut barrier, mut feedback) =
                        (gpio.presence, gpio.barrier, gpio.feedback);
                    checks(
                        cfg,
                        options,
                        s,
                        reader,
                        &mut presence,
                        &mut barrier,
                        &mut feedback,
                    )
                    .await;
                }
                Err(e) => {
                    reader_checks(cfg, options, s, reader).await;
                    for name in ["loops", "loop test", "lamps", "barrier"] {
                        s.record(Check::fail(
                            name,
                            format!("GPIO: {e}"),
                            "run on the Pi as a user in group gpio; check [hardware.pins] for pins another \
                             driver holds (1-wire, SPI, I2C overlays)",
                        ));
                    }
                }
            }
        }
    }
}

/// Every hardware check fails: nothing could be opened.
fn unopened<W: Write>(s: &mut Session<W>, why: &str, hint: &str) {
    for name in HARDWARE {
        s.record(Check::fail(name, why, hint));
    }
}

async fn checks<W, P, B, F>(
    cfg: &Config,
    options: &Options,
    s: &mut Session<W>,
    reader: Result<crate::daemon::reader::Reader, crate::daemon::DaemonError>,
    presence: &mut P,
    barrier: &mut B,
    feedback: &mut F,
) where
    W: Write,
    P: Presence,
    B: Barrier,
    F: Feedback,
{
    reader_checks(cfg, options, s, reader).await;
    loops::check(s, presence, options.loop_watch).await;
    outputs::lamps(s, feedback, options.lamp_test, options.pace).await;
    outputs::barrier(s, barrier, presence, options.move_barrier, options.pace).await;
}

async fn reader_checks<W: Write>(
    cfg: &Config,
    options: &Options,
    s: &mut Session<W>,
    reader: Result<crate::daemon::reader::Reader, crate::daemon::DaemonError>,
) {
    let hw = &cfg.hardware;
    let kind = hw.reader();
    let label = match kind {
        ReaderKind::Sim => format!("the sim's reader on {}", hw.sim_socket.display()),
        other => format!("PN532 on {} ({})", hw.reader_device(), other.name()),
    };
    match reader {
        Ok(mut reader) => {
            reader::answers(
                s,
                &mut reader,
                &label,
                kind != ReaderKind::Sim,
                options.reader_wait,
            )
            .await;
            reader::card(s, &mut reader, options.card_wait).await;
        }
        Err(e) => {
            s.record(Check::fail(
                "reader",
                format!("{label}: {e}"),
                "see [hardware] reader in config/example.toml",
            ));
            s.record(Check::skip("card", "no reader"));
        }
    }
}
