use super::super::{Store, StoreError};
use super::*;
use crate::domain::contract::Clock;

#[tokio::test]
async fn async_callers_reach_the_store_thread() {
    let (store, _thread) = Store::spawn(mem());
    let events = store
        .call(|db| {
            db.record_bodies(
                vec![check_in(passage("v-1", VehicleClass::Standard))],
                now(),
                Clock::Synced,
            )
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(events[0].gate_seq, 1);
    // A clone talks to the same database.
    let depth = store
        .clone()
        .call(|db| db.outbox_depth())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(depth, 1);
}

#[test]
fn blocking_callers_reach_the_store_thread() {
    let (store, _thread) = Store::spawn(mem());
    store
        .call_blocking(|db| db.apply_batch(&batch(1, vec![up(Record::User(user("u-1")))])))
        .unwrap()
        .unwrap();
    let seq = store.call_blocking(|db| db.replica_seq()).unwrap().unwrap();
    assert_eq!(seq, 1);
}

#[test]
fn a_panicking_job_closes_the_store() {
    let (store, thread) = Store::spawn(mem());
    let r: Result<(), StoreError> = store.call_blocking(|_| panic!("a bug in a job"));
    assert!(matches!(r, Err(StoreError::Closed)));
    assert!(matches!(
        store.call_blocking(|db| db.replica_seq()),
        Err(StoreError::Closed)
    ));
    assert!(thread.join().is_err(), "the join reports the panic");
}

#[test]
fn the_thread_finishes_its_queue_and_ends_with_the_last_handle() {
    let (store, thread) = Store::spawn(mem());
    let (tx, rx) = std::sync::mpsc::channel();
    let clone = store.clone();
    // Sent, never awaited: still done before the thread ends.
    let _ = store.submit(move |db| tx.send(db.replica_seq().unwrap()).unwrap());
    drop(store);
    assert!(
        clone.call_blocking(|_| ()).is_ok(),
        "alive while a handle is"
    );
    drop(clone);
    thread.join().expect("a clean end");
    assert_eq!(rx.recv().unwrap(), 0);
}
