use super::super::housekeeping::{
    PRUNE_APPLIED, PRUNE_COMMANDS, PRUNE_EVENTS, PRUNE_KEPT, PRUNE_VOIDS,
};
use super::super::{Pruned, Store};
use super::*;
use crate::domain::contract::{Alert, AlertKind, Clock, Event, Severity};
use crate::domain::lane::{Commit, Draft};

fn alert() -> EventBody {
    EventBody::Alert(Alert {
        alert: AlertKind::ClockUnsynced,
        severity: Severity::Warning,
        message: "The clock is not synchronised.".into(),
        card: None,
        user_id: None,
        related_event_id: None,
    })
}

#[test]
fn a_command_id_is_new_only_once_until_it_expires() {
    let mut db = mem();
    let expires = now() + minutes(5);
    assert!(db.note_command("c-1", expires).unwrap());
    assert!(!db.note_command("c-1", expires).unwrap());
    assert!(db.note_command("c-2", expires).unwrap());
    let pruned = db.prune(now(), now() + minutes(10)).unwrap();
    assert_eq!(pruned.commands, 2);
    assert!(db.note_command("c-1", now() + minutes(20)).unwrap());
}

#[test]
fn prune_keeps_undelivered_and_recent_events_and_presence() {
    let mut db = mem();
    let old = now() - minutes(60 * 24 * 40);
    // Seq 1, 2: old; 3: old check_in of a car still inside; 4: recent.
    db.record_bodies(vec![alert(), alert()], old, Clock::Synced)
        .unwrap();
    let parked = db
        .record_bodies(
            vec![check_in(passage("v-1", VehicleClass::Standard))],
            old,
            Clock::Synced,
        )
        .unwrap();
    db.record_bodies(vec![alert()], now(), Clock::Synced)
        .unwrap();
    for seq in [1, 3, 4] {
        db.mark_delivered(seq).unwrap();
    }
    assert_eq!(db.first_seq().unwrap(), Some(1));

    let pruned = db.prune(now() - minutes(60 * 24 * 30), now()).unwrap();
    assert_eq!(
        pruned,
        Pruned {
            events: 2,
            applied: 0,
            used: 0,
            voids: 0,
            commands: 0,
            more: false
        }
    );
    let left: Vec<u64> = db.events(10).unwrap().iter().map(|e| e.gate_seq).collect();
    assert_eq!(left, [4, 2], "seq 2 was never delivered");
    assert_eq!(db.first_seq().unwrap(), Some(2));
    // The parked car is still inside, and its check_in still applied once.
    assert_eq!(db.presence().unwrap().len(), 1);
    assert!(!db.apply_remote(&parked[0]).unwrap());
    // Numbering goes on where it was.
    let next = db
        .record_bodies(vec![alert()], now(), Clock::Synced)
        .unwrap();
    assert_eq!(next[0].gate_seq, 5);
}

#[test]
fn an_empty_journal_has_no_first_seq() {
    assert_eq!(mem().first_seq().unwrap(), None);
}

/// Records `bodies` at `at` under the given event ids (so that two stores
/// built alike hold the same rows).
fn record_as(db: &mut Db, bodies: Vec<(String, EventBody)>, at: Timestamp) -> Vec<Event> {
    let events = bodies
        .into_iter()
        .map(|(event_id, body)| Draft { event_id, body })
        .collect();
    let commit = Commit {
        events,
        lockdown: None,
    };
    db.record(commit, at, Clock::Synced).unwrap()
}

