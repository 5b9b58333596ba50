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
//! A commit that writes past the WAL file's end costs more than one that
//! writes inside it: its fsync also records the file's new size (a
//! journal commit of the file system). SQLite never shrinks the WAL while
//! it is open, but deletes it when the last connection closes, so after
//! every start the first thousand pages or so of commits (cards, here the
//! first 1,600 after a start) each paid that. The thread therefore grows
//! the WAL to its working size ([`GROWN_PAGES`]) ahead of use, with zeros,
//! a step per period ([`grow_wal`]): SQLite reads a WAL only up to its
//! first frame whose salt and checksum do not match, so zeros past the
//! last commit are as inert as the stale frames it leaves there itself.
//! The space is then also held for the journal when the disk fills.
//!
//! Only the main file: the replica is swapped by rename (`snapshot.rs`), which
//! no other connection may hold open; the idle store thread checkpoints it.

use std::io::Write;
use std::path::Path;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::{Connection, Transaction, TransactionBehavior};
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

/// Frames the checkpoint thread grows the main file's WAL to ahead of use
/// (about 6 MB): [`RESTART_PAGES`] and what cards back to back add in the
/// time the store thread takes to start it again (at most about 1,400
/// seen at the seed's scale, `cargo bench --bench scale`).
pub(super) const GROWN_PAGES: u64 = 1_500;

/// Bytes of zeros the checkpoint thread appends to the WAL each period
/// until it is grown: each step holds SQLite's write lock while the bytes
/// go to the page cache (well under a millisecond), and is fsynced after.
pub(super) const GROW_STEP: u64 = 1 << 20;

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
        let page: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
        let page = u64::try_from(page).unwrap_or(4096);
        let (wal_path, wal_bytes) = (wal_file(path), wal_size(GROWN_PAGES, page));
        let mut grown = false;
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
                    if !grown {
                        grown = match grow_wal(&conn, &wal_path, wal_bytes, GROW_STEP) {
                            Ok(len) => len >= wal_bytes,
                            Err(e) => {
                                // Commits still work, only past the file's end.
                                tracing::warn!(error = %e, "growing the store's WAL failed");
                                true
                            }
                        };
                    }
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

/// The WAL file of the database file at `path`.
fn wal_file(path: &Path) -> std::path::PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push("-wal");
    name.into()
}

/// Bytes of a WAL of `frames` frames of `page`-byte pages: a 32-byte
/// header, then each frame's 24-byte header and its page.
pub(super) fn wal_size(frames: u64, page: u64) -> u64 {
    32 + frames * (24 + page)
}

/// Appends at most `step` bytes of zeros to the WAL file `wal` of `conn`'s
/// main database, up to `want` bytes; its length after. Under SQLite's
/// write lock (`BEGIN IMMEDIATE`, waiting `conn`'s busy timeout for
/// another writer), so that no frame is being written meanwhile: every
/// valid frame then lies before the file's end, and the next are written
/// over the zeros. The fsync comes after the lock is released. A WAL file
/// that is not there (no connection has used it yet) is left alone.
pub(super) fn grow_wal(
    conn: &Connection,
    wal: &Path,
    want: u64,
    step: u64,
) -> Result<u64, StoreError> {
    // A page at a time: one large write lets the page cache hold the file
    // in large folios, and each commit then dirties a whole folio, which
    // the kernel counts as written (`/proc/self/io`, the benches' wear
    // figure: 1.6 MB a commit), though the device writes what it did.
    static ZEROS: [u8; 4096] = [0; 4096];
    let failed = |what, source| StoreError::File {
        what,
        path: wal.display().to_string(),
        source,
    };
    // Grown already (by this process or another): not even the lock.
    if let Ok(m) = std::fs::metadata(wal)
        && m.len() >= want
    {
        return Ok(m.len());
    }
    let lock = Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
    let mut file = match std::fs::OpenOptions::new().append(true).open(wal) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(failed("open", e)),
    };
    let len = file
        .metadata()
        .map_err(|e| failed("read the size of", e))?
        .len();
    let mut left = want.saturating_sub(len).min(step);
    let added = left;
    while left > 0 {
        let n = left.min(ZEROS.len() as u64) as usize;
        file.write_all(&ZEROS[..n]).map_err(|e| failed("grow", e))?;
        left -= n as u64;
    }
    lock.commit()?;
    if added > 0 {
        file.sync_data().map_err(|e| failed("sync", e))?;
    }
    Ok(len + added)
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
