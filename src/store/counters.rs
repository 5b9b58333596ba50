//! This gate's occupancy counters: vehicles entered and exited through it,
//! per class, only ever growing (the contract's `occupancy`).
//!
//! They are kept in two parts, so that an admitted passage's commit, which
//! the barrier waits on, does not write the counters' page of WAL too:
//! - the `counters` table holds this gate's passages up to `counters_seq`
//!   (in `meta`), and the adjustments of voids;
//! - the passages journalled after it are counted from the journal's tail
//!   and their applied records ([`OWN_TAIL`]): a range of `gate_seq`, and
//!   one lookup by key per passage in it.
//!
//! [`fold`] moves the tail into the table: between jobs once the tail is
//! [`FOLD_AFTER`] events long (so that start-up, which reads the counters,
//! never walks more than that), and at every prune step before it deletes
//! journal rows. Every reader sums both parts.

use std::collections::BTreeMap;

use rusqlite::{Connection, TransactionBehavior, params};

use super::codec::{COUNTERS_SEQ, col_enum, col_u64, exec, get_meta, set_meta};
use super::journal::last_seq;
use super::{Db, StoreError};
use crate::domain::model::VehicleClass;

/// `counters.direction` of check-ins.
pub(super) const ENTERED: &str = "entered";
/// `counters.direction` of check-outs.
pub(super) const EXITED: &str = "exited";

/// Events journalled after `counters_seq` before the store thread folds
/// them into the table. The tail is read whole at start-up and whenever a
/// sibling's counters change (the kept load reads all counters again):
/// about 0.1 ms at this length here, folded for about 0.01 pages of WAL per
/// event.
pub(super) const FOLD_AFTER: u64 = 250;

/// This gate's passages journalled after `counters_seq`, one row each, as
/// `(direction, class, n = 1)`, from their journal rows' applied records
/// (`presence.rs`). A passage applied with no class (an exit of a vehicle
/// never seen) counted nothing, and one whose void came first never
/// counted (its class is cleared): both are left out. A passage voided
/// since still counts here; its void added the opposite direction to the
/// table.
const OWN_TAIL: &str = "SELECT CASE type WHEN 'check_in' THEN 'entered' ELSE 'exited' END
         AS direction, class, 1 AS n
    FROM events
    WHERE gate_seq > (SELECT value FROM meta WHERE key = 'counters_seq')
      AND type IN ('check_in', 'check_out') AND class IS NOT NULL";

/// SQL yielding this gate's counters as rows `(direction, class, n)`, both
/// parts, several rows per pair: for readers that sum them.
pub(super) fn own_counters_sql() -> String {
    format!("SELECT direction, class, n FROM counters UNION ALL {OWN_TAIL}")
}

impl Db {
    /// This gate's occupancy counters: vehicles `(entered, exited)` per class
    /// through this gate. They only grow, as the contract's occupancy topic
    /// wants: a voided check_in counts as an exit and a voided check_out as an
    /// entry, so `entered - exited` stays exact.
    #[allow(clippy::type_complexity)]
    pub fn counters(
        &self,
    ) -> Result<(BTreeMap<VehicleClass, u64>, BTreeMap<VehicleClass, u64>), StoreError> {
        let mut stmt = self.conn.prepare_cached(&own_counters_sql())?;
        let mut rows = stmt.query([])?;
        let (mut entered, mut exited) = (BTreeMap::new(), BTreeMap::new());
        while let Some(row) = rows.next()? {
            let direction: String = row.get(0)?;
            let class: VehicleClass = col_enum(row, 1)?;
            let n = col_u64(row, 2)?;
            let sums = if direction == ENTERED {
                &mut entered
            } else {
                &mut exited
            };
            *sums.entry(class).or_insert(0) += n;
        }
        Ok((entered, exited))
    }

    /// Folds the counters' tail into the table once it is [`FOLD_AFTER`]
    /// events long. Committed without waiting for the disk: a fold lost to
    /// a power cut changes no sum, and is done again.
    pub(super) fn fold_counters_if_long(&mut self) -> Result<(), StoreError> {
        if self.tail.len < FOLD_AFTER {
            return Ok(());
        }
        let folded = self.unsynced(|db| {
            let tx = db
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            let folded = fold(&tx, db.tail.sums())?;
            super::kept::sums_unchanged(&tx)?;
            tx.commit()?;
            Ok(folded)
        })?;
        self.tail = Tail::folded(folded);
        self.written(super::kept::Touched::Nothing);
        Ok(())
    }
}

