//! The store: it opens (creating it on a new gate, as the daemon would),
//! SQLite finds both files sound, and its filesystem has room for the
//! journal to grow while HQ is unreachable.

use std::path::{Path, PathBuf};

use super::report::Check;
use crate::config::Config;
use crate::store::{Db, Ident, Integrity};

/// Below this much free space the disk check fails, whatever the share...
pub const MIN_FREE_BYTES: u64 = 100 * 1024 * 1024;
/// ...and below this share of the filesystem too: on a small SD card
/// 100 MB may be most of it, and a share is what fills up over months.
pub const MIN_FREE_PERCENT: f64 = 5.0;

/// Opens the store and reports it, its integrity and its disk. Returns
/// nothing: each finding is a check of its own.
pub fn checks(cfg: &Config) -> Vec<Check> {
    let path = &cfg.store.path;
    let existed = path.exists();
    let mut out = Vec::new();
    match Db::open(path, Ident::from(cfg)) {
        Ok(db) => {
            out.push(opened(&db, path, existed));
            out.push(match db.integrity() {
                Ok(found) => integrity(&found),
                Err(e) => Check::fail(
                    "integrity",
                    format!("could not run the check: {e}"),
                    "another process may hold the store: stop the daemon and run doctor again",
                ),
            });
        }
        Err(e) => {
            out.push(Check::fail(
                "store",
                format!("{}: {e}", path.display()),
                format!(
                    "the directory {} must exist or be creatable, and be writable by the daemon's user \
                     (check [store] path, ownership and mount); SQLite needs to create files beside the store",
                    dir_of(path).display()
                ),
            ));
            out.push(Check::skip("integrity", "the store did not open"));
        }
    }
    out.push(disk(&dir_of(path)));
    out
}

/// The directory the store's files live in.
fn dir_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    }
}

fn opened(db: &Db, path: &Path, existed: bool) -> Check {
    let depth = db.outbox_depth();
    let seq = db.replica_seq();
    match (depth, seq) {
        (Ok(depth), Ok(seq)) => {
            let new = if existed { "" } else { " (new, created now)" };
            Check::pass(
                "store",
                format!(
                    "{}{new}: outbox {depth} event(s) waiting for HQ, replica seq {seq}",
                    path.display()
                ),
            )
        }
        (Err(e), _) | (_, Err(e)) => Check::fail(
            "store",
            format!("{}: opened, but reading it failed: {e}", path.display()),
            "the file may be damaged: see the integrity line, restore it or remove it (HQ resends the replica; \
             undelivered events would be lost)",
        ),
    }
}

/// The integrity check's findings as a report line.
pub fn integrity(found: &Integrity) -> Check {
    if found.main.is_empty() && found.replica.is_empty() {
        return Check::pass("integrity", "main ok, replica ok");
    }
    let describe = |name: &str, problems: &[String]| match problems.first() {
        None => format!("{name} ok"),
        Some(first) => format!(
            "{name} DAMAGED ({} problem(s), first: {first})",
            problems.len()
        ),
    };
    let hint = if found.main.is_empty() {
        "the replica is HQ's copy: stop the daemon, remove {store}.replica and let HQ send a snapshot (resync)"
    } else {
        "the gate's own records are damaged: stop the daemon, copy the file aside for HQ, then restore \
         it from a backup or `sqlite3 gate.db .recover`; events not yet delivered may be lost"
    };
    Check::fail(
        "integrity",
        format!(
            "{}, {}",
            describe("main", &found.main),
            describe("replica", &found.replica)
        ),
        hint,
    )
}

/// Free space where the store lives.
fn disk(dir: &Path) -> Check {
    match statvfs(dir) {
        Ok((free, total)) => judge_disk(dir, free, total),
        Err(e) => Check::fail(
            "disk",
            format!("{}: cannot read free space: {e}", dir.display()),
            "the store's directory must exist: see the store line",
        ),
    }
}

