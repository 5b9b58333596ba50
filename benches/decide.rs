//! How fast a card read is decided, and how fast free spots are counted, on a
//! lot of realistic size: 1,000 spots, 1,000 users, 10,000 reservations a day
//! kept for 30 days (300,000 rows), 800 vehicles inside.
//!
//! Run: `cargo bench --bench decide`. Prints medians and p99 in microseconds,
//! and each figure as a ratio to a baseline measured in the same run (one
//! one-row SQLite read on the same connection), so runs on noisy machines
//! stay comparable.

use std::hint::black_box;
use std::time::Instant;

use chrono::{DateTime, Duration};
use parkgate::domain::contract::{ChangeBatch, Clock, EventBody, Op, Passage, Record, VERSION};
use parkgate::domain::lane::{Commit, Draft};
use parkgate::domain::model::*;
use parkgate::domain::policy;
use parkgate::store::{Db, Ident};

#[path = "common/lot.rs"]
mod lot;
use lot::{context, lot_config};

const USERS: usize = 1_000;
const PER_DAY: usize = 10_000;
const DAYS: i64 = 30;
const INSIDE: usize = 800;
const RUNS: usize = 2_000;

fn main() {
    let cfg = lot_config();
    let now: Timestamp = DateTime::parse_from_rfc3339("2026-11-23T09:00:00+07:00").unwrap();
    let dir = tempfile::tempdir().unwrap();
    // PARKGATE_BENCH_DB=path keeps the database for a look with sqlite3.
    let path = std::env::var_os("PARKGATE_BENCH_DB")
        .map_or_else(|| dir.path().join("bench.db"), Into::into);
    let _ = std::fs::remove_file(&path);
    let mut db = Db::open(&path, Ident::from(&cfg)).unwrap();
    let t0 = Instant::now();
    populate(&mut db, now);
    println!(
        "populated {USERS} users, {} reservations, {INSIDE} inside in {:.1} s\n",
        PER_DAY as i64 * DAYS,
        t0.elapsed().as_secs_f64()
    );

    // The cheapest store read there is: one meta row by primary key.
    let baseline = measure(|_| {
        black_box(db.replica_seq().unwrap());
    });
    let ctx = context(&cfg);
    let decide = measure(|i| {
        let facts = db
            .facts(&card(i * 7919 % USERS), "main", now, 30, 60)
            .unwrap();
        black_box(policy::decide(&facts, &ctx, now));
    });
    let pure = {
        let facts = db.facts(&card(42), "main", now, 30, 60).unwrap();
        measure(|_| {
            black_box(policy::decide(black_box(&facts), &ctx, now));
        })
    };
    let load_now = measure(|_| {
        black_box(db.load_at("main", now, now, 30, 60).unwrap());
    });
    let later = now + Duration::hours(3);
    let load_later = measure(|_| {
        black_box(db.load_at("main", later, now, 30, 60).unwrap());
    });

    println!(
        "{:<50} {:>12} {:>12} {:>10}",
        "operation", "median µs", "p99 µs", "× baseline"
    );
    for (name, (median, p99)) in [
        ("baseline: one-row read (replica_seq)", baseline),
        ("card read: store.facts + policy::decide", decide),
        ("policy::decide alone (pure)", pure),
        ("count the lot (load_at now; a cold read adds it)", load_now),
        ("availability in 3 h (load_at)", load_later),
    ] {
        println!(
            "{name:<50} {median:>12.1} {p99:>12.1} {:>10.1}",
            median / baseline.0
        );
    }
}

/// Median and p99 of `RUNS` runs of `f`, in microseconds.
fn measure(mut f: impl FnMut(usize)) -> (f64, f64) {
    for i in 0..RUNS / 10 {
        f(i); // warm caches and prepared statements
    }
    let mut times: Vec<f64> = (0..RUNS)
        .map(|i| {
            let t = Instant::now();
            f(i);
            t.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    times.sort_by(f64::total_cmp);
    (times[RUNS / 2], times[RUNS * 99 / 100])
}

fn card(i: usize) -> String {
    format!("04{:012X}", i)
}

fn populate(db: &mut Db, now: Timestamp) {
    let mut seq = 0;
    let mut apply = |db: &mut Db, ops: Vec<Op>| {
        seq += 1;
        db.apply_batch(&ChangeBatch {
            v: VERSION,
            seq,
            at: now,
            ops,
        })
        .unwrap();
    };
    let classes = [
        VehicleClass::Standard,
        VehicleClass::Standard,
        VehicleClass::Standard,
        VehicleClass::Compact,
        VehicleClass::Motorcycle,
    ];
    let mut ops = Vec::new();
    for u in 0..USERS {
        let user_id = format!("u-{u}");
        ops.push(Op::Upsert(Record::User(User {
            user_id: user_id.clone(),
            name: format!("User {u}"),
            company: None,
            status: UserStatus::Active,
        })));
        ops.push(Op::Upsert(Record::Card(Card {
            card: card(u),
            user_id: user_id.clone(),
            status: CardStatus::Active,
            valid_from: None,
            valid_until: None,
        })));
        ops.push(Op::Upsert(Record::Vehicle(Vehicle {
            vehicle_id: format!("v-{u}"),
            user_id: user_id.clone(),
            plate: None,
            class: classes[u % 5],
            ada: u % 50 == 0,
            ev: u % 20 == 0,
            primary: true,
        })));
        let kind = if u % 3 == 0 {
            PlanKind::Daily
        } else {
            PlanKind::Monthly
        };
        ops.push(Op::Upsert(Record::Plan(Plan {
            user_id,
            kind,
            lots: vec!["main".into()],
            valid_until: None,
            status: PlanStatus::Paid,
        })));
    }
    apply(db, ops);
    // 10,000 reservations a day from 29 days ago to today, spread over 06:00-18:00.
    for day in (0..DAYS).rev() {
        let midnight = now - Duration::hours(9) - Duration::days(day);
        let ops = (0..PER_DAY)
            .map(|r| {
                let u = r % USERS;
                let start = midnight
                    + Duration::hours(6)
                    + Duration::seconds((r as i64 * 43_200) / PER_DAY as i64);
                Op::Upsert(Record::Reservation(Reservation {
                    reservation_id: format!("r-{day}-{r}"),
                    user_id: format!("u-{u}"),
                    vehicle_id: format!("v-{u}"),
                    lot: "main".into(),
                    spot_id: Some(format!("S-{}", r % 1000)),
                    class: classes[u % 5],
                    start,
                    end: start + Duration::hours(2),
                    status: if r % 10 == 0 {
                        ReservationStatus::Cancelled
                    } else {
                        ReservationStatus::Booked
                    },
                }))
            })
            .collect();
        apply(db, ops);
    }
    let inside: Vec<EventBody> = (0..INSIDE)
        .map(|u| {
            EventBody::CheckIn(Passage {
                card: Some(card(u)),
                user_id: Some(format!("u-{u}")),
                user_name: Some(format!("User {u}")),
                vehicle_id: Some(format!("v-{u}")),
                vehicle_class: Some(classes[u % 5]),
                reservation_id: None,
                spot_id: None,
                plan: Some(PlanKind::Monthly),
                walk_in: true,
            })
        })
        .collect();
    let first = ulid::Ulid::new();
    let commit = Commit {
        events: inside
            .into_iter()
            .enumerate()
            .map(|(i, body)| Draft {
                event_id: ulid::Ulid(first.0 + i as u128).to_string(),
                body,
            })
            .collect(),
        lockdown: None,
    };
    db.record(commit, now - Duration::hours(1), Clock::Synced)
        .unwrap();
}
