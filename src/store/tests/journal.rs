use std::collections::BTreeMap;

use super::*;
use crate::domain::contract::{Clock, Denied, DenyReason, Event};
use crate::domain::lane::{Commit, Draft};
use crate::domain::model::Presence;

use VehicleClass::{Compact, Standard};

fn seqs(events: &[Event]) -> Vec<u64> {
    events.iter().map(|e| e.gate_seq).collect()
}

fn record(db: &mut Db, body: EventBody) -> Event {
    db.record_bodies(vec![body], now(), Clock::Synced)
        .unwrap()
        .remove(0)
}

fn vehicles_inside(db: &Db) -> Vec<String> {
    db.presence()
        .unwrap()
        .into_iter()
        .map(|p| p.vehicle_id)
        .collect()
}

#[test]
fn record_stamps_the_envelope_and_numbers_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gate.db");
    let mut db = Db::open(&path, ident()).unwrap();
    let first = db
        .record_bodies(vec![alert(), alert()], now(), Clock::Unsynced)
        .unwrap();
    assert_eq!(seqs(&first), [1, 2]);
    let e = &first[0];
    assert_eq!(
        (e.v, e.site.as_str(), e.lot.as_str(), e.gate.as_str()),
        (1, "b1", "main", "entry-1")
    );
    assert_eq!((e.at, e.clock), (now(), Clock::Unsynced));
    assert_eq!(e.body, alert());
    assert!(e.event_id.parse::<ulid::Ulid>().is_ok(), "{}", e.event_id);
    assert_ne!(first[0].event_id, first[1].event_id);
    drop(db);

    let mut db = Db::open(&path, ident()).unwrap();
    let later = db
        .record_bodies(vec![alert()], now(), Clock::Synced)
        .unwrap();
    assert_eq!(seqs(&later), [3]);
    let all = db.events_range(1, 3).unwrap();
    assert_eq!(seqs(&all), [1, 2, 3]);
    assert_eq!(all[..2], first[..]);
}

