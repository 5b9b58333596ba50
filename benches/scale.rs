//! Issue 10's figures at the seed's scale: 1,000,000 users (a card, a
//! vehicle and a plan each), 50,000 reservations a day kept 30 days, 1,000
//! spots, 800 vehicles inside; each figure next to a baseline measured in
//! the same run (a bare indexed one-row lookup plus an fsync'd one-row
//! insert in a scratch SQLite file, WAL, `synchronous=FULL`, timed in turn
//! with the decisions, one each) and its target.
//!
//! Run: `cargo bench --bench scale`. Scale down with `USERS`, `PER_DAY`,
//! `DECISIONS` (timed back to back, default 10,000) and `MORE` (the further
//! decisions before the second RSS reading, default 100,000); `BENCH_DIR`
//! puts the stores on another disk; `DUMP=file` writes each timed
//! decision's figures there.
//!
//! Measured: card decision with its durable commit, back to back (the store
//! calls the daemon makes: `facts`, `policy::decide`, `record`, then the
//! store thread's work between jobs, which the next card waits for when
//! cards come back to back); availability
//! (`load_at` + `availability::free`, what `parkgate availability` runs) now
//! and over the next 24 h; `Db::open` to a first decision (page cache warm);
//! store size; bytes written per passage (`/proc/self/io`); RSS of this
//! process (seeding included, so an upper bound for the daemon).
//!
//! At the seed's 50,000 bookings a day on 1,000 spots the lot is full: the
//! 800 insiders' exits are admitted, most re-entries are denied (a `denied`
//! event, still one durable commit each); the admitted count is printed.
//!
//! Elsewhere: the tap-to-barrier time, the daemon's start-up and RSS
//! (`benches/daemon.rs`), `parkgate replica apply` against the `sqlite3`
//! CLI (`benches/apply.rs`), pruning at peak traffic (`benches/prune.rs`).

#[path = "scale/baseline.rs"]
mod baseline;
use baseline::Baseline;
#[path = "scale/seed.rs"]
mod seed;

use std::time::Instant;

use chrono::Duration;
use parkgate::domain::availability;
use parkgate::domain::contract::{Clock, EventBody};
use parkgate::domain::lane::{Commit, Draft};
use parkgate::domain::model::*;
use parkgate::domain::policy::{self, Context, Decision};
use parkgate::store::{Db, Ident};

#[path = "common/lot.rs"]
mod lot;
use lot::{context, env, lot_config};

