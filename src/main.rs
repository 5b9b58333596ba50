//! The `parkgate` command: parse arguments, call one function per subcommand.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use clap::{Args, Parser, Subcommand};

use parkgate::cli::alerts::{self, AlertsArgs};
use parkgate::cli::report;
use parkgate::config::{self, Config};
use parkgate::daemon;
use parkgate::daemon::control;
use parkgate::domain::availability;
use parkgate::domain::contract::{self, ChangeBatch};
use parkgate::domain::model::Timestamp;
use parkgate::store::{Applied, Db, Ident};
use parkgate_hal as hal;

/// The daemon at one parking barrier, and the tools a technician uses on it.
#[derive(Parser)]
#[command(name = "parkgate", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
struct ConfigArg {
    /// The gate's config file.
    #[arg(
        long,
        short,
        env = "PARKGATE_CONFIG",
        default_value = "/etc/parkgate/gate.toml"
    )]
    config: PathBuf,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gate daemon.
    Run {
        #[command(flatten)]
        config: ConfigArg,
        /// Load the demo replica (people, cards, plans) if the store is empty
        /// (as `demo_data = true` in `[hardware]` does).
        #[arg(long)]
        demo_data: bool,
        /// Run on a manual clock starting at this RFC 3339 time, moved only by
        /// `parkgate sim advance` (simulated hardware only; for tests and demos).
        #[arg(long, value_name = "START")]
        manual_clock: Option<String>,
    },
    /// Play a scripted morning on simulated hardware with demo data.
    Demo,
    /// Put the running gate in lockdown (entries refused, exits open) or out
    /// of it; recorded as an alert and kept across restarts.
    Lockdown {
        #[command(flatten)]
        config: ConfigArg,
        /// on or off.
        state: OnOff,
    },
    /// Ask the running daemon for its state (lane, occupancy, outbox, replica).
    Status {
        #[command(flatten)]
        config: ConfigArg,
        /// Print the raw JSON answer.
        #[arg(long)]
        json: bool,
    },
    /// Drive the simulated hardware of a running daemon.
    Sim {
        #[command(flatten)]
        config: ConfigArg,
        #[command(subcommand)]
        command: SimCommand,
    },
    /// Check a config file: print each problem as file:line:col, or a summary.
    CheckConfig {
        /// The config file to check.
        file: PathBuf,
    },
    /// Free spots per vehicle class, now or at a given time.
    Availability {
        #[command(flatten)]
        config: ConfigArg,
        /// RFC 3339 time, e.g. 2026-11-22T14:00:00+07:00 (default: now).
        #[arg(long)]
        at: Option<String>,
    },
    /// Work with the replica of HQ's data.
    Replica {
        #[command(subcommand)]
        command: ReplicaCommand,
    },
    /// List the event journal, newest first.
    Events {
        #[command(flatten)]
        config: ConfigArg,
        /// How many events to show.
        #[arg(long, short = 'n', default_value_t = 50)]
        limit: usize,
        /// Print the events as JSON lines, exactly as published to HQ.
        #[arg(long)]
        json: bool,
    },
    /// Follow a lot's (or a site's) alerts and denials live from the MQTT
    /// broker, for the security desk: one line each, or JSON lines.
    Alerts(AlertsArgs),
    /// Commission a gate: check the config, store, clock and broker and,
    /// with the daemon stopped, the reader, loops, lamps and barrier; one
    /// PASS/FAIL line per check, with a hint for each failure.
    Doctor(DoctorArgs),
}

#[derive(Args)]
struct DoctorArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// Ask nothing and wait for nothing: no card, no live loop watch (the
    /// loops' current state only), outputs only as the flags below say.
    #[arg(long)]
    no_wait: bool,
    /// Run the lamp test (green, red, buzzer) without asking.
    #[arg(long)]
    lamp_test: bool,
    /// Raise and lower the barrier without asking; still refused unless the
    /// safety loop reads clear, and never lowered onto it.
    #[arg(long)]
    move_barrier: bool,
    /// Seconds to wait for a card.
    #[arg(long, default_value_t = 30, value_name = "S")]
    card_wait: u64,
    /// Seconds to watch the loops live.
    #[arg(long, default_value_t = 60, value_name = "S")]
    loop_watch: u64,
}

