//! The database schema, as an ordered list of migrations.
//!
//! `MIGRATIONS[i]` takes a database from version `i` to `i + 1`; the version
//! lives in `PRAGMA user_version`. A migration once released is never edited:
//! a change to the schema is a new entry at the end, so every gate in the
//! field, whatever version it was installed at, upgrades the same way.
//!
//! Timestamps are stored twice: as the RFC 3339 text the record carried (with
//! its offset, for reading back) and as `*_ms` epoch milliseconds (for
//! comparing and indexing). Tables are STRICT so a wrong type is an error,
//! not a silent conversion.

use rusqlite::{Connection, TransactionBehavior};

use super::StoreError;
use super::codec::int;

/// The migrations, in order. Index = the version they upgrade from.
pub(super) const MIGRATIONS: &[&str] = &[
    // 0 -> 1: the replica of HQ's records and the bookkeeping counters.
    r#"
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value INTEGER NOT NULL
    ) STRICT;
    INSERT INTO meta (key, value) VALUES ('replica_seq', 0);

    CREATE TABLE users (
        user_id TEXT PRIMARY KEY,
        name    TEXT NOT NULL,
        company TEXT,
        status  TEXT NOT NULL
    ) STRICT;

    CREATE TABLE cards (
        card           TEXT PRIMARY KEY,
        user_id        TEXT NOT NULL,
        status         TEXT NOT NULL,
        valid_from     TEXT,
        valid_from_ms  INTEGER,
        valid_until    TEXT,
        valid_until_ms INTEGER
    ) STRICT;
    CREATE INDEX cards_user ON cards (user_id);

    CREATE TABLE vehicles (
        vehicle_id TEXT PRIMARY KEY,
        user_id    TEXT NOT NULL,
        plate      TEXT,
        class      TEXT NOT NULL,
        ada        INTEGER NOT NULL,
        ev         INTEGER NOT NULL,
        is_primary INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX vehicles_user ON vehicles (user_id);

    CREATE TABLE plans (
        user_id        TEXT PRIMARY KEY,
        kind           TEXT NOT NULL,
        lots           TEXT NOT NULL, -- JSON array of lot names
        valid_until    TEXT,
        valid_until_ms INTEGER,
        status         TEXT NOT NULL
    ) STRICT;

    CREATE TABLE reservations (
        reservation_id TEXT PRIMARY KEY,
        user_id        TEXT NOT NULL,
        vehicle_id     TEXT NOT NULL,
        lot            TEXT NOT NULL,
        spot_id        TEXT,
        class          TEXT NOT NULL,
        start_at       TEXT NOT NULL,
        start_ms       INTEGER NOT NULL,
        end_at         TEXT NOT NULL,
        end_ms         INTEGER NOT NULL,
        status         TEXT NOT NULL
    ) STRICT;
    -- load_at: the lot's reservations not yet over (10,000 a day plus history).
    CREATE INDEX reservations_lot_start ON reservations (lot, start_ms);
    -- facts: one user's reservations around now.
    CREATE INDEX reservations_user ON reservations (user_id, lot, start_ms);
    "#,
    // 1 -> 2: the event journal (also the outbox) and what it implies.
    r#"
    INSERT INTO meta (key, value) VALUES ('gate_seq', 0);

    CREATE TABLE events (
        gate_seq  INTEGER PRIMARY KEY,
        event_id  TEXT NOT NULL UNIQUE,
        type      TEXT NOT NULL,
        at        TEXT NOT NULL,
        at_ms     INTEGER NOT NULL,
        json      TEXT NOT NULL,       -- the exact bytes published (and replayed)
        delivered INTEGER NOT NULL DEFAULT 0
    ) STRICT;
    CREATE INDEX events_outbox ON events (gate_seq) WHERE delivered = 0;
    CREATE INDEX events_at ON events (at_ms);

    -- Vehicles inside the lot, from check_in/check_out/void of every gate.
    CREATE TABLE presence (
        vehicle_id     TEXT PRIMARY KEY,
        user_id        TEXT NOT NULL,
        class          TEXT NOT NULL,
        ada            INTEGER NOT NULL,
        ev             INTEGER NOT NULL,
        since          TEXT NOT NULL,
        since_ms       INTEGER NOT NULL,
        reservation_id TEXT,
        spot_id        TEXT,
        plan           TEXT NOT NULL,
        event_id       TEXT NOT NULL
    ) STRICT;
    CREATE INDEX presence_user ON presence (user_id);

    -- Passage events (own and siblings') whose effect on presence was applied:
    -- applied once per event_id, and what a void needs to undo them.
    CREATE TABLE applied_events (
        event_id   TEXT PRIMARY KEY,
        gate       TEXT NOT NULL,
        type       TEXT NOT NULL,
        own        INTEGER NOT NULL,   -- recorded by this gate (counts in its counters)
        vehicle_id TEXT,
        class      TEXT,
        before     TEXT,               -- JSON of the vehicle's presence before, or NULL
        voided     INTEGER NOT NULL DEFAULT 0,
        at_ms      INTEGER NOT NULL
    ) STRICT;

    -- Reservations a check_in used: they no longer hold a spot, even after
    -- the vehicle left again.
    CREATE TABLE used_reservations (
        event_id       TEXT PRIMARY KEY,
        reservation_id TEXT NOT NULL
    ) STRICT;
    CREATE INDEX used_reservations_id ON used_reservations (reservation_id);

    -- This gate's occupancy counters; kept apart from the journal so that
    -- pruning old events never lowers them.
    CREATE TABLE counters (
        direction TEXT NOT NULL,       -- 'entered' or 'exited'
        class     TEXT NOT NULL,
        n         INTEGER NOT NULL,
        PRIMARY KEY (direction, class)
    ) STRICT;
    "#,
    // 2 -> 3: HQ command ids seen, kept until they expire (replay protection).
    r#"
    CREATE TABLE commands_seen (
        command_id    TEXT PRIMARY KEY,
        expires_at_ms INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX commands_seen_expiry ON commands_seen (expires_at_ms);
    "#,
    // 3 -> 4: chunked snapshots (store/snapshot.rs). Each replica table gets a
    // `staging_` twin with the same columns and indexes; the swap renames the
    // twins over the live tables. Index names must be unique in the file, so
    // each secondary index alternates between its name and `{name}_alt`
    // (whichever its twin is not using). A later migration that changes a
    // replica table must change its twin the same way.
    r#"
    CREATE TABLE staging_users (
        user_id TEXT PRIMARY KEY,
        name    TEXT NOT NULL,
        company TEXT,
        status  TEXT NOT NULL
    ) STRICT;

    CREATE TABLE staging_cards (
        card           TEXT PRIMARY KEY,
        user_id        TEXT NOT NULL,
        status         TEXT NOT NULL,
        valid_from     TEXT,
        valid_from_ms  INTEGER,
        valid_until    TEXT,
        valid_until_ms INTEGER
    ) STRICT;
    CREATE INDEX cards_user_alt ON staging_cards (user_id);

    CREATE TABLE staging_vehicles (
        vehicle_id TEXT PRIMARY KEY,
        user_id    TEXT NOT NULL,
        plate      TEXT,
        class      TEXT NOT NULL,
        ada        INTEGER NOT NULL,
        ev         INTEGER NOT NULL,
        is_primary INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX vehicles_user_alt ON staging_vehicles (user_id);

    CREATE TABLE staging_plans (
        user_id        TEXT PRIMARY KEY,
        kind           TEXT NOT NULL,
        lots           TEXT NOT NULL, -- JSON array of lot names
        valid_until    TEXT,
        valid_until_ms INTEGER,
        status         TEXT NOT NULL
    ) STRICT;

    CREATE TABLE staging_reservations (
        reservation_id TEXT PRIMARY KEY,
        user_id        TEXT NOT NULL,
        vehicle_id     TEXT NOT NULL,
        lot            TEXT NOT NULL,
        spot_id        TEXT,
        class          TEXT NOT NULL,
        start_at       TEXT NOT NULL,
        start_ms       INTEGER NOT NULL,
        end_at         TEXT NOT NULL,
        end_ms         INTEGER NOT NULL,
        status         TEXT NOT NULL
    ) STRICT;
    CREATE INDEX reservations_lot_start_alt ON staging_reservations (lot, start_ms);
    CREATE INDEX reservations_user_alt ON staging_reservations (user_id, lot, start_ms);

    -- The snapshot being staged: at most one row.
    CREATE TABLE snapshot_staging (
        only        INTEGER PRIMARY KEY CHECK (only = 1),
        snapshot_id TEXT NOT NULL,
        seq         INTEGER NOT NULL,
        chunks      INTEGER NOT NULL,
        have        INTEGER NOT NULL   -- rows in snapshot_chunks
    ) STRICT;
    -- The set of its chunks staged so far.
    CREATE TABLE snapshot_chunks (
        chunk INTEGER PRIMARY KEY
    ) STRICT;
    "#,
    // 4 -> 5: voids of siblings' passages not seen yet (a void can overtake
    // its passage between gates): applied when the passage comes.
    r#"
    CREATE TABLE pending_voids (
        related_event_id TEXT PRIMARY KEY,
        void_event_id    TEXT NOT NULL,
        at_ms            INTEGER NOT NULL
    ) STRICT;

    -- The highest occupancy counters seen from each sibling gate (their
    -- retained `occupancy`): the lot's count that lost events cannot lower.
    CREATE TABLE gate_counters (
        gate      TEXT NOT NULL,
        direction TEXT NOT NULL,       -- 'entered' or 'exited'
        class     TEXT NOT NULL,
        n         INTEGER NOT NULL,
        PRIMARY KEY (gate, direction, class)
    ) STRICT;
    "#,
    // 5 -> 6: HQ's replica moves to a file of its own (`replica.rs`, "Files"),
    // attached as `replica` before this runs; its tables, its seq and the
    // snapshot staging of migration 4 leave this file.
    r#"
    INSERT OR REPLACE INTO replica.users SELECT * FROM main.users;
    INSERT OR REPLACE INTO replica.cards SELECT * FROM main.cards;
    INSERT OR REPLACE INTO replica.vehicles SELECT * FROM main.vehicles;
    INSERT OR REPLACE INTO replica.plans SELECT * FROM main.plans;
    INSERT OR REPLACE INTO replica.reservations SELECT * FROM main.reservations;
    UPDATE replica.replica_meta
       SET value = (SELECT value FROM main.meta WHERE key = 'replica_seq')
     WHERE key = 'replica_seq'
       AND EXISTS (SELECT 1 FROM main.meta WHERE key = 'replica_seq');
    DELETE FROM main.meta WHERE key = 'replica_seq';
    DROP TABLE main.users;
    DROP TABLE main.cards;
    DROP TABLE main.vehicles;
    DROP TABLE main.plans;
    DROP TABLE main.reservations;
    DROP TABLE main.staging_users;
    DROP TABLE main.staging_cards;
    DROP TABLE main.staging_vehicles;
    DROP TABLE main.staging_plans;
    DROP TABLE main.staging_reservations;
    DROP TABLE main.snapshot_staging;
    DROP TABLE main.snapshot_chunks;
    "#,
    // 6 -> 7: pruning in small steps (housekeeping.rs) finds each step's
    // oldest rows through an index instead of scanning the table: delivered
    // events by time (undelivered ones, never pruned, are not in it, so a
    // month's outbox waiting for HQ is not walked again at every step), and
    // applied passages and pending voids by time. The full index of events
    // by time goes: nothing else reads it, and it cost every event commit,
    // which the barrier waits on, a page of WAL (the partial one is written
    // by the delivery mark, off the barrier's path).
    r#"
    DROP INDEX events_at;
    CREATE INDEX events_prunable ON events (at_ms) WHERE delivered = 1;
    CREATE INDEX applied_events_at ON applied_events (at_ms);
    CREATE INDEX pending_voids_at ON pending_voids (at_ms);
    "#,
    // 7 -> 8: the tables a passage writes, keyed by their text key alone
    // (WITHOUT ROWID). A rowid table with a text primary key is two
    // b-trees, row and key, so each insert wrote a page of each to the WAL
    // the barrier waits on: two to three pages fewer per passage.
    r#"
    CREATE TABLE presence_by_key (
        vehicle_id     TEXT PRIMARY KEY,
        user_id        TEXT NOT NULL,
        class          TEXT NOT NULL,
        ada            INTEGER NOT NULL,
        ev             INTEGER NOT NULL,
        since          TEXT NOT NULL,
        since_ms       INTEGER NOT NULL,
        reservation_id TEXT,
        spot_id        TEXT,
        plan           TEXT NOT NULL,
        event_id       TEXT NOT NULL
    ) STRICT, WITHOUT ROWID;
    INSERT INTO presence_by_key SELECT vehicle_id, user_id, class, ada, ev, since,
        since_ms, reservation_id, spot_id, plan, event_id FROM presence;
    DROP TABLE presence;
    ALTER TABLE presence_by_key RENAME TO presence;
    CREATE INDEX presence_user ON presence (user_id);

    CREATE TABLE applied_events_by_key (
        event_id   TEXT PRIMARY KEY,
        gate       TEXT NOT NULL,
        type       TEXT NOT NULL,
        own        INTEGER NOT NULL,   -- recorded by this gate (counts in its counters)
        vehicle_id TEXT,
        class      TEXT,
        before     TEXT,               -- JSON of the vehicle's presence before, or NULL
        voided     INTEGER NOT NULL DEFAULT 0,
        at_ms      INTEGER NOT NULL
    ) STRICT, WITHOUT ROWID;
    INSERT INTO applied_events_by_key SELECT event_id, gate, type, own, vehicle_id,
        class, before, voided, at_ms FROM applied_events;
    DROP TABLE applied_events;
    ALTER TABLE applied_events_by_key RENAME TO applied_events;
    CREATE INDEX applied_events_at ON applied_events (at_ms);

    CREATE TABLE used_reservations_by_key (
        event_id       TEXT PRIMARY KEY,
        reservation_id TEXT NOT NULL
    ) STRICT, WITHOUT ROWID;
    INSERT INTO used_reservations_by_key SELECT event_id, reservation_id
        FROM used_reservations;
    DROP TABLE used_reservations;
    ALTER TABLE used_reservations_by_key RENAME TO used_reservations;
    CREATE INDEX used_reservations_id ON used_reservations (reservation_id);
    "#,
    // 8 -> 9: an event's commit writes the journal's row alone. Its
    // `event_id` (a ULID made here) was UNIQUE, a second b-tree nothing
    // reads; the outbox's partial index is replaced by `outbox_floor` in
    // `meta` (every event up to it is delivered), which the delivery marks
    // move on, off the barrier's path (`outbox.rs`). Refusals went from
    // three pages of WAL to one, admitted passages lost two.
    r#"
    INSERT OR REPLACE INTO meta (key, value) VALUES ('outbox_floor',
        COALESCE((SELECT MIN(gate_seq) FROM events WHERE delivered = 0) - 1,
                 (SELECT MAX(gate_seq) FROM events), 0));
    CREATE TABLE events_lean (
        gate_seq  INTEGER PRIMARY KEY,
        event_id  TEXT NOT NULL,
        type      TEXT NOT NULL,
        at        TEXT NOT NULL,
        at_ms     INTEGER NOT NULL,
        json      TEXT NOT NULL,
        delivered INTEGER NOT NULL DEFAULT 0
    ) STRICT;
    INSERT INTO events_lean SELECT gate_seq, event_id, type, at, at_ms, json, delivered
        FROM events;
    DROP TABLE events;
    ALTER TABLE events_lean RENAME TO events;
    CREATE INDEX events_prunable ON events (at_ms) WHERE delivered = 1;
    "#,
    // 9 -> 10: presence by user is found in the kept load's mirror of
    // presence (`kept.rs`), not this index, which cost every check_in and
    // check_out a page of WAL (and, as presence fills and empties, its
    // splits and merges) on the barrier's path.
    r#"
    DROP INDEX IF EXISTS presence_user;
    "#,
    // 10 -> 11: this gate's own passages' applied records are pruned with
    // their journal rows (`housekeeping.rs`), not found by time: the index
    // by time covers siblings' records alone, and an admitted passage
    // writes a page of WAL fewer. A record whose journal row went while its
    // vehicle stayed inside is listed in `applied_kept` until the vehicle
    // leaves; those already without a row are listed now (found through a
    // passing index of the journal by event id).
    r#"
    CREATE TABLE IF NOT EXISTS applied_kept (
        event_id TEXT PRIMARY KEY
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS migration_events_id ON events (event_id);
    INSERT OR IGNORE INTO applied_kept SELECT event_id FROM applied_events a
        WHERE own = 1 AND NOT EXISTS (SELECT 1 FROM events e WHERE e.event_id = a.event_id);
    DROP INDEX migration_events_id;
    DROP INDEX IF EXISTS applied_events_at;
    CREATE INDEX IF NOT EXISTS applied_remote_at ON applied_events (at_ms) WHERE own = 0;
    "#,
    // 11 -> 12: an admitted passage no longer writes this gate's counters,
    // a page of WAL on the barrier's path: the table holds this gate's
    // passages up to `counters_seq`, and the later ones are counted from
    // the journal's tail and their applied records (`counters.rs`), folded
    // into the table every few hundred events and before pruning. Every event
    // journalled so far is in the table already.
    r#"
    INSERT OR IGNORE INTO meta (key, value) VALUES ('counters_seq',
        MAX(COALESCE((SELECT MAX(gate_seq) FROM events), 0),
            COALESCE((SELECT value FROM meta WHERE key = 'gate_seq'), 0)));
    "#,
    // 12 -> 13: this gate's own passages' applied records ride on their
    // journal rows (`presence.rs`), a page of WAL fewer for every admitted
    // passage: a row of `applied_events` was a second b-tree. Those whose
    // journal row was pruned (listed in `applied_kept`) stay where they are.
    r#"
    ALTER TABLE events ADD COLUMN vehicle_id TEXT;
    ALTER TABLE events ADD COLUMN class TEXT;
    ALTER TABLE events ADD COLUMN before TEXT;
    ALTER TABLE events ADD COLUMN voided INTEGER NOT NULL DEFAULT 0;
    UPDATE events SET (vehicle_id, class, before, voided) =
        (SELECT a.vehicle_id, a.class, a.before, a.voided FROM applied_events a
         WHERE a.event_id = events.event_id)
    WHERE type IN ('check_in', 'check_out', 'void')
      AND EXISTS (SELECT 1 FROM applied_events a
                  WHERE a.event_id = events.event_id AND a.own = 1);
    DELETE FROM applied_events WHERE own = 1
      AND event_id IN (SELECT event_id FROM events);
    "#,
];

/// The replica file's schema, as migrations of its own (`PRAGMA
/// user_version` of that file). A snapshot is staged in a fresh file made
/// by the same migrations, then takes the replica file's place.
pub(super) const REPLICA_MIGRATIONS: &[&str] = &[
    // 0 -> 1: the tables of main's migration 0 (HQ's records), their seq,
    // and the bookkeeping of a snapshot being staged into this file.
    r#"
    CREATE TABLE replica_meta (
        key   TEXT PRIMARY KEY,
        value INTEGER NOT NULL
    ) STRICT;
    -- The seq of the last change batch or snapshot in this file.
    INSERT INTO replica_meta (key, value) VALUES ('replica_seq', 0);

    CREATE TABLE users (
        user_id TEXT PRIMARY KEY,
        name    TEXT NOT NULL,
        company TEXT,
        status  TEXT NOT NULL
    ) STRICT;

    CREATE TABLE cards (
        card           TEXT PRIMARY KEY,
        user_id        TEXT NOT NULL,
        status         TEXT NOT NULL,
        valid_from     TEXT,
        valid_from_ms  INTEGER,
        valid_until    TEXT,
        valid_until_ms INTEGER
    ) STRICT;
    CREATE INDEX cards_user ON cards (user_id);

    CREATE TABLE vehicles (
        vehicle_id TEXT PRIMARY KEY,
        user_id    TEXT NOT NULL,
        plate      TEXT,
        class      TEXT NOT NULL,
        ada        INTEGER NOT NULL,
        ev         INTEGER NOT NULL,
        is_primary INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX vehicles_user ON vehicles (user_id);

    CREATE TABLE plans (
        user_id        TEXT PRIMARY KEY,
        kind           TEXT NOT NULL,
        lots           TEXT NOT NULL, -- JSON array of lot names
        valid_until    TEXT,
        valid_until_ms INTEGER,
        status         TEXT NOT NULL
    ) STRICT;

    CREATE TABLE reservations (
        reservation_id TEXT PRIMARY KEY,
        user_id        TEXT NOT NULL,
        vehicle_id     TEXT NOT NULL,
        lot            TEXT NOT NULL,
        spot_id        TEXT,
        class          TEXT NOT NULL,
        start_at       TEXT NOT NULL,
        start_ms       INTEGER NOT NULL,
        end_at         TEXT NOT NULL,
        end_ms         INTEGER NOT NULL,
        status         TEXT NOT NULL
    ) STRICT;
    CREATE INDEX reservations_lot_start ON reservations (lot, start_ms);
    CREATE INDEX reservations_user ON reservations (user_id, lot, start_ms);

    -- While this file is a staging file: the snapshot being staged (at most
    -- one row) and the set of its chunks staged so far.
    CREATE TABLE snapshot_staging (
        only        INTEGER PRIMARY KEY CHECK (only = 1),
        snapshot_id TEXT NOT NULL,
        seq         INTEGER NOT NULL,
        chunks      INTEGER NOT NULL,
        have        INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE snapshot_chunks (
        chunk INTEGER PRIMARY KEY
    ) STRICT;
    "#,
    // 1 -> 2: the longest booking ever written (ms), kept by a trigger:
    // availability at a later time reads only the bookings that can last
    // until then, without a scan to find out how long they run.
    r#"
    INSERT INTO replica_meta (key, value) VALUES ('reservation_span_ms',
        COALESCE((SELECT MAX(end_ms - start_ms) FROM reservations), 0));
    CREATE TRIGGER reservation_span_ins AFTER INSERT ON reservations
    WHEN new.end_ms - new.start_ms >
         (SELECT value FROM replica_meta WHERE key = 'reservation_span_ms')
    BEGIN
        UPDATE replica_meta SET value = new.end_ms - new.start_ms
        WHERE key = 'reservation_span_ms';
    END;
    CREATE TRIGGER reservation_span_upd AFTER UPDATE OF start_ms, end_ms ON reservations
    WHEN new.end_ms - new.start_ms >
         (SELECT value FROM replica_meta WHERE key = 'reservation_span_ms')
    BEGIN
        UPDATE replica_meta SET value = new.end_ms - new.start_ms
        WHERE key = 'reservation_span_ms';
    END;
    "#,
];

/// Brings the database to the latest version, in one transaction.
pub(super) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    migrate_to(conn, MIGRATIONS.len())
}

/// Applies the pending migrations up to version `target`.
pub(super) fn migrate_to(conn: &mut Connection, target: usize) -> Result<(), StoreError> {
    run(conn, MIGRATIONS, target)
}

/// Brings a replica (or staging) file, opened on its own, up to date.
pub(super) fn migrate_replica(conn: &mut Connection) -> Result<(), StoreError> {
    run(conn, REPLICA_MIGRATIONS, REPLICA_MIGRATIONS.len())
}

fn run(conn: &mut Connection, migrations: &[&str], target: usize) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
    // A negative user_version was not written by us: treat it as newer.
    let found = usize::try_from(found).unwrap_or(usize::MAX);
    if found > migrations.len() {
        // A newer parkgate wrote this file; an older one must not guess.
        return Err(StoreError::TooNew {
            found,
            known: migrations.len(),
        });
    }
    for (version, sql) in migrations.iter().enumerate().take(target).skip(found) {
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", int(version + 1))?;
    }
    tx.commit()?;
    Ok(())
}
