//! The gate's durable state in SQLite: HQ's replica, the event journal (which
//! is also the outbox), and which vehicles are inside.
//!
//! [`Db`] is synchronous and owned by one thread; [`Store`] is the cheap,
//! cloneable handle the rest of the program uses: it sends closures over a
//! channel to that thread. One owner means no locking and no interleaved
//! transactions, and every state change with its event is one transaction.
//!
//! The database runs in WAL mode with `synchronous=FULL`: a committed event
//! survives a power cut, which the contract requires before the barrier moves.

mod checkpoint;
mod codec;
mod counters;
mod facts;
mod files;
mod housekeeping;
mod integrity;
mod journal;
mod kept;
mod occupancy;
mod outbox;
mod presence;
mod recount;
mod replica;
mod schema;
mod snapshot;
#[cfg(test)]
mod tests;

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use rusqlite::Connection;
use tokio::sync::oneshot;

pub use checkpoint::Wal;
pub use files::Files;
pub use housekeeping::{PRUNE_STEP, PRUNE_WAL_PAGES, PruneRun, Pruned};
pub use integrity::Integrity;
pub use outbox::{OutboxFacts, Stored};
pub use replica::Applied;
pub use snapshot::{Adopted, Progress, Skip, Staged, Staging};

/// Who this gate is: the names it stamps on every event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ident {
    /// The building, `{site}` in topics.
    pub site: String,
    /// The parking lot this gate serves, `{lot}`.
    pub lot: String,
    /// This lane's controller, `{gate}`.
    pub gate: String,
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite refused or failed (I/O error, full disk, corrupt file, busy).
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A stored JSON value (an event, a presence record) did not (de)serialise.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    /// The database's directory could not be created.
    #[error("cannot create the database directory {path}: {source}")]
    Dir {
        path: String,
        source: std::io::Error,
    },
    /// A store file could not be removed, renamed or synced.
    #[error("cannot {what} {path}: {source}")]
    File {
        what: &'static str,
        path: String,
        source: std::io::Error,
    },
    /// The file was written by a newer parkgate (schema `found`, this one knows `known`).
    #[error(
        "database schema version {found} is newer than this parkgate knows ({known}); upgrade parkgate"
    )]
    TooNew { found: usize, known: usize },
    /// A replica batch or snapshot breaks the contract; nothing of it was applied.
    #[error("replica op {index}: {reason}")]
    Invalid { index: usize, reason: String },
    /// The database's schema is not what this parkgate made it.
    #[error("unexpected database schema: {0}")]
    Schema(String),
    /// The store thread is gone (it panicked or the program is shutting down).
    #[error("the store thread has stopped")]
    Closed,
}

/// The synchronous store: one SQLite connection (the main file with the
/// replica attached, `files.rs`), used by one thread.
pub struct Db {
    /// Checkpoints the main file's WAL off the store thread (file stores).
    /// First, so that it stops before the connection closes: the last
    /// connection to close checkpoints and removes the WAL.
    _checkpointer: Option<checkpoint::Checkpointer>,
    conn: Connection,
    ident: Ident,
    files: Files,
    /// The directory an in-memory store keeps its replica files in.
    _scratch: Option<tempfile::TempDir>,
    /// The lot's load, kept in step with every write (see [`kept`]).
    kept: std::cell::RefCell<Option<kept::Kept>>,
    /// The wall-clock time (ms) of the last decision's load and when on
    /// the monotonic clock: the idle store thread reads ahead from there.
    last_decision: std::cell::RefCell<Option<(i64, std::time::Instant)>>,
    /// The replica was written since its WAL was last checkpointed.
    replica_written: bool,
    /// When the last prune step ran: pruning paces the WAL itself.
    pruned_at: Option<std::time::Instant>,
    /// This gate's passages journalled since its counters were last
    /// folded (`counters.rs`), as far as this connection knows.
    tail: counters::Tail,
    /// Run inside every [`Db::record`] transaction just before it commits.
    before_commit: Option<Box<dyn FnMut() + Send>>,
}

