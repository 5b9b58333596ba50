//! How domain values become SQL values and back: timestamps, enums, meta rows.
//!
//! Enums are stored as their contract spelling (`"standard"`, `"booked"`), taken
//! from their serde names so there is one spelling in the program, not two.

use chrono::{DateTime, SecondsFormat};
use rusqlite::types::Type;
use rusqlite::{Connection, OptionalExtension, Row};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::StoreError;
use crate::domain::model::Timestamp;

/// Meta key: the last gate_seq given to an event.
pub(super) const GATE_SEQ: &str = "gate_seq";
/// Meta key: when HQ's replica feed was last heard (epoch ms; 0: never).
pub(super) const REPLICA_HEARD: &str = "replica_heard_ms";
/// Meta key: every event with a `gate_seq` up to this one is delivered
/// (the outbox starts after it; `outbox.rs`).
pub(super) const OUTBOX_FLOOR: &str = "outbox_floor";
/// Meta key: 1 while the gate is in lockdown (survives a restart).
pub(super) const LOCKDOWN: &str = "lockdown";
/// Meta key: this gate's own passages up to this `gate_seq` are in the
/// `counters` table; later ones are counted from the journal's tail
/// (`counters.rs`).
pub(super) const COUNTERS_SEQ: &str = "counters_seq";

/// RFC 3339 text, offset kept, as the contract writes timestamps.
pub(super) fn ts_text(t: &Timestamp) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, false)
}

/// Epoch milliseconds, for comparisons and indexes.
pub(super) fn ms(t: &Timestamp) -> i64 {
    t.timestamp_millis()
}

/// The contract spelling of a unit enum variant.
pub(super) fn enum_text<T: Serialize>(v: &T) -> Result<String, StoreError> {
    match serde_json::to_value(v)? {
        Value::String(s) => Ok(s),
        other => Ok(other.to_string()),
    }
}

/// A column holding an enum's contract spelling.
pub(super) fn col_enum<T: DeserializeOwned>(row: &Row<'_>, idx: usize) -> rusqlite::Result<T> {
    let s: String = row.get(idx)?;
    serde_json::from_value(Value::String(s)).map_err(|e| conversion(idx, e))
}

/// A column holding RFC 3339 text.
pub(super) fn col_ts(row: &Row<'_>, idx: usize) -> rusqlite::Result<Timestamp> {
    let s: String = row.get(idx)?;
    DateTime::parse_from_rfc3339(&s).map_err(|e| conversion(idx, e))
}

/// A nullable column holding RFC 3339 text.
pub(super) fn col_ts_opt(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<Timestamp>> {
    let s: Option<String> = row.get(idx)?;
    s.map(|s| DateTime::parse_from_rfc3339(&s).map_err(|e| conversion(idx, e)))
        .transpose()
}

/// A column holding JSON.
pub(super) fn col_json<T: DeserializeOwned>(row: &Row<'_>, idx: usize) -> rusqlite::Result<T> {
    let s: String = row.get(idx)?;
    serde_json::from_str(&s).map_err(|e| conversion(idx, e))
}

fn conversion(idx: usize, e: impl std::error::Error + Send + Sync + 'static) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(idx, Type::Text, Box::new(e))
}

/// Reads a counter from `meta` (0 if absent).
pub(super) fn get_meta(conn: &Connection, key: &str) -> Result<u64, StoreError> {
    get_meta_in(conn, "meta", key)
}

fn get_meta_in(conn: &Connection, table: &str, key: &str) -> Result<u64, StoreError> {
    let v: Option<u64> = conn
        .prepare_cached(&format!("SELECT value FROM {table} WHERE key = ?1"))?
        .query_row([key], |r| col_u64(r, 0))
        .optional()?;
    Ok(v.unwrap_or(0))
}

/// Writes a counter to `meta`.
pub(super) fn set_meta(conn: &Connection, key: &str, value: u64) -> Result<(), StoreError> {
    exec(
        conn,
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        rusqlite::params![key, int(value)],
    )?;
    Ok(())
}

/// A count or seq as SQLite's INTEGER. Ours never reach `i64::MAX`; a limit
/// that large means "all", which saturating keeps.
pub(super) fn int(n: impl TryInto<i64>) -> i64 {
    n.try_into().unwrap_or(i64::MAX)
}

/// An INTEGER column that holds a count or seq (never negative).
pub(super) fn col_u64(row: &Row<'_>, idx: usize) -> rusqlite::Result<u64> {
    let n: i64 = row.get(idx)?;
    u64::try_from(n)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(idx, Type::Integer, Box::new(e)))
}

/// The replica's seq: in the replica file's own `replica_meta`, so a
/// snapshot file brings its seq with it.
pub(super) fn replica_seq(conn: &Connection) -> Result<u64, StoreError> {
    get_meta_in(conn, "replica_meta", "replica_seq")
}

pub(super) fn set_replica_seq(conn: &Connection, seq: u64) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE replica_meta SET value = ?1 WHERE key = 'replica_seq'")?
        .execute([int(seq)])?;
    Ok(())
}

/// Runs a statement through the connection's statement cache: the ones a
/// passage runs would otherwise be parsed again at every passage.
pub(super) fn exec(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> rusqlite::Result<usize> {
    conn.prepare_cached(sql)?.execute(params)
}
