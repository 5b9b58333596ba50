//! What keeps the store bounded and safe over months: HQ command ids seen
//! (replay protection) and the journal's retention.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use rusqlite::{OptionalExtension, TransactionBehavior, params};

use super::codec::{col_u64, exec, int, ms};
use tokio::sync::watch;

use super::checkpoint::Wal;
use super::presence::AppliedRow;
use super::{Db, Store, StoreError};
use crate::domain::model::Timestamp;

/// Rows of each kind one step of the daemon's pruning removes at most.
///
/// Each step is one store job and one transaction, so a card decision queued
/// behind it waits for one step, not for a day of journal (the daemon sends
/// no step while a card's store calls are in flight, so a decision's two
/// jobs, its facts and its commit, find one step ahead at most). About
/// 100 rows of each kind take about a millisecond (`cargo bench --bench
/// prune` prints the wait they add); a day at peak traffic (some 100,000
/// events) is then a thousand steps, a few seconds beside back-to-back
/// decisions, once an hour.
pub const PRUNE_STEP: usize = 100;

/// What one [`Db::prune_step`] (or a whole prune) removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Delivered events older than the cutoff.
    pub events: usize,
    /// Rows of `applied_events` older than the cutoff: siblings' passages,
    /// and this gate's kept after their journal rows went (this gate's
    /// others ride on their journal rows and go with `events`).
    pub applied: usize,
    /// Reservation uses recorded by those passages.
    pub used: usize,
    /// Voids older than the cutoff still waiting for their passage.
    pub voids: usize,
    /// Command ids whose command has expired.
    pub commands: usize,
    /// The step stopped at its bound for some kind: there may be more to
    /// prune. `false` once nothing older than the cutoff is left.
    pub more: bool,
}

impl Pruned {
    /// Rows removed, of every kind.
    pub fn rows(&self) -> usize {
        self.events + self.applied + self.used + self.voids + self.commands
    }

    /// Adds a later step's counts; `more` is the later step's.
    pub fn add(&mut self, step: Pruned) {
        self.events += step.events;
        self.applied += step.applied;
        self.used += step.used;
        self.voids += step.voids;
        self.commands += step.commands;
        self.more = step.more;
    }
}

/// The oldest delivered events before `?1`, at most `?2`, with their event
/// ids and the applied records their rows carry (`presence.rs`), which go
/// with them. Oldest first, so that a prune cut short leaves the journal a
/// contiguous tail, as replay (`first_seq`) expects.
pub(super) const PRUNE_EVENTS: &str = "DELETE FROM events WHERE gate_seq IN
    (SELECT gate_seq FROM events WHERE delivered = 1 AND at_ms < ?1 ORDER BY at_ms LIMIT ?2)
    RETURNING event_id, at_ms, type, vehicle_id, class, before, voided";
/// The oldest applied records of siblings' passages before `?1`, at most
/// `?2`, but a vehicle still inside keeps its check_in's record (a void or
/// a sibling's redelivery of it must still find it). This gate's own
/// passages' records go with their journal rows instead (migration 10 ->
/// 11): their index by time cost every admitted passage a page of WAL.
pub(super) const PRUNE_APPLIED: &str = "SELECT event_id FROM applied_events
    WHERE own = 0 AND at_ms < ?1 AND event_id NOT IN (SELECT event_id FROM presence)
    ORDER BY at_ms LIMIT ?2";
/// Own passages' records kept when their journal row went because their
/// vehicle was still inside, once it has left (or the record went anyway).
pub(super) const PRUNE_KEPT: &str = "SELECT k.event_id FROM applied_kept k
    LEFT JOIN applied_events a ON a.event_id = k.event_id
    WHERE (a.event_id IS NULL OR a.at_ms < ?1)
      AND k.event_id NOT IN (SELECT event_id FROM presence)
    LIMIT ?2";
/// A void whose passage never came within the retention: it never will.
pub(super) const PRUNE_VOIDS: &str = "DELETE FROM pending_voids WHERE related_event_id IN
    (SELECT related_event_id FROM pending_voids WHERE at_ms < ?1 ORDER BY at_ms LIMIT ?2)";
