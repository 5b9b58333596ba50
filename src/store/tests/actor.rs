use super::super::{Store, StoreError};
use super::*;
use crate::domain::contract::Clock;

#[tokio::test]
async fn async_callers_reach_the_store_thread() {
    let store = Store::spawn(mem());
    let events = store
        .call(|db| {
            db.record(
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
    let store = Store::spawn(mem());
    store
        .call_blocking(|db| db.apply_batch(&batch(1, vec![up(Record::User(user("u-1")))])))
        .unwrap()
        .unwrap();
    let seq = store.call_blocking(|db| db.replica_seq()).unwrap().unwrap();
    assert_eq!(seq, 1);
}

#[test]
fn a_panicking_job_closes_the_store() {
    let store = Store::spawn(mem());
    let r: Result<(), StoreError> = store.call_blocking(|_| panic!("a bug in a job"));
    assert!(matches!(r, Err(StoreError::Closed)));
    assert!(matches!(
        store.call_blocking(|db| db.replica_seq()),
        Err(StoreError::Closed)
    ));
}
