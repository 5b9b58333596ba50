//! The PN532's HSU (UART) framing, pure: bytes in, frames out, and back.
//!
//! Every frame starts with a preamble `00` and the start code `00 FF` and
//! ends with a postamble `00` (PN532 user manual, 6.2.1):
//!
//! ```text
//! information   00 00 FF LEN LCS TFI PD0..PDn DCS 00        LEN = 1 + n + 1 (TFI and data)
//! extended      00 00 FF FF FF LENM LENL LCS TFI PD0..PDn DCS 00
//! ACK           00 00 FF 00 FF 00
//! NACK          00 00 FF FF 00 00
//! error         00 00 FF 01 FF 7F 81 00                     "syntax error" from the PN532
//! ```
//!
//! `LEN + LCS` and `TFI + PD0 + .. + PDn + DCS` are 0 modulo 256. `TFI` is
//! `D4` from the host and `D5` from the PN532.
//!
//! [`Decoder`] takes bytes as they arrive, in any chunks: it says "need
//! more", yields a frame, or reports a frame it dropped for a bad checksum,
//! and resynchronises on the next start code after garbage (the wake-up
//! bytes, line noise, half a frame from before a reconnect).

/// The frame identifier of a host-to-PN532 frame.
pub const TFI_HOST: u8 = 0xD4;
/// The frame identifier of a PN532-to-host frame.
pub const TFI_PN532: u8 = 0xD5;

/// The ACK frame: a command was received. Sent by the host, it aborts the
/// command the PN532 is working on (user manual, 6.2.1.3).
pub const ACK: [u8; 6] = [0x00, 0x00, 0xFF, 0x00, 0xFF, 0x00];
/// The NACK frame: please send your last frame again.
pub const NACK: [u8; 6] = [0x00, 0x00, 0xFF, 0xFF, 0x00, 0x00];
/// The application error frame the PN532 sends for a command it cannot parse.
pub const ERROR: [u8; 8] = [0x00, 0x00, 0xFF, 0x01, 0xFF, 0x7F, 0x81, 0x00];

/// Wakes a PN532 whose HSU is asleep (power-on, or after PowerDown): a
/// `0x55` pulse on RX, then enough idle bytes for it to start its oscillator
/// before the first command (user manual, 7.2.11 and HSU wake-up). The
/// zeros are garbage to the PN532's framing, so a command may follow at once.
pub const WAKE_UP: [u8; 16] = [
    0x55, 0x55, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
];

/// TFI plus data bytes above which a frame must be extended: `LEN` is one byte.
const NORMAL_MAX: usize = 255;

/// The most TFI plus data bytes a frame is believed to carry. The PN532's
/// buffer holds 264 bytes of data; a header claiming much more is noise, and
/// waiting for that many bytes would stall the decoder.
pub const MAX_LEN: usize = 300;

/// One frame, whichever way it travels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// The ACK frame.
    Ack,
    /// The NACK frame.
    Nack,
    /// The application error frame (`TFI 7F`).
    Error,
    /// An information frame (normal or extended): its TFI and data.
    Info {
        /// `D4` host to PN532, `D5` PN532 to host.
        tfi: u8,
        /// The command or response code and its parameters.
        data: Vec<u8>,
    },
}

/// A frame the decoder found and dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// `LEN + LCS` (or `LENM + LENL + LCS`) was not 0 modulo 256.
    #[error("bad length checksum (LEN {len:#04x}, LCS {lcs:#04x})")]
    LengthChecksum {
        /// The length as received (LENM·256 + LENL for an extended frame).
        len: usize,
        /// The checksum as received.
        lcs: u8,
    },
    /// The data checksum did not add up.
    #[error("bad data checksum over {len} byte(s)")]
    DataChecksum {
        /// TFI plus data bytes the frame claimed.
        len: usize,
    },
    /// The length claimed more than [`MAX_LEN`] bytes.
    #[error("frame of {0} bytes is longer than any PN532 frame")]
    TooLong(usize),
    /// `LEN` was 0 in a frame that is neither ACK nor NACK.
    #[error("frame without a TFI (LEN 0)")]
    Empty,
}

/// Encodes an information frame with `tfi` and `data`, extended if it does
/// not fit a normal one.
///
/// # Panics
/// If `data` is longer than [`MAX_LEN`] - 1: no PN532 command is.
pub fn encode(tfi: u8, data: &[u8]) -> Vec<u8> {
    let len = data.len() + 1;
    assert!(
        len <= MAX_LEN,
        "a {len}-byte frame is longer than any PN532 frame"
    );
    let mut out = Vec::with_capacity(len + 10);
    out.extend_from_slice(&[0x00, 0x00, 0xFF]);
    if len <= NORMAL_MAX {
        // Fits in a byte: checked just above.
        let len = len as u8;
        out.extend_from_slice(&[len, len.wrapping_neg()]);
    } else {
        let (m, l) = ((len >> 8) as u8, len as u8);
        out.extend_from_slice(&[0xFF, 0xFF, m, l, m.wrapping_add(l).wrapping_neg()]);
    }
    out.push(tfi);
    out.extend_from_slice(data);
    out.push(checksum(tfi, data));
    out.push(0x00);
    out
}