impl Db {
    /// Opens (or creates) the store whose main file is `path`, creating its
    /// directory, and brings the schema up to date. HQ's replica is in
    /// files beside it ([`Files`]).
    pub fn open(path: &Path, ident: Ident) -> Result<Db, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Dir {
                path: dir.display().to_string(),
                source,
            })?;
        }
        let conn = Connection::open(path)?;
        // WAL: readers never block the writer; FULL: a commit is on disk
        // (WAL fsynced) before it returns, so an event outlives a power cut.
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(%mode, "SQLite refused WAL mode");
        }
        conn.pragma_update(None, "wal_autocheckpoint", checkpoint::AUTO_PAGES)?;
        let mut db = Db::init(conn, Files::beside(path), ident, None)?;
        db._checkpointer = Some(checkpoint::Checkpointer::spawn(path)?);
        Ok(db)
    }

    /// A store whose own records are in memory (tests, dry runs): same
    /// schema, nothing durable. Its replica files are in a scratch
    /// directory removed with it.
    pub fn open_in_memory(ident: Ident) -> Result<Db, StoreError> {
        let scratch = tempfile::tempdir().map_err(|source| StoreError::Dir {
            path: std::env::temp_dir().display().to_string(),
            source,
        })?;
        let files = Files::beside(&scratch.path().join("memory"));
        Db::init(Connection::open_in_memory()?, files, ident, Some(scratch))
    }

    fn init(
        mut conn: Connection,
        files: Files,
        ident: Ident,
        scratch: Option<tempfile::TempDir>,
    ) -> Result<Db, StoreError> {
        conn.pragma_update(None, "synchronous", "FULL")?;
        // Another process (the CLI, sqlite3 while debugging) may hold a lock briefly.
        conn.busy_timeout(Duration::from_secs(5))?;
        // A decision and its commit run some 25 distinct statements; with
        // rusqlite's default of 16 cached, each would be parsed again.
        conn.set_prepared_statement_cache_capacity(64);
        files::attach(&conn, &files.replica)?;
        schema::migrate(&mut conn)?;
        conn.execute_batch(kept::TRIGGERS)?;
        let tail = counters::Tail::unknown(counters::unfolded(&conn)?);
        Ok(Db {
            conn,
            ident,
            files,
            _scratch: scratch,
            kept: Default::default(),
            last_decision: Default::default(),
            _checkpointer: None,
            replica_written: false,
            pruned_at: None,
            tail,
            before_commit: None,
        })
    }

    /// Runs `write` (a transaction) at `synchronous=NORMAL`: its commit
    /// does not wait for the disk. Only for writes a power cut may undo at
    /// no cost but doing them again (WAL keeps the file consistent either
    /// way, and the next event commit, at FULL, makes them durable too).
    fn unsynced<T>(
        &mut self,
        write: impl FnOnce(&mut Db) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        // Cached: preparing a statement costs tens of µs here (the schema
        // is large), more than running either.
        let set = |db: &Db, sql| db.conn.prepare_cached(sql)?.execute([]);
        set(self, "PRAGMA main.synchronous = NORMAL")?;
        let done = write(self);
        // Back to FULL whatever happened: event commits must wait for the disk.
        set(self, "PRAGMA main.synchronous = FULL")?;
        done
    }

    /// This store's files.
    pub fn files(&self) -> &Files {
        &self.files
    }

    /// For tests and benchmarks: runs `hook` inside every event commit just
    /// before it commits, e.g. to hold commits the way a slow SD card does
    /// (sleep) or until a test says so (block on a channel).
    pub fn before_commit(&mut self, hook: impl FnMut() + Send + 'static) {
        self.before_commit = Some(Box::new(hook));
    }

    /// The gate this store belongs to.
    pub fn ident(&self) -> &Ident {
        &self.ident
    }

    /// What the store thread does after each job, once its answer went out
    /// (and at least every `IDLE`): reads ahead the lot's bookings, so
    /// the next decision finds them read, folds the counters' tail once it
    /// is long, and keeps both WALs short. A
    /// failure is logged, never fatal: each is retried next time.
    /// Public for benchmarks that drive a `Db` as the thread does.
    pub fn between_jobs(&mut self, now: std::time::Instant) {
        if let Err(e) = self.tick(now) {
            tracing::warn!(error = %e, "reading ahead the lot's bookings failed");
        }
        if let Err(e) = self.fold_counters_if_long() {
            tracing::warn!(error = %e, "folding the counters' tail failed");
        }
        if let Err(e) = self.keep_wal_short() {
            tracing::warn!(error = %e, "checkpointing the store's WAL failed");
        }
        if let Err(e) = self.checkpoint_replica() {
            tracing::warn!(error = %e, "checkpointing the replica's WAL failed");
        }
    }
}

