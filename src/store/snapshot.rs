//! Chunked snapshots from HQ (CONTRACT.md, "Replica changes"), built beside
//! the replica so that a million users never hold a card decision.
//!
//! A [`Staging`] owns a connection to the staging file (`files.rs`), a
//! replica-shaped file of its own: the link stages chunks into it from a
//! blocking thread, one transaction per chunk, while the store thread goes
//! on deciding with the replica it has. The last chunk leaves the file a
//! complete replica at the snapshot's seq; [`Db::adopt_snapshot`] then
//! renames it over the replica file, which takes the store thread a few
//! milliseconds whatever the size: no rows are copied and the old replica
//! goes with one unlink.
//!
//! Rules, beyond the contract's:
//! - One snapshot is staged at a time. A chunk of another `snapshot_id`
//!   abandons the staged one (the file is started afresh), unless its `seq`
//!   is older than the staged one's: then it is a late chunk of a snapshot
//!   HQ already replaced, and is ignored, so two snapshots whose chunks
//!   interleave cannot abandon each other forever.
//! - A snapshot not newer than the replica is stale and ignored; if it was
//!   the one being staged (change batches overtook it), staging is cleared.
//! - Staging is durable: after a restart the gate carries on with the chunks
//!   it has, and HQ's redelivered chunks count as repeats. A file that
//!   cannot be opened (a power cut mid-write) is started afresh.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

use super::codec::{col_u64, int, replica_seq, set_replica_seq};
use super::files::{self, open_replica_file};
use super::replica::{LIVE, apply_ops, check_op};
use super::{Db, Files, StoreError};
use crate::domain::contract::{Op, SnapshotChunk, VERSION};

/// The staging connection's page cache, in KiB (SQLite's negative form).
const STAGING_CACHE_KIB: i64 = -64 * 1024;
/// Pages of WAL between the staging file's checkpoints (SQLite: 1,000).
const STAGING_CHECKPOINT_PAGES: i64 = 10_000;

/// What became of a snapshot chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Staged {
    /// Staged; `have` of the snapshot's `of` chunks are in.
    Partial { have: u32, of: u32 },
    /// That was the last chunk: the staging file is the replica at `seq`,
    /// ready for [`Db::adopt_snapshot`].
    Complete { seq: u64 },
    /// Nothing changed, for this reason.
    Ignored(Skip),
}

/// Why a chunk was ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    /// The snapshot is not newer than the replica, or than a complete
    /// snapshot already staged (at `have`).
    Stale { have: u64, got: u64 },
    /// This chunk was staged before (a redelivery).
    Repeated { chunk: u32 },
    /// A newer snapshot (at `staging`) is being staged.
    Superseded { staging: u64, got: u64 },
}

/// The snapshot being staged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    pub snapshot_id: String,
    pub seq: u64,
    pub chunks: u32,
    /// How many distinct chunks are staged.
    pub have: u32,
}

/// What [`Db::adopt_snapshot`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Adopted {
    /// The replica is now the staged snapshot, at `seq`.
    Swapped { seq: u64 },
    /// No complete snapshot is staged.
    Nothing,
    /// The staged snapshot (at `got`) is not newer than the replica (at
    /// `have`): change batches overtook it. It was dropped.
    Stale { have: u64, got: u64 },
    /// Another process (a `parkgate` CLI command) has the replica open, so
    /// its file cannot be replaced now; the snapshot stays staged.
    Busy,
}

/// The staging file and its connection (closed while the file is being
/// adopted, reopened on next use).
pub struct Staging {
    path: PathBuf,
    conn: Option<Connection>,
}

impl Staging {
    /// Opens the staging file at `path` (`Files::staging`), with whatever
    /// it holds from before a restart.
    pub fn open(path: &Path) -> Result<Staging, StoreError> {
        let mut staging = Staging {
            path: path.to_owned(),
            conn: None,
        };
        staging.conn()?;
        Ok(staging)
    }

    /// The snapshot being staged, if any (after a restart too).
    pub fn progress(&mut self) -> Result<Option<Progress>, StoreError> {
        progress(self.conn()?)
    }

    /// The seq of the complete snapshot the file holds, if it holds one.
    pub fn complete(&mut self) -> Result<Option<u64>, StoreError> {
        Ok(Some(replica_seq(self.conn()?)?).filter(|&seq| seq > 0))
    }