/// Encodes a host command: `D4`, the command code and its parameters.
pub fn command(code: u8, params: &[u8]) -> Vec<u8> {
    let mut data = Vec::with_capacity(params.len() + 1);
    data.push(code);
    data.extend_from_slice(params);
    encode(TFI_HOST, &data)
}

/// The DCS that makes `tfi + data + DCS` 0 modulo 256.
fn checksum(tfi: u8, data: &[u8]) -> u8 {
    data.iter()
        .fold(tfi, |sum, &b| sum.wrapping_add(b))
        .wrapping_neg()
}

/// Frames out of a byte stream, however it is chunked.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
}

impl Decoder {
    /// An empty decoder.
    pub fn new() -> Decoder {
        Decoder::default()
    }

    /// Adds bytes as they were read.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Forgets whatever is buffered (a new connection: half a frame from the
    /// old one means nothing).
    pub fn clear(&mut self) {
        self.buf.clear();
    }

    /// Bytes buffered and not yet decoded.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// The next frame, a frame dropped as corrupt, or `None` when more bytes
    /// are needed. Call until `None` after each [`push`](Self::push).
    pub fn next_frame(&mut self) -> Option<Result<Frame, FrameError>> {
        let Some(start) = self.buf.windows(2).position(|w| w == [0x00, 0xFF]) else {
            // Garbage, but a trailing 00 may be the first half of a start code.
            let keep = usize::from(self.buf.last() == Some(&0x00));
            self.buf.drain(..self.buf.len() - keep);
            return None;
        };
        self.buf.drain(..start);
        match parse(&self.buf) {
            Parsed::NeedMore => None,
            Parsed::Frame(frame, used) => {
                self.buf.drain(..used);
                Some(Ok(frame))
            }
            Parsed::Corrupt(e) => {
                // Skip this start code only: a good frame may begin
                // inside what the bad header claimed.
                self.buf.drain(..2);
                Some(Err(e))
            }
        }
    }
}

enum Parsed {
    NeedMore,
    /// The frame and how many bytes it took, postamble excluded (a missing
    /// postamble is harmless and a present one is skipped as garbage).
    Frame(Frame, usize),
    Corrupt(FrameError),
}

/// Parses a frame at the start of `b`, which begins with the start code.
fn parse(b: &[u8]) -> Parsed {
    let (Some(&len_byte), Some(&lcs)) = (b.get(2), b.get(3)) else {
        return Parsed::NeedMore;
    };
    let (len, body) = match (len_byte, lcs) {
        (0x00, 0xFF) => return Parsed::Frame(Frame::Ack, 4),
        (0xFF, 0x00) => return Parsed::Frame(Frame::Nack, 4),
        (0xFF, 0xFF) => {
            let Some(&[m, l, lcs]) = b.get(4..7) else {
                return Parsed::NeedMore;
            };
            let len = usize::from(m) << 8 | usize::from(l);
            if m.wrapping_add(l).wrapping_add(lcs) != 0 {
                return Parsed::Corrupt(FrameError::LengthChecksum { len, lcs });
            }
            (len, 7)
        }
        (len, lcs) => {
            if len.wrapping_add(lcs) != 0 {
                return Parsed::Corrupt(FrameError::LengthChecksum {
                    len: len.into(),
                    lcs,
                });
            }
            (usize::from(len), 4)
        }
    };
    if len == 0 {
        return Parsed::Corrupt(FrameError::Empty);
    }
    if len > MAX_LEN {
        return Parsed::Corrupt(FrameError::TooLong(len));
    }
    // TFI and data, then DCS.
    let Some(frame) = b.get(body..body + len + 1) else {
        return Parsed::NeedMore;
    };
    if frame.iter().fold(0u8, |s, &x| s.wrapping_add(x)) != 0 {
        return Parsed::Corrupt(FrameError::DataChecksum { len });
    }
    let (tfi, data) = (frame[0], &frame[1..len]);
    let frame = if tfi == 0x7F && data.is_empty() {
        Frame::Error
    } else {
        Frame::Info {
            tfi,
            data: data.to_vec(),
        }
    };
    Parsed::Frame(frame, body + len + 1)
}

#[cfg(test)]
#[path = "frame_tests.rs"]
mod tests;
