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
//! Only the main file: the replica is swapped by rename (`snapshot.rs`), which
//! no other connection may hold open; the idle store thread checkpoints it.

use std::path::Path;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

use super::StoreError;

/// How often the main file's WAL is checkpointed.
pub(super) const PERIOD: Duration = Duration::from_millis(100);

/// The automatic checkpoint, left as a backstop (pages, about 40 MB).
pub(super) const AUTO_PAGES: u32 = 10_000;

/// The checkpointing thread; stopped and joined when dropped.
pub(super) struct Checkpointer {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts checkpointing the database file at `path` (already created,
    /// in WAL mode).
    pub fn spawn(path: &Path) -> Result<Checkpointer, StoreError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(1))?;
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("checkpoint".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(PERIOD) {
                    let done = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
                    if let Err(e) = done {
                        tracing::warn!(error = %e, "checkpointing the store's WAL failed");
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
        })
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

impl super::Db {
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
