use super::super::Pruned;
use super::*;
use crate::domain::contract::{Alert, AlertKind, Clock, Severity};

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
            commands: 0
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