fn main() {
    let s = seed::Scale {
        users: env("USERS", 1_000_000),
        per_day: env("PER_DAY", 50_000),
        inside: 800,
    };
    let (runs, more) = (env("DECISIONS", 10_000), env("MORE", 100_000));
    let cfg = lot_config();
    let now = seed::ts("2026-11-23T09:00:00+07:00");
    // BENCH_DIR: where the stores live (the disk that is measured; on a Pi,
    // its SD card). Default: the target directory's scratch space.
    let base = std::env::var("BENCH_DIR").unwrap_or_else(|_| env!("CARGO_TARGET_TMPDIR").into());
    let dir = tempfile::tempdir_in(base).unwrap();
    let path = dir.path().join("scale.db");
    let mut db = Db::open(&path, Ident::from(&cfg)).unwrap();
    let t = Instant::now();
    seed::populate(&mut db, &s, now);
    println!(
        "seeded {} users, {} reservations ({}/day x {} days), {} spots, {} inside in {:.1} s\n",
        s.users,
        s.per_day as i64 * seed::DAYS,
        s.per_day,
        seed::DAYS,
        seed::SPOTS,
        s.inside,
        t.elapsed().as_secs_f64()
    );
    let ctx = context(&cfg);
    let baseline = Baseline::new(dir.path(), s.users);
    let mut base = Vec::with_capacity(runs);
    settle(dir.path());

    // 1. Decisions back to back: insiders leave and come back, in pairs.
    let io0 = proc_io();
    let mut admitted = 0;
    let mut times = Vec::with_capacity(runs);
    let (mut reads, mut commits) = (Vec::with_capacity(runs), Vec::with_capacity(runs));
    let mut between = Vec::with_capacity(runs);
    let (mut admits, mut denials) = (vec![], vec![]);
    let mut base_io = (0, 0);
    let mut oks = Vec::new();
    for i in 0..runs {
        // The baseline's own writes are not the passages'.
        let b0 = proc_io();
        base.push(baseline.sample(i));
        let b1 = proc_io();
        base_io = (base_io.0 + b1.0 - b0.0, base_io.1 + b1.1 - b0.1);
        let t = Instant::now();
        let (ok, read) = pass(&mut db, &ctx, i, now);
        admitted += usize::from(ok);
        let decided = t.elapsed().as_secs_f64() * 1e6;
        db.between_jobs(Instant::now());
        let total = t.elapsed().as_secs_f64() * 1e6;
        times.push(total);
        reads.push(read);
        commits.push(decided - read);
        between.push(total - decided);
        oks.push(ok);
        if ok { &mut admits } else { &mut denials }.push(total);
    }
    let io1 = proc_io();
    let rss1 = rss_kb();
    // Where the slowest 1% come from; DUMP=file writes every decision's figures.
    let slow = stats(times.clone()).1;
    let slowest: Vec<usize> = (0..runs).filter(|&i| times[i] >= slow).collect();
    let first_round = 2 * s.inside;
    if let Ok(dump) = std::env::var("DUMP") {
        let mut out = String::from("baseline total read commit between admitted (µs)\n");
        for i in 0..runs {
            let (b, t, r, c, w) = (base[i], times[i], reads[i], commits[i], between[i]);
            out += &format!("{b:.1} {t:.1} {r:.1} {c:.1} {w:.1} {}\n", u8::from(oks[i]));
        }
        std::fs::write(dump, out).unwrap();
    }
    let base = stats(base);
    row("baseline: indexed lookup + fsync'd insert", base, None);
    let dec = stats(times);
    row("card decision + durable commit", dec, None);
    row("  of which facts + decide", stats(reads), None);
    row("  of which the commit (record)", stats(commits), None);
    row("  of which the work between jobs", stats(between), None);
    if !admits.is_empty() && !denials.is_empty() {
        row(
            "  admitted ones (a passage's presence too)",
            stats(admits),
            None,
        );
        row("  refused ones (a denial event only)", stats(denials), None);
    }
    println!("  ({admitted} of {runs} admitted)");
    println!(
        "  the slowest 1% ({}): {} admitted, {} among the first {first_round} (the insiders' exits and returns)",
        slowest.len(),
        slowest.iter().filter(|&&i| oks[i]).count(),
        slowest.iter().filter(|&&i| i < first_round).count(),
    );
    let ok = |v: f64, max: f64| if v <= max { "PASS" } else { "MISS" };
    println!(
        "  median {:.1}x baseline, p99 {:.1}x (target <= 2x): {} / {}\n",
        dec.0 / base.0,
        dec.1 / base.1,
        ok(dec.0 / base.0, 2.0),
        ok(dec.1 / base.1, 2.0)
    );

    // The kept load the decisions read, against a full recount.
    let last = now + Duration::milliseconds(runs as i64 * 10);
    let kept = db.load_at("main", last, last, 30, 60).unwrap();
    let counted = db.recount("main", last, last, 30, 60).unwrap();
    println!(
        "kept load equals a full recount after {runs} passages: {}\n",
        if kept == counted { "yes" } else { "NO" }
    );
    assert_eq!(kept, counted);

    // 2. Availability now and over the next 24 h.
    for (name, step) in [("availability now", 0), ("availability, next 24 h", 1)] {
        let avail = stats(
            (0..1_000)
                .map(|i| {
                    let at = now + Duration::seconds(step * (i * 86_400 / 1_000));
                    let t = Instant::now();
                    let load = db.load_at("main", at, now, 30, 60).unwrap();
                    std::hint::black_box(availability::free(&cfg.capacity, &load));
                    t.elapsed().as_secs_f64() * 1e6
                })
                .collect(),
        );
        row(name, avail, Some(10_000.0));
    }

    // 3. Start-up: open the store and decide a card.
    drop(db);
    let t = Instant::now();
    let mut db = Db::open(&path, Ident::from(&cfg)).unwrap();
    let open = t.elapsed().as_secs_f64() * 1e3;
    let facts = db.facts(&seed::uid(0), "main", now, 30, 60).unwrap();
    std::hint::black_box(policy::decide(&facts, &ctx, now));
    let first = t.elapsed().as_secs_f64() * 1e3;
    println!(
        "\nstart-up: Db::open {open:.1} ms, to a first decision {first:.1} ms (target < 100 ms, warm page cache): {}",
        ok(first, 100.0)
    );

    // 4. Size and wear.
    let size = |p: &std::path::Path| -> f64 {
        ["", "-wal"]
            .iter()
            .filter_map(|x| std::fs::metadata(format!("{}{x}", p.display())).ok())
            .map(|m| m.len() as f64 / 1e6)
            .sum()
    };
    let (main, replica) = (size(&path), size(&db.files().replica));
    println!(
        "store on disk, with WALs: main {main:.0} MB + replica {replica:.0} MB = {:.0} MB, {:.0} MB per million users at this size",
        main + replica,
        (main + replica) / (s.users as f64 / 1e6)
    );
    println!(
        "written per passage over {runs}: {:.0} bytes to disk (write_bytes), {:.0} bytes through write() (wchar)",
        (io1.0 - io0.0).saturating_sub(base_io.0) as f64 / runs as f64,
        (io1.1 - io0.1).saturating_sub(base_io.1) as f64 / runs as f64
    );

    // 5. RSS of this process (seeding included): after `runs`, then `more`.
    for i in runs..runs + more {
        pass(&mut db, &ctx, i, now);
        db.between_jobs(Instant::now());
    }
    let rss2 = rss_kb();
    println!(
        "RSS of this bench process (seeding included, no daemon's memory limits; the daemon's, the target's, is measured by `daemon`): {:.1} MB after {runs} decisions; {:.1} MB after {more} more (flat: growth < 1 MB): {}",
        rss1 as f64 / 1024.0,
        rss2 as f64 / 1024.0,
        ok(rss2 as f64 - rss1 as f64, 1024.0)
    );
}

