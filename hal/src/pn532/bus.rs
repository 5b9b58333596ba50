//! A PN532 on SPI or I2C (feature `pn532-bus`), through the `pn532` crate.
//!
//! The crate's requests block (it spins on the PN532's ready status until a
//! timer runs out), and rppal's devices are blocking too, so [`spawn`] runs
//! them on a thread that owns the device, and bridges it to tokio with
//! channels: reads and health changes come over a tokio mpsc, the firmware
//! over a watch, to the same [`Pn532Reader`] the UART driver gives. The
//! thread decides as the UART driver does (`logic`): SAMConfiguration,
//! GetFirmwareVersion and RFConfiguration MaxRetries on connecting;
//! InListPassiveTarget every [`Timing::poll`]; a held card is one read, a
//! swap two; [`Timing::misses`] failed exchanges in a row take the reader
//! offline, and it is reopened with backoff until it answers again.
//!
//! The thread works with any [`pn532::Interface`], so tests drive it with a
//! scripted PN532; with feature `pi`, [`spi`] and [`i2c`] open the Pi's
//! buses. A command is given [`Timing::ack`] + [`Timing::answer`] in all
//! (the crate has one deadline per request) and aborted with an ACK if not
//! answered in time.

#[cfg(feature = "pi")]
pub mod i2c;
#[cfg(feature = "pi")]
pub mod spi;
mod timer;

use std::fmt::Display;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

use pn532::requests::{BorrowedRequest, Command};
use pn532::{Interface, Pn532};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, watch};

use super::command::{self, AnswerError, Firmware};
use super::logic::{Link, Polled, Poller};
use super::{Pn532Reader, READ_QUEUE, Stop, Timing};
use crate::ReaderEvent;

pub use timer::StdTimer;

/// The longest answer read, response code excluded: InListPassiveTarget
/// with a 10-byte UID and a DESFire's ATS fits with room to spare.
const ANSWER_LEN: usize = 64;
/// The pn532 crate's frame buffer: it panics unless it holds the longest
/// answer and its 9 bytes of framing.
const BUF_LEN: usize = ANSWER_LEN + 9;

// The crate's command codes are the ones the UART driver and the answer
// parsers use.
const _: () = {
    assert!(Command::GetFirmwareVersion as u8 == command::GET_FIRMWARE_VERSION);
    assert!(Command::SAMConfiguration as u8 == command::SAM_CONFIGURATION);
    assert!(Command::RFConfiguration as u8 == command::RF_CONFIGURATION);
    assert!(Command::InListPassiveTarget as u8 == command::IN_LIST_PASSIVE_TARGET);
};

/// A PN532 driven through the pn532 crate with our timer.
type Chip<I> = Pn532<I, StdTimer, BUF_LEN>;

/// Why a PN532 on a bus could not be started.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The device could not be opened: not a Pi, the bus not enabled, no
    /// permission, or a path that is no such bus.
    #[error("cannot open the PN532 on {device}: {reason}")]
    Open {
        /// The device path, e.g. `/dev/spidev0.0`.
        device: String,
        /// What opening it said.
        reason: String,
    },
    /// The thread that drives the reader could not be started.
    #[error("cannot start the PN532 thread: {0}")]
    Thread(#[source] std::io::Error),
}