/// Forty days of journal, `n` of each kind past a 30-day retention: old
/// delivered alerts, old undelivered ones, old visits (a check_in with its
/// reservation and a check_out), an old check_in of a car still inside,
/// old voids of passages never seen, expired command ids, a sibling's old
/// visits and its old check_in of a car still inside; and a recent day of
/// the same. Returns the cutoff.
fn journal(db: &mut Db, n: usize) -> Timestamp {
    let cutoff = now() - minutes(60 * 24 * 30);
    let mut exit_gate = Db::open_in_memory(sibling("exit-1")).unwrap();
    for (day, at) in [(40, cutoff - minutes(60 * 24 * 10)), (0, now())] {
        let id = |what: &str, i: usize| format!("{what}-{day}-{i:03}");
        let seen = passage(&format!("w-{day}-inside"), VehicleClass::Compact);
        let mut theirs = vec![(vec![(id("w-in", n), check_in(seen))], at)];
        for i in 0..n {
            let visit = passage(&format!("w-{day}-{i}"), VehicleClass::Compact);
            let at = at + minutes(i as i64);
            let both = vec![
                (id("w-in", i), check_in(visit.clone())),
                (id("w-out", i), check_out(visit)),
            ];
            theirs.push((both, at));
        }
        for (bodies, at) in theirs {
            for event in record_as(&mut exit_gate, bodies, at) {
                assert!(db.apply_remote(&event).unwrap());
            }
        }
        for i in 0..n {
            let at = at + minutes(i as i64);
            let mut visit = passage(&format!("v-{day}-{i}"), VehicleClass::Standard);
            visit.reservation_id = Some(id("r", i));
            record_as(
                db,
                vec![
                    (id("alert", i), alert()),
                    (id("in", i), check_in(visit.clone())),
                    (id("out", i), check_out(visit)),
                    (id("void", i), void(&id("unseen", i))),
                ],
                at,
            );
            record_as(db, vec![(id("late", i), alert())], at);
            db.note_command(&id("cmd", i), at + minutes(5)).unwrap();
        }
        let parked = passage(&format!("v-{day}-inside"), VehicleClass::Standard);
        record_as(db, vec![(id("parked", 0), check_in(parked))], at);
    }
    // Everything delivered but the `late` alerts.
    let late: Vec<u64> = db
        .events(10_000)
        .unwrap()
        .iter()
        .filter(|e| !e.event_id.starts_with("late"))
        .map(|e| e.gate_seq)
        .collect();
    for seq in late {
        db.mark_delivered(seq).unwrap();
    }
    cutoff
}

/// Every row of the tables pruning touches, in key order, as text.
fn rows(db: &Db) -> Vec<String> {
    let mut out = Vec::new();
    for table in [
        "events",
        "applied_events",
        "used_reservations",
        "pending_voids",
        "commands_seen",
        "presence",
    ] {
        let mut stmt = db
            .conn
            .prepare(&format!("SELECT * FROM {table} ORDER BY 1"))
            .unwrap();
        let columns = stmt.column_count();
        let mut found = stmt.query([]).unwrap();
        while let Some(r) = found.next().unwrap() {
            let row: Vec<String> = (0..columns)
                .map(|i| format!("{:?}", r.get_ref(i).unwrap()))
                .collect();
            out.push(format!("{table}: {}", row.join(", ")));
        }
    }
    out
}

/// Pruning as it was before it came in steps: one transaction, whole
/// tables scanned. The reference the steps must agree with.
fn one_shot(db: &mut Db, cutoff: Timestamp, now: Timestamp) {
    let (cutoff, now) = (cutoff.timestamp_millis(), now.timestamp_millis());
    let tx = db.conn.transaction().unwrap();
    // This gate's records ride on its journal rows; a vehicle still
    // inside keeps its check_in's.
    tx.execute(
        "INSERT INTO applied_events
             (event_id, gate, type, own, vehicle_id, class, before, voided, at_ms)
         SELECT event_id, json_extract(json, '$.gate'), type, 1, vehicle_id, class, before,
                voided, at_ms
         FROM events WHERE delivered = 1 AND at_ms < ?1
           AND event_id IN (SELECT event_id FROM presence)",
        [cutoff],
    )
    .unwrap();
    tx.execute(
        "DELETE FROM events WHERE delivered = 1 AND at_ms < ?1",
        [cutoff],
    )
    .unwrap();
    tx.execute(
        "DELETE FROM applied_events WHERE at_ms < ?1
           AND event_id NOT IN (SELECT event_id FROM presence)",
        [cutoff],
    )
    .unwrap();
    tx.execute("DELETE FROM pending_voids WHERE at_ms < ?1", [cutoff])
        .unwrap();
    tx.execute(
        "DELETE FROM used_reservations
         WHERE event_id NOT IN (SELECT event_id FROM applied_events)
           AND event_id NOT IN (SELECT event_id FROM events)",
        [],
    )
    .unwrap();
    tx.execute("DELETE FROM commands_seen WHERE expires_at_ms < ?1", [now])
        .unwrap();
    tx.commit().unwrap();
}

