//! Applying HQ's replica changes and snapshots (CONTRACT.md, "Replica changes").
//!
//! A batch is applied whole or not at all, only right after the batch before
//! it; a batch already applied is ignored; a gap is reported and changes
//! nothing. Each upsert replaces the whole record of its key.

use rusqlite::{Connection, TransactionBehavior, params};

use super::codec::{
    REPLICA_HEARD, enum_text, get_meta, ms, replica_seq, set_meta, set_replica_seq, ts_text,
};
use super::kept::Touched;
use super::{Db, StoreError};
use crate::domain::contract::{ChangeBatch, Kind, Op, Record, VERSION};

/// What became of a change batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Applied; the replica is now at `seq`.
    Applied { seq: u64 },
    /// Already applied earlier (a redelivery); ignored.
    Duplicate { seq: u64 },
    /// Batches between `have` and `got` are missing: nothing applied, ask HQ.
    Gap { have: u64, got: u64 },
}

impl Db {
    /// The seq of the last replica batch (or snapshot) applied; 0 when fresh.
    pub fn replica_seq(&self) -> Result<u64, StoreError> {
        replica_seq(&self.conn)
    }

    /// HQ's replica feed was heard at `at` (a batch applied or already
    /// applied, a snapshot chunk): the replica is as fresh as HQ's data.
    pub fn replica_heard(
        &mut self,
        at: &crate::domain::model::Timestamp,
    ) -> Result<(), StoreError> {
        set_meta(
            &self.conn,
            REPLICA_HEARD,
            u64::try_from(ms(at)).unwrap_or(0),
        )
    }

    /// When HQ's replica feed was last heard (None: never, e.g. demo data).
    pub fn replica_heard_at(&self) -> Result<Option<chrono::DateTime<chrono::Utc>>, StoreError> {
        let at = get_meta(&self.conn, REPLICA_HEARD)?;
        Ok((at > 0)
            .then(|| chrono::DateTime::from_timestamp_millis(i64::try_from(at).unwrap_or(0)))
            .flatten())
    }

    /// Lets SQLite keep up to `mib` MiB of the replica's pages in memory on
    /// this connection (its default is 2 MiB), for a process that writes
    /// much of the replica and then exits: `parkgate replica apply`.
    ///
    /// A batch of 10,000 users writes all over the cards' and vehicles'
    /// indexes, which at a million users are tens of MiB: with the default
    /// cache most rows read their leaf page back from the OS and spill
    /// dirty pages to the WAL before the commit, some of them more than
    /// once. The daemon keeps the default, for its memory's sake.
    pub fn replica_cache_mib(&self, mib: u32) -> Result<(), StoreError> {
        let kib = -i64::from(mib) * 1024;
        self.conn
            .pragma_update(Some("replica"), "cache_size", kib)?;
        Ok(())
    }

    /// Applies one change batch, whole or not at all.
    ///
    /// An op that breaks the contract fails the whole batch with
    /// [`StoreError::Invalid`]; the replica and its seq stay as they were.
    pub fn apply_batch(&mut self, batch: &ChangeBatch) -> Result<Applied, StoreError> {
        if batch.v != VERSION {
            return Err(StoreError::Invalid {
                index: 0,
                reason: format!("batch v is {}, expected {VERSION}", batch.v),
            });
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let have = replica_seq(&tx)?;
        if batch.seq <= have {
            return Ok(Applied::Duplicate { seq: batch.seq });
        }
        if batch.seq != have + 1 {
            return Ok(Applied::Gap {
                have,
                got: batch.seq,
            });
        }
        apply_ops(&tx, &batch.ops, &LIVE)?;
        set_replica_seq(&tx, batch.seq)?;
        tx.commit()?;
        self.written(Touched::Ops(&batch.ops));
        Ok(Applied::Applied { seq: batch.seq })
    }

    /// Replaces the whole replica with a snapshot's ops (all chunks, in
    /// order) and sets the replica seq to `seq`, in one transaction.
    ///
    /// Presence and the journal are not part of the replica and stay.
    /// This holds the store thread for the whole snapshot: fine for tests
    /// and small replicas; HQ's chunked snapshots go through
    /// [`Staging::stage`](super::Staging::stage) instead.
    pub fn apply_snapshot(&mut self, seq: u64, ops: &[Op]) -> Result<(), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch(
            "DELETE FROM users; DELETE FROM cards; DELETE FROM vehicles;
             DELETE FROM plans; DELETE FROM reservations;",
        )?;
        apply_ops(&tx, ops, &LIVE)?;
        set_replica_seq(&tx, seq)?;
        tx.commit()?;
        self.written(Touched::All);
        Ok(())
    }
}

