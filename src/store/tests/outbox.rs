use super::*;
use crate::domain::contract::{Alert, AlertKind, Clock, Severity};

fn alert(n: usize) -> EventBody {
    EventBody::Alert(Alert {
        alert: AlertKind::ReaderOnline,
        severity: Severity::Info,
        message: format!("alert {n}"),
        card: None,
        user_id: None,
        related_event_id: None,
    })
}

fn seqs(rows: &[crate::store::Stored]) -> Vec<u64> {
    rows.iter().map(|r| r.gate_seq).collect()
}

#[test]
fn the_outbox_pages_in_order_and_delivered_rows_leave_it() {
    let mut db = mem();
    let events = db
        .record_bodies((1..=5).map(alert).collect(), now(), Clock::Synced)
        .unwrap();
    let page = db.outbox_after(0, 2).unwrap();
    assert_eq!(seqs(&page), [1, 2]);
    // The bytes published are the bytes journalled.
    assert_eq!(page[0].json, serde_json::to_string(&events[0]).unwrap());
    assert_eq!(page[0].type_name, "alert");
    assert_eq!(seqs(&db.outbox_after(2, 10).unwrap()), [3, 4, 5]);

    db.mark_all_delivered(&[1, 3]).unwrap();
    assert_eq!(seqs(&db.outbox_after(0, 10).unwrap()), [2, 4, 5]);
    let facts = db.outbox_facts().unwrap();
    assert_eq!((facts.depth, facts.oldest), (3, Some(now())));
    // A replay reads delivered events too.
    assert_eq!(seqs(&db.journal_range(1, 4, 10).unwrap()), [1, 2, 3, 4]);
    assert_eq!(seqs(&db.journal_range(2, 9, 2).unwrap()), [2, 3]);

    db.mark_all_delivered(&[2, 4, 5, 5]).unwrap();
    let facts = db.outbox_facts().unwrap();
    assert_eq!((facts.depth, facts.oldest), (0, None));
}