    /// Stages one chunk, in one transaction; `have` is the replica's seq.
    ///
    /// A chunk that breaks the contract (wrong `v`, `chunk >= chunks`, a
    /// `chunks` or `seq` other than its snapshot's earlier chunks said, a
    /// delete, a bad record) fails with [`StoreError::Invalid`] and changes
    /// nothing. `index` names the bad op, or 0 when the chunk itself is
    /// wrong.
    pub fn stage(&mut self, chunk: &SnapshotChunk, have: u64) -> Result<Staged, StoreError> {
        check(chunk)?;
        let complete = self.complete()?.unwrap_or(0);
        let have = have.max(complete);
        let staged = self.progress()?;
        let same = staged
            .as_ref()
            .is_some_and(|s| s.snapshot_id == chunk.snapshot_id);
        if chunk.seq <= have {
            if same {
                // It can never be of use now.
                self.abandon()?;
            }
            return Ok(Staged::Ignored(Skip::Stale {
                have,
                got: chunk.seq,
            }));
        }
        match &staged {
            Some(s) if same && (s.seq, s.chunks) != (chunk.seq, chunk.chunks) => {
                return Err(invalid(format!(
                    "snapshot {} chunk {} says seq {} of {} chunks; earlier chunks said seq {} of {}",
                    chunk.snapshot_id, chunk.chunk, chunk.seq, chunk.chunks, s.seq, s.chunks
                )));
            }
            Some(_) if same => {}
            Some(s) if chunk.seq < s.seq => {
                return Ok(Staged::Ignored(Skip::Superseded {
                    staging: s.seq,
                    got: chunk.seq,
                }));
            }
            // Another snapshot's chunks, or a complete one now superseded.
            Some(_) => self.abandon()?,
            None if complete > 0 => self.abandon()?,
            None => {}
        }
        let tx = self
            .conn()?
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let staged = stage_in(&tx, chunk)?;
        tx.commit()?;
        if let Staged::Complete { .. } = staged {
            // Here, off the store thread: checkpointing and syncing a
            // file of hundreds of megabytes takes a while.
            self.close()?;
        }
        Ok(staged)
    }

    /// Drops whatever is staged: the file is started afresh.
    pub fn abandon(&mut self) -> Result<(), StoreError> {
        self.conn = None;
        files::remove(&self.path)?;
        self.conn()?;
        Ok(())
    }

    /// Rows in one of the staging file's tables.
    #[cfg(test)]
    pub(super) fn count(&mut self, table: &str) -> i64 {
        self.conn()
            .unwrap()
            .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    }

    fn conn(&mut self) -> Result<&mut Connection, StoreError> {
        if self.conn.is_none() {
            let conn = match open_replica_file(&self.path) {
                Ok(conn) => conn,
                Err(e) => {
                    tracing::warn!(error = %e, path = %self.path.display(),
                        "the snapshot staging file is unusable; starting it afresh");
                    files::remove(&self.path)?;
                    open_replica_file(&self.path)?
                }
            };
            // Bulk loading into big indexes: a larger page cache and fewer
            // checkpoints (each one an fsync) make it about 1.5 times as fast
            // (`benches/snapshot.rs`). Bounded: 64 MiB, 40 MB of WAL.
            conn.pragma_update(None, "cache_size", STAGING_CACHE_KIB)?;
            conn.pragma_update(None, "wal_autocheckpoint", STAGING_CHECKPOINT_PAGES)?;
            self.conn = Some(conn);
        }
        Ok(self.conn.as_mut().expect("just opened"))
    }

    /// Leaves the file whole on its own (WAL checkpointed into it and
    /// removed, synced) and closes the connection, so it can be renamed.
    fn close(&mut self) -> Result<(), StoreError> {
        if let Some(conn) = self.conn.take() {
            conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")?;
            conn.close().map_err(|(_, e)| e)?;
        }
        sync(&self.path, "sync")
    }
}

impl Db {
    /// Makes a complete staged snapshot the replica: closes the staging
    /// file, detaches the replica, renames the staging file over it and
    /// attaches it again. The rename is atomic, so a crash leaves either
    /// the old replica or the new one (and a complete staging file, adopted
    /// on the next try).
    pub fn adopt_snapshot(&mut self, staging: &mut Staging) -> Result<Adopted, StoreError> {
        let Some(seq) = staging.complete()? else {
            return Ok(Adopted::Nothing);
        };
        let have = self.replica_seq()?;
        if seq <= have {
            staging.abandon()?;
            return Ok(Adopted::Stale { have, got: seq });
        }
        staging.close()?;
        files::detach(&self.conn)?;
        // A WAL file left behind means another connection has the replica
        // open: renaming a new file under it would pair its WAL with the
        // wrong database.
        let replaced = if files::has_wal(&self.files.replica) {
            Ok(false)
        } else {
            self.replace_replica(&staging.path).map(|()| true)
        };
        // Whatever happened, a replica is attached again: the new one or
        // the old one.
        files::attach(&self.conn, &self.files.replica)?;
        self.written(super::kept::Touched::All);
        Ok(if replaced? {
            Adopted::Swapped { seq }
        } else {
            Adopted::Busy
        })
    }

