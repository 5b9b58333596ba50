//! One open serial port to a PN532: a command out, its ACK and its answer
//! back, each within a deadline on the monotonic clock.

use std::path::Path;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;
use tokio_serial::SerialStream;

use super::Timing;
use super::command::AnswerError;
use super::frame::{self, Decoder, Frame, FrameError};

/// How many times a corrupt answer is asked for again (NACK) before the
/// exchange fails: line noise twice in a row is a wiring problem.
const NACKS: u32 = 2;

/// Why an exchange with the PN532 failed.
#[derive(Debug, thiserror::Error)]
pub(super) enum PortError {
    /// Reading or writing the device failed (unplugged, EIO): reopen it.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// No ACK came for a command in time.
    #[error("no ACK for command {0:#04x}")]
    NoAck(u8),
    /// The ACK came but no answer followed in time (the command was aborted).
    #[error("no answer to command {0:#04x}")]
    NoAnswer(u8),
    /// The PN532 sent its application error frame: it could not parse the command.
    #[error("the PN532 refused command {0:#04x} (error frame)")]
    Refused(u8),
    /// The answer stayed corrupt after asking for it again.
    #[error("corrupt answer to command {code:#04x}: {error}")]
    Corrupt {
        /// The command.
        code: u8,
        /// The last corruption seen.
        error: FrameError,
    },
    /// The answer was well framed but did not hold what it should.
    #[error("{0}")]
    Answer(#[from] AnswerError),
}

pub(super) struct Port {
    stream: SerialStream,
    decoder: Decoder,
    timing: Timing,
}

impl Port {
    /// Opens the device (a path, possibly a symlink such as
    /// `/dev/serial0`) at `baud`, 8N1, exclusively: two daemons on one
    /// reader would steal each other's answers.
    pub fn open(path: &Path, baud: u32, timing: Timing) -> std::io::Result<Port> {
        let stream = super::tty::open(path, baud)?;
        Ok(Port {
            stream,
            decoder: Decoder::new(),
            timing,
        })
    }

    /// Sends the HSU wake-up sequence. The PN532 answers nothing to it.
    pub async fn wake(&mut self) -> Result<(), PortError> {
        self.write(&frame::WAKE_UP).await
    }

    /// Sends command `code` with `params` and returns its answer's data
    /// (response code first).
    ///
    /// A command not answered in time is aborted with an ACK, so the PN532
    /// is idle for the next one. Stray frames (the late answer to an aborted
    /// command) are skipped; a corrupt answer is asked for again with a NACK.
    pub async fn exchange(&mut self, code: u8, params: &[u8]) -> Result<Vec<u8>, PortError> {
        self.write(&frame::command(code, params)).await?;
        let deadline = Instant::now() + self.timing.ack;
        loop {
            match self.read_frame(deadline).await? {
                Some(Ok(Frame::Ack)) => break,
                Some(Ok(stray)) => tracing::debug!(?stray, "PN532: frame skipped waiting for ACK"),
                Some(Err(e)) => tracing::warn!(error = %e, "PN532: corrupt frame dropped"),
                None => return Err(PortError::NoAck(code)),
            }
        }
        let deadline = Instant::now() + self.timing.answer;
        let mut nacks = 0;
        loop {
            match self.read_frame(deadline).await? {
                Some(Ok(Frame::Info { tfi, data }))
                    if tfi == frame::TFI_PN532 && data.first() == Some(&code.wrapping_add(1)) =>
                {
                    return Ok(data);
                }
                Some(Ok(Frame::Error)) => return Err(PortError::Refused(code)),
                Some(Ok(stray)) => tracing::debug!(?stray, "PN532: frame skipped"),
                Some(Err(error)) => {
                    tracing::warn!(%error, "PN532: corrupt answer dropped");
                    if nacks == NACKS {
                        self.write(&frame::ACK).await?;
                        return Err(PortError::Corrupt { code, error });
                    }
                    nacks += 1;
                    self.write(&frame::NACK).await?;
                }
                None => {
                    self.write(&frame::ACK).await?;
                    return Err(PortError::NoAnswer(code));
                }
            }
        }
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), PortError> {
        self.stream.write_all(bytes).await?;
        self.stream.flush().await?;
        Ok(())
    }

    /// The next frame (or corrupt frame), or `None` once `deadline` passed.
    async fn read_frame(
        &mut self,
        deadline: Instant,
    ) -> Result<Option<Result<Frame, FrameError>>, PortError> {
        let mut buf = [0u8; 256];
        loop {
            if let Some(frame) = self.decoder.next_frame() {
                return Ok(Some(frame));
            }
            let n = match tokio::time::timeout_at(deadline, self.stream.read(&mut buf)).await {
                Err(_elapsed) => return Ok(None),
                Ok(read) => read?,
            };
            if n == 0 {
                return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
            }
            self.decoder.push(&buf[..n]);
        }
    }
}

impl Drop for Port {
    fn drop(&mut self) {
        // TIOCEXCL outlives this descriptor while anyone else holds the tty
        // open, and would lock out our own reopen.
        let _ = self.stream.set_exclusive(false);
    }
}