#[test]
fn a_step_removes_at_most_max_rows_of_each_kind() {
    let mut db = mem();
    let cutoff = journal(&mut db, 7);
    let before = (count(&db, "events"), count(&db, "applied_events"));
    let step = db.prune_step(cutoff, now() - minutes(60), 3).unwrap();
    // The three oldest events are an alert, a check_in with its reservation
    // and its check_out: two own records go with their journal rows, and
    // three of the sibling's, found by time.
    assert_eq!(
        step,
        Pruned {
            events: 3,
            applied: 3,
            used: 1,
            voids: 3,
            commands: 3,
            more: true,
        }
    );
    assert_eq!(count(&db, "events"), before.0 - 3);
    assert_eq!(count(&db, "applied_events"), before.1 - 3);
}

#[test]
fn an_own_check_in_pruned_while_its_car_is_inside_keeps_its_record_until_it_leaves() {
    let mut db = mem();
    let (old, cutoff) = (now() - minutes(60 * 24 * 40), now() - minutes(60 * 24 * 30));
    let car = passage("v-1", VehicleClass::Standard);
    let parked = db
        .record_bodies(vec![check_in(car.clone())], old, Clock::Synced)
        .unwrap();
    db.mark_delivered(parked[0].gate_seq).unwrap();
    let pruned = db.prune(cutoff, now()).unwrap();
    assert_eq!((pruned.events, pruned.applied), (1, 0), "{pruned:?}");
    assert_eq!(count(&db, "applied_kept"), 1);
    // Its echo is still known, and a void of it still finds it.
    assert!(!db.apply_remote(&parked[0]).unwrap());
    assert_eq!(db.prune(cutoff, now()).unwrap().applied, 0, "still inside");

    let out = db
        .record_bodies(vec![check_out(car)], now(), Clock::Synced)
        .unwrap();
    db.mark_delivered(out[0].gate_seq).unwrap();
    let pruned = db.prune(cutoff, now()).unwrap();
    assert_eq!((pruned.events, pruned.applied), (0, 1), "{pruned:?}");
    assert_eq!(count(&db, "applied_kept"), 0);
    assert_eq!(
        count(&db, "applied_events"),
        0,
        "the check_out's is on its row"
    );
    assert_eq!(own_records(&db), 1);
}

#[test]
fn an_own_passage_waiting_in_the_outbox_keeps_its_record() {
    let mut db = mem();
    let old = now() - minutes(60 * 24 * 40);
    let car = passage("v-1", VehicleClass::Standard);
    db.record_bodies(
        vec![check_in(car.clone()), check_out(car)],
        old,
        Clock::Synced,
    )
    .unwrap();
    let cutoff = now() - minutes(60 * 24 * 30);
    assert_eq!(db.prune(cutoff, now()).unwrap(), Pruned::default());
    assert_eq!(own_records(&db), 2);
    for seq in [1, 2] {
        db.mark_delivered(seq).unwrap();
    }
    let pruned = db.prune(cutoff, now()).unwrap();
    assert_eq!((pruned.events, pruned.applied), (2, 0), "{pruned:?}");
    assert_eq!(own_records(&db), 0);
    assert_eq!(count(&db, "applied_events"), 0);
}

