//! The SPI/I2C bridge (`pn532::bus`) against a scripted PN532 at the
//! `pn532::Interface` level: the bridge's own thread drives the pn532 crate
//! over it, and the test awaits the reader as the daemon does.
//!
//! No sleeps: each step waits for a reader event or for the fake to have
//! been polled. Timeouts are short and real; the outer `within` only turns
//! a hang into a failure.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Poll;
use std::time::Duration;

use parkgate_hal::pn532::bus::{self, BusError};
use parkgate_hal::pn532::{Pn532Reader, Timing};
use parkgate_hal::{CardReader, Credential, ReaderEvent, ReaderHealth};
use tokio::sync::watch;

const ACK: [u8; 6] = [0x00, 0x00, 0xFF, 0x00, 0xFF, 0x00];
/// GetFirmwareVersion's answer: a PN532 v1.6.
const FIRMWARE: [u8; 4] = [0x32, 0x01, 0x06, 0x07];

/// What the scripted PN532 does; shared by the test and every interface
/// the bridge opens.
#[derive(Default)]
struct State {
    /// The UID of the card in the field.
    card: Option<Vec<u8>>,
    /// Takes commands and never answers (nor ACKs).
    mute: bool,
    /// Every bus operation fails, and so does opening the device.
    unplugged: bool,
    /// This many coming answers have a bad checksum.
    corrupt: u32,
    /// Commands aborted by an ACK from the host.
    aborts: u32,
}

struct Script {
    state: Mutex<State>,
    /// InListPassiveTarget commands received.
    polls: watch::Sender<u64>,
    /// Times the device was opened.
    opens: watch::Sender<u64>,
}

/// The test's handle on the scripted PN532.
#[derive(Clone)]
struct Pn532Fake {
    script: Arc<Script>,
    polls: watch::Receiver<u64>,
    opens: watch::Receiver<u64>,
}

impl Pn532Fake {
    fn new() -> Pn532Fake {
        let (polls_tx, polls) = watch::channel(0);
        let (opens_tx, opens) = watch::channel(0);
        Pn532Fake {
            script: Arc::new(Script {
                state: Mutex::new(State::default()),
                polls: polls_tx,
                opens: opens_tx,
            }),
            polls,
            opens,
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.script.state.lock().unwrap()
    }

    /// What the bridge calls to open (and reopen) the device. `alive` is
    /// held by the opener and every interface, so the test sees when the
    /// thread has let go of all of them.
    fn opener(
        &self,
        alive: std::sync::mpsc::Sender<()>,
    ) -> impl FnMut() -> Result<FakeInterface, String> + Send + 'static {
        let script = self.script.clone();
        move || {
            if script.state.lock().unwrap().unplugged {
                return Err("No such device (os error 19)".into());
            }
            script.opens.send_modify(|n| *n += 1);
            Ok(FakeInterface {
                script: script.clone(),
                out: VecDeque::new(),
                _alive: alive.clone(),
            })
        }
    }

    /// Lets the bridge poll `n` more times: once poll `k + 1` came in, what
    /// poll `k` found has been handed on.
    async fn polled(&mut self, n: u64) {
        let target = *self.polls.borrow() + n;
        within(self.polls.wait_for(|p| *p >= target)).await.unwrap();
    }

    /// Lets the bridge open the device `n` more times.
    async fn reopened(&mut self, n: u64) {
        let target = *self.opens.borrow() + n;
        within(self.opens.wait_for(|p| *p >= target)).await.unwrap();
    }

    fn opens(&self) -> u64 {
        *self.opens.borrow()
    }
}

/// Why the fake's bus failed.
#[derive(Debug, thiserror::Error)]
enum FakeError {
    /// The test unplugged it.
    #[error("unplugged")]
    Unplugged,
}

/// The PN532 at the interface level: a command frame in, its ACK and its
/// answer frame queued, ready as long as something is queued.
struct FakeInterface {
    script: Arc<Script>,
    out: VecDeque<Vec<u8>>,
    _alive: std::sync::mpsc::Sender<()>,
}

impl pn532::Interface for FakeInterface {
    type Error = FakeError;