    /// Renames the staged file over the replica. The old replica keeps a
    /// second name (`Files::retired`) so that the rename does not free its
    /// blocks, which for hundreds of megabytes takes the file system tens
    /// of milliseconds: [`Files::remove_retired`] does that, off the store
    /// thread.
    fn replace_replica(&self, staged: &Path) -> Result<(), StoreError> {
        let Files {
            replica, retired, ..
        } = &self.files;
        // Left by a crash after an earlier swap; small or not, it must go.
        files::remove(retired)?;
        let fail = |what, path: &Path| {
            let path = path.display().to_string();
            move |source| StoreError::File { what, path, source }
        };
        std::fs::hard_link(replica, retired).map_err(fail("link the old replica to", retired))?;
        std::fs::rename(staged, replica).map_err(fail("rename the staged snapshot to", replica))?;
        match replica.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => sync(dir, "sync the directory"),
            _ => Ok(()),
        }
    }

    /// This store's staging file.
    pub fn staging(&self) -> Result<Staging, StoreError> {
        Staging::open(&self.files.staging)
    }
}

/// Stages `chunk` inside `tx`: begins its snapshot if it is new, skips a
/// repeated chunk, and completes the file with the last one.
fn stage_in(tx: &Transaction<'_>, chunk: &SnapshotChunk) -> Result<Staged, StoreError> {
    if progress(tx)?.is_none() {
        tx.execute(
            "INSERT INTO snapshot_staging (only, snapshot_id, seq, chunks, have)
             VALUES (1, ?1, ?2, ?3, 0)",
            params![chunk.snapshot_id, int(chunk.seq), chunk.chunks],
        )?;
    }
    let seen: Option<i64> = tx
        .prepare_cached("SELECT chunk FROM snapshot_chunks WHERE chunk = ?1")?
        .query_row([chunk.chunk], |r| r.get(0))
        .optional()?;
    if seen.is_some() {
        return Ok(Staged::Ignored(Skip::Repeated { chunk: chunk.chunk }));
    }
    apply_ops(tx, &chunk.ops, &LIVE)?;
    tx.prepare_cached("INSERT INTO snapshot_chunks (chunk) VALUES (?1)")?
        .execute([chunk.chunk])?;
    let got: u32 = tx
        .prepare_cached("UPDATE snapshot_staging SET have = have + 1 RETURNING have")?
        .query_row([], |r| r.get(0))?;
    if got < chunk.chunks {
        return Ok(Staged::Partial {
            have: got,
            of: chunk.chunks,
        });
    }
    // Complete: the file is now a replica at `seq`, its bookkeeping gone.
    tx.execute_batch("DELETE FROM snapshot_staging; DELETE FROM snapshot_chunks;")?;
    set_replica_seq(tx, chunk.seq)?;
    Ok(Staged::Complete { seq: chunk.seq })
}

/// The checks that need no database: the chunk's own fields and its ops.
fn check(chunk: &SnapshotChunk) -> Result<(), StoreError> {
    if chunk.v != VERSION {
        return Err(invalid(format!(
            "snapshot v is {}, expected {VERSION}",
            chunk.v
        )));
    }
    if chunk.snapshot_id.is_empty() {
        return Err(invalid("empty snapshot_id".into()));
    }
    if chunk.chunk >= chunk.chunks {
        return Err(invalid(format!(
            "chunk {} is not below chunks {}",
            chunk.chunk, chunk.chunks
        )));
    }
    for (index, op) in chunk.ops.iter().enumerate() {
        // A snapshot is the whole replica: there is nothing in it to delete.
        let checked = match op {
            Op::Delete { .. } => Err("a snapshot holds upserts only, not deletes".into()),
            Op::Upsert(_) => check_op(op),
        };
        checked.map_err(|reason| StoreError::Invalid { index, reason })?;
    }
    Ok(())
}

fn invalid(reason: String) -> StoreError {
    StoreError::Invalid { index: 0, reason }
}

fn progress(conn: &Connection) -> Result<Option<Progress>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT snapshot_id, seq, chunks, have FROM snapshot_staging")?
        .query_row([], |r| {
            Ok(Progress {
                snapshot_id: r.get(0)?,
                seq: col_u64(r, 1)?,
                chunks: r.get(2)?,
                have: r.get(3)?,
            })
        })
        .optional()?)
}

/// fsyncs a file or directory.
fn sync(path: &Path, what: &'static str) -> Result<(), StoreError> {
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|source| StoreError::File {
            what,
            path: path.display().to_string(),
            source,
        })
}