/// Why one exchange with the PN532 failed.
#[derive(Debug, thiserror::Error)]
enum ExchangeError {
    /// Writing or reading the bus failed.
    #[error("bus: {0}")]
    Bus(String),
    /// No ACK came for a command in time.
    #[error("no ACK for command {0:#04x}")]
    NoAck(u8),
    /// The ACK came but no answer followed in time (the command was aborted).
    #[error("no answer to command {0:#04x}")]
    NoAnswer(u8),
    /// The PN532 sent its application error frame: it could not parse the command.
    #[error("the PN532 refused command {0:#04x} (error frame)")]
    Refused(u8),
    /// The ACK or the answer was not a well-formed frame.
    #[error("corrupt answer to command {code:#04x}: {what}")]
    Corrupt {
        /// The command.
        code: u8,
        /// What was wrong with the frame.
        what: &'static str,
    },
    /// The answer was well framed but did not hold what it should.
    #[error("{0}")]
    Answer(#[from] AnswerError),
}

/// Opens a PN532 with `open` and starts driving it on a thread of its own;
/// `device` names it in logs and offline reasons. `open` is called once
/// here, so a device that cannot be opened at all (off a Pi, bus not
/// enabled) is an error at start, and again on the thread to reopen the
/// device after the reader went offline. Must be called inside a tokio
/// runtime only if the reader is then awaited (the thread needs none).
pub fn spawn<I, E, F>(device: &str, mut open: F, timing: Timing) -> Result<Pn532Reader, BusError>
where
    I: Interface + Send + 'static,
    I::Error: Display,
    E: Display,
    F: FnMut() -> Result<I, E> + Send + 'static,
{
    let first = open().map_err(|e| BusError::Open {
        device: device.to_string(),
        reason: e.to_string(),
    })?;
    // Health changes must never be dropped: they wait for room, reads do not.
    let (tx, events) = mpsc::channel(READ_QUEUE);
    let (fw_tx, firmware) = watch::channel(None);
    let (stop_tx, stop) = std::sync::mpsc::channel();
    let bridge = Bridge {
        device: device.to_string(),
        timing,
        tx,
        fw: fw_tx,
        stop,
    };
    let reopen = move || open().map_err(|e| format!("cannot reopen: {e}"));
    std::thread::Builder::new()
        .name("pn532".into())
        .spawn(move || bridge.run(first, reopen))
        .map_err(BusError::Thread)?;
    Ok(Pn532Reader {
        events,
        firmware,
        _stop: Stop::Thread(stop_tx),
    })
}

/// The thread's side of the channels.
struct Bridge {
    device: String,
    timing: Timing,
    tx: mpsc::Sender<ReaderEvent>,
    fw: watch::Sender<Option<Firmware>>,
    /// Never sent on: it disconnects when the reader handle is dropped.
    stop: Receiver<()>,
}

impl Bridge {
    /// Runs until the reader handle is dropped.
    fn run<I>(self, first: I, mut reopen: impl FnMut() -> Result<I, String>)
    where
        I: Interface,
        I::Error: Display,
    {
        let mut link = Link::new(&self.timing);
        let mut first = Some(first);
        loop {
            let interface = first.take().map_or_else(&mut reopen, Ok);
            let why = match interface.and_then(|i| self.connect(i)) {
                Ok((chip, firmware)) => {
                    self.fw.send_replace(Some(firmware));
                    tracing::info!(device = %self.device, %firmware, "PN532 answering");
                    if let Some(event) = link.up()
                        && self.tx.blocking_send(event).is_err()
                    {
                        return;
                    }
                    match self.poll(chip) {
                        Some(why) => why,
                        None => return,
                    }
                }
                Err(why) => why,
            };
            let (event, wait) = link.down(format!("PN532 on {}: {why}", self.device));
            if let Some(event) = event
                && self.tx.blocking_send(event).is_err()
            {
                return;
            }
            if self.stopped(wait) {
                return;
            }
        }
    }