    fn write(&mut self, frame: &mut [u8]) -> Result<(), FakeError> {
        let mut state = self.script.state.lock().unwrap();
        if state.unplugged {
            return Err(FakeError::Unplugged);
        }
        if frame == ACK {
            state.aborts += 1;
            self.out.clear();
            return Ok(());
        }
        assert_eq!(&frame[..3], &[0x00, 0x00, 0xFF], "host frame {frame:02X?}");
        let len = usize::from(frame[3]);
        assert_eq!(frame[5], 0xD4, "host frame {frame:02X?}");
        let (code, params) = (frame[6], &frame[7..5 + len]);
        if code == 0x4A {
            self.script.polls.send_modify(|p| *p += 1);
        }
        if state.mute {
            return Ok(());
        }
        let answer = match (code, params) {
            (0x02, []) => [&[0x03][..], &FIRMWARE].concat(),
            (0x14, [0x01, _, _]) => vec![0x15],
            (0x32, [0x05, _, _, _]) => vec![0x33],
            (0x4A, [0x01, 0x00]) => match &state.card {
                None => vec![0x4B, 0x00],
                Some(uid) => {
                    let head = [0x4B, 0x01, 0x01, 0x00, 0x44, 0x00, uid.len() as u8];
                    [&head[..], uid].concat()
                }
            },
            _ => panic!("unexpected command {code:#04x} {params:02X?}"),
        };
        let mut reply = info_frame(&answer);
        if state.corrupt > 0 {
            state.corrupt -= 1;
            let dcs = reply.len() - 2;
            reply[dcs] = reply[dcs].wrapping_add(1);
        }
        self.out.push_back(ACK.to_vec());
        self.out.push_back(reply);
        Ok(())
    }

    fn wait_ready(&mut self) -> Poll<Result<(), FakeError>> {
        if self.script.state.lock().unwrap().unplugged {
            return Poll::Ready(Err(FakeError::Unplugged));
        }
        if self.out.is_empty() {
            Poll::Pending
        } else {
            Poll::Ready(Ok(()))
        }
    }

    fn read(&mut self, buf: &mut [u8]) -> Result<(), FakeError> {
        if self.script.state.lock().unwrap().unplugged {
            return Err(FakeError::Unplugged);
        }
        let frame = self.out.pop_front().unwrap_or_default();
        buf.fill(0);
        let n = frame.len().min(buf.len());
        buf[..n].copy_from_slice(&frame[..n]);
        Ok(())
    }
}

/// A PN532-to-host information frame holding `data` (response code first).
fn info_frame(data: &[u8]) -> Vec<u8> {
    let len = data.len() as u8 + 1;
    let sum = data.iter().fold(0xD5u8, |s, b| s.wrapping_add(*b));
    let mut frame = vec![0x00, 0x00, 0xFF, len, len.wrapping_neg(), 0xD5];
    frame.extend_from_slice(data);
    frame.extend([sum.wrapping_neg(), 0x00]);
    frame
}

fn timing() -> Timing {
    Timing {
        ack: Duration::from_millis(15),
        answer: Duration::from_millis(15),
        poll: Duration::from_millis(2),
        absent_polls: 2,
        misses: 2,
        retry_min: Duration::from_millis(2),
        retry_max: Duration::from_millis(20),
        passive_retries: 1,
    }
}

/// The bridge on `fake`, and what tells when its thread let go of it.
fn start(fake: &Pn532Fake) -> (Pn532Reader, std::sync::mpsc::Receiver<()>) {
    let (alive, gone) = std::sync::mpsc::channel();
    let reader = bus::spawn("/dev/fake0", fake.opener(alive), timing()).unwrap();
    (reader, gone)
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
        .expect("the bridge stopped")
}

/// An event already queued, without waiting.
fn queued(reader: &mut Pn532Reader) -> Option<ReaderEvent> {
    let fut = std::pin::pin!(reader.next_event());
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match fut.poll(&mut cx) {
        Poll::Ready(event) => Some(event.expect("the bridge stopped")),
        Poll::Pending => None,
    }
}

fn card(hex: &str) -> ReaderEvent {
    ReaderEvent::Card(Credential::from_hex(hex).unwrap())
}

#[tokio::test]
async fn the_firmware_version_is_read_at_start() {
    let fake = Pn532Fake::new();
    let (mut reader, _gone) = start(&fake);
    let fw = within(reader.wait_firmware()).await.unwrap();
    assert_eq!(fw.to_string(), "PN532 v1.6");
    assert_eq!(CardReader::firmware(&reader).as_deref(), Some("PN532 v1.6"));
}

#[tokio::test]
async fn a_held_card_is_one_read_and_comes_again_after_leaving() {
    let mut fake = Pn532Fake::new();
    let (mut reader, _gone) = start(&fake);
    fake.state().card = Some(vec![0x04, 0xA1, 0xB2, 0xC3]);
    assert_eq!(next(&mut reader).await, card("04A1B2C3"));
    fake.polled(5).await;
    assert_eq!(queued(&mut reader), None, "a held card is read once");
    fake.state().card = None;
    fake.polled(3).await;
    fake.state().card = Some(vec![0x04, 0xA1, 0xB2, 0xC3]);
    assert_eq!(next(&mut reader).await, card("04A1B2C3"));
}

