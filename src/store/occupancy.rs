//! Sibling gates' occupancy counters (the contract's "Occupancy"): the
//! highest seen per gate and class, so a lost or repeated message changes
//! nothing. The lot's count of a class is the sum over gates of entered
//! minus exited; where it is above what the passages seen say (a sibling's
//! events lost, its counters not), decisions count the difference too.

use rusqlite::params;

use super::counters::{ENTERED, EXITED};
use super::{Db, StoreError};
use crate::domain::contract::Occupancy;

impl Db {
    /// Keeps the highest of `occupancy`'s counters per class. Ours (echoed
    /// by the broker) and other lots' are ignored. Returns whether a counter rose.
    pub fn merge_occupancy(&mut self, occupancy: &Occupancy) -> Result<bool, StoreError> {
        if occupancy.gate == self.ident.gate {
            return Ok(false);
        }
        let tx = self.conn.transaction()?;
        let mut rose = 0;
        {
            let mut up = tx.prepare_cached(
                "INSERT INTO gate_counters (gate, direction, class, n) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (gate, direction, class) DO UPDATE SET n = excluded.n
                 WHERE excluded.n > gate_counters.n",
            )?;
            for (direction, counts) in [(ENTERED, &occupancy.entered), (EXITED, &occupancy.exited)]
            {
                for (class, n) in counts {
                    let n = i64::try_from(*n).unwrap_or(i64::MAX);
                    rose += up.execute(params![occupancy.gate, direction, class.as_str(), n])?;
                }
            }
        }
        tx.commit()?;
        if rose > 0 {
            self.written(super::kept::Touched::Nothing);
        }
        Ok(rose > 0)
    }
}
