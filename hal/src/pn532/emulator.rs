//! A PN532 of our own that speaks HSU on a pseudo-terminal, for tests
//! (feature `pn532-emulator`).
//!
//! [`Emulator::start`] opens a pty pair and links `DIR/ttyPN532` to its
//! slave end, so the driver opens it by path as it would `/dev/ttyUSB0`.
//! The emulator answers SAMConfiguration, GetFirmwareVersion (`PN532
//! v1.6`), RFConfiguration and InListPassiveTarget (with the card a test
//! put in its field), and anything else with the application error frame.
//!
//! A test steers it without sleeping: it puts cards in the field and takes
//! them out, makes it go mute, corrupts answers, and unplugs it (the pty
//! closes and the link goes) and plugs it back (a new pty, the link again),
//! and waits for it to have been polled ([`Emulator::wait_polls`]): once
//! poll `n + 1` came in, the driver has handed on what poll `n` found.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;
use tokio_serial::SerialStream;

use super::command;
use super::frame::{self, Decoder, Frame};

/// What the emulator answers GetFirmwareVersion with: a PN532 v1.6
/// supporting ISO 14443A, B and ISO 18092.
pub const FIRMWARE: [u8; 4] = [0x32, 0x01, 0x06, 0x07];

/// An emulated PN532 on a pty; the pty closes when it is dropped.
pub struct Emulator {
    link: PathBuf,
    shared: Arc<Shared>,
    polls: watch::Receiver<u64>,
    task: Option<tokio::task::JoinHandle<()>>,
}

struct Shared {
    state: Mutex<State>,
    polls: watch::Sender<u64>,
}

#[derive(Default)]
struct State {
    card: Option<Vec<u8>>,
    mute: bool,
    corrupt: u32,
    nacks: u64,
    aborts: u64,
}

impl Emulator {
    /// Opens a pty, links `dir/ttyPN532` to it and starts answering.
    /// Must be called inside a tokio runtime.
    pub fn start(dir: &Path) -> io::Result<Emulator> {
        let (polls_tx, polls) = watch::channel(0);
        let mut emulator = Emulator {
            link: dir.join("ttyPN532"),
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
                polls: polls_tx,
            }),
            polls,
            task: None,
        };
        emulator.plug()?;
        Ok(emulator)
    }

    /// The path the driver should open.
    pub fn path(&self) -> &Path {
        &self.link
    }

    /// Puts a card with `uid` (4, 7 or 10 bytes; others too, to test the
    /// driver) in the field, replacing any card there.
    pub fn put_card(&self, uid: &[u8]) {
        self.state().card = Some(uid.to_vec());
    }

    /// Takes the card out of the field.
    pub fn remove_card(&self) {
        self.state().card = None;
    }

    /// Stops answering anything (`true`), or answers again.
    pub fn set_mute(&self, mute: bool) {
        self.state().mute = mute;
    }

    /// Sends the next `n` answers with a bad data checksum (a NACK gets the
    /// good frame).
    pub fn corrupt_answers(&self, n: u32) {
        self.state().corrupt = n;
    }

    /// NACKs received: corrupt answers the driver asked for again.
    pub fn nacks(&self) -> u64 {
        self.state().nacks
    }

    /// ACKs received from the host: commands it aborted.
    pub fn aborts(&self) -> u64 {
        self.state().aborts
    }

    /// InListPassiveTarget commands received so far (answered or not).
    pub fn polls(&self) -> u64 {
        *self.polls.borrow()
    }

    /// Waits until at least `n` polls came in, across plugs.
    pub async fn wait_polls(&mut self, n: u64) {
        let _ = self.polls.wait_for(|&p| p >= n).await;
    }

    /// Pulls the plug: the pty closes (the driver's reads and writes fail)
    /// and the device node disappears.
    pub fn unplug(&mut self) -> io::Result<()> {
        if let Some(task) = self.task.take() {
            task.abort();
        }
        match std::fs::remove_file(&self.link) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Plugs it back in: a new pty, and the device node pointing at it.
    pub fn plug(&mut self) -> io::Result<()> {
        self.unplug()?;
        let (master, slave) = SerialStream::pair().map_err(io::Error::other)?;
        let name = tokio_serial::SerialPort::name(&slave)
            .ok_or_else(|| io::Error::other("the pty has no name"))?;
        std::os::unix::fs::symlink(name, &self.link)?;
        self.task = Some(tokio::spawn(serve(master, slave, self.shared.clone())));
        Ok(())
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.shared.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.unplug();
    }
}

/// Answers the host on `master`. Holds `slave` open so the master never
/// sees a hang-up between two openings by the driver.
async fn serve(mut master: SerialStream, slave: SerialStream, shared: Arc<Shared>) {
    let _slave = slave;
    let mut decoder = Decoder::new();
    let mut last = Vec::new();
    let mut buf = [0u8; 256];
    loop {
        let n = match master.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        decoder.push(&buf[..n]);
        while let Some(frame) = decoder.next_frame() {
            let Some(out) = answer(frame, &shared, &mut last) else {
                continue;
            };
            if master.write_all(&out).await.is_err() {
                return;
            }
        }
    }
}

/// The bytes to send for one frame from the host, if any.
fn answer(
    frame: Result<Frame, frame::FrameError>,
    shared: &Shared,
    last: &mut Vec<u8>,
) -> Option<Vec<u8>> {
    let mut state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
    let mut out = match frame {
        Ok(Frame::Info { tfi, data }) if tfi == frame::TFI_HOST && !data.is_empty() => {
            if data[0] == command::IN_LIST_PASSIVE_TARGET {
                shared.polls.send_modify(|p| *p += 1);
            }
            if state.mute {
                return None;
            }
            let Some(reply) = reply(&data, state.card.as_deref()) else {
                let mut out = frame::ACK.to_vec();
                out.extend_from_slice(&frame::ERROR);
                return Some(out);
            };
            *last = frame::encode(frame::TFI_PN532, &reply);
            [&frame::ACK[..], last].concat()
        }
        Ok(Frame::Ack) => {
            state.aborts += 1;
            return None;
        }
        Ok(Frame::Nack) => {
            state.nacks += 1;
            if state.mute {
                return None;
            }
            last.clone()
        }
        // A real PN532 ignores what it cannot frame.
        _ => return None,
    };
    if state.corrupt > 0 && out.len() > frame::ACK.len() {
        state.corrupt -= 1;
        // The DCS is the byte before the postamble.
        let dcs = out.len() - 2;
        out[dcs] ^= 0xFF;
    }
    Some(out)
}

/// The answer's data to command `data`, `None` for a command not emulated.
fn reply(data: &[u8], card: Option<&[u8]>) -> Option<Vec<u8>> {
    Some(match data[0] {
        command::GET_FIRMWARE_VERSION => [&[0x03][..], &FIRMWARE].concat(),
        command::SAM_CONFIGURATION | command::RF_CONFIGURATION => vec![data[0] + 1],
        command::IN_LIST_PASSIVE_TARGET => match card {
            None => vec![0x4B, 0x00],
            Some(uid) => {
                // SENS_RES says the UID size (single, double, triple); SEL_RES a MIFARE.
                let size = match uid.len() {
                    4 => 0x04,
                    7 => 0x44,
                    _ => 0x84,
                };
                let mut r = vec![0x4B, 0x01, 0x01, 0x00, size, 0x08, uid.len() as u8];
                r.extend_from_slice(uid);
                r
            }
        },
        _ => return None,
    })
}
