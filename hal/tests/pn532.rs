//! The PN532 driver end to end against the emulator on a pseudo-terminal.
//!
//! No sleeps: each step waits for a reader event or for the emulator to
//! have been polled. Timeouts are short and real (a paused clock does not
//! mix with pty I/O); the outer `within` only turns a hang into a failure.

use std::future::Future;
use std::time::Duration;

use parkgate_hal::pn532::emulator::Emulator;
use parkgate_hal::pn532::{self, Pn532Config, Pn532Reader, Timing};
use parkgate_hal::{CardReader, Credential, ReaderEvent, ReaderHealth};

fn timing() -> Timing {
    Timing {
        ack: Duration::from_millis(250),
        answer: Duration::from_millis(500),
        poll: Duration::from_millis(5),
        absent_polls: 2,
        misses: 2,
        retry_min: Duration::from_millis(5),
        retry_max: Duration::from_millis(40),
        passive_retries: 1,
    }
}

fn reader(emulator: &Emulator) -> Pn532Reader {
    pn532::spawn(Pn532Config {
        timing: timing(),
        ..Pn532Config::new(emulator.path())
    })
}

/// `fut`, or a failure after 10 s: a hang is a bug, not a slow machine.
async fn within<T>(fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), fut)
        .await
        .expect("timed out waiting for the reader")
}

async fn next(reader: &mut Pn532Reader) -> ReaderEvent {
    within(reader.next_event())
        .await
        .expect("the driver stopped")
}

/// An event already queued, without waiting.
fn queued(reader: &mut Pn532Reader) -> Option<ReaderEvent> {
    let fut = std::pin::pin!(reader.next_event());
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match fut.poll(&mut cx) {
        std::task::Poll::Ready(event) => Some(event.expect("the driver stopped")),
        std::task::Poll::Pending => None,
    }
}

fn card(hex: &str) -> ReaderEvent {
    ReaderEvent::Card(Credential::from_hex(hex).unwrap())
}

/// Lets the driver poll `n` more times, so anything those polls found is queued.
async fn polled(emulator: &mut Emulator, n: u64) {
    let target = emulator.polls() + n;
    within(emulator.wait_polls(target)).await;
}

#[tokio::test]
async fn the_firmware_version_is_read_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let emulator = Emulator::start(dir.path()).unwrap();
    let mut reader = reader(&emulator);
    let fw = within(reader.wait_firmware()).await.unwrap();
    assert_eq!(fw.to_string(), "PN532 v1.6");
    assert_eq!(CardReader::firmware(&reader).as_deref(), Some("PN532 v1.6"));
}

#[tokio::test]
async fn a_held_card_is_one_read_and_comes_again_after_leaving() {
    let dir = tempfile::tempdir().unwrap();
    let mut emulator = Emulator::start(dir.path()).unwrap();
    let mut reader = reader(&emulator);
    emulator.put_card(&[0x04, 0xA1, 0xB2, 0xC3, 0xD4, 0xE5, 0xF6]);
    assert_eq!(next(&mut reader).await, card("04A1B2C3D4E5F6"));
    polled(&mut emulator, 10).await;
    assert_eq!(queued(&mut reader), None, "a held card read twice");
    emulator.remove_card();
    polled(&mut emulator, 3).await;
    emulator.put_card(&[0x04, 0xA1, 0xB2, 0xC3, 0xD4, 0xE5, 0xF6]);
    assert_eq!(next(&mut reader).await, card("04A1B2C3D4E5F6"));
}

