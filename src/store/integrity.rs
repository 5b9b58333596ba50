//! SQLite's own consistency check of the store's two files, for
//! `parkgate doctor`.

use super::{Db, StoreError};

/// What `PRAGMA integrity_check` found in each file; empty means sound.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Integrity {
    /// Problems in the gate's own file (journal, outbox, presence).
    pub main: Vec<String>,
    /// Problems in HQ's replica.
    pub replica: Vec<String>,
}

/// Problems listed per file at most: the first few say enough to decide
/// to restore, and a badly damaged file could list thousands.
const MAX_PROBLEMS: u32 = 10;

impl Db {
    /// Runs `PRAGMA integrity_check` on the main file and the attached
    /// replica. Reads every page: seconds on a large store, so not for the
    /// daemon's loop.
    pub fn integrity(&self) -> Result<Integrity, StoreError> {
        Ok(Integrity {
            main: self.problems("main")?,
            replica: self.problems("replica")?,
        })
    }

    fn problems(&self, schema: &str) -> Result<Vec<String>, StoreError> {
        let sql = format!("PRAGMA {schema}.integrity_check({MAX_PROBLEMS})");
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        let mut found = Vec::new();
        for row in rows {
            let row = row?;
            if row != "ok" {
                found.push(row);
            }
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Ident;

    fn ident() -> Ident {
        Ident {
            site: "b1".into(),
            lot: "main".into(),
            gate: "entry-1".into(),
        }
    }

    #[test]
    fn a_fresh_store_is_sound_in_both_files() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("gate.db"), ident()).unwrap();
        assert_eq!(db.integrity().unwrap(), Integrity::default());
    }

    #[test]
    fn a_damaged_index_is_reported_against_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("gate.db"), ident()).unwrap();
        // Make the main file disagree with itself: an index whose entries
        // are of another column than its definition says, written behind
        // SQLite's back.
        db.conn
            .execute_batch(
                "CREATE TABLE main.t(x, y); CREATE INDEX main.t_x ON t(x);
                 INSERT INTO t VALUES (1, 10), (2, 20);
                 PRAGMA writable_schema = ON;
                 UPDATE sqlite_schema SET sql = 'CREATE INDEX t_x ON t(y)' WHERE name = 't_x';
                 PRAGMA writable_schema = OFF;",
            )
            .unwrap();
        drop(db);
        let db = Db::open(&dir.path().join("gate.db"), ident()).unwrap();
        let found = db.integrity().unwrap();
        assert!(!found.main.is_empty(), "{found:?}");
        assert!(found.replica.is_empty(), "{found:?}");
    }
}
