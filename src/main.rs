//! The `parkgate` command: parse arguments, call one function per subcommand.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use clap::{Args, Parser, Subcommand};

use parkgate::config::{self, Config};
use parkgate::contract::{self, ChangeBatch};
use parkgate::model::Timestamp;
use parkgate::store::{Applied, Db, Ident};
use parkgate::{availability, report};

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
    #[arg(long, short, env = "PARKGATE_CONFIG", default_value = "/etc/parkgate/gate.toml")]
    config: PathBuf,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gate daemon.
    Run {
        #[command(flatten)]
        config: ConfigArg,
        /// Load the demo replica (people, cards, plans) if the store is empty.
        #[arg(long)]
        demo_data: bool,
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
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
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
        Command::Run { config, demo_data } => run(&config.config, demo_data),
        Command::CheckConfig { file } => check_config(&file),
        Command::Availability { config, at } => availability(&config.config, at.as_deref()),
        Command::Replica { command: ReplicaCommand::Apply { config, file } } => replica_apply(&config.config, &file),
        Command::Events { config, limit, json } => events(&config.config, limit, json),
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
    Db::open(path, Ident::from(cfg)).with_context(|| format!("opening the store {}", path.display()))
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
        Some(s) => chrono::DateTime::parse_from_rfc3339(s)
            .with_context(|| format!("--at {s:?}: expected RFC 3339, e.g. 2026-11-22T14:00:00+07:00"))?,
        None => now,
    };
    let db = open_db(&cfg)?;
    let load = db.load_at(&cfg.gate.lot, at, now, cfg.access.early_grace_min, cfg.access.late_grace_min)?;
    let free = availability::free(&cfg.capacity, &load);
    print!("{}", report::availability(&free, &report::local(at, cfg.tz())));
    Ok(ExitCode::SUCCESS)
}

fn replica_apply(config: &Path, file: &Path) -> Result<ExitCode> {
    let cfg = load(config)?;
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let batch: ChangeBatch =
        contract::parse(&bytes).with_context(|| format!("{}: not a valid change batch", file.display()))?;
    let mut db = open_db(&cfg)?;
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
            println!("gap: the replica is at seq {have}, batch {got} needs {}; nothing applied", have + 1);
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

fn run(config: &Path, demo_data: bool) -> Result<ExitCode> {
    let cfg = load(config)?;
    let mut db = open_db(&cfg)?;
    if demo_data && db.replica_seq()? == 0 {
        db.apply_batch(&parkgate::demo::replica(&cfg.gate.lot, now()))?;
    }
    anyhow::bail!("the lane is not wired yet")
}