    /// Brings the PN532 up: normal mode, firmware version, bounded
    /// activation retries.
    fn connect<I>(&self, interface: I) -> Result<(Chip<I>, Firmware), String>
    where
        I: Interface,
        I::Error: Display,
    {
        let mut chip = Pn532::new(interface, StdTimer::new());
        let t = &self.timing;
        // On SPI and I2C the PN532 wakes from power-down on the first
        // select of the bus and may miss that command (the user manual,
        // 7.2.11): a first request whose fate does not matter wakes it.
        let _ = exchange(&mut chip, Command::GetFirmwareVersion, &[], t);
        let setup = (|| {
            let sam = &command::SAM_NORMAL;
            exchange(&mut chip, Command::SAMConfiguration, sam, t)?;
            let fw = exchange(&mut chip, Command::GetFirmwareVersion, &[], t)?;
            let firmware = command::firmware(&fw)?;
            let retries = command::max_retries(t.passive_retries);
            exchange(&mut chip, Command::RFConfiguration, &retries, t)?;
            Ok::<_, ExchangeError>(firmware)
        })();
        match setup {
            Ok(firmware) => Ok((chip, firmware)),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Polls for cards until the reader fails (`Some(why)`) or the handle
    /// is dropped (`None`).
    fn poll<I>(&self, mut chip: Chip<I>) -> Option<String>
    where
        I: Interface,
        I::Error: Display,
    {
        let mut poller = Poller::new(&self.timing);
        let list = &command::LIST_ONE_TYPE_A;
        loop {
            let listed = exchange(&mut chip, Command::InListPassiveTarget, list, &self.timing)
                .and_then(|data| Ok(command::listed_card(&data)?));
            let polled = match listed {
                Ok(card) => Polled::Listed(card),
                Err(ExchangeError::Answer(e)) => Polled::BadAnswer(e),
                // A bus error is counted like a timeout, not taken as the
                // device gone: the spidev or i2c-dev node outlives the
                // PN532, and an I2C PN532 that is busy may not acknowledge.
                Err(e) => Polled::Failed(e),
            };
            let event = match poller.polled(polled) {
                Ok(event) => event,
                Err(e) => return Some(e.to_string()),
            };
            if let Some(event) = event {
                match self.tx.try_send(event) {
                    Ok(()) => {}
                    Err(TrySendError::Full(event)) => {
                        tracing::warn!(?event, "card read dropped: the daemon is not taking reads");
                    }
                    Err(TrySendError::Closed(_)) => return None,
                }
            }
            if self.stopped(self.timing.poll) {
                return None;
            }
        }
    }

    /// Waits `wait`, or less if the reader handle is dropped meanwhile:
    /// whether it was.
    fn stopped(&self, wait: Duration) -> bool {
        match self.stop.recv_timeout(wait) {
            Err(RecvTimeoutError::Timeout) => self.tx.is_closed(),
            Ok(()) | Err(RecvTimeoutError::Disconnected) => true,
        }
    }
}

/// Sends `command` with `params` and returns its answer's data, response
/// code first (as [`command`]'s parsers take it). A command not answered
/// in time is aborted with an ACK, so the PN532 is idle for the next one.
fn exchange<I>(
    chip: &mut Chip<I>,
    command: Command,
    params: &[u8],
    timing: &Timing,
) -> Result<Vec<u8>, ExchangeError>
where
    I: Interface,
    I::Error: Display,
{
    let code = command as u8;
    let request = BorrowedRequest::new(command, params);
    let error = match chip.process(request, ANSWER_LEN, timing.ack + timing.answer) {
        Ok(data) => {
            let mut answer = Vec::with_capacity(1 + data.len());
            answer.push(code.wrapping_add(1));
            answer.extend_from_slice(data);
            return Ok(answer);
        }
        Err(e) => e,
    };
    use pn532::Error as E;
    let error = match error {
        E::InterfaceError(e) => ExchangeError::Bus(e.to_string()),
        E::TimeoutAck => ExchangeError::NoAck(code),
        E::TimeoutResponse => ExchangeError::NoAnswer(code),
        E::Syntax => ExchangeError::Refused(code),
        E::BadAck => ExchangeError::Corrupt {
            code,
            what: "not an ACK",
        },
        E::BadResponseFrame => ExchangeError::Corrupt {
            code,
            what: "not a frame answering it",
        },
        E::CrcError => ExchangeError::Corrupt {
            code,
            what: "bad checksum",
        },
        E::BufTooSmall => ExchangeError::Corrupt {
            code,
            what: "longer than any answer",
        },
    };
    if matches!(error, ExchangeError::NoAck(_) | ExchangeError::NoAnswer(_)) {
        // Best effort: if the bus is down the next command fails anyway.
        let _ = chip.abort();
    }
    Err(error)
}