/// Whether `free` bytes of `total` leave enough room (see [`MIN_FREE_BYTES`]).
pub fn judge_disk(dir: &Path, free: u64, total: u64) -> Check {
    let percent = if total == 0 {
        0.0
    } else {
        free as f64 * 100.0 / total as f64
    };
    let detail = format!(
        "{}: {} free of {} ({percent:.0}%)",
        dir.display(),
        bytes(free),
        bytes(total)
    );
    if free < MIN_FREE_BYTES || percent < MIN_FREE_PERCENT {
        Check::fail(
            "disk",
            detail,
            format!(
                "keep at least {} and {MIN_FREE_PERCENT:.0}% free: the journal grows while HQ is unreachable \
                 and SQLite needs room to commit; remove old logs, or lower [store] retention_days",
                bytes(MIN_FREE_BYTES)
            ),
        )
    } else {
        Check::pass("disk", detail)
    }
}

/// Bytes for people: `512 MB`, `14.8 GB`.
fn bytes(n: u64) -> String {
    const MB: f64 = 1024.0 * 1024.0;
    let mb = n as f64 / MB;
    if mb >= 1024.0 {
        format!("{:.1} GB", mb / 1024.0)
    } else {
        format!("{mb:.0} MB")
    }
}

/// Bytes available to the daemon's (unprivileged) user, and the
/// filesystem's size, of the filesystem holding `dir`.
fn statvfs(dir: &Path) -> std::io::Result<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt as _;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::other("the path holds a NUL byte"))?;
    // SAFETY: `c` is a valid NUL-terminated path and `st` a properly sized,
    // zeroed struct that statvfs only writes into.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // The field types differ between targets (u32 on armv7): widen them.
    #[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
    let (frsize, avail, blocks) = (st.f_frsize as u64, st.f_bavail as u64, st.f_blocks as u64);
    Ok((avail * frsize, blocks * frsize))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GB: u64 = 1024 * 1024 * 1024;

    #[test]
    fn enough_room_passes() {
        let c = judge_disk(Path::new("/var/lib/parkgate"), 10 * GB, 32 * GB);
        assert_eq!(c.outcome, super::super::report::Outcome::Pass);
        assert_eq!(c.detail, "/var/lib/parkgate: 10.0 GB free of 32.0 GB (31%)");
    }

    #[test]
    fn too_few_bytes_or_too_small_a_share_fails_with_a_hint() {
        use super::super::report::Outcome::Fail;
        let few = judge_disk(Path::new("/d"), 50 * 1024 * 1024, GB);
        assert_eq!(few.outcome, Fail);
        assert!(few.detail.contains("50 MB free"), "{}", few.detail);
        assert!(few.hint.unwrap().contains("retention_days"));
        // 3 GB is plenty of bytes but 2% of a big disk.
        assert_eq!(judge_disk(Path::new("/d"), 3 * GB, 150 * GB).outcome, Fail);
    }

    #[test]
    fn statvfs_reads_a_real_filesystem() {
        let dir = tempfile::tempdir().unwrap();
        let (free, total) = statvfs(dir.path()).unwrap();
        assert!(total > 0 && free <= total, "{free} of {total}");
        assert!(statvfs(&dir.path().join("missing")).is_err());
    }

    #[test]
    fn integrity_names_the_damaged_file() {
        let found = Integrity {
            main: vec![],
            replica: vec!["row 3 missing from index x".into()],
        };
        let c = integrity(&found);
        assert!(
            c.detail
                .starts_with("main ok, replica DAMAGED (1 problem(s)"),
            "{}",
            c.detail
        );
        assert!(c.hint.unwrap().contains("resync"));
    }

    #[test]
    fn a_store_under_a_file_fails_and_says_where() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("not-a-dir");
        std::fs::write(&blocker, "").unwrap();
        let text = include_str!("../../../config/demo.toml").replace(
            "demo/gate.db",
            &blocker.join("gate.db").display().to_string(),
        );
        let cfg = crate::config::parse(&text).unwrap();
        let found = checks(&cfg);
        let names: Vec<_> = found.iter().take(2).map(|c| (c.name, c.outcome)).collect();
        use super::super::report::Outcome::*;
        assert_eq!(names, [("store", Fail), ("integrity", Skip)]);
        assert!(found[0].hint.as_deref().unwrap().contains("writable"));
    }
}
