//! PN532 card readers: on a serial port (HSU, the usual wiring), driven by
//! our own framing over tokio-serial (feature `pn532`), or on SPI or I2C
//! through the `pn532` crate on a thread of its own (feature `pn532-bus`,
//! see [`bus`]). Both give a [`Pn532Reader`] (the [`CardReader`]) and
//! behave alike; what they decide the same way is in one place (`logic`).
//!
//! [`spawn`] starts a task that owns the serial port. The task:
//!
//! - opens the device, wakes the PN532, puts it in normal mode
//!   (SAMConfiguration), reads its firmware version ([`Pn532Reader::firmware`],
//!   e.g. `PN532 v1.6`) and bounds its activation retries (RFConfiguration
//!   MaxRetries), so a poll with no card answers at once;
//! - polls with InListPassiveTarget (one ISO 14443A target, 106 kbps) every
//!   [`Timing::poll`]. A card is reported once when it comes into the field
//!   and again only after it has left it ([`Timing::absent_polls`] empty
//!   polls in a row): held on the reader it is one read, not a stream; a
//!   card swapped for another is two;
//! - drops corrupt frames (a corrupt answer is asked for again with a NACK)
//!   and aborts a command not answered in time with an ACK;
//! - after [`Timing::misses`] failed exchanges in a row, or at once when
//!   the device fails (unplugged: EIO, the node gone), reports
//!   [`ReaderHealth::Offline`](crate::ReaderHealth::Offline) and reopens the
//!   device path with backoff ([`Timing::retry_min`] doubling to
//!   [`Timing::retry_max`]) until the PN532 answers again, then reports
//!   [`ReaderHealth::Ok`](crate::ReaderHealth::Ok). A reader that cannot be
//!   reached at start is reported offline the same way.
//!
//! All timeouts are on the monotonic clock, and all of them are in
//! [`Timing`] so tests can make them short.
//!
//! Feature `pn532-emulator` adds `emulator`, a PN532 that speaks HSU on a
//! pseudo-terminal, for tests.

mod command;
mod logic;

#[cfg(feature = "pn532-bus")]
pub mod bus;
#[cfg(feature = "pn532")]
mod driver;
#[cfg(feature = "pn532-emulator")]
pub mod emulator;
#[cfg(feature = "pn532")]
pub mod frame;
#[cfg(feature = "pn532")]
mod port;
#[cfg(feature = "pn532")]
mod tty;

#[cfg(feature = "pn532")]
use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use crate::{CardReader, HalError, ReaderEvent};

pub use command::{AnswerError, Firmware};

/// Card reads not yet taken by the daemon, at most; a read beyond is
/// dropped (the driver taps again), as the sim does.
pub const READ_QUEUE: usize = 8;

/// The serial speed of a PN532's HSU out of the box.
#[cfg(feature = "pn532")]
pub const DEFAULT_BAUD: u32 = 115_200;

/// Deadlines and pacing of the driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// How long a command waits for its ACK (the PN532 sends it within a
    /// millisecond or two).
    pub ack: Duration,
    /// How long a command waits for its answer after the ACK. On SPI and
    /// I2C a command has `ack + answer` in all: the pn532 crate keeps one
    /// deadline per command.
    pub answer: Duration,
    /// The pause between two polls for a card.
    pub poll: Duration,
    /// Empty polls in a row after which a card counts as gone.
    pub absent_polls: u32,
    /// Failed exchanges in a row after which the reader counts as offline.
    pub misses: u32,
    /// The first pause before reopening an offline reader.
    pub retry_min: Duration,
    /// The longest pause between reopening attempts.
    pub retry_max: Duration,
    /// Passive activation attempts per poll (RFConfiguration MaxRetries).
    pub passive_retries: u8,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            ack: Duration::from_millis(100),
            answer: Duration::from_millis(1000),
            poll: Duration::from_millis(100),
            absent_polls: 2,
            misses: 3,
            retry_min: Duration::from_millis(500),
            retry_max: Duration::from_secs(10),
            passive_retries: 2,
        }
    }
}

/// Where a PN532 on a serial port is and how to drive it.
#[cfg(feature = "pn532")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pn532Config {
    /// The serial device, e.g. `/dev/ttyAMA0`, `/dev/serial0` or `/dev/ttyUSB0`.
    pub device: PathBuf,
    /// The serial speed.
    pub baud: u32,
    /// Deadlines and pacing.
    pub timing: Timing,
}

#[cfg(feature = "pn532")]
impl Pn532Config {
    /// The device at the default speed and timing.
    pub fn new(device: impl Into<PathBuf>) -> Pn532Config {
        Pn532Config {
            device: device.into(),
            baud: DEFAULT_BAUD,
            timing: Timing::default(),
        }
    }
}

/// The reader handle; the task or thread that owns the device stops when
/// it is dropped.
pub struct Pn532Reader {
    events: mpsc::Receiver<ReaderEvent>,
    firmware: watch::Receiver<Option<Firmware>>,
    _stop: Stop,
}

/// Stops the driver behind a [`Pn532Reader`] when the handle goes.
enum Stop {
    /// The tokio task that owns a serial port: aborted.
    #[cfg(feature = "pn532")]
    Task(tokio::task::JoinHandle<()>),
    /// The thread that owns a bus device: it waits on the receiving end of
    /// this sender between exchanges, and ends at the next wait once told
    /// (or once the sender is gone). It is not joined: an exchange under
    /// way may take up to [`Timing::ack`] + [`Timing::answer`] to end.
    #[cfg(feature = "pn532-bus")]
    Thread(std::sync::mpsc::Sender<()>),
}

impl Drop for Stop {
    fn drop(&mut self) {
        match self {
            #[cfg(feature = "pn532")]
            Stop::Task(task) => task.abort(),
            #[cfg(feature = "pn532-bus")]
            Stop::Thread(stop) => {
                // Fails only if the thread has ended already.
                let _ = stop.send(());
            }
        }
    }
}

/// Starts driving the PN532 on the serial port `config` names. Returns at once: the reader is
/// opened in the background and reported offline if it cannot be. Must be
/// called inside a tokio runtime.
#[cfg(feature = "pn532")]
pub fn spawn(config: Pn532Config) -> Pn532Reader {
    // Health changes must never be dropped: they wait for room, reads do not.
    let (tx, events) = mpsc::channel(READ_QUEUE);
    let (fw_tx, firmware) = watch::channel(None);
    let task = tokio::spawn(driver::run(config, tx, fw_tx));
    Pn532Reader {
        events,
        firmware,
        _stop: Stop::Task(task),
    }
}

impl Pn532Reader {
    /// The firmware the PN532 reported when it was last (re)opened.
    pub fn firmware(&self) -> Option<Firmware> {
        *self.firmware.borrow()
    }

    /// Waits until the PN532 has reported its firmware (for tests and
    /// commissioning); `None` if the driver stopped first.
    pub async fn wait_firmware(&mut self) -> Option<Firmware> {
        self.firmware
            .wait_for(Option::is_some)
            .await
            .ok()
            .and_then(|fw| *fw)
    }
}

impl CardReader for Pn532Reader {
    async fn next_event(&mut self) -> Result<ReaderEvent, HalError> {
        self.events
            .recv()
            .await
            .ok_or(HalError::Stopped("the PN532 driver"))
    }

    fn firmware(&self) -> Option<String> {
        Pn532Reader::firmware(self).map(|fw| fw.to_string())
    }
}