#[test]
fn the_journal_keeps_the_exact_json() {
    let mut db = mem();
    let e = record(&mut db, check_in(passage("v-1", Standard)));
    let stored: String = db
        .conn
        .query_row("SELECT json FROM events WHERE gate_seq = 1", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(stored, serde_json::to_string(&e).unwrap());
    // What the outbox hands back serialises to the same bytes: replays are identical.
    let out = db.outbox(1).unwrap();
    assert_eq!(serde_json::to_string(&out[0]).unwrap(), stored);
}

fn floor(db: &Db) -> u64 {
    crate::store::codec::get_meta(&db.conn, crate::store::codec::OUTBOX_FLOOR).unwrap()
}

#[test]
fn the_outbox_floor_rises_past_delivered_events_only() {
    let mut db = mem();
    db.record_bodies(vec![alert(), alert(), alert()], now(), Clock::Synced)
        .unwrap();
    db.mark_all_delivered(&[1, 3]).unwrap();
    assert_eq!(floor(&db), 1, "2 is still out");
    assert_eq!(seqs(&db.outbox(10).unwrap()), [2]);
    db.mark_all_delivered(&[2]).unwrap();
    assert_eq!(floor(&db), 3);
    assert!(db.outbox(10).unwrap().is_empty());
    assert_eq!(db.outbox_depth().unwrap(), 0);
    assert_eq!(db.outbox_facts().unwrap().oldest, None);

    // All delivered, then pruned away: the next events are still found.
    assert_eq!(db.prune(now() + minutes(1), now()).unwrap().events, 3);
    record(&mut db, alert());
    record(&mut db, alert());
    assert_eq!(seqs(&db.outbox(10).unwrap()), [4, 5]);
    let after: Vec<u64> = db
        .outbox_after(0, 10)
        .unwrap()
        .iter()
        .map(|s| s.gate_seq)
        .collect();
    assert_eq!(after, [4, 5]);
    db.mark_delivered(5).unwrap();
    assert_eq!((floor(&db), db.outbox_depth().unwrap()), (3, 1));
    assert_eq!(db.outbox_facts().unwrap().oldest, Some(now()));
    db.mark_delivered(4).unwrap();
    assert_eq!((floor(&db), db.outbox_depth().unwrap()), (5, 0));
}

#[test]
fn the_outbox_is_in_seq_order_until_delivered() {
    let mut db = mem();
    db.record_bodies(vec![alert(), alert(), alert()], now(), Clock::Synced)
        .unwrap();
    assert_eq!(seqs(&db.outbox(10).unwrap()), [1, 2, 3]);
    assert_eq!(seqs(&db.outbox(2).unwrap()), [1, 2]);
    assert_eq!(db.outbox_depth().unwrap(), 3);

    db.mark_delivered(2).unwrap();
    db.mark_delivered(2).unwrap();
    assert_eq!(seqs(&db.outbox(10).unwrap()), [1, 3]);
    assert_eq!(db.outbox_depth().unwrap(), 2);
    // Delivered events stay in the journal.
    assert_eq!(seqs(&db.events(10).unwrap()), [3, 2, 1]);
    assert_eq!(seqs(&db.events(1).unwrap()), [3]);
    assert_eq!(seqs(&db.events_range(2, 9).unwrap()), [2, 3]);
}

#[test]
fn check_in_and_check_out_move_presence() {
    let mut db = mem();
    // The flags come from the replica's vehicle, not from the event.
    let mut v = vehicle("v-1", "u-1", Standard);
    v.ev = true;
    db.apply_batch(&batch(1, vec![up(Record::Vehicle(v))]))
        .unwrap();
    let mut p = passage("v-1", Standard);
    p.reservation_id = Some("r-1".into());
    p.spot_id = Some("B1-042".into());
    let e = record(&mut db, check_in(p.clone()));
    assert_eq!(
        db.presence().unwrap(),
        [Presence {
            vehicle_id: "v-1".into(),
            user_id: "u-1".into(),
            class: Standard,
            ada: false,
            ev: true,
            since: now(),
            reservation_id: Some("r-1".into()),
            spot_id: Some("B1-042".into()),
            plan: PlanKind::Monthly,
            event_id: e.event_id,
        }]
    );
    record(&mut db, check_out(p));
    assert!(db.presence().unwrap().is_empty());
}

#[test]
fn a_void_undoes_a_check_in() {
    let mut db = mem();
    record(&mut db, check_in(passage("v-1", Standard)));
    let second = record(&mut db, check_in(passage("v-2", Standard)));
    record(&mut db, void(&second.event_id));
    assert_eq!(vehicles_inside(&db), ["v-1"]);
    // Voiding again changes nothing (and counts nothing twice).
    record(&mut db, void(&second.event_id));
    let (entered, exited) = db.counters().unwrap();
    // Counters only grow: the voided entry counts as an exit.
    assert_eq!((entered[&Standard], exited[&Standard]), (2, 1));
}

#[test]
fn a_void_of_a_repeated_check_in_restores_the_first() {
    let mut db = mem();
    let first = record(&mut db, check_in(passage("v-1", Standard)));
    let again = record(&mut db, check_in(passage("v-1", Standard)));
    assert_eq!(db.presence().unwrap()[0].event_id, again.event_id);
    record(&mut db, void(&again.event_id));
    assert_eq!(db.presence().unwrap()[0].event_id, first.event_id);
}

#[test]
fn a_void_undoes_a_check_out() {
    let mut db = mem();
    let entry = record(&mut db, check_in(passage("v-1", Standard)));
    let before = db.presence().unwrap();
    let exit = record(&mut db, check_out(passage("v-1", Standard)));
    assert!(db.presence().unwrap().is_empty());
    record(&mut db, void(&exit.event_id));
    assert_eq!(db.presence().unwrap(), before);
    assert_eq!(db.presence().unwrap()[0].event_id, entry.event_id);
}

#[test]
fn a_void_finds_its_passage_beyond_the_recent_events_too() {
    let mut db = mem();
    let entry = record(&mut db, check_in(passage("v-1", Standard)));
    let exit = record(&mut db, check_out(passage("v-1", Standard)));
    // More events since than a void looks through first.
    let alerts = vec![alert(); 1_200];
    db.record_bodies(alerts, now(), Clock::Synced).unwrap();
    record(&mut db, void(&exit.event_id));
    assert_eq!(db.presence().unwrap()[0].event_id, entry.event_id);
    assert_eq!(count(&db, "pending_voids"), 0, "found, not waiting");
}

#[test]
fn an_admitted_passage_writes_its_applied_record_on_its_journal_row() {
    let mut db = mem();
    let entry = record(&mut db, check_in(passage("v-1", Standard)));
    record(&mut db, check_out(passage("v-1", Standard)));
    assert_eq!(count(&db, "applied_events"), 0, "no second b-tree");
    let records: Vec<(String, Option<String>, bool)> = db
        .conn
        .prepare("SELECT class, before, voided FROM events ORDER BY gate_seq")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0], ("standard".into(), None, false));
    let before: Presence = serde_json::from_str(records[1].1.as_deref().unwrap()).unwrap();
    assert_eq!(
        before.event_id, entry.event_id,
        "what a void of the exit restores"
    );
    // Echoed back by the broker, it changes nothing.
    assert!(!db.apply_remote(&entry).unwrap());
}