/// Command ids expired by `?1`, at most `?2`: the expiry check alone
/// rejects their replays now.
pub(super) const PRUNE_COMMANDS: &str = "DELETE FROM commands_seen WHERE command_id IN
    (SELECT command_id FROM commands_seen WHERE expires_at_ms < ?1
     ORDER BY expires_at_ms LIMIT ?2)";

impl Db {
    /// Notes that HQ command `command_id` (valid until `expires_at`) was
    /// received. Returns `false` if it was seen before: a replayed command,
    /// to be rejected. Kept across restarts until [`Db::prune`] drops it
    /// after it expired, when the expiry check alone rejects it.
    pub fn note_command(
        &mut self,
        command_id: &str,
        expires_at: Timestamp,
    ) -> Result<bool, StoreError> {
        let fresh = exec(
            &self.conn,
            "INSERT OR IGNORE INTO commands_seen (command_id, expires_at_ms) VALUES (?1, ?2)",
            params![command_id, ms(&expires_at)],
        )?;
        Ok(fresh == 1)
    }

    /// The oldest `gate_seq` still in the journal (None if it is empty): a
    /// replay asking for less gets alert `replay_unavailable` naming this.
    pub fn first_seq(&self) -> Result<Option<u64>, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT MIN(gate_seq) FROM events")?
            .query_row([], |r| {
                r.get::<_, Option<i64>>(0)?
                    .map(|_| col_u64(r, 0))
                    .transpose()
            })
            .optional()?
            .flatten())
    }

    /// Drops what is older than the retention: delivered events stamped
    /// before `cutoff` (undelivered ones are kept whatever their age: the
    /// outbox loses nothing), applied-passage records before `cutoff` (this
    /// gate's own with their events; a vehicle still inside keeps its
    /// check_in's) with the reservation uses they recorded, voids before
    /// `cutoff` still waiting for their passage, and command ids expired by
    /// `now`.
    ///
    /// In steps of [`PRUNE_STEP`] rows, one transaction each, all at once:
    /// for tests and tools. The daemon runs the steps as separate store
    /// jobs ([`Store::prune`]) so that decisions go between them.
    pub fn prune(&mut self, cutoff: Timestamp, now: Timestamp) -> Result<Pruned, StoreError> {
        let mut total = Pruned::default();
        loop {
            let step = self.prune_step(cutoff, now, PRUNE_STEP)?;
            total.add(step);
            if !step.more {
                return Ok(total);
            }
        }
    }

    /// One step of [`Db::prune`], in one transaction: removes at most
    /// `max_rows` (at least 1) of each kind, oldest first, each found
    /// through an index (migration 6 -> 7), so a step costs the same on a
    /// journal of a day or of a year. Says in [`Pruned::more`] whether
    /// another step may find more.
    ///
    /// A passage's reservation use goes with its applied record (looked up
    /// by its event id): nothing else writes one, and a void removes both
    /// together, so no use outlives its record and none needs a scan.
    pub fn prune_step(
        &mut self,
        cutoff: Timestamp,
        now: Timestamp,
        max_rows: usize,
    ) -> Result<Pruned, StoreError> {
        // Committed without waiting for the disk, as delivery marks are
        // (`mark_all_delivered`): a step lost to a power cut is done again
        // by the next prune, WAL keeps the file consistent either way, and
        // the next event commit, at FULL, makes it durable. An fsync per
        // step would instead hold every decision queued behind it.
        self.pruned_at = Some(std::time::Instant::now());
        let step = self.unsynced(|db| db.prune_unsynced(cutoff, now, max_rows.max(1)))?;
        self.written(super::kept::Touched::Nothing);
        Ok(step)
    }

    /// [`Db::prune_step`]'s transaction.
    fn prune_unsynced(
        &mut self,
        cutoff: Timestamp,
        now: Timestamp,
        max_rows: usize,
    ) -> Result<Pruned, StoreError> {
        let (cutoff, limit) = (ms(&cutoff), int(max_rows));
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        // No seq is handed out twice, even if the journal's newest go.
        super::journal::keep_seq_floor(&tx)?;
        // The counters read this gate's passages from the journal's tail;
        // the rows about to go (by time, which a wrong clock can put out of
        // seq order) must be in the table first.
        let folded = super::counters::fold(&tx, self.tail.sums())?;
        let inside: HashSet<String> = tx
            .prepare_cached("SELECT event_id FROM presence")?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        // A pruned event's applied record goes with its row, unless its
        // vehicle is still inside: then it is kept in `applied_events` (a
        // void or a sibling's redelivery must still find it) and listed, to
        // go once the vehicle left.
        let (mut passages, mut kept) = (Vec::new(), Vec::new());
        let mut events = 0;
        for row in tx
            .prepare_cached(PRUNE_EVENTS)?
            .query_map(params![cutoff, limit], PrunedRow::read)?
        {
            let row = row?;
            events += 1;
            if inside.contains(&row.event_id) {
                kept.push(row);
            } else {
                passages.push(row.event_id);
            }
        }
        {
            let mut copy = tx.prepare_cached(
                "INSERT OR IGNORE INTO applied_events
                     (event_id, gate, type, own, vehicle_id, class, before, voided, at_ms)
                 VALUES (?1, ?2, ?3, 1, ?4, ?5, ?6, ?7, ?8)",
            )?;
            let mut keep =
                tx.prepare_cached("INSERT OR IGNORE INTO applied_kept (event_id) VALUES (?1)")?;
            for row in &kept {
                let r = &row.record;
                copy.execute(params![
                    row.event_id,
                    self.ident.gate,
                    r.kind,
                    r.vehicle,
                    r.class,
                    r.before,
                    r.voided,
                    row.at_ms
                ])?;
                keep.execute([&row.event_id])?;
            }
        }
        let remote = tx
            .prepare_cached(PRUNE_APPLIED)?
            .query_map(params![cutoff, limit], |r| r.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        let left = tx
            .prepare_cached(PRUNE_KEPT)?
            .query_map(params![cutoff, limit], |r| r.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        let (mut used, mut applied) = (0, 0);
        {
            // The load's kept copy hears of each use removed through the
            // store's triggers (`kept`).
            let mut forget_use =
                tx.prepare_cached("DELETE FROM used_reservations WHERE event_id = ?1")?;
            let mut forget = tx.prepare_cached("DELETE FROM applied_events WHERE event_id = ?1")?;
            let mut unlist = tx.prepare_cached("DELETE FROM applied_kept WHERE event_id = ?1")?;
            for id in &passages {
                used += forget_use.execute([id])?;
            }
            for id in left.iter().chain(&remote) {
                used += forget_use.execute([id])?;
                applied += forget.execute([id])?;
            }
            for id in &left {
                unlist.execute([id])?;
            }
        }
        let voids = tx
            .prepare_cached(PRUNE_VOIDS)?
            .execute(params![cutoff, limit])?;
        let commands = tx
            .prepare_cached(PRUNE_COMMANDS)?
            .execute(params![ms(&now), limit])?;
        tx.commit()?;
        self.tail = super::counters::Tail::folded(folded);
        let more = [events, remote.len(), left.len(), voids, commands]
            .iter()
            .any(|&n| n >= max_rows);
        let pruned = Pruned {
            events,
            applied,
            used,
            voids,
            commands,
            more,
        };
        Ok(pruned)
    }
}

/// What one [`Store::prune`] did, and how long it held the store thread.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneRun {
    /// The sum of the steps.
    pub pruned: Pruned,
    /// Each step's time on the store thread, in order: the longest is the
    /// most a store job sent meanwhile waited behind one (logged by the
    /// daemon, as a slow card shows here first).
    pub steps: Vec<Duration>,
}

