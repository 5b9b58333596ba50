//! The lane's card reader, whichever `[hardware] reader` chose: the sim's,
//! or a PN532 (on a serial port, SPI or I2C) next to any backend's loops
//! and outputs.

use parkgate_hal::sim::SimReader;
use parkgate_hal::{CardReader, HalError, ReaderEvent};

use super::DaemonError;
use crate::config::{Hardware, ReaderKind};

/// One of the card readers this build can drive.
pub enum Reader {
    /// Cards tapped over the sim's socket.
    Sim(SimReader),
    /// A PN532 on a serial port, SPI or I2C.
    #[cfg(feature = "pn532")]
    Pn532(parkgate_hal::pn532::Pn532Reader),
}

/// The reader `hw` asks for. `sim` is the sim backend's own reader, used
/// when `reader = "sim"` (dropped otherwise: its taps are then refused with
/// "nobody is reading the simulated card reader").
///
/// A PN532 on a serial port that cannot be opened is reported offline and
/// retried; one on SPI or I2C whose bus cannot be opened at all (off a Pi,
/// the bus not enabled) is an error here, since retrying would not help.
pub fn open(hw: &Hardware, sim: Option<SimReader>) -> Result<Reader, DaemonError> {
    #[cfg(feature = "pn532")]
    let device = hw.reader_device();
    match hw.reader() {
        ReaderKind::Sim => sim
            .map(Reader::Sim)
            .ok_or_else(|| DaemonError::Config("reader = \"sim\" needs backend = \"sim\"".into())),
        #[cfg(feature = "pn532")]
        ReaderKind::Uart => {
            use parkgate_hal::pn532::{Pn532Config, spawn};
            tracing::info!(%device, "PN532 card reader over UART");
            Ok(Reader::Pn532(spawn(Pn532Config::new(device))))
        }
        #[cfg(feature = "pn532")]
        ReaderKind::Spi => on_bus(device, "SPI", parkgate_hal::pn532::bus::spi::spawn),
        #[cfg(feature = "pn532")]
        ReaderKind::I2c => on_bus(device, "I2C", parkgate_hal::pn532::bus::i2c::spawn),
        #[cfg(not(feature = "pn532"))]
        kind => Err(DaemonError::Config(format!(
            "reader = \"{}\": this build has no PN532 driver (feature `pn532`)",
            kind.name()
        ))),
    }
}

/// A PN532 on SPI or I2C, started by `spawn` (which opens `device` now,
/// and again each time the reader is retried after going offline).
#[cfg(feature = "pn532")]
fn on_bus(
    device: &str,
    bus: &str,
    spawn: fn(
        &str,
        parkgate_hal::pn532::Timing,
    ) -> Result<parkgate_hal::pn532::Pn532Reader, parkgate_hal::pn532::bus::BusError>,
) -> Result<Reader, DaemonError> {
    tracing::info!(%device, "PN532 card reader over {bus}");
    let reader = spawn(device, Default::default()).map_err(|e| DaemonError::Hardware(e.into()))?;
    Ok(Reader::Pn532(reader))
}

impl CardReader for Reader {
    async fn next_event(&mut self) -> Result<ReaderEvent, HalError> {
        match self {
            Reader::Sim(r) => r.next_event().await,
            #[cfg(feature = "pn532")]
            Reader::Pn532(r) => r.next_event().await,
        }
    }

    fn firmware(&self) -> Option<String> {
        match self {
            Reader::Sim(r) => r.firmware(),
            #[cfg(feature = "pn532")]
            Reader::Pn532(r) => CardReader::firmware(r),
        }
    }
}