/// How long the store thread waits for a job before its idle work anyway.
const IDLE: Duration = Duration::from_millis(1000);

/// A job for the store thread.
type Job = Box<dyn FnOnce(&mut Db) + Send>;

/// The handle to the store thread. Clone it freely; the thread (and the
/// database) lives until the last clone is dropped.
#[derive(Clone)]
pub struct Store {
    jobs: mpsc::Sender<Job>,
    /// The main file's WAL after each checkpoint, for pruning's pace.
    wal: Option<tokio::sync::watch::Receiver<checkpoint::Wal>>,
}

/// The store thread itself, to be joined once every [`Store`] is dropped:
/// then it has finished its queue and closed the database.
#[must_use = "join the store thread on shutdown"]
pub struct StoreThread(std::thread::JoinHandle<()>);

impl StoreThread {
    /// Waits for the thread to end (after the last [`Store`] is dropped).
    /// `Err` if a job panicked.
    pub fn join(self) -> std::thread::Result<()> {
        self.0.join()
    }
}

impl Store {
    /// Moves `db` onto its own thread and returns the handle to it, and the
    /// thread to join on shutdown.
    ///
    /// A job that panics ends the thread (its open transaction rolls back);
    /// later calls then fail with [`StoreError::Closed`], which the daemon
    /// treats as fatal rather than carrying on with a store in doubt.
    ///
    /// # Panics
    /// If the OS cannot start a thread (the process is out of resources).
    pub fn spawn(db: Db) -> (Store, StoreThread) {
        let (jobs, rx) = mpsc::channel::<Job>();
        let wal = db.wal();
        let thread = std::thread::Builder::new()
            .name("store".into())
            .spawn(move || {
                let mut db = db;
                loop {
                    match rx.recv_timeout(IDLE) {
                        Ok(job) => job(&mut db),
                        Err(mpsc::RecvTimeoutError::Timeout) => {}
                        Err(mpsc::RecvTimeoutError::Disconnected) => break,
                    }
                    db.between_jobs(std::time::Instant::now());
                }
            })
            .expect("spawning the store thread");
        (Store { jobs, wal }, StoreThread(thread))
    }

    /// Sends `f` to the store thread without waiting: its result arrives on
    /// the receiver. Jobs run one at a time in the order they were sent, so
    /// answers come back in that order too.
    pub fn submit<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Db) -> R + Send + 'static,
    ) -> Result<oneshot::Receiver<R>, StoreError> {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |db| {
            // The caller may have given up waiting; that is not our concern.
            let _ = tx.send(f(db));
        });
        self.jobs.send(job).map_err(|_| StoreError::Closed)?;
        Ok(rx)
    }

    /// Runs `f` on the store thread and awaits its result (async callers).
    pub async fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Db) -> R + Send + 'static,
    ) -> Result<R, StoreError> {
        self.submit(f)?.await.map_err(|_| StoreError::Closed)
    }

    /// Runs `f` on the store thread and blocks until it is done (CLI and other
    /// non-async callers). Panics if called from inside an async task.
    pub fn call_blocking<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Db) -> R + Send + 'static,
    ) -> Result<R, StoreError> {
        self.submit(f)?
            .blocking_recv()
            .map_err(|_| StoreError::Closed)
    }
}

impl From<&crate::config::Config> for Ident {
    fn from(cfg: &crate::config::Config) -> Ident {
        Ident {
            site: cfg.gate.site.clone(),
            lot: cfg.gate.lot.clone(),
            gate: cfg.gate.gate.clone(),
        }
    }
}