impl PruneRun {
    /// The longest step.
    pub fn longest(&self) -> Duration {
        self.steps.iter().copied().max().unwrap_or_default()
    }
}

impl Store {
    /// The daemon's pruning (see [`Db::prune`]): steps of `max_rows` rows
    /// of each kind, each a store job of its own awaited before the next is
    /// sent, so that card decisions sent meanwhile run between steps and
    /// wait for one step at most.
    pub async fn prune(
        &self,
        cutoff: Timestamp,
        now: Timestamp,
        max_rows: usize,
    ) -> Result<PruneRun, StoreError> {
        self.prune_between(cutoff, now, max_rows, || async {}).await
    }

    /// [`Store::prune`], awaiting `between()` before each step is sent: a
    /// caller that drives other store calls from another task holds the
    /// steps back while one of its own is in flight (the daemon does it in
    /// its loop instead, `daemon.rs`; the prune bench does it this way).
    pub async fn prune_between<W: Future<Output = ()>>(
        &self,
        cutoff: Timestamp,
        now: Timestamp,
        max_rows: usize,
        mut between: impl FnMut() -> W,
    ) -> Result<PruneRun, StoreError> {
        let mut run = PruneRun::default();
        let mut wal = self.wal.clone();
        loop {
            between().await;
            let catch_up = match &mut wal {
                Some(wal) => wal_caught_up(wal).await,
                None => false,
            };
            let (step, took) = self
                .call(move |db| {
                    let started = Instant::now();
                    if catch_up && let Err(e) = db.catch_up_wal() {
                        tracing::warn!(error = %e, "checkpointing the store's WAL failed");
                    }
                    let step = db.prune_step(cutoff, now, max_rows);
                    (step, started.elapsed())
                })
                .await?;
            let step = step?;
            run.pruned.add(step);
            run.steps.push(took);
            if !step.more {
                return Ok(run);
            }
        }
    }
}

