//! The Pi's I2C (i2c-dev through rppal) for a PN532, as the embedded-hal
//! [`I2c`] that [`pn532::i2c::I2CInterface`] drives (address 0x24).
//!
//! rppal has an `I2c` of its own, but it reads each read operation of a
//! transaction apart. The PN532 starts every read with its status byte and
//! the crate reads the status and the frame as two adjacent operations,
//! which embedded-hal makes one read on the wire: read apart, the frame
//! would start with a second status byte. And it reports a PN532 that does
//! not acknowledge as any other error, where the crate needs to see a
//! NACK to know the PN532 is only busy.

use super::BusError;
use crate::pn532::{Pn532Reader, Timing};
use embedded_hal::i2c::{ErrorKind, ErrorType, I2c, NoAcknowledgeSource, Operation};
use pn532::i2c::I2CInterface;

/// The PN532 as the bridge drives it on I2C.
pub type Pn532I2c = I2CInterface<PiI2c>;

/// An I2C failure.
#[derive(Debug, thiserror::Error)]
pub enum I2cError {
    /// The path is not an i2c-dev node.
    #[error("{0:?} is not an I2C device: write it /dev/i2c-N, e.g. /dev/i2c-1 (GPIO 2 and 3)")]
    Path(String),
    /// The i2c-dev node could not be opened.
    #[error(
        "{0} (on a Pi, enable I2C: dtparam=i2c_arm=on in config.txt, and check the user may open it)"
    )]
    Open(#[source] rppal::i2c::Error),
    /// Nothing acknowledged the address: no PN532 there, or it is busy.
    #[error("no acknowledge from address {0:#04x}")]
    NoAck(u8),
    /// A transfer failed otherwise.
    #[error("{0}")]
    Transfer(#[source] rppal::i2c::Error),
}

impl embedded_hal::i2c::Error for I2cError {
    fn kind(&self) -> ErrorKind {
        match self {
            I2cError::NoAck(_) => ErrorKind::NoAcknowledge(NoAcknowledgeSource::Unknown),
            _ => ErrorKind::Other,
        }
    }
}

/// The bus number an i2c-dev path names: `/dev/i2c-1` is bus 1.
pub fn parse_device(path: &str) -> Result<u8, I2cError> {
    path.strip_prefix("/dev/i2c-")
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| I2cError::Path(path.to_string()))
}

/// Starts driving the PN532 on the i2c-dev node at `path` (see
/// [`super::spawn`]): an error if it cannot be opened now.
pub fn spawn(path: &str, timing: Timing) -> Result<Pn532Reader, BusError> {
    let device = path.to_string();
    super::spawn(path, move || open(&device), timing)
}

/// Opens the i2c-dev node at `path` for a PN532.
pub fn open(path: &str) -> Result<Pn532I2c, I2cError> {
    let bus = parse_device(path)?;
    let i2c = rppal::i2c::I2c::with_bus(bus).map_err(I2cError::Open)?;
    Ok(I2CInterface { i2c: PiI2c { i2c } })
}

/// One I2C bus of the Pi as an embedded-hal bus.
pub struct PiI2c {
    i2c: rppal::i2c::I2c,
}

impl PiI2c {
    /// Maps the kernel's "no acknowledge" errnos (ENXIO on the address,
    /// EREMOTEIO from the BCM controller) to [`I2cError::NoAck`].
    fn error(address: u8, e: rppal::i2c::Error) -> I2cError {
        match &e {
            rppal::i2c::Error::Io(io)
                if matches!(io.raw_os_error(), Some(libc::ENXIO | libc::EREMOTEIO)) =>
            {
                I2cError::NoAck(address)
            }
            _ => I2cError::Transfer(e),
        }
    }
}

impl ErrorType for PiI2c {
    type Error = I2cError;
}

impl I2c for PiI2c {
    /// Runs of adjacent reads are one read, runs of adjacent writes one
    /// write. Between a write and a read the bus is released (a stop, not a
    /// repeated start): the PN532 is never asked for both in one transaction.
    fn transaction(
        &mut self,
        address: u8,
        operations: &mut [Operation<'_>],
    ) -> Result<(), I2cError> {
        self.i2c
            .set_slave_address(u16::from(address))
            .map_err(I2cError::Transfer)?;
        let mut rest = operations;
        while !rest.is_empty() {
            let reading = matches!(rest[0], Operation::Read(_));
            let run = rest
                .iter()
                .take_while(|op| matches!(op, Operation::Read(_)) == reading)
                .count();
            let (ops, tail) = rest.split_at_mut(run);
            if reading {
                let len = ops.iter().map(op_len).sum();
                let mut buf = vec![0; len];
                self.i2c
                    .read(&mut buf)
                    .map_err(|e| Self::error(address, e))?;
                let mut from = buf.as_slice();
                for op in ops.iter_mut() {
                    if let Operation::Read(dest) = op {
                        let (head, next) = from.split_at(dest.len());
                        dest.copy_from_slice(head);
                        from = next;
                    }
                }
            } else {
                let buf: Vec<u8> = ops
                    .iter()
                    .flat_map(|op| match op {
                        Operation::Write(src) => src.to_vec(),
                        Operation::Read(_) => Vec::new(),
                    })
                    .collect();
                self.i2c.write(&buf).map_err(|e| Self::error(address, e))?;
            }
            rest = tail;
        }
        Ok(())
    }
}

fn op_len(op: &Operation<'_>) -> usize {
    match op {
        Operation::Read(buf) => buf.len(),
        Operation::Write(buf) => buf.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn i2c_dev_paths_name_their_bus() {
        assert_eq!(parse_device("/dev/i2c-1").unwrap(), 1);
        assert_eq!(parse_device("/dev/i2c-22").unwrap(), 22);
        for bad in ["/dev/i2c", "/dev/i2c-x", "/dev/spidev0.0", "/dev/i2c-300"] {
            let e = parse_device(bad).unwrap_err().to_string();
            assert!(e.contains("/dev/i2c-N"), "{bad}: {e}");
        }
    }

    #[test]
    fn a_missing_device_fails_to_open_and_says_how_to_enable_i2c() {
        // A bus number no machine has.
        let e = open("/dev/i2c-250").err().expect("no such bus").to_string();
        assert!(e.contains("dtparam=i2c_arm=on"), "{e}");
    }
}