#[test]
fn counters_only_grow_and_net_out_voided_passages() {
    let mut db = mem();
    record(&mut db, check_in(passage("v-1", Standard)));
    record(&mut db, check_in(passage("v-2", Standard)));
    record(&mut db, check_out(passage("v-1", Standard)));
    let turned_away = record(&mut db, check_in(passage("v-3", Compact)));
    record(&mut db, void(&turned_away.event_id));
    let exit = record(&mut db, check_out(passage("v-2", Standard)));
    record(&mut db, void(&exit.event_id));
    // An unidentified vehicle let out counts as the class it entered as.
    let mut unknown = passage("v-2", Standard);
    unknown.vehicle_class = None;
    record(&mut db, check_out(unknown));
    record(&mut db, alert());

    let (entered, exited) = db.counters().unwrap();
    // A voided entry counts as an exit, a voided exit as an entry.
    assert_eq!(entered, BTreeMap::from([(Compact, 1), (Standard, 3)]));
    assert_eq!(exited, BTreeMap::from([(Compact, 1), (Standard, 3)]));
}

#[test]
fn sibling_events_apply_once_and_do_not_count_here() {
    let mut db = mem();
    let mut exit_gate = Db::open_in_memory(sibling("exit-1")).unwrap();
    let theirs = record(&mut exit_gate, check_in(passage("v-9", Standard)));
    assert!(db.apply_remote(&theirs).unwrap());
    assert!(!db.apply_remote(&theirs).unwrap(), "second delivery");
    assert_eq!(vehicles_inside(&db), ["v-9"]);

    // Our own event, echoed back by the broker, was applied when recorded.
    let ours = record(&mut db, check_in(passage("v-1", Standard)));
    assert!(!db.apply_remote(&ours).unwrap());
    assert_eq!(vehicles_inside(&db).len(), 2);

    let their_void = record(&mut exit_gate, void(&theirs.event_id));
    assert!(db.apply_remote(&their_void).unwrap());
    assert_eq!(vehicles_inside(&db), ["v-1"]);

    // Another lot's events are not ours to apply.
    let mut elsewhere = Db::open_in_memory(Ident {
        lot: "annex".into(),
        ..ident()
    })
    .unwrap();
    let far = record(&mut elsewhere, check_in(passage("v-7", Standard)));
    assert!(!db.apply_remote(&far).unwrap());
    assert_eq!(vehicles_inside(&db), ["v-1"]);

    let (entered, _) = db.counters().unwrap();
    assert_eq!(entered, BTreeMap::from([(Standard, 1)]));
}

fn related(e: &Event) -> Option<&str> {
    match &e.body {
        EventBody::Alert(a) => a.related_event_id.as_deref(),
        _ => None,
    }
}

#[test]
fn events_keep_the_ids_the_lane_minted_and_links_are_stored_as_given() {
    let mut db = mem();
    let mut named = alert();
    if let EventBody::Alert(a) = &mut named {
        a.related_event_id = Some("01JD3W6Q8R9S5T4V7X2Y0Z1A2B".into());
    }
    let commit = Commit {
        events: vec![
            Draft {
                event_id: "01JD3W6Q8R9S5T4V7X2Y0Z1A2B".into(),
                body: EventBody::Denied(Denied {
                    card: Some("0BADC0DE".into()),
                    reason: DenyReason::UnknownCard,
                    user_id: None,
                    user_name: None,
                }),
            },
            Draft {
                event_id: "01JD3W6Q8R9S5T4V7X2Y0Z1A2C".into(),
                body: named,
            },
        ],
        lockdown: None,
    };
    let events = db.record(commit, now(), Clock::Synced).unwrap();
    assert_eq!(events[0].event_id, "01JD3W6Q8R9S5T4V7X2Y0Z1A2B");
    assert_eq!(events[1].event_id, "01JD3W6Q8R9S5T4V7X2Y0Z1A2C");
    let stored = db.outbox(10).unwrap();
    assert_eq!(related(&stored[1]), Some("01JD3W6Q8R9S5T4V7X2Y0Z1A2B"));
    // No rule of the store's own links events by position.
    let alone = db
        .record_bodies(vec![void("x"), alert()], now(), Clock::Synced)
        .unwrap();
    assert_eq!(related(&alone[1]), None);
}