#[tokio::test]
async fn a_card_swapped_quickly_is_two_reads_of_every_uid_size() {
    let dir = tempfile::tempdir().unwrap();
    let mut emulator = Emulator::start(dir.path()).unwrap();
    let mut reader = reader(&emulator);
    emulator.put_card(&[0xA1, 0xB2, 0xC3, 0xD4]);
    assert_eq!(next(&mut reader).await, card("A1B2C3D4"));
    // Swapped between two polls: never an empty field in between.
    emulator.put_card(&[0x04, 1, 2, 3, 4, 5, 6]);
    assert_eq!(next(&mut reader).await, card("04010203040506"));
    emulator.put_card(&[0x08, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert_eq!(next(&mut reader).await, card("08010203040506070809"));
    polled(&mut emulator, 5).await;
    assert_eq!(queued(&mut reader), None);
}

#[tokio::test]
async fn a_uid_no_card_has_is_a_misread() {
    let dir = tempfile::tempdir().unwrap();
    let emulator = Emulator::start(dir.path()).unwrap();
    let mut reader = reader(&emulator);
    emulator.put_card(&[1, 2, 3, 4, 5]);
    assert_eq!(next(&mut reader).await, ReaderEvent::Misread);
}

#[tokio::test]
async fn a_corrupt_answer_is_dropped_and_asked_for_again() {
    let dir = tempfile::tempdir().unwrap();
    let mut emulator = Emulator::start(dir.path()).unwrap();
    let mut reader = reader(&emulator);
    within(reader.wait_firmware()).await;
    emulator.corrupt_answers(1);
    emulator.put_card(&[0xA1, 0xB2, 0xC3, 0xD4]);
    assert_eq!(next(&mut reader).await, card("A1B2C3D4"));
    assert_eq!(emulator.nacks(), 1);
    polled(&mut emulator, 3).await;
    assert_eq!(queued(&mut reader), None);
}

#[tokio::test]
async fn answers_corrupt_past_the_nacks_are_aborted_never_read_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let mut emulator = Emulator::start(dir.path()).unwrap();
    let mut reader = reader(&emulator);
    within(reader.wait_firmware()).await;
    // Three corrupt in a row: the first try and both NACKs.
    emulator.corrupt_answers(3);
    emulator.put_card(&[0xA1, 0xB2, 0xC3, 0xD4]);
    assert_eq!(next(&mut reader).await, card("A1B2C3D4"));
    assert_eq!(emulator.nacks(), 2);
    assert_eq!(emulator.aborts(), 1, "the corrupt exchange was aborted");
    polled(&mut emulator, 3).await;
    assert_eq!(queued(&mut reader), None);
}

#[tokio::test]
async fn a_reader_that_stops_answering_goes_offline_and_comes_back() {
    let dir = tempfile::tempdir().unwrap();
    let emulator = Emulator::start(dir.path()).unwrap();
    let mut reader = reader(&emulator);
    within(reader.wait_firmware()).await;
    emulator.set_mute(true);
    match next(&mut reader).await {
        ReaderEvent::Health(ReaderHealth::Offline(why)) => {
            assert!(why.contains("no ACK"), "{why}");
            assert!(why.contains("ttyPN532"), "{why}");
        }
        other => panic!("expected offline, got {other:?}"),
    }
    emulator.set_mute(false);
    assert_eq!(
        next(&mut reader).await,
        ReaderEvent::Health(ReaderHealth::Ok)
    );
    emulator.put_card(&[0xA1, 0xB2, 0xC3, 0xD4]);
    assert_eq!(next(&mut reader).await, card("A1B2C3D4"));
}

#[tokio::test]
async fn a_device_node_that_disappears_and_comes_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut emulator = Emulator::start(dir.path()).unwrap();
    let mut reader = reader(&emulator);
    within(reader.wait_firmware()).await;
    emulator.unplug().unwrap();
    assert!(matches!(
        next(&mut reader).await,
        ReaderEvent::Health(ReaderHealth::Offline(_))
    ));
    emulator.plug().unwrap();
    assert_eq!(
        next(&mut reader).await,
        ReaderEvent::Health(ReaderHealth::Ok)
    );
    emulator.put_card(&[0xA1, 0xB2, 0xC3, 0xD4]);
    assert_eq!(next(&mut reader).await, card("A1B2C3D4"));
}

#[tokio::test]
async fn a_reader_missing_at_start_is_offline_until_it_appears() {
    let dir = tempfile::tempdir().unwrap();
    let mut emulator = Emulator::start(dir.path()).unwrap();
    emulator.unplug().unwrap();
    let mut reader = reader(&emulator);
    match next(&mut reader).await {
        ReaderEvent::Health(ReaderHealth::Offline(why)) => {
            assert!(why.contains("No such file"), "{why}")
        }
        other => panic!("expected offline, got {other:?}"),
    }
    assert_eq!(reader.firmware(), None);
    emulator.plug().unwrap();
    assert_eq!(
        next(&mut reader).await,
        ReaderEvent::Health(ReaderHealth::Ok)
    );
    assert_eq!(reader.firmware().unwrap().to_string(), "PN532 v1.6");
}