#[tokio::test]
async fn a_card_swapped_quickly_is_two_reads_of_every_uid_size() {
    let fake = Pn532Fake::new();
    let (mut reader, _gone) = start(&fake);
    let uids = ["A1B2C3D4", "04A1B2C3D4E5F6", "10111213141516171819"];
    for hex in uids {
        fake.state().card = Some(Credential::from_hex(hex).unwrap().uid);
        assert_eq!(next(&mut reader).await, card(hex));
    }
}

#[tokio::test]
async fn a_uid_no_card_has_is_a_misread() {
    let fake = Pn532Fake::new();
    let (mut reader, _gone) = start(&fake);
    fake.state().card = Some(vec![1, 2, 3, 4, 5]);
    assert_eq!(next(&mut reader).await, ReaderEvent::Misread);
}

#[tokio::test]
async fn a_corrupt_answer_is_dropped_not_read_wrong() {
    let mut fake = Pn532Fake::new();
    let (mut reader, _gone) = start(&fake);
    within(reader.wait_firmware()).await.unwrap();
    fake.polled(1).await;
    {
        let mut state = fake.state();
        state.card = Some(vec![0x04, 0xA1, 0xB2, 0xC3]);
        state.corrupt = 1;
    }
    // The corrupt answer counts as one miss (of two): no offline, and the
    // next poll reads the card.
    assert_eq!(next(&mut reader).await, card("04A1B2C3"));
    assert_eq!(fake.state().corrupt, 0);
}

#[tokio::test]
async fn a_reader_that_stops_answering_goes_offline_and_comes_back() {
    let mut fake = Pn532Fake::new();
    let (mut reader, _gone) = start(&fake);
    within(reader.wait_firmware()).await.unwrap();
    fake.state().mute = true;
    match next(&mut reader).await {
        ReaderEvent::Health(ReaderHealth::Offline(why)) => {
            assert!(why.contains("/dev/fake0"), "{why}");
            assert!(why.contains("no ACK"), "{why}");
        }
        other => panic!("expected offline, got {other:?}"),
    }
    // Each command not answered in time was aborted.
    assert!(fake.state().aborts >= 2);
    // Reopened and still mute, twice: still one offline event.
    fake.reopened(2).await;
    assert_eq!(queued(&mut reader), None, "offline is reported once");
    {
        let mut state = fake.state();
        state.mute = false;
        state.card = Some(vec![0x04, 0xA1, 0xB2, 0xC3]);
    }
    assert_eq!(
        next(&mut reader).await,
        ReaderEvent::Health(ReaderHealth::Ok)
    );
    assert_eq!(next(&mut reader).await, card("04A1B2C3"));
}

#[tokio::test]
async fn a_failing_bus_goes_offline_is_reopened_with_backoff_and_comes_back() {
    let fake = Pn532Fake::new();
    let (mut reader, _gone) = start(&fake);
    within(reader.wait_firmware()).await.unwrap();
    assert_eq!(fake.opens(), 1);
    fake.state().unplugged = true;
    match next(&mut reader).await {
        ReaderEvent::Health(ReaderHealth::Offline(why)) => {
            assert!(why.contains("unplugged"), "{why}")
        }
        other => panic!("expected offline, got {other:?}"),
    }
    fake.state().unplugged = false;
    assert_eq!(
        next(&mut reader).await,
        ReaderEvent::Health(ReaderHealth::Ok)
    );
    assert!(fake.opens() >= 2, "the device was opened again");
    fake.state().card = Some(vec![0x04, 0xA1, 0xB2, 0xC3]);
    assert_eq!(next(&mut reader).await, card("04A1B2C3"));
}

#[test]
fn a_device_that_cannot_be_opened_is_an_error_at_start() {
    let fake = Pn532Fake::new();
    fake.state().unplugged = true;
    let (alive, _gone) = std::sync::mpsc::channel();
    let err = bus::spawn("/dev/spidev0.0", fake.opener(alive), timing())
        .err()
        .expect("opening fails");
    assert!(matches!(err, BusError::Open { .. }));
    assert_eq!(
        err.to_string(),
        "cannot open the PN532 on /dev/spidev0.0: No such device (os error 19)"
    );
}

#[tokio::test]
async fn dropping_the_reader_stops_the_thread_and_lets_go_of_the_device() {
    let mut fake = Pn532Fake::new();
    let (reader, gone) = start(&fake);
    fake.polled(2).await;
    drop(reader);
    // Every sender is gone once the thread has ended: the opener it owned
    // and the interface it was polling.
    let ended = tokio::task::spawn_blocking(move || gone.recv_timeout(Duration::from_secs(10)))
        .await
        .unwrap();
    assert_eq!(ended, Err(std::sync::mpsc::RecvTimeoutError::Disconnected));
}