/// This gate's passages journalled after `counters_seq`, as this store
/// counted them when they committed: folding writes these sums rather
/// than reading the tail back (a join of a few hundred rows, 0.15 to
/// 0.4 ms of the store thread between two cards at the seed's scale).
#[derive(Debug, Default)]
pub(super) struct Tail {
    /// Events journalled since the last fold, as far as this store knows.
    pub len: u64,
    /// The tail's sums, if this store committed every event of it: not
    /// after opening, nor once another process journalled in between.
    sums: Option<Sums>,
}

/// Passages per `(direction, class)` over `gate_seq` `from + 1 ..= to`,
/// where `from` was `counters_seq`.
#[derive(Debug)]
pub(super) struct Sums {
    from: u64,
    to: u64,
    n: BTreeMap<(&'static str, VehicleClass), i64>,
}

impl Tail {
    /// A tail of `len` events this store did not count.
    pub fn unknown(len: u64) -> Tail {
        Tail { len, sums: None }
    }

    /// The empty tail after a fold up to `gate_seq` `at`.
    pub fn folded(at: u64) -> Tail {
        let sums = Sums {
            from: at,
            to: at,
            n: BTreeMap::new(),
        };
        Tail {
            len: 0,
            sums: Some(sums),
        }
    }

    /// The tail's sums, if this store counted all of it.
    pub fn sums(&self) -> Option<&Sums> {
        self.sums.as_ref()
    }

    /// This store committed events `first..=last`, of which `counted` are
    /// passages counted in its counters (`Applied::Counted`).
    pub fn committed(&mut self, first: u64, last: u64, counted: &[(&'static str, VehicleClass)]) {
        self.len += (last + 1).saturating_sub(first);
        match &mut self.sums {
            Some(sums) if sums.to + 1 == first => {
                sums.to = last;
                for &key in counted {
                    *sums.n.entry(key).or_insert(0) += 1;
                }
            }
            // A seq taken by another process: that event is not counted here.
            _ => self.sums = None,
        }
    }
}

/// How many events the counters' tail spans (from `conn`'s view).
pub(super) fn unfolded(conn: &Connection) -> Result<u64, StoreError> {
    Ok(last_seq(conn)?.saturating_sub(get_meta(conn, COUNTERS_SEQ)?))
}

/// Moves the counters' tail into the table, in the caller's transaction:
/// the sums stay the same, and the tail is empty after it. From `known`
/// sums if they cover exactly the tail (`from` is `counters_seq`, `to` the
/// last seq), else by reading the tail. Returns the new `counters_seq`.
pub(super) fn fold(conn: &Connection, known: Option<&Sums>) -> Result<u64, StoreError> {
    let (from, last) = (get_meta(conn, COUNTERS_SEQ)?, last_seq(conn)?);
    if last <= from {
        return Ok(from);
    }
    match known {
        Some(sums) if (sums.from, sums.to) == (from, last) => {
            for (&(direction, class), &n) in &sums.n {
                bump(conn, direction, class, n)?;
            }
        }
        _ => {
            // `WHERE true`: without it SQLite would read the upsert's ON as a join's.
            let sql = format!(
                "INSERT INTO counters (direction, class, n)
                 SELECT direction, class, SUM(n) FROM ({OWN_TAIL}) WHERE true GROUP BY 1, 2
                 ON CONFLICT (direction, class) DO UPDATE SET n = n + excluded.n"
            );
            exec(conn, &sql, [])?;
        }
    }
    set_meta(conn, COUNTERS_SEQ, last)?;
    Ok(last)
}

/// Adds `delta` to a counter in the table; a counter never goes below zero.
pub(super) fn bump(
    conn: &Connection,
    direction: &str,
    class: VehicleClass,
    delta: i64,
) -> Result<(), StoreError> {
    exec(
        conn,
        "INSERT INTO counters (direction, class, n) VALUES (?1, ?2, MAX(?3, 0))
         ON CONFLICT (direction, class) DO UPDATE SET n = MAX(n + ?3, 0)",
        params![direction, class.as_str(), delta],
    )?;
    Ok(())
}