// `parkgate sim ...`: every request of the sim protocol, plus `advance`.
#[derive(Subcommand)]
enum SimCommand {
    #[command(flatten)]
    Hw(hal::sim::SimRequest),
    // Not a sim request: the clock belongs to the daemon (its control socket).
    /// Move a manual-clock daemon's time forward by MS milliseconds.
    Advance { ms: i64 },
    /// Step a manual-clock daemon's wall clock by MS milliseconds (negative:
    /// back), as NTP would; its timers do not move.
    StepWall {
        #[arg(allow_hyphen_values = true)]
        ms: i64,
    },
    /// Say whether the kernel calls a manual-clock daemon's wall clock
    /// synchronised (the system clock asks the real kernel).
    KernelClock { state: KernelClockState },
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum KernelClockState {
    Synced,
    Unsynced,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum OnOff {
    On,
    Off,
}

#[derive(Subcommand)]
enum ReplicaCommand {
    /// Apply a change batch (contract JSON) from a file.
    Apply {
        #[command(flatten)]
        config: ConfigArg,
        /// The batch file: {"v":1, "seq":..., "at":..., "ops":[...]}.
        file: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The demo tells its own story on stdout; only warnings go to the log there.
    let default_level = if matches!(cli.command, Command::Demo) {
        "warn"
    } else {
        "info"
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| default_level.into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match dispatch(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("parkgate: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(command: Command) -> Result<ExitCode> {
    match command {
        Command::Run {
            config,
            demo_data,
            manual_clock,
        } => run(&config.config, demo_data, manual_clock.as_deref()),
        Command::Demo => demo(),
        Command::Status { config, json } => status(&config.config, json),
        Command::Lockdown { config, state } => lockdown(&config.config, state),
        Command::Sim { config, command } => sim(&config.config, command),
        Command::CheckConfig { file } => check_config(&file),
        Command::Availability { config, at } => availability(&config.config, at.as_deref()),
        Command::Replica {
            command: ReplicaCommand::Apply { config, file },
        } => replica_apply(&config.config, &file),
        Command::Events {
            config,
            limit,
            json,
        } => events(&config.config, limit, json),
        Command::Alerts(args) => follow_alerts(&args),
        Command::Doctor(args) => doctor(&args),
    }
}

fn now() -> Timestamp {
    chrono::Local::now().fixed_offset()
}

fn load(path: &Path) -> Result<Config> {
    Ok(config::load(path)?)
}

fn open_db(cfg: &Config) -> Result<Db> {
    let path = &cfg.store.path;
    Db::open(path, Ident::from(cfg))
        .with_context(|| format!("opening the store {}", path.display()))
}

fn check_config(file: &Path) -> Result<ExitCode> {
    match config::load(file) {
        Ok(cfg) => {
            println!("{}: ok\n\n{}", file.display(), config::summary(&cfg));
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            println!("{e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

fn availability(config: &Path, at: Option<&str>) -> Result<ExitCode> {
    let cfg = load(config)?;
    let now = now();
    let at = match at {
        Some(s) => chrono::DateTime::parse_from_rfc3339(s).with_context(|| {
            format!("--at {s:?}: expected RFC 3339, e.g. 2026-11-22T14:00:00+07:00")
        })?,
        None => now,
    };
    let db = open_db(&cfg)?;
    let load = db.load_at(
        &cfg.gate.lot,
        at,
        now,
        cfg.access.early_grace_min,
        cfg.access.late_grace_min,
    )?;
    let free = availability::free(&cfg.capacity, &load);
    print!(
        "{}",
        report::availability(&free, &report::local(at, cfg.tz()))
    );
    Ok(ExitCode::SUCCESS)
}

/// The replica's page cache for `parkgate replica apply`, in MiB.
const APPLY_CACHE_MIB: u32 = 64;

fn replica_apply(config: &Path, file: &Path) -> Result<ExitCode> {
    let cfg = load(config)?;
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let batch: ChangeBatch = contract::parse(&bytes)
        .with_context(|| format!("{}: not a valid change batch", file.display()))?;
    let mut db = open_db(&cfg)?;
    // A one-shot process: memory for the replica's pages is cheap here and
    // saves re-reading and re-writing index pages (`cargo bench --bench apply`).
    db.replica_cache_mib(APPLY_CACHE_MIB)?;
    match db.apply_batch(&batch)? {
        Applied::Applied { seq } => {
            println!("applied batch {seq} ({} ops)", batch.ops.len());
            Ok(ExitCode::SUCCESS)
        }
        Applied::Duplicate { seq } => {
            println!("batch {seq} was already applied; nothing changed");
            Ok(ExitCode::SUCCESS)
        }
        Applied::Gap { have, got } => {
            println!(
                "gap: the replica is at seq {have}, batch {got} needs {}; nothing applied",
                have + 1
            );
            Ok(ExitCode::FAILURE)
        }
    }
}

fn events(config: &Path, limit: usize, json: bool) -> Result<ExitCode> {
    let cfg = load(config)?;
    let db = open_db(&cfg)?;
    let events = db.events(limit)?;
    if json {
        for e in &events {
            println!("{}", serde_json::to_string(e)?);
        }
    } else {
        print!("{}", report::events(&events, cfg.tz()));
    }
    Ok(ExitCode::SUCCESS)
}

fn follow_alerts(args: &AlertsArgs) -> Result<ExitCode> {
    let cfg = args.config_file().map(|path| load(&path)).transpose()?;
    let follow = args.resolve(cfg.as_ref())?;
    let rt = runtime()?;
    let shutdown = shutdown_signal(&rt);
    rt.block_on(alerts::follow(follow, shutdown))?;
    Ok(ExitCode::SUCCESS)
}

fn doctor(args: &DoctorArgs) -> Result<ExitCode> {
    use parkgate::cli::doctor::{self, console::Console, session::Session};
    use std::time::Duration;
    let options = doctor::Options {
        lamp_test: args.lamp_test,
        move_barrier: args.move_barrier,
        card_wait: Duration::from_secs(args.card_wait),
        loop_watch: Duration::from_secs(args.loop_watch),
        ..doctor::Options::default()
    };
    let interactive = !args.no_wait;
    let console = if interactive {
        Console::stdin()
    } else {
        Console::none()
    };
    let mut session = Session::new(std::io::stdout(), console, interactive);
    runtime()?.block_on(doctor::run(&args.config.config, &options, &mut session));
    let (report, _) = session.finish();
    Ok(if report.failed() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

fn run(config: &Path, demo_data: bool, manual_clock: Option<&str>) -> Result<ExitCode> {
    use parkgate::config::Backend;
    use parkgate::daemon::clock::Clock;

    let cfg = load(config)?;
    lean_memory();
    let clock = match manual_clock {
        Some(start) => {
            anyhow::ensure!(
                cfg.hardware.backend == Backend::Sim,
                "--manual-clock needs the sim backend"
            );
            let start = chrono::DateTime::parse_from_rfc3339(start)
                .with_context(|| format!("--manual-clock {start:?}: expected RFC 3339"))?;
            Clock::manual(start, cfg.tz()).0
        }
        None => Clock::system(cfg.tz()),
    };
    let mut db = open_db(&cfg)?;
    if (demo_data || cfg.hardware.demo_data) && db.replica_seq()? == 0 {
        db.apply_batch(&parkgate::cli::demo::replica(
            &cfg.gate.lot,
            clock.now().wall,
        ))?;
        tracing::info!("demo replica loaded");
    }
    let options = daemon::Options {
        clock,
        print: true,
        ready: None,
        systemd: daemon::notify::Systemd::from_env(),
    };
    let rt = runtime()?;
    let shutdown = shutdown_signal(&rt);
    rt.block_on(daemon::serve(cfg, db, options, shutdown))?;
    Ok(ExitCode::SUCCESS)
}

/// SQLite's heap, all connections together, that it keeps its page caches
/// within (once over it, a new page takes the place of the least recently
/// used one instead of growing the cache). Unlimited, each attached file
/// keeps up to 2 MB of pages (its default `cache_size`), the replica's soon
/// full of leaves of random cards, each read about once a day: memory that
/// buys nothing, since the kernel's page cache holds the file either way
/// and a page SQLite let go of is a copy away, not a disk read. The pages
/// every decision touches (the indexes' upper levels, the journal's last
/// pages) are used most recently and stay. Measured at 1,000,000 users
/// with the lot's load kept rather than recounted (`cargo bench --bench
/// daemon`, issue 10): 1 MB against 2 MB changed no tap-to-barrier time
/// (median 1.09 against 1.10 ms) and took the daemon from 16.0 to 15.0 MB.
/// (While every decision still recounted the lot's bookings, reading
/// thousands of pages, 1 MB made it about a tenth slower.)
const SQLITE_SOFT_HEAP: i64 = 1 << 20;

/// Memory settings for the daemon, made before any thread starts; the
/// daemon runs for months on a Pi beside other services (issue 10: under
/// 16 MB). glibc's malloc gives each thread that allocates an arena of its
/// own (up to 8 per core), each holding its freed memory apart: one arena
/// for the few threads of a daemon that spends its time waiting on an
/// fsync costs no measurable contention.
fn lean_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a malloc parameter; called before any other
    // thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
    // SAFETY: a process-wide setting, safe to call at any time.
    unsafe {
        rusqlite::ffi::sqlite3_soft_heap_limit64(SQLITE_SOFT_HEAP);
    }
}

/// Resolves on SIGTERM (systemd stop) or SIGINT (Ctrl-C). The handlers
/// are installed by this call, not when the future is first polled: the
/// daemon polls it only once its loop runs, after `READY=1`, and a SIGTERM
/// in between (systemd may stop a unit as soon as it is ready) would
/// otherwise kill it with the default action instead of a clean shutdown.
fn shutdown_signal(rt: &tokio::runtime::Runtime) -> impl std::future::Future<Output = ()> + use<> {
    use tokio::signal::unix::{SignalKind, signal};
    // Tokio's signal driver belongs to the runtime.
    let _ctx = rt.enter();
    let signals = signal(SignalKind::terminate())
        .and_then(|term| Ok((term, signal(SignalKind::interrupt())?)));
    async move {
        match signals {
            Ok((mut term, mut int)) => {
                tokio::select! {
                    _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
                    _ = int.recv() => tracing::info!("SIGINT: shutting down"),
                }
            }
            Err(_) => std::future::pending().await,
        }
    }
}

fn demo() -> Result<ExitCode> {
    let dir = tempfile::tempdir()?;
    println!("parkgate demo: one lane of lot b1/main on simulated hardware, demo data, no broker.");
    runtime()?.block_on(parkgate::cli::demo::play(dir.path(), true))?;
    Ok(ExitCode::SUCCESS)
}

fn status(config: &Path, json: bool) -> Result<ExitCode> {
    let cfg = load(config)?;
    let status = runtime()?.block_on(control::status(&cfg.control.socket))?;
    if json {
        println!("{}", serde_json::to_string(&status)?);
    } else {
        print!("{}", report::status(&status));
    }
    Ok(ExitCode::SUCCESS)
}

fn lockdown(config: &Path, state: OnOff) -> Result<ExitCode> {
    let cfg = load(config)?;
    let on = state == OnOff::On;
    let now = runtime()?.block_on(control::lockdown(&cfg.control.socket, on))?;
    println!(
        "lockdown {}",
        if now {
            "on: entries refused, exits open"
        } else {
            "off"
        }
    );
    Ok(ExitCode::SUCCESS)
}

fn sim(config: &Path, command: SimCommand) -> Result<ExitCode> {
    use hal::sim::{SimClient, SimRequest};
    let cfg = load(config)?;
    let socket = cfg.hardware.sim_socket.clone();
    let request = match command {
        SimCommand::Hw(SimRequest::Watch) => {
            return runtime()?.block_on(async {
                let mut watch = SimClient::connect(&socket).await?.watch().await?;
                while let Some(line) = watch.next_line().await? {
                    println!("{line}");
                }
                Ok(ExitCode::SUCCESS)
            });
        }
        SimCommand::Hw(request) => request,
        // The clock is the daemon's: these go to its control socket.
        SimCommand::Advance { ms } => {
            let request = control::ControlRequest::Advance { ms };
            let reply = runtime()?.block_on(control::request(&cfg.control.socket, &request))?;
            return Ok(printed(&reply));
        }
        SimCommand::StepWall { ms } => {
            let request = control::ControlRequest::StepWall { ms };
            let reply = runtime()?.block_on(control::request(&cfg.control.socket, &request))?;
            return Ok(printed(&reply));
        }
        SimCommand::KernelClock { state } => {
            let synced = state == KernelClockState::Synced;
            let request = control::ControlRequest::KernelClock { synced };
            let reply = runtime()?.block_on(control::request(&cfg.control.socket, &request))?;
            return Ok(printed(&reply));
        }
    };
    let reply = runtime()?
        .block_on(async { SimClient::connect(&socket).await?.request(&request).await })?;
    Ok(printed(&reply))
}

/// Prints a socket's reply line; success if it says `"ok":true`.
fn printed(reply: &serde_json::Value) -> ExitCode {
    println!("{reply}");
    if reply["ok"] == true {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
