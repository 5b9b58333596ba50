//! The card reader: it answers (a PN532 reports its firmware), and a card
//! presented by the technician is read, its UID shown.

use std::io::Write;
use std::time::Duration;

use parkgate_hal::{CardReader, ReaderEvent, ReaderHealth};
use tokio::time::{Instant, sleep, sleep_until};

use super::report::Check;
use super::session::Session;

/// How often a reader that has not reported its firmware yet is looked at.
const FIRMWARE_POLL: Duration = Duration::from_millis(50);

/// Whether the reader answers. `label` says which reader (`PN532 on
/// /dev/ttyUSB0`); `has_firmware`: false for the sim, which has none to
/// report and answers by construction.
pub async fn answers<R: CardReader, W: Write>(
    s: &mut Session<W>,
    reader: &mut R,
    label: &str,
    has_firmware: bool,
    wait: Duration,
) {
    if !has_firmware {
        s.record(Check::pass(
            "reader",
            format!("{label} (no firmware to report)"),
        ));
        return;
    }
    let deadline = Instant::now() + wait;
    loop {
        // The driver reads the firmware once it has the device: polled
        // with a bound, as the trait has no event for it.
        if let Some(firmware) = reader.firmware() {
            s.record(Check::pass("reader", format!("{label}: {firmware}")));
            return;
        }
        tokio::select! {
            event = reader.next_event() => match event {
                Ok(ReaderEvent::Health(ReaderHealth::Offline(why))) => {
                    s.record(Check::fail("reader", format!("{label}: offline: {why}"), WIRING));
                    return;
                }
                Ok(_) => {}
                Err(e) => {
                    s.record(Check::fail("reader", format!("{label}: {e}"), WIRING));
                    return;
                }
            },
            _ = sleep(FIRMWARE_POLL) => {}
            _ = sleep_until(deadline) => {
                s.record(Check::fail(
                    "reader",
                    format!("{label}: no firmware version in {wait:?}"),
                    WIRING,
                ));
                return;
            }
        }
    }
}

const WIRING: &str = "check [hardware] reader and reader_device, the PN532's mode switches (HSU for uart), \
     its TX/RX wiring (crossed) and power, and that the daemon's user may open the device (group dialout)";

/// Asks for a card and shows its UID (interactive only).
pub async fn card<R: CardReader, W: Write>(s: &mut Session<W>, reader: &mut R, wait: Duration) {
    if !s.interactive() {
        s.record(Check::skip("card", "not waiting for a card (--no-wait)"));
        return;
    }
    s.prompt(
        "card",
        &format!("present a card to the reader (waiting {wait:?}; Enter to skip)"),
    );
    let deadline = Instant::now() + wait;
    loop {
        tokio::select! {
            event = reader.next_event() => {
                let check = match event {
                    Ok(ReaderEvent::Card(c)) => Check::pass(
                        "card",
                        format!("read {} ({} bytes)", c.hex(), c.uid.len()),
                    ),
                    Ok(ReaderEvent::AuthFailed(c)) => Check::fail(
                        "card",
                        format!("card {} answered but failed authentication", c.hex()),
                        "a clone, or a card of another system: try a card issued for this site",
                    ),
                    Ok(ReaderEvent::Misread) => {
                        s.note("card", "misread: hold the card still, flat on the reader, and tap again");
                        continue;
                    }
                    Ok(ReaderEvent::Health(ReaderHealth::Ok)) => {
                        s.note("card", "the reader is online");
                        continue;
                    }
                    Ok(ReaderEvent::Health(ReaderHealth::Offline(why))) => {
                        Check::fail("card", format!("the reader went offline: {why}"), WIRING)
                    }
                    Err(e) => Check::fail("card", format!("the reader stopped: {e}"), WIRING),
                };
                s.record(check);
                return;
            }
            _ = s.console().enter() => {
                s.record(Check::skip("card", "skipped by the technician"));
                return;
            }
            _ = sleep_until(deadline) => {
                s.record(Check::fail(
                    "card",
                    format!("no card read in {wait:?}"),
                    "hold the card flat on the reader for a second; if no card is ever read, \
                     check the antenna side and the reader's wiring",
                ));
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use parkgate_hal::Credential;
    use parkgate_hal::sim::SensorStates;

    use super::super::console::Console;
    use super::super::fakes::World;
    use super::super::report::Outcome;
    use super::*;

    const WAIT: Duration = Duration::from_secs(30);

    fn session() -> (tokio::sync::mpsc::Sender<String>, Session<Vec<u8>>) {
        let (tx, console) = Console::channel();
        (tx, Session::new(Vec::new(), console, true))
    }

    #[tokio::test(start_paused = true)]
    async fn a_card_is_shown_by_its_uid_after_a_misread() {
        let (world, mut hw) = World::new(SensorStates::default());
        let (_tx, mut s) = session();
        world.read(ReaderEvent::Misread);
        world.read(ReaderEvent::Card(
            Credential::from_hex("04A1B2C3D4E5F6").unwrap(),
        ));
        card(&mut s, &mut hw.reader, WAIT).await;
        let c = &s.report().checks[0];
        assert_eq!(
            (c.outcome, c.detail.as_str()),
            (Outcome::Pass, "read 04A1B2C3D4E5F6 (7 bytes)")
        );
        let (_, out) = s.finish();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("misread"), "{text}");
    }

    #[tokio::test(start_paused = true)]
    async fn no_card_in_time_fails_and_enter_skips() {
        let (_world, mut hw) = World::new(SensorStates::default());
        let (tx, mut s) = session();
        card(&mut s, &mut hw.reader, WAIT).await;
        assert_eq!(s.report().checks[0].detail, "no card read in 30s");
        tx.send(String::new()).await.unwrap();
        card(&mut s, &mut hw.reader, WAIT).await;
        assert_eq!(s.report().checks[1].outcome, Outcome::Skip);
        // A closed stdin does not count as Enter: the wait runs out instead.
        drop(tx);
        card(&mut s, &mut hw.reader, WAIT).await;
        assert_eq!(s.report().checks[2].outcome, Outcome::Fail);
    }

    #[tokio::test(start_paused = true)]
    async fn a_clone_fails() {
        let (world, mut hw) = World::new(SensorStates::default());
        let (_tx, mut s) = session();
        world.read(ReaderEvent::AuthFailed(
            Credential::from_hex("0BADC0DE").unwrap(),
        ));
        card(&mut s, &mut hw.reader, WAIT).await;
        assert_eq!(s.report().checks[0].outcome, Outcome::Fail);
    }

    #[tokio::test(start_paused = true)]
    async fn a_pn532_answers_with_its_firmware_or_fails_offline() {
        let (world, mut hw) = World::new(SensorStates::default());
        let (_tx, mut s) = session();
        world.read(ReaderEvent::Health(ReaderHealth::Offline(
            "no answer on /dev/ttyUSB0".into(),
        )));
        answers(&mut s, &mut hw.reader, "PN532", true, WAIT).await;
        let c = &s.report().checks[0];
        assert_eq!(c.detail, "PN532: offline: no answer on /dev/ttyUSB0");
        assert!(c.hint.as_deref().unwrap().contains("reader_device"));
        hw.reader.firmware = Some("PN532 v1.6".into());
        answers(&mut s, &mut hw.reader, "PN532", true, WAIT).await;
        assert_eq!(s.report().checks[1].detail, "PN532: PN532 v1.6");
        hw.reader.firmware = None;
        answers(&mut s, &mut hw.reader, "PN532", true, WAIT).await;
        assert_eq!(
            s.report().checks[2].detail,
            "PN532: no firmware version in 30s"
        );
    }
}
