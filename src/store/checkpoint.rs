//! Checkpoints of the main file's WAL, from a thread and connection of
//! their own.
//!
//! SQLite checkpoints automatically inside the commit that takes the WAL
//! past `wal_autocheckpoint` pages: that commit copies the WAL into the
//! database and fsyncs it, tens of milliseconds on an SD card, while a
//! driver waits for the barrier. Here a thread runs a PASSIVE checkpoint
//! every [`PERIOD`] instead (nearly free when there is nothing new): it
//! never blocks the writer, which goes on appending meanwhile, and the WAL
//! stays far below the automatic threshold, which the store raises to
//! [`AUTO_PAGES`] as a backstop.
//!
//! A writer that never pauses outruns this: the WAL starts again from its
//! beginning only when a write finds every frame already copied, so under
//! back-to-back writes it grows until the automatic checkpoint runs in
//! some commit after all. A growing WAL costs every commit: each fsync
//! then also writes the file's new size and blocks (60 to 80 µs more per
//! card here, [`RESTART_PAGES`]). Each checkpoint therefore reports the
//! WAL's state ([`Wal`]), and the store thread, between jobs, copies what
//! came since a report of a long WAL (a few pages) itself, so that its next
//! write starts the WAL again ([`Db::keep_wal_short`]). Pruning, which
//! writes back to back for seconds, also pauses when the WAL is long until
//! the next checkpoint has copied all it wrote (`housekeeping.rs`).
//!
//! Only the main file: the replica is swapped by rename (`snapshot.rs`), which
//! no other connection may hold open; the idle store thread checkpoints it.

use std::path::Path;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;
use tokio::sync::watch;

use super::{Db, StoreError};

/// How often the main file's WAL is checkpointed.
pub(super) const PERIOD: Duration = Duration::from_millis(100);

/// The automatic checkpoint, left as a backstop (pages, about 40 MB).
pub(super) const AUTO_PAGES: u32 = 10_000;

/// WAL pages (4 KiB, so 4 MB: SQLite's default automatic checkpoint) past
/// which the store thread starts the WAL again itself
/// ([`Db::keep_wal_short`]). The WAL file keeps the largest size it ever
/// reached, and a commit that writes inside it rather than past its end
/// fsyncs data alone: at the seed's scale with cards back to back, that
/// took the decision's commit from a median of about 210 µs to about 125 µs
/// (`cargo bench --bench scale`, README).
pub(super) const RESTART_PAGES: u32 = 1_000;

/// How long after a prune step the store thread leaves the WAL to
/// pruning's own pace ([`Db::keep_wal_short`]).
pub(super) const PRUNE_QUIET: Duration = Duration::from_secs(1);

/// The main file's WAL as the last checkpoint left it (in pages).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Wal {
    /// Pages in the WAL.
    pub pages: u32,
    /// Of those, the ones copied into the database file. All of them: the
    /// next write starts the WAL again from its beginning.
    pub copied: u32,
}

/// The checkpointing thread; stopped and joined when dropped.
pub(super) struct Checkpointer {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    wal: watch::Receiver<Wal>,
}

impl Checkpointer {
    /// Starts checkpointing the database file at `path` (already created,
    /// in WAL mode).
    pub fn spawn(path: &Path) -> Result<Checkpointer, StoreError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(1))?;
        let (stop, stopped) = mpsc::channel::<()>();
        let (report, wal) = watch::channel(Wal::default());
        let thread = std::thread::Builder::new()
            .name("checkpoint".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(PERIOD) {
                    // (busy, pages in the WAL, pages copied)
                    let done = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                        Ok(Wal {
                            pages: r.get::<_, i64>(1)?.try_into().unwrap_or(0),
                            copied: r.get::<_, i64>(2)?.try_into().unwrap_or(0),
                        })
                    });
                    match done {
                        Ok(now) => {
                            report.send_replace(now);
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "checkpointing the store's WAL failed")
                        }
                    }
                }
            })
            .map_err(|source| StoreError::File {
                what: "start the checkpoint thread for",
                path: path.display().to_string(),
                source,
            })?;
        Ok(Checkpointer {
            stop: Some(stop),
            thread: Some(thread),
            wal,
        })
    }

    /// The WAL's state after each checkpoint.
    pub fn wal(&self) -> watch::Receiver<Wal> {
        self.wal.clone()
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Db {
    /// The main file's WAL after each checkpoint (None in memory: no WAL).
    pub fn wal(&self) -> Option<watch::Receiver<Wal>> {
        self._checkpointer.as_ref().map(Checkpointer::wal)
    }

    /// Between jobs: if the checkpoint thread has reported a long WAL
    /// (`RESTART_PAGES`) since the last look, copies what it has not
    /// (what came during and since its checkpoint: a few pages, and an
    /// fsync of the database file), so that the next write starts the WAL
    /// again from its beginning. Whether it copied.
    ///
    /// Only right after a report: any later, and this would copy what the
    /// thread is about to. Cars seconds apart never need it (the thread's
    /// checkpoint copies everything before the next write comes); cards
    /// back to back, or a replica batch, do. Not while pruning (a step in
    /// the last `PRUNE_QUIET`): its steps write hundreds of pages while
    /// the thread copies, which this would then copy with the cards
    /// waiting, and it paces the WAL itself (`housekeeping.rs`).
    pub fn keep_wal_short(&mut self) -> Result<bool, StoreError> {
        if self.pruned_at.is_some_and(|at| at.elapsed() < PRUNE_QUIET) {
            return Ok(false);
        }
        let Some(checkpointer) = &mut self._checkpointer else {
            return Ok(false);
        };
        if !checkpointer.wal.has_changed().unwrap_or(false) {
            return Ok(false);
        }
        if checkpointer.wal.borrow_and_update().pages < RESTART_PAGES {
            return Ok(false);
        }
        self.catch_up_wal()?;
        Ok(true)
    }

    /// Copies into the main file what the checkpoint thread has not yet:
    /// after it, this connection's next write starts the WAL again (it is
    /// the only writer). Cheap only right after that thread's checkpoint.
    pub(super) fn catch_up_wal(&mut self) -> Result<(), StoreError> {
        self.conn
            .query_row("PRAGMA main.wal_checkpoint(PASSIVE)", [], |_| Ok(()))?;
        Ok(())
    }

    /// Checkpoints the replica's WAL if the replica was written since the
    /// last time: the idle store thread's job (see the module's doc).
    pub fn checkpoint_replica(&mut self) -> Result<(), StoreError> {
        if std::mem::take(&mut self.replica_written) {
            self.conn
                .query_row("PRAGMA replica.wal_checkpoint(PASSIVE)", [], |_| Ok(()))?;
        }
        Ok(())
    }
}