/// The statements that write the replica tables, on the store's connection
/// (the attached replica) or a staging file's own (snapshot.rs): the names
/// are the same. Static text so `prepare_cached` finds them without
/// formatting a string per op.
pub(super) struct Tables {
    user: &'static str,
    card: &'static str,
    vehicle: &'static str,
    plan: &'static str,
    reservation: &'static str,
    /// `DELETE` by key: user, card, vehicle, plan, reservation.
    delete: [&'static str; 5],
}

macro_rules! tables {
    ($p:literal) => {
        Tables {
            user: concat!(
                "INSERT OR REPLACE INTO ",
                $p,
                "users (user_id, name, company, status)
                 VALUES (?1, ?2, ?3, ?4)"
            ),
            card: concat!(
                "INSERT OR REPLACE INTO ",
                $p,
                "cards (card, user_id, status, valid_from,
                   valid_from_ms, valid_until, valid_until_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
            ),
            vehicle: concat!(
                "INSERT OR REPLACE INTO ",
                $p,
                "vehicles (vehicle_id, user_id, plate, class,
                   ada, ev, is_primary)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
            ),
            plan: concat!(
                "INSERT OR REPLACE INTO ",
                $p,
                "plans (user_id, kind, lots, valid_until,
                   valid_until_ms, status)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
            ),
            reservation: concat!(
                "INSERT OR REPLACE INTO ",
                $p,
                "reservations (reservation_id, user_id,
                   vehicle_id, lot, spot_id, class, start_at, start_ms, end_at,
                   end_ms, status)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
            ),
            delete: [
                concat!("DELETE FROM ", $p, "users WHERE user_id = ?1"),
                concat!("DELETE FROM ", $p, "cards WHERE card = ?1"),
                concat!("DELETE FROM ", $p, "vehicles WHERE vehicle_id = ?1"),
                concat!("DELETE FROM ", $p, "plans WHERE user_id = ?1"),
                concat!("DELETE FROM ", $p, "reservations WHERE reservation_id = ?1"),
            ],
        }
    };
}

/// The replica tables.
pub(super) const LIVE: Tables = tables!("");

/// Applies `ops` in order to `into`; the caller's transaction makes it all
/// or nothing.
pub(super) fn apply_ops(conn: &Connection, ops: &[Op], into: &Tables) -> Result<(), StoreError> {
    for (index, op) in ops.iter().enumerate() {
        apply_op(conn, op, into).map_err(|e| match e {
            Invalid::Reason(reason) => StoreError::Invalid { index, reason },
            Invalid::Store(e) => e,
        })?;
    }
    Ok(())
}

/// An op failed: either it breaks the contract or SQLite failed.
enum Invalid {
    Reason(String),
    Store(StoreError),
}

impl From<String> for Invalid {
    fn from(reason: String) -> Self {
        Invalid::Reason(reason)
    }
}

impl From<StoreError> for Invalid {
    fn from(e: StoreError) -> Self {
        Invalid::Store(e)
    }
}

impl From<rusqlite::Error> for Invalid {
    fn from(e: rusqlite::Error) -> Self {
        Invalid::Store(e.into())
    }
}

impl From<serde_json::Error> for Invalid {
    fn from(e: serde_json::Error) -> Self {
        Invalid::Store(e.into())
    }
}