/// Decision `i`: insider `i / 2` leaves (even `i`) or comes back (odd),
/// decided and committed as the daemon does. Whether it was admitted, and
/// how long reading and deciding took (µs).
fn pass(db: &mut Db, ctx: &Context, i: usize, now: Timestamp) -> (bool, f64) {
    let t = Instant::now();
    let at = now + Duration::milliseconds(i as i64 * 10);
    let card = seed::uid(i / 2 % 800);
    let facts = db.facts(&card, "main", at, 30, 60).unwrap();
    let decision = policy::decide(&facts, ctx, at);
    let read = t.elapsed().as_secs_f64() * 1e6;
    let (bodies, admitted) = match decision {
        Decision::Admit { event, alerts, .. } => {
            let alerts = alerts.into_iter().map(EventBody::Alert);
            (
                std::iter::once(event).chain(alerts).collect::<Vec<_>>(),
                true,
            )
        }
        Decision::Deny { denied, alert, .. } => {
            let alert = alert.into_iter().map(EventBody::Alert);
            let denied = std::iter::once(EventBody::Denied(denied));
            (denied.chain(alert).collect(), false)
        }
    };
    let events = bodies
        .into_iter()
        .map(|body| Draft {
            event_id: ulid::Ulid::new().to_string(),
            body,
        })
        .collect();
    let commit = Commit {
        events,
        lockdown: None,
    };
    db.record(commit, at, Clock::Synced).unwrap();
    (admitted, read)
}

/// Writes out what seeding left in the page cache (some 600 MB at full
/// size, which the kernel would otherwise write back during the timed
/// decisions, in the way of their fsyncs): a gate at rest has none.
fn settle(dir: &std::path::Path) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if let Ok(file) = std::fs::File::open(&path) {
            file.sync_all().unwrap();
        }
    }
}

/// Median and p99.
fn stats(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[(v.len() - 1) * 99 / 100])
}

/// One line of figures in µs; with a p99 target in µs, PASS/MISS.
fn row(name: &str, (median, p99): (f64, f64), p99_max: Option<f64>) {
    let verdict = p99_max.map_or(String::new(), |max| {
        let v = if p99 < max { "PASS" } else { "MISS" };
        format!("  (p99 target < {:.0} ms): {v}", max / 1e3)
    });
    println!("{name:<45} median {median:>9.1} µs  p99 {p99:>9.1} µs{verdict}");
}

/// `write_bytes` and `wchar` of this process.
fn proc_io() -> (u64, u64) {
    let io = std::fs::read_to_string("/proc/self/io").unwrap_or_default();
    let field = |k: &str| {
        io.lines()
            .find_map(|l| l.strip_prefix(k)?.trim().parse().ok())
            .unwrap_or(0)
    };
    (field("write_bytes:"), field("wchar:"))
}

fn rss_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| {
            l.strip_prefix("VmRSS:")?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0)
}
