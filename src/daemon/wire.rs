//! One way to wire a gate from its config: the hardware backend, the control
//! socket, the store thread, and the daemon loop, all stopped together.
//! `parkgate run`, the demo and (through the binary) the black-box tests all
//! start a gate here.

use std::future::Future;

use parkgate_hal::{Barrier, CardReader, Feedback, Presence};
use tokio::sync::{mpsc, oneshot};

use super::clock::Clock;
use super::notify::Systemd;
use super::{CONTROL_QUEUE, DaemonError, Hardware, Options, control, run};
use crate::config::{Backend, Config};
use crate::store::{Db, Store};

/// How long a stopping gate waits for its link to say goodbye to the broker.
const LINK_STOP: std::time::Duration = std::time::Duration::from_secs(5);

/// Runs the gate `cfg` describes on `db` until `shutdown` resolves, then
/// stops every task it started and joins the store thread, so that when it
/// returns the database is closed and the sockets are gone.
///
pub async fn serve(
    cfg: Config,
    db: Db,
    options: Options,
    shutdown: impl Future<Output = ()>,
) -> Result<(), DaemonError> {
    let (store, store_thread) = Store::spawn(db);
    let result = serve_with(cfg, store, options, shutdown).await;
    // Every handle to the store is gone with `serve_with`: the thread ends
    // once it has finished its queue.
    let joined = tokio::task::spawn_blocking(move || store_thread.join()).await;
    if joined.is_err() || matches!(joined, Ok(Err(_))) {
        tracing::error!("the store thread panicked");
    }
    result
}

async fn serve_with(
    cfg: Config,
    store: Store,
    options: Options,
    shutdown: impl Future<Output = ()>,
) -> Result<(), DaemonError> {
    let mut tasks = tokio::task::JoinSet::new();
    match cfg.hardware.backend {
        Backend::Sim => {
            let parts = parkgate_hal::sim::bind(&cfg.hardware.sim_socket, cfg.hardware.sim_start)?;
            tracing::info!(socket = %cfg.hardware.sim_socket.display(), "simulated hardware");
            tasks.spawn(async move {
                if let Err(e) = parts.server.run().await {
                    tracing::error!(error = %e, "the sim socket stopped");
                }
            });
            let hw = Hardware {
                reader: super::reader::open(&cfg.hardware, Some(parts.reader))?,
                presence: parts.presence,
                barrier: parts.barrier,
                feedback: parts.feedback,
            };
            serve_on(cfg, store, hw, options, shutdown, tasks).await
        }
        Backend::Pi => {
            let hw = pi_hardware(&cfg)?;
            serve_on(cfg, store, hw, options, shutdown, tasks).await
        }
    }
}

/// The Pi's loops, barrier and lamps on GPIO (read and latched before
/// anything else starts), and its card reader. Off a Pi this fails here,
/// at start, saying why.
fn pi_hardware(
    cfg: &Config,
) -> Result<
    // `use<>`: the parts own their pins and borrow nothing from `cfg`.
    Hardware<
        impl CardReader + use<>,
        impl Presence + use<>,
        impl Barrier + use<>,
        impl Feedback + use<>,
    >,
    DaemonError,
> {
    let gpio = parkgate_hal::pi::open(&cfg.hardware.wiring())?;
    tracing::info!(wiring = ?cfg.hardware.wiring(), "Raspberry Pi GPIO");
    Ok(Hardware {
        reader: super::reader::open(&cfg.hardware, None)?,
        presence: gpio.presence,
        barrier: gpio.barrier,
        feedback: gpio.feedback,
    })
}

/// Runs the gate on `hw`, with the control socket and the HQ link, until
/// `shutdown`; then stops them and the `tasks` the backend started.
async fn serve_on<R, P, B, F>(
    cfg: Config,
    store: Store,
    hw: Hardware<R, P, B, F>,
    options: Options,
    shutdown: impl Future<Output = ()>,
    mut tasks: tokio::task::JoinSet<()>,
) -> Result<(), DaemonError>
where
    R: CardReader,
    P: Presence,
    B: Barrier,
    F: Feedback,
{
    let (tx, rx) = mpsc::channel(CONTROL_QUEUE);
    let listener = control::bind(&cfg.control.socket)?;
    tasks.spawn(control::serve(listener, tx));
    let (side, link) = crate::link::start(&cfg, store.clone(), options.clock.clone());
    let (stop_link, link_stopped) = oneshot::channel::<()>();
    let link = link.map(|link| {
        tracing::info!(broker = %crate::link::broker_url(&cfg), "HQ link enabled");
        tokio::spawn(link.run(async move {
            let _ = link_stopped.await;
        }))
    });
    let mut sockets = vec![cfg.control.socket.clone()];
    if cfg.hardware.backend == Backend::Sim {
        sockets.push(cfg.hardware.sim_socket.clone());
    }
    let result = run(cfg, store, hw, options, rx, side, shutdown).await;
    // The link says `offline` and disconnects (bounded), then lets go of
    // the store.
    let _ = stop_link.send(());
    if let Some(link) = link {
        let abort = link.abort_handle();
        if tokio::time::timeout(LINK_STOP, link).await.is_err() {
            abort.abort();
        }
    }
    tasks.shutdown().await;
    for path in sockets {
        let _ = std::fs::remove_file(path);
    }
    result
}

/// A gate running in-process on a task of its own (the demo, in-process
/// tests, benchmarks): started by [`spawn`], stopped by [`Spawned::stop`].
pub struct Spawned {
    task: tokio::task::JoinHandle<Result<(), DaemonError>>,
    stop: oneshot::Sender<()>,
}

/// Starts [`serve`] on a task and returns once the gate is ready (its
/// sockets bound, its starting sensors read).
pub async fn spawn(cfg: Config, db: Db, clock: Clock) -> Result<Spawned, DaemonError> {
    spawn_with(cfg, db, clock, Systemd::default()).await
}

/// [`spawn`], telling `systemd` what `parkgate run` tells systemd (tests
/// of the notify protocol and the watchdog, in-process).
pub async fn spawn_with(
    cfg: Config,
    db: Db,
    clock: Clock,
    systemd: Systemd,
) -> Result<Spawned, DaemonError> {
    let (ready_tx, ready_rx) = oneshot::channel();
    let (stop, stop_rx) = oneshot::channel::<()>();
    let options = Options {
        clock,
        print: false,
        ready: Some(ready_tx),
        systemd,
    };
    let task = tokio::spawn(serve(cfg, db, options, async move {
        let _ = stop_rx.await;
    }));
    if ready_rx.await.is_err() {
        // It stopped before it was ready: its error says why.
        return Err(match task.await {
            Ok(Err(e)) => e,
            Ok(Ok(())) => DaemonError::Task("stopped before it was ready".into()),
            Err(e) => DaemonError::Task(e.to_string()),
        });
    }
    Ok(Spawned { task, stop })
}

impl Spawned {
    /// Stops the gate as SIGTERM would and waits until it has stopped (its
    /// store closed, its sockets gone).
    pub async fn stop(self) -> Result<(), DaemonError> {
        let _ = self.stop.send(());
        self.task
            .await
            .map_err(|e| DaemonError::Task(e.to_string()))?
    }
}