/// A card UID as the contract spells it: 4, 7 or 10 bytes of upper-case hex.
/// Lower-case is accepted and upper-cased: the same card either way.
fn card_uid(raw: &str) -> Result<String, String> {
    let uid = raw.to_ascii_uppercase();
    let hex = uid.bytes().all(|b| b.is_ascii_hexdigit());
    if hex && matches!(uid.len(), 8 | 14 | 20) {
        Ok(uid)
    } else {
        Err(format!("card {raw:?} is not a 4, 7 or 10 byte hex UID"))
    }
}

fn key(name: &str, value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err(format!("empty {name}"));
    }
    Ok(())
}

/// The checks on one op that need no database (the ones `apply_ops`
/// makes): a snapshot chunk is checked whole before any of it is staged.
pub(super) fn check_op(op: &Op) -> Result<(), String> {
    match op {
        Op::Delete {
            kind: Kind::Card,
            key: k,
        } => card_uid(k).map(drop),
        Op::Delete { key: k, .. } => key("key", k),
        Op::Upsert(Record::User(u)) => key("user_id", &u.user_id),
        Op::Upsert(Record::Card(c)) => card_uid(&c.card).and_then(|_| key("user_id", &c.user_id)),
        Op::Upsert(Record::Vehicle(v)) => key("vehicle_id", &v.vehicle_id),
        Op::Upsert(Record::Plan(p)) => key("user_id", &p.user_id),
        Op::Upsert(Record::Reservation(r)) => key("reservation_id", &r.reservation_id),
    }
}

fn apply_op(conn: &Connection, op: &Op, into: &Tables) -> Result<(), Invalid> {
    match op {
        Op::Delete { kind, key: k } => {
            let (sql, k) = match kind {
                Kind::User => (into.delete[0], k.clone()),
                Kind::Card => (into.delete[1], card_uid(k)?),
                Kind::Vehicle => (into.delete[2], k.clone()),
                Kind::Plan => (into.delete[3], k.clone()),
                Kind::Reservation => (into.delete[4], k.clone()),
            };
            key("key", &k)?;
            conn.prepare_cached(sql)?.execute([k])?;
        }
        Op::Upsert(Record::User(u)) => {
            key("user_id", &u.user_id)?;
            conn.prepare_cached(into.user)?.execute(params![
                u.user_id,
                u.name,
                u.company,
                enum_text(&u.status)?
            ])?;
        }
        Op::Upsert(Record::Card(c)) => {
            let uid = card_uid(&c.card)?;
            key("user_id", &c.user_id)?;
            conn.prepare_cached(into.card)?.execute(params![
                uid,
                c.user_id,
                enum_text(&c.status)?,
                c.valid_from.as_ref().map(ts_text),
                c.valid_from.as_ref().map(ms),
                c.valid_until.as_ref().map(ts_text),
                c.valid_until.as_ref().map(ms),
            ])?;
        }
        Op::Upsert(Record::Vehicle(v)) => {
            key("vehicle_id", &v.vehicle_id)?;
            conn.prepare_cached(into.vehicle)?.execute(params![
                v.vehicle_id,
                v.user_id,
                v.plate,
                v.class.as_str(),
                v.ada,
                v.ev,
                v.primary
            ])?;
        }
        Op::Upsert(Record::Plan(p)) => {
            key("user_id", &p.user_id)?;
            conn.prepare_cached(into.plan)?.execute(params![
                p.user_id,
                enum_text(&p.kind)?,
                serde_json::to_string(&p.lots)?,
                p.valid_until.as_ref().map(ts_text),
                p.valid_until.as_ref().map(ms),
                enum_text(&p.status)?,
            ])?;
        }
        Op::Upsert(Record::Reservation(r)) => {
            key("reservation_id", &r.reservation_id)?;
            conn.prepare_cached(into.reservation)?.execute(params![
                r.reservation_id,
                r.user_id,
                r.vehicle_id,
                r.lot,
                r.spot_id,
                r.class.as_str(),
                ts_text(&r.start),
                ms(&r.start),
                ts_text(&r.end),
                ms(&r.end),
                enum_text(&r.status)?,
            ])?;
        }
    }
    Ok(())
}
