//! `parkgate replica apply` at issue 10's scale: a million users sent as
//! change batches of 10,000 users (a user, a card, a vehicle and a plan
//! each: 40,000 rows a batch), each batch a run of the real binary on a
//! store of its own, against the `sqlite3` CLI importing the same rows in
//! the same run.
//!
//! Run: `cargo bench --bench apply` (needs `sqlite3` on the PATH: `apt-get
//! install sqlite3`). Scale down with `USERS` (default 1,000,000) and
//! `BATCH` (users a batch, default 10,000).
//!
//! The baseline: for each batch, one `sqlite3` process imports the batch's
//! rows from four CSV files (`.import --csv`, one table each) in one
//! transaction, into a file with the replica's tables and indexes (the DDL
//! read from a replica file the store made), in the replica's modes (WAL,
//! `synchronous=NORMAL`). So both sides start a process, open a file and
//! commit once per batch, and write the same rows through the same
//! indexes; the baseline skips what `replica apply` must do besides:
//! config, migrations check, JSON parsing, checks per op, upsert instead of
//! insert, the seq. Batch files are written just before their runs and not
//! timed (they are removed after, so the disk holds one batch at a time);
//! the two sides take turns batch by batch, so a noisy neighbour slows both.
//!
//! Prints rows/s of each, their ratio, and PASS/MISS for issue 10's target
//! (at least half the rows per second of `sqlite3`).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use parkgate::domain::contract::{ChangeBatch, Op, Record, VERSION};
use parkgate::domain::model::*;
use parkgate::store::{Db, Ident};

#[path = "common/lot.rs"]
mod lot;
use lot::env;

/// Rows a user brings: user, card, vehicle, plan.
const ROWS_PER_USER: usize = 4;

fn main() {
    let (users, per_batch) = (env("USERS", 1_000_000), env("BATCH", 10_000));
    let batches = users.div_ceil(per_batch);
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let config = dir.path().join("gate.toml");
    std::fs::write(
        &config,
        format!(
            "[gate]\nsite = \"b1\"\nlot = \"main\"\ngate = \"entry-1\"\nrole = \"entry\"\n\
             timezone = \"Asia/Ho_Chi_Minh\"\n\n[capacity]\nstandard = 1000\n\n\
             [store]\npath = \"{}\"\n",
            dir.path().join("gate.db").display()
        ),
    )
    .unwrap();
    let baseline = dir.path().join("baseline.db");
    create_baseline(dir.path(), &baseline);

    let now = chrono::DateTime::parse_from_rfc3339("2026-11-23T09:00:00+07:00").unwrap();
    let (mut ours, mut theirs) = (Duration::ZERO, Duration::ZERO);
    let (mut ours_max, mut theirs_max) = (Duration::ZERO, Duration::ZERO);
    for b in 0..batches {
        let range = b * per_batch..((b + 1) * per_batch).min(users);
        let json = dir.path().join(format!("batch_{}.json", b + 1));
        let ops: Vec<Op> = range.clone().flat_map(|u| records(u, now)).collect();
        let batch = ChangeBatch {
            v: VERSION,
            seq: b as u64 + 1,
            at: now,
            ops,
        };
        std::fs::write(&json, serde_json::to_vec(&batch).unwrap()).unwrap();
        let csv = write_csv(dir.path(), &batch.ops);

        let t = Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_parkgate"))
            .args(["replica", "apply", "--config"])
            .arg(&config)
            .arg(&json)
            .output()
            .unwrap();
        let took = t.elapsed();
        assert!(out.status.success(), "replica apply: {out:?}");
        ours += took;
        ours_max = ours_max.max(took);

        let t = Instant::now();
        import(&baseline, &csv);
        let took = t.elapsed();
        theirs += took;
        theirs_max = theirs_max.max(took);

        std::fs::remove_file(&json).unwrap();
        for f in csv {
            std::fs::remove_file(f).unwrap();
        }
    }

    let rows = (users * ROWS_PER_USER) as f64;
    let replica = dir.path().join("gate.db.replica");
    let count = |path: &Path| -> usize {
        let conn = rusqlite::Connection::open(path).unwrap();
        ["users", "cards", "vehicles", "plans"]
            .iter()
            .map(|t| {
                conn.query_row(&format!("SELECT COUNT(*) FROM {t}"), [], |r| {
                    r.get::<_, i64>(0)
                })
                .unwrap() as usize
            })
            .sum()
    };
    assert_eq!(
        count(&replica),
        users * ROWS_PER_USER,
        "rows in the replica"
    );
    assert_eq!(
        count(&baseline),
        users * ROWS_PER_USER,
        "rows in the baseline"
    );
    let per_s = |d: Duration| rows / d.as_secs_f64();
    println!(
        "{users} users ({rows} rows) in {batches} batches of {per_batch} users ({} rows)\n",
        per_batch * ROWS_PER_USER
    );
    for (name, total, max) in [
        ("parkgate replica apply", ours, ours_max),
        ("sqlite3 CLI .import (baseline)", theirs, theirs_max),
    ] {
        println!(
            "{name:<32} {:>8.1} s  {:>10.0} rows/s  slowest batch {:>6.0} ms",
            total.as_secs_f64(),
            per_s(total),
            max.as_secs_f64() * 1e3
        );
    }
    let ratio = per_s(ours) / per_s(theirs);
    println!(
        "\nratio {ratio:.2} of the sqlite3 CLI's rows/s (target >= 0.5): {}",
        if ratio >= 0.5 { "PASS" } else { "MISS" }
    );
}