#[test]
fn a_lockdown_is_kept_with_its_alert_and_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gate.db");
    let mut db = Db::open(&path, ident()).unwrap();
    assert!(!db.lockdown().unwrap());
    let set = Commit {
        events: vec![Draft {
            event_id: ulid::Ulid::new().to_string(),
            body: alert(),
        }],
        lockdown: Some(true),
    };
    db.record(set, now(), Clock::Synced).unwrap();
    drop(db);
    let mut db = Db::open(&path, ident()).unwrap();
    assert!(db.lockdown().unwrap(), "kept across a restart");
    assert_eq!(db.outbox_depth().unwrap(), 1, "with its alert");
    let lift = Commit {
        events: vec![],
        lockdown: Some(false),
    };
    db.record(lift, now(), Clock::Synced).unwrap();
    assert!(!db.lockdown().unwrap());
}

#[test]
fn a_void_that_overtakes_its_passage_still_voids_it() {
    let mut db = mem();
    let mut exit_gate = Db::open_in_memory(sibling("exit-1")).unwrap();
    let theirs = record(&mut exit_gate, check_in(passage("v-9", Standard)));
    let their_void = record(&mut exit_gate, void(&theirs.event_id));
    // The void first, then the check_in it undoes, then both again.
    assert!(db.apply_remote(&their_void).unwrap());
    assert!(vehicles_inside(&db).is_empty());
    assert!(db.apply_remote(&theirs).unwrap());
    assert!(vehicles_inside(&db).is_empty(), "the late check_in is void");
    assert!(!db.apply_remote(&their_void).unwrap());
    assert!(!db.apply_remote(&theirs).unwrap());
    assert!(vehicles_inside(&db).is_empty());
    // A later check_in of the same car is a new passage.
    let again = record(&mut exit_gate, check_in(passage("v-9", Standard)));
    assert!(db.apply_remote(&again).unwrap());
    assert_eq!(vehicles_inside(&db), ["v-9"]);
}

#[test]
fn siblings_counters_keep_the_highest_and_count_what_passages_missed() {
    use crate::domain::contract::Occupancy;
    let mut db = mem();
    let occupancy = |gate: &str, entered: u64, exited: u64| Occupancy {
        v: 1,
        gate: gate.into(),
        at: now(),
        entered: BTreeMap::from([(Standard, entered)]),
        exited: BTreeMap::from([(Standard, exited)]),
    };
    let load = |db: &Db| {
        db.load_at("main", now(), now(), 30, 60)
            .unwrap()
            .counts
            .values()
            .sum::<u32>()
    };
    assert!(db.merge_occupancy(&occupancy("exit-1", 0, 0)).unwrap());
    assert_eq!(load(&db), 0);
    // entry-2 let in 5 we never heard of, and 1 left by exit-1.
    assert!(db.merge_occupancy(&occupancy("entry-2", 5, 0)).unwrap());
    assert!(db.merge_occupancy(&occupancy("exit-1", 0, 1)).unwrap());
    assert_eq!(load(&db), 4);
    // An older (lower) message, a repeat, and our own echo change nothing.
    assert!(!db.merge_occupancy(&occupancy("entry-2", 3, 0)).unwrap());
    assert!(!db.merge_occupancy(&occupancy("entry-2", 5, 0)).unwrap());
    assert!(!db.merge_occupancy(&occupancy("entry-1", 99, 0)).unwrap());
    assert_eq!(load(&db), 4);
    // Passages seen are not counted twice: a sibling's check_in we did get.
    let mut entry_2 = Db::open_in_memory(sibling("entry-2")).unwrap();
    let theirs = record(&mut entry_2, check_in(passage("v-9", Standard)));
    db.apply_remote(&theirs).unwrap();
    assert_eq!(load(&db), 4);
    let facts = db.facts("04A1B2C3D4E5F6", "main", now(), 30, 60).unwrap();
    assert_eq!(facts.siblings, 2);
}

#[test]
fn a_seq_is_never_handed_out_twice_even_after_the_whole_journal_is_pruned() {
    let mut db = mem();
    let old = now() - minutes(60 * 24 * 40);
    let events = db
        .record_bodies(vec![alert(), alert(), alert()], old, Clock::Synced)
        .unwrap();
    let seqs: Vec<u64> = events.iter().map(|e| e.gate_seq).collect();
    assert_eq!(seqs, [1, 2, 3]);
    db.mark_all_delivered(&seqs).unwrap();
    db.prune(now() - minutes(60 * 24 * 30), now()).unwrap();
    assert_eq!(
        db.events(10).unwrap().len(),
        0,
        "all pruned, the newest too"
    );
    assert_eq!(db.last_seq().unwrap(), 3);
    let next = db
        .record_bodies(vec![alert()], now(), Clock::Synced)
        .unwrap();
    assert_eq!(next[0].gate_seq, 4);
}
