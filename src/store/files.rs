//! The store's files. The main file holds the gate's own records (the
//! journal, which is also the outbox, presence, counters, commands seen):
//! every write to it waits for the disk. HQ's replica lives in a file of its
//! own beside it, attached to the same connection as `replica`, so queries
//! read both as one database. Keeping them apart lets a snapshot be built
//! in a third file (`snapshot.rs`) without its hundreds of megabytes going
//! through the journal's WAL, and take the replica's place by a rename: the
//! old replica is then one unlink, not a table drop that reads every page.
//!
//! Table names are unique across the two files, so SQL never names the file.

use std::path::{Path, PathBuf};

use rusqlite::Connection;

use super::StoreError;
use super::schema;

/// Where one store's files are: `{main}`, `{main}.replica`, `{main}.staging`
/// and, for a moment after a snapshot, `{main}.retired`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Files {
    /// The gate's own records.
    pub main: PathBuf,
    /// HQ's replica.
    pub replica: PathBuf,
    /// A snapshot being staged, until it becomes the replica.
    pub staging: PathBuf,
    /// The replica a snapshot replaced, until it is removed.
    pub retired: PathBuf,
}

impl Files {
    /// The files of the store whose main file is `main`.
    pub fn beside(main: &Path) -> Files {
        let with = |suffix: &str| {
            let mut name = main.as_os_str().to_owned();
            name.push(suffix);
            PathBuf::from(name)
        };
        Files {
            main: main.to_owned(),
            replica: with(".replica"),
            staging: with(".staging"),
            retired: with(".retired"),
        }
    }

    /// Removes the replica the last snapshot replaced, if it is still
    /// there. Freeing a large file's blocks takes a while: call this off
    /// the store thread.
    pub fn remove_retired(&self) -> Result<(), StoreError> {
        remove(&self.retired)
    }
}

/// Opens a replica-shaped file on a connection of its own (creating it and
/// bringing its schema up to date): the replica before it is attached, or a
/// staging file.
pub(super) fn open_replica_file(path: &Path) -> Result<Connection, StoreError> {
    let mut conn = Connection::open(path)?;
    // WAL, and no fsync but at checkpoints: HQ's data can be sent again, so a
    // power cut may cost the last batches (and their seq with them, so the
    // gate asks for them) but never consistency.
    conn.pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(()))?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    schema::migrate_replica(&mut conn)?;
    Ok(conn)
}

/// Attaches the replica file at `path` to `conn` as `replica`.
pub(super) fn attach(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    drop(open_replica_file(path)?);
    let name = path
        .to_str()
        .ok_or_else(|| StoreError::Schema(format!("{} is not UTF-8", path.display())))?;
    conn.execute("ATTACH DATABASE ?1 AS replica", [name])?;
    conn.pragma_update(Some("replica"), "synchronous", "NORMAL")?;
    Ok(())
}

/// Detaches the replica; statements cached against it are dropped first,
/// as SQLite refuses to detach a file a statement still holds.
pub(super) fn detach(conn: &Connection) -> Result<(), StoreError> {
    conn.flush_prepared_statement_cache();
    conn.execute("DETACH DATABASE replica", [])?;
    Ok(())
}

/// Removes a database file and its WAL and shared-memory files, if there.
pub(super) fn remove(path: &Path) -> Result<(), StoreError> {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        match std::fs::remove_file(&name) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(StoreError::File {
                    what: "remove",
                    path: PathBuf::from(name).display().to_string(),
                    source,
                });
            }
        }
    }
    Ok(())
}

/// Whether `path` has a WAL file beside it (someone has it open).
pub(super) fn has_wal(path: &Path) -> bool {
    let mut name = path.as_os_str().to_owned();
    name.push("-wal");
    Path::new(&name).exists()
}