/// WAL pages (4 KiB) past which pruning pauses for the checkpoint thread
/// (`checkpoint.rs`): about 8 MB, a fifth of the automatic checkpoint's.
pub const PRUNE_WAL_PAGES: u32 = 2_000;

/// WAL pages past which the store thread copies the rest itself before a
/// step. Reached only when cards come back to back: a pause lets the
/// checkpoint thread copy everything, and the next write starts the WAL
/// again, unless another write came first. The copy costs that step an
/// fsync of the database file; SQLite's own, at 10,000 pages inside some
/// commit, would cost a card far more.
pub const PRUNE_CATCH_UP_PAGES: u32 = 4 * PRUNE_WAL_PAGES;

/// The longest pruning pauses for a checkpoint: one kept from copying
/// everything (a reader on an old snapshot, say the CLI) must not stop
/// pruning; the automatic checkpoint is the backstop.
pub(super) const PRUNE_WAL_WAIT: Duration = Duration::from_secs(2);

/// If the WAL is long, waits until the checkpoint thread has copied all
/// that pruning wrote so far (the second checkpoint from now: the first
/// may have started before the last step). Without the pause, steps back
/// to back outrun the checkpoint thread, the WAL never starts again, and
/// SQLite checkpoints it inside some commit, tens of milliseconds for a
/// card waiting behind it. Says whether the store thread should copy the
/// rest itself ([`PRUNE_CATCH_UP_PAGES`]).
pub(super) async fn wal_caught_up(wal: &mut watch::Receiver<Wal>) -> bool {
    if wal.borrow_and_update().pages <= PRUNE_WAL_PAGES {
        return false;
    }
    // Timed out, or the thread gone: go on all the same.
    let _ = tokio::time::timeout(PRUNE_WAL_WAIT, async {
        let _ = wal.changed().await;
        let _ = wal.changed().await;
    })
    .await;
    wal.borrow_and_update().pages > PRUNE_CATCH_UP_PAGES
}

/// A journal row [`PRUNE_EVENTS`] removed, with its applied record.
struct PrunedRow {
    event_id: String,
    at_ms: i64,
    record: AppliedRow,
}

impl PrunedRow {
    fn read(r: &rusqlite::Row<'_>) -> rusqlite::Result<PrunedRow> {
        Ok(PrunedRow {
            event_id: r.get(0)?,
            at_ms: r.get(1)?,
            record: AppliedRow::read(r, 2)?,
        })
    }
}