/// This gate's applied passage records on its journal rows.
fn own_records(db: &Db) -> i64 {
    db.conn
        .query_row(
            "SELECT COUNT(*) FROM events WHERE class IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap()
}

#[test]
fn steps_of_any_size_reach_what_a_one_shot_prune_reaches() {
    let (n, later) = (7, now() - minutes(60));
    let mut reference = mem();
    let cutoff = journal(&mut reference, n);
    let unpruned = rows(&reference);
    one_shot(&mut reference, cutoff, later);
    let expected = rows(&reference);
    assert!(expected.len() < unpruned.len());
    for max_rows in [1, 2, 3, 5, 8, 1_000] {
        let mut db = mem();
        journal(&mut db, n);
        assert_eq!(rows(&db), unpruned, "built alike");
        let (mut total, mut steps) = (Pruned::default(), 0);
        loop {
            let step = db.prune_step(cutoff, later, max_rows).unwrap();
            steps += 1;
            total.add(step);
            if !step.more {
                break;
            }
        }
        assert_eq!(rows(&db), expected, "steps of {max_rows}");
        // Less the records of cars still inside, copied out of their rows.
        let copied = count(&db, "applied_kept") as usize;
        assert_eq!(total.rows(), unpruned.len() - expected.len() + copied);
        // 4n + 1 events, 3n passages, n voids, n commands: the largest
        // bounds the steps (one more finds nothing when a bound was met
        // exactly).
        assert!(steps <= (4 * n + 1).div_ceil(max_rows) + 1, "{steps} steps");
    }
    // And the whole prune, in steps of PRUNE_STEP, agrees too.
    let mut db = mem();
    journal(&mut db, n);
    let whole = db.prune(cutoff, later).unwrap();
    assert!(!whole.more);
    assert_eq!(rows(&db), expected);
}

#[test]
fn prune_steps_find_their_rows_through_indexes() {
    let db = mem();
    for sql in [
        PRUNE_EVENTS,
        PRUNE_APPLIED,
        PRUNE_KEPT,
        PRUNE_VOIDS,
        PRUNE_COMMANDS,
        "DELETE FROM used_reservations WHERE event_id = ?1",
        "DELETE FROM applied_events WHERE event_id = ?1",
    ] {
        let mut stmt = db
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap();
        let unbound = std::iter::repeat_n(rusqlite::types::Null, stmt.parameter_count());
        let plan: Vec<String> = stmt
            .query_map(rusqlite::params_from_iter(unbound), |r| {
                r.get::<_, String>(3)
            })
            .unwrap()
            .map(Result::unwrap)
            .collect();
        // Only presence (a row per vehicle inside) and the records kept
        // for vehicles inside since before the retention (fewer) are read
        // whole.
        let small = ["SCAN presence", "SCAN k"];
        let scans: Vec<&String> = plan
            .iter()
            .filter(|l| l.starts_with("SCAN") && !small.iter().any(|s| l.starts_with(s)))
            .collect();
        assert!(scans.is_empty(), "{sql}: {plan:?}");
    }
}

#[tokio::test]
async fn the_daemons_pruning_lets_other_jobs_run_between_its_steps() {
    let mut db = mem();
    let cutoff = journal(&mut db, 7);
    let later = now() - minutes(60);
    let before = count(&db, "events");
    let (store, thread) = Store::spawn(db);
    let (between, total) = {
        let mut pruning = std::pin::pin!(store.prune(cutoff, later, 2));
        // Polled once, the pruning has sent its first step and waits for it.
        std::future::poll_fn(|cx| {
            assert!(pruning.as_mut().poll(cx).is_pending());
            std::task::Poll::Ready(())
        })
        .await;
        // A job sent now runs after that step, before the next is sent.
        let between = store.call(|db| count(db, "events")).await.unwrap();
        (between, pruning.await.unwrap())
    };
    let after = store.call(|db| count(db, "events")).await.unwrap();
    // Old alerts, check_ins, check_outs, voids, and the parked car's check_in.
    assert_eq!(total.pruned.events, 4 * 7 + 1);
    // Two events a step; the last finds one, so the pruning knows it is done.
    assert_eq!(total.steps.len(), (4 * 7 + 1_usize).div_ceil(2));
    assert_eq!(after, before - 29);
    assert_eq!(between, before - 2, "one step of two events had run");
    drop(store);
    thread.join().unwrap();
}

mod wal_pace {
    use tokio::sync::watch;
    use tokio::time::Instant;

    use super::super::super::Wal;
    use super::super::super::checkpoint::{AUTO_PAGES, RESTART_PAGES};
    use super::super::super::housekeeping::{
        PRUNE_CATCH_UP_PAGES, PRUNE_WAL_PAGES, PRUNE_WAL_WAIT, wal_caught_up,
    };
    use super::*;

    fn wal(pages: u32) -> Wal {
        Wal {
            pages,
            copied: pages,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_short_wal_never_holds_pruning() {
        let (_report, mut rx) = watch::channel(wal(PRUNE_WAL_PAGES));
        let t = Instant::now();
        assert!(!wal_caught_up(&mut rx).await);
        assert_eq!(t.elapsed(), std::time::Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_long_wal_holds_pruning_for_two_checkpoints() {
        let (report, rx) = watch::channel(wal(PRUNE_WAL_PAGES + 1));
        let t = Instant::now();
        let waiting = tokio::spawn(async move {
            let mut rx = rx;
            wal_caught_up(&mut rx).await
        });
        tokio::task::yield_now().await;
        report.send_replace(wal(PRUNE_WAL_PAGES + 1));
        tokio::task::yield_now().await;
        assert!(
            !waiting.is_finished(),
            "one checkpoint may have begun before the pause"
        );
        // The second: far behind still, so the store thread copies the rest.
        report.send_replace(wal(PRUNE_CATCH_UP_PAGES + 1));
        assert!(waiting.await.unwrap());
        assert!(t.elapsed() < PRUNE_WAL_WAIT, "not timed out");
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_checkpointer_holds_pruning_only_so_long() {
        let (_report, mut rx) = watch::channel(wal(PRUNE_WAL_PAGES + 1));
        let t = Instant::now();
        assert!(
            !wal_caught_up(&mut rx).await,
            "not far enough behind to copy"
        );
        assert_eq!(t.elapsed(), PRUNE_WAL_WAIT);
    }

    #[tokio::test]
    async fn the_checkpoint_thread_reports_the_wal_it_copied() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = Db::open(&dir.path().join("gate.db"), ident()).unwrap();
        let mut rx = db.wal().expect("a file store has a checkpoint thread");
        db.record_bodies(vec![alert()], now(), Clock::Synced)
            .unwrap();
        // Reports come every 100 ms; the guard only keeps a broken thread
        // from hanging the test.
        let copied = tokio::time::timeout(std::time::Duration::from_secs(30), async {
            loop {
                rx.changed().await.unwrap();
                let w = *rx.borrow();
                if w.pages > 0 {
                    return w;
                }
            }
        })
        .await
        .expect("a report of the commit's pages");
        assert_eq!(copied.copied, copied.pages);
        assert!(Db::open_in_memory(ident()).unwrap().wal().is_none());
    }

    /// Cards back to back, the store thread's work between them: the WAL
    /// starts again soon after the checkpoint thread reports it long. On
    /// its own, the thread's copy always trails the next commit (a write
    /// starts the WAL again only if everything was copied when its
    /// transaction began), and the WAL grows until SQLite's automatic
    /// checkpoint at [`AUTO_PAGES`].
    #[test]
    fn back_to_back_commits_start_the_wal_again_once_it_is_long() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = Db::open(&dir.path().join("gate.db"), ident()).unwrap();
        // The pace of a slow SD card (a millisecond a commit), whatever this
        // machine's disk: the thread reports some ten times a second.
        db.before_commit(|| std::thread::sleep(std::time::Duration::from_millis(1)));
        let rx = db.wal().expect("a file store has a checkpoint thread");
        let (mut longest, mut restarted) = (0, false);
        // Some pages a commit, until the WAL starts again or is half way to
        // the automatic checkpoint (the guard: a silent thread).
        for _ in 0..20_000 {
            db.record_bodies(vec![alert(); 20], now(), Clock::Synced)
                .unwrap();
            db.between_jobs(std::time::Instant::now());
            let pages = rx.borrow().pages;
            if longest >= RESTART_PAGES && pages < longest {
                restarted = true;
                break;
            }
            longest = longest.max(pages);
            if longest > AUTO_PAGES / 2 {
                break;
            }
        }
        assert!(
            longest >= RESTART_PAGES,
            "the checkpoint thread reported a long WAL ({longest} pages at most)"
        );
        assert!(restarted, "the WAL started again after {longest} pages");
    }
}