/// User `u`'s four records, every optional field set (the CSV baseline
/// cannot tell an empty string from NULL).
fn records(u: usize, now: Timestamp) -> [Op; 4] {
    let classes = [
        VehicleClass::Standard,
        VehicleClass::Standard,
        VehicleClass::Standard,
        VehicleClass::Compact,
        VehicleClass::Motorcycle,
    ];
    let user_id = format!("u-{u:07}");
    [
        Record::User(User {
            user_id: user_id.clone(),
            name: format!("User {u}"),
            company: Some(format!("company-{}", u % 500)),
            status: UserStatus::Active,
        }),
        Record::Card(Card {
            card: uid(u),
            user_id: user_id.clone(),
            status: CardStatus::Active,
            valid_from: Some(now - chrono::Duration::days(365)),
            valid_until: Some(now + chrono::Duration::days(365)),
        }),
        Record::Vehicle(Vehicle {
            vehicle_id: format!("v-{u:07}"),
            user_id: user_id.clone(),
            plate: Some(format!("51F-{u:06}")),
            class: classes[u % 5],
            ada: u.is_multiple_of(50),
            ev: u.is_multiple_of(20),
            primary: true,
        }),
        Record::Plan(Plan {
            user_id,
            kind: if u.is_multiple_of(3) {
                PlanKind::Daily
            } else {
                PlanKind::Monthly
            },
            lots: vec!["main".into()],
            valid_until: Some(now + chrono::Duration::days(30)),
            status: PlanStatus::Paid,
        }),
    ]
    .map(Op::Upsert)
}

/// User `i`'s card: a scattered 7-byte UID, as cards are issued (an odd
/// multiplier is a bijection modulo 2^48), so the cards index is written
/// all over, not appended to.
fn uid(i: usize) -> String {
    let x = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) & 0xFFFF_FFFF_FFFF;
    format!("04{x:012X}")
}

/// The baseline's file: the replica's tables and indexes, as a store
/// makes them (read back from a fresh replica file), in its modes.
fn create_baseline(dir: &Path, path: &Path) {
    let scratch = dir.join("ddl").join("gate.db");
    let db = Db::open(
        &scratch,
        Ident {
            site: "b1".into(),
            lot: "main".into(),
            gate: "entry-1".into(),
        },
    )
    .unwrap();
    let replica = db.files().replica.clone();
    drop(db);
    let from = rusqlite::Connection::open(&replica).unwrap();
    let ddl: Vec<String> = from
        .prepare(
            "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL
               AND tbl_name IN ('users', 'cards', 'vehicles', 'plans')",
        )
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(ddl.len() >= 6, "replica tables and indexes: {ddl:?}");
    let to = rusqlite::Connection::open(path).unwrap();
    to.pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(()))
        .unwrap();
    to.execute_batch(&ddl.join(";\n")).unwrap();
}

/// Writes the batch's rows as one CSV file per table; their paths.
fn write_csv(dir: &Path, ops: &[Op]) -> Vec<std::path::PathBuf> {
    let names = ["users", "cards", "vehicles", "plans"];
    let mut files: Vec<_> = names
        .iter()
        .map(|t| {
            std::io::BufWriter::new(std::fs::File::create(dir.join(format!("{t}.csv"))).unwrap())
        })
        .collect();
    for op in ops {
        let Op::Upsert(record) = op else {
            unreachable!("the bench sends upserts")
        };
        let (i, line) = match record {
            Record::User(u) => (
                0,
                format!(
                    "{},{},{},{}",
                    u.user_id,
                    u.name,
                    u.company.as_deref().unwrap_or(""),
                    text(&u.status)
                ),
            ),
            Record::Card(c) => {
                let (from, until) = (c.valid_from.unwrap(), c.valid_until.unwrap());
                (
                    1,
                    format!(
                        "{},{},{},{},{},{},{}",
                        c.card,
                        c.user_id,
                        text(&c.status),
                        from.to_rfc3339(),
                        from.timestamp_millis(),
                        until.to_rfc3339(),
                        until.timestamp_millis()
                    ),
                )
            }
            Record::Vehicle(v) => (
                2,
                format!(
                    "{},{},{},{},{},{},{}",
                    v.vehicle_id,
                    v.user_id,
                    v.plate.as_deref().unwrap_or(""),
                    v.class.as_str(),
                    i32::from(v.ada),
                    i32::from(v.ev),
                    i32::from(v.primary)
                ),
            ),
            Record::Plan(p) => {
                let until = p.valid_until.unwrap();
                (
                    3,
                    format!(
                        "{},{},\"{}\",{},{},{}",
                        p.user_id,
                        text(&p.kind),
                        serde_json::to_string(&p.lots).unwrap().replace('"', "\"\""),
                        until.to_rfc3339(),
                        until.timestamp_millis(),
                        text(&p.status)
                    ),
                )
            }
            Record::Reservation(_) => unreachable!("the bench sends no reservations"),
        };
        writeln!(files[i], "{line}").unwrap();
    }
    for f in &mut files {
        f.flush().unwrap();
    }
    names.iter().map(|t| dir.join(format!("{t}.csv"))).collect()
}

/// One `sqlite3` process imports the four CSV files into `db` in one
/// transaction, in the replica's modes.
fn import(db: &Path, csv: &[std::path::PathBuf]) {
    let mut script =
        String::from(".bail on\nPRAGMA journal_mode=WAL;\nPRAGMA synchronous=NORMAL;\nBEGIN;\n");
    for (file, table) in csv.iter().zip(["users", "cards", "vehicles", "plans"]) {
        script += &format!(".import --csv {} {table}\n", file.display());
    }
    script += "COMMIT;\n";
    let mut child = Command::new("sqlite3")
        .arg(db)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sqlite3 on the PATH (apt-get install sqlite3)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "sqlite3: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An enum's contract text (its serde name), as the store writes it.
fn text<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .expect("a unit enum")
}
