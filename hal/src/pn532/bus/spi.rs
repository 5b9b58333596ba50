//! The Pi's SPI (spidev through rppal) for a PN532, as the embedded-hal
//! [`SpiDevice`] that [`pn532::spi::SPIInterface`] drives.
//!
//! rppal has a `SpiDevice` of its own, but it sends zeros for a
//! `TransferInPlace` instead of the buffer: the PN532 would never see the
//! status-read byte the crate sends that way, and never look ready.

use super::BusError;
use crate::pn532::{Pn532Reader, Timing};
use embedded_hal::spi::{ErrorKind, ErrorType, Operation, SpiDevice};
use pn532::spi::SPIInterface;
use rppal::spi::{Bus, Mode, Segment, SlaveSelect, Spi};

/// The SPI clock: the PN532 takes up to 5 MHz; 1 MHz leaves margin for
/// jumper wires and costs under a millisecond per poll.
pub const CLOCK_HZ: u32 = 1_000_000;

/// The PN532 as the bridge drives it on SPI.
pub type Pn532Spi = SPIInterface<PiSpi>;

/// An SPI failure.
#[derive(Debug, thiserror::Error)]
pub enum SpiError {
    /// The path is not one of the Pi's spidev nodes.
    #[error(
        "{0:?} is not an SPI device: write it /dev/spidevB.C, e.g. /dev/spidev0.0 \
         (bus 0, chip select 0, GPIO 8)"
    )]
    Path(String),
    /// The spidev node could not be opened or set up.
    #[error(
        "{0} (on a Pi, enable SPI: dtparam=spi=on in config.txt, and check the user may open it)"
    )]
    Open(#[source] rppal::spi::Error),
    /// A transfer failed.
    #[error("{0}")]
    Transfer(#[source] rppal::spi::Error),
    /// An operation this device does not do (the PN532 needs none of them).
    #[error("{0} is not supported")]
    Unsupported(&'static str),
}

impl embedded_hal::spi::Error for SpiError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Other
    }
}

/// The bus and chip select a spidev path names: `/dev/spidev0.1` is bus 0,
/// chip select 1.
pub fn parse_device(path: &str) -> Result<(Bus, SlaveSelect), SpiError> {
    let bad = || SpiError::Path(path.to_string());
    let (bus, select) = path
        .strip_prefix("/dev/spidev")
        .and_then(|rest| rest.split_once('.'))
        .ok_or_else(bad)?;
    let bus = match bus {
        "0" => Bus::Spi0,
        "1" => Bus::Spi1,
        "2" => Bus::Spi2,
        "3" => Bus::Spi3,
        "4" => Bus::Spi4,
        "5" => Bus::Spi5,
        "6" => Bus::Spi6,
        _ => return Err(bad()),
    };
    let select = match select {
        "0" => SlaveSelect::Ss0,
        "1" => SlaveSelect::Ss1,
        "2" => SlaveSelect::Ss2,
        _ => return Err(bad()),
    };
    Ok((bus, select))
}

/// Starts driving the PN532 on the spidev node at `path` (see
/// [`super::spawn`]): an error if it cannot be opened now.
pub fn spawn(path: &str, timing: Timing) -> Result<Pn532Reader, BusError> {
    let device = path.to_string();
    super::spawn(path, move || open(&device), timing)
}

/// Opens the spidev node at `path` for a PN532: mode 0, MSB first (the
/// Pi's SPI cannot send LSB first, as the PN532 wants, so the pn532 crate
/// reverses the bits: its feature `msb-spi`).
pub fn open(path: &str) -> Result<Pn532Spi, SpiError> {
    let (bus, select) = parse_device(path)?;
    let spi = Spi::new(bus, select, CLOCK_HZ, Mode::Mode0).map_err(SpiError::Open)?;
    Ok(SPIInterface { spi: PiSpi { spi } })
}

/// One chip select of the Pi's SPI as an embedded-hal device: the kernel
/// holds the select low through all the segments of one transfer.
pub struct PiSpi {
    spi: Spi,
}

impl ErrorType for PiSpi {
    type Error = SpiError;
}

impl SpiDevice for PiSpi {
    fn transaction(&mut self, operations: &mut [Operation<'_, u8>]) -> Result<(), SpiError> {
        // What an in-place transfer sends, copied out since it is also
        // where the answer goes.
        let outgoing: Vec<Vec<u8>> = operations
            .iter()
            .map(|op| match op {
                Operation::TransferInPlace(buf) => buf.to_vec(),
                _ => Vec::new(),
            })
            .collect();
        let mut segments = Vec::with_capacity(operations.len());
        for (op, out) in operations.iter_mut().zip(&outgoing) {
            segments.push(match op {
                Operation::Read(buf) => Segment::with_read(buf),
                Operation::Write(buf) => Segment::with_write(buf),
                Operation::Transfer(read, write) if read.len() == write.len() => {
                    Segment::new(read, write)
                }
                Operation::Transfer(..) => {
                    return Err(SpiError::Unsupported("a transfer of unequal lengths"));
                }
                Operation::TransferInPlace(buf) => Segment::new(buf, out),
                Operation::DelayNs(ns) => {
                    let us = u16::try_from(ns.div_ceil(1000)).unwrap_or(u16::MAX);
                    Segment::with_settings(None, None, 0, us, 0, false)
                }
            });
        }
        self.spi
            .transfer_segments(&segments)
            .map_err(SpiError::Transfer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spidev_paths_name_their_bus_and_chip_select() {
        let (bus, select) = parse_device("/dev/spidev0.0").unwrap();
        assert_eq!((bus as u8, select as u8), (0, 0));
        let (bus, select) = parse_device("/dev/spidev1.2").unwrap();
        assert_eq!((bus as u8, select as u8), (1, 2));
        for bad in [
            "/dev/ttyAMA0",
            "/dev/spidev0",
            "/dev/spidev0.3",
            "/dev/spidev7.0",
            "",
        ] {
            let e = parse_device(bad).unwrap_err().to_string();
            assert!(e.contains("/dev/spidevB.C"), "{bad}: {e}");
        }
    }

    #[test]
    fn off_a_pi_opening_fails_and_says_how_to_enable_spi() {
        // No spidev node on a build machine; on a Pi with SPI on this would open.
        if std::path::Path::new("/dev/spidev0.0").exists() {
            return;
        }
        let e = open("/dev/spidev0.0")
            .err()
            .expect("no spidev here")
            .to_string();
        assert!(e.contains("dtparam=spi=on"), "{e}");
    }
}
