//! How fast a snapshot of a million users (one card, vehicle and plan each:
//! 4,000,000 rows) is staged chunk by chunk in the staging file and adopted
//! as the replica, how long card decisions take meanwhile, and the same rows
//! imported by the `sqlite3` CLI as a yardstick for the rate.
//!
//! Run: `cargo bench --bench snapshot` (`USERS=100000` to scale down; needs
//! `sqlite3` on PATH). Two snapshots go into one store file: the first into
//! an empty replica, the second (same rows, newer seq) over the first, so its
//! decisions read a full replica and its adoption replaces one. Each
//! snapshot's last chunk is empty.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat};
use parkgate::domain::contract::{Op, Record, SnapshotChunk};
use parkgate::domain::model::*;
use parkgate::store::{Adopted, Db, Ident, Staged};

/// Upserts per chunk, as HQ might send them (1,250 users).
const CHUNK_OPS: usize = 5_000;
const USERS_PER_CHUNK: usize = CHUNK_OPS / 4;
const TABLES: [&str; 4] = ["users", "cards", "vehicles", "plans"];

fn main() {
    let users: usize = std::env::var("USERS").map_or(1_000_000, |s| s.parse().expect("USERS"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("snapshot.db");
    let mut db = Db::open(&path, ident()).unwrap();
    let rows = 4 * users;
    println!("{users} users, {rows} rows, chunks of {CHUNK_OPS} upserts\n");

    let mut rate = 0.0;
    for (seq, what) in [(100, "into an empty replica"), (200, "over the first")] {
        let r = stage_all(&mut db, users, seq);
        rate = rows as f64 / r.staging.as_secs_f64();
        println!("snapshot at seq {seq}, {what}:");
        println!(
            "  staged in {:.1} s: {rate:.0} rows/s; a chunk (on the staging thread) median {:.1} ms, max {:.1} ms",
            r.staging.as_secs_f64(),
            ms(quantile(&mut r.chunks.clone(), 0.5)),
            ms(*r.chunks.iter().max().unwrap()),
        );
        println!(
            "  {} card decisions meanwhile (store thread): median {:.0} µs, p99 {:.0} µs, max {:.0} µs",
            r.decisions.len(),
            us(quantile(&mut r.decisions.clone(), 0.5)),
            us(quantile(&mut r.decisions.clone(), 0.99)),
            us(*r.decisions.iter().max().unwrap()),
        );
        println!(
            "  adopting it (store thread, the only time a decision waits on the snapshot): {:.1} ms",
            ms(r.adopt)
        );
        println!(
            "  removing the replaced replica (off the store thread): {:.1} ms\n",
            ms(r.retire)
        );
    }
    let mb = |p: &Path| std::fs::metadata(p).unwrap().len() as f64 / 1e6;
    println!(
        "store files: main {:.1} MB, replica {:.0} MB\n",
        mb(&path),
        mb(&db.files().replica)
    );

    let cli = sqlite3_import(dir.path(), users);
    let cli_rate = rows as f64 / cli.as_secs_f64();
    println!(
        "sqlite3 .import of the same rows, one transaction: {:.1} s, {cli_rate:.0} rows/s",
        cli.as_secs_f64()
    );
    println!(
        "parkgate / sqlite3: {:.2} (target: at least 0.5)",
        rate / cli_rate
    );
}

struct Run {
    /// Time spent in `Staging::stage`, all chunks.
    staging: Duration,
    chunks: Vec<Duration>,
    decisions: Vec<Duration>,
    adopt: Duration,
    /// Removing the replaced replica (off the store thread).
    retire: Duration,
}

/// Stages every user as snapshot `s-{seq}` on a thread of its own, as the
/// link does, while this thread decides a card every couple of
/// milliseconds (a very busy gate) on the store; then adopts it.
fn stage_all(db: &mut Db, users: usize, seq: u64) -> Run {
    let data = users.div_ceil(USERS_PER_CHUNK);
    let of = u32::try_from(data + 1).unwrap();
    let mut staging = db.staging().unwrap();
    let have = db.replica_seq().unwrap();
    let now = ts("2026-11-23T09:00:00+07:00");
    let mut decisions = Vec::new();
    let (staged, chunks) = std::thread::scope(|s| {
        let stager = s.spawn(|| {
            let mut chunks = Vec::with_capacity(data + 1);
            for n in 0..=data {
                let first = n * USERS_PER_CHUNK;
                let ops = (first..users.min(first + USERS_PER_CHUNK))
                    .flat_map(|i| records(i).map(Op::Upsert))
                    .collect();
                let c = SnapshotChunk {
                    v: 1,
                    snapshot_id: format!("s-{seq}"),
                    seq,
                    chunk: u32::try_from(n).unwrap(),
                    chunks: of,
                    ops,
                };
                let t = Instant::now();
                let staged = staging.stage(&c, have).unwrap();
                chunks.push(t.elapsed());
                if n < data {
                    assert!(matches!(staged, Staged::Partial { .. }), "{staged:?}");
                } else {
                    assert_eq!(staged, Staged::Complete { seq });
                }
            }
            chunks
        });
        while !stager.is_finished() {
            let card = uid((decisions.len() * 7919) % users);
            let t = Instant::now();
            std::hint::black_box(db.facts(&card, "main", now, 15, 30).unwrap());
            decisions.push(t.elapsed());
            std::thread::sleep(Duration::from_millis(2));
        }
        let chunks = stager.join().unwrap();
        (chunks.iter().sum::<Duration>(), chunks)
    });
    let t = Instant::now();
    let adopted = db.adopt_snapshot(&mut staging).unwrap();
    let adopt = t.elapsed();
    assert_eq!(adopted, Adopted::Swapped { seq });
    let t = Instant::now();
    db.files().remove_retired().unwrap();
    Run {
        staging: staged,
        chunks,
        decisions,
        adopt,
        retire: t.elapsed(),
    }
}

/// Writes the rows as CSV, then times `sqlite3` importing them into a fresh
/// file with the replica's tables and indexes, WAL and synchronous=FULL like
/// the store.
fn sqlite3_import(dir: &Path, users: usize) -> Duration {
    let mut files: Vec<_> = TABLES
        .iter()
        .map(|t| {
            std::io::BufWriter::new(std::fs::File::create(dir.join(format!("{t}.csv"))).unwrap())
        })
        .collect();
    let mut line = String::new();
    for i in 0..users {
        for (file, record) in files.iter_mut().zip(records(i)) {
            line.clear();
            csv(&mut line, &record);
            file.write_all(line.as_bytes()).unwrap();
        }
    }
    for mut f in files {
        f.flush().unwrap();
    }
    let schema = replica_schema(dir);
    let target = dir.join("cli.db");
    let setup = format!("PRAGMA journal_mode=WAL;\n{schema}");
    sqlite3(&target, &setup);
    let mut script = String::from("PRAGMA synchronous=FULL;\nBEGIN;\n");
    for t in TABLES {
        let file = dir.join(format!("{t}.csv"));
        writeln!(script, ".import --csv {} {t}", file.display()).unwrap();
    }
    script.push_str("COMMIT;\n");
    let t = Instant::now();
    sqlite3(&target, &script);
    t.elapsed()
}

/// The `CREATE` statements of the replica tables and their indexes, as a
/// fresh store has them.
fn replica_schema(dir: &Path) -> String {
    let path = dir.join("fresh.db");
    let db = Db::open(&path, ident()).unwrap();
    let conn = rusqlite::Connection::open(&db.files().replica).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT sql FROM sqlite_schema
             WHERE tbl_name IN ('users', 'cards', 'vehicles', 'plans') AND sql IS NOT NULL
             ORDER BY type DESC",
        )
        .unwrap();
    let ddl: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(ddl.len(), 4 + 2, "the four tables and their two indexes");
    ddl.join(";\n") + ";\n"
}

fn sqlite3(db: &Path, script: &str) {
    let mut child = Command::new("sqlite3")
        .arg("-bail")
        .arg(db)
        .stdin(std::process::Stdio::piped())
        // `PRAGMA journal_mode` prints the mode.
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("sqlite3 on PATH (apt-get install sqlite3)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success(), "sqlite3 failed");
}

/// One CSV line holding the columns the store writes for `record`.
fn csv(out: &mut String, record: &Record) {
    let t = |t: &Option<Timestamp>| {
        let t = t.unwrap();
        (
            t.to_rfc3339_opts(SecondsFormat::AutoSi, false),
            t.timestamp_millis(),
        )
    };
    match record {
        Record::User(u) => writeln!(out, "{},{},acme,active", u.user_id, u.name),
        Record::Card(c) => {
            let ((from, from_ms), (until, until_ms)) = (t(&c.valid_from), t(&c.valid_until));
            writeln!(
                out,
                "{},{},active,{from},{from_ms},{until},{until_ms}",
                c.card, c.user_id
            )
        }
        Record::Vehicle(v) => writeln!(
            out,
            "{},{},{},standard,0,{},1",
            v.vehicle_id,
            v.user_id,
            v.plate.as_deref().unwrap(),
            u8::from(v.ev)
        ),
        Record::Plan(p) => {
            let (until, until_ms) = t(&p.valid_until);
            writeln!(
                out,
                "{},monthly,\"[\"\"main\"\"]\",{until},{until_ms},paid",
                p.user_id
            )
        }
        Record::Reservation(_) => unreachable!("no reservations in this bench"),
    }
    .unwrap();
}

/// User `i`'s records, in the order of [`TABLES`].
fn records(i: usize) -> [Record; 4] {
    let user_id = format!("u-{i:07}");
    [
        Record::User(User {
            user_id: user_id.clone(),
            name: format!("User {i}"),
            company: Some("acme".into()),
            status: UserStatus::Active,
        }),
        Record::Card(Card {
            card: uid(i),
            user_id: user_id.clone(),
            status: CardStatus::Active,
            valid_from: Some(ts("2026-01-01T00:00:00+07:00")),
            valid_until: Some(ts("2027-01-01T00:00:00+07:00")),
        }),
        Record::Vehicle(Vehicle {
            vehicle_id: format!("v-{i:07}"),
            user_id: user_id.clone(),
            plate: Some(format!("51F-{:03}.{:02}", i / 100 % 1000, i % 100)),
            class: VehicleClass::Standard,
            ada: false,
            ev: i.is_multiple_of(10),
            primary: true,
        }),
        Record::Plan(Plan {
            user_id,
            kind: PlanKind::Monthly,
            lots: vec!["main".into()],
            valid_until: Some(ts("2026-12-31T23:59:59+07:00")),
            status: PlanStatus::Paid,
        }),
    ]
}

/// User `i`'s card: a 7-byte UID, scattered like real ones (an odd
/// multiplier is a bijection modulo 2^48, so no two users share one).
fn uid(i: usize) -> String {
    let x = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) & 0xFFFF_FFFF_FFFF;
    format!("04{x:012X}")
}

fn ts(s: &str) -> Timestamp {
    DateTime::parse_from_rfc3339(s).unwrap()
}

fn ident() -> Ident {
    Ident {
        site: "b1".into(),
        lot: "main".into(),
        gate: "entry-1".into(),
    }
}

fn quantile(v: &mut [Duration], q: f64) -> Duration {
    v.sort();
    v[((v.len() - 1) as f64 * q) as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}
