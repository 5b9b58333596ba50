//! The lane's card reader, whichever `[hardware] reader` chose: the sim's,
//! or a PN532 next to any backend's loops and outputs.

use parkgate_hal::sim::SimReader;
use parkgate_hal::{CardReader, HalError, ReaderEvent};

use super::DaemonError;
use crate::config::{Hardware, ReaderKind};

/// One of the card readers this build can drive.
pub enum Reader {
    /// Cards tapped over the sim's socket.
    Sim(SimReader),
    /// A PN532 on a serial port.
    #[cfg(feature = "pn532")]
    Pn532(parkgate_hal::pn532::Pn532Reader),
}

/// The reader `hw` asks for. `sim` is the sim backend's own reader, used
/// when `reader = "sim"` (dropped otherwise: its taps are then refused with
/// "nobody is reading the simulated card reader").
pub fn open(hw: &Hardware, sim: Option<SimReader>) -> Result<Reader, DaemonError> {
    let not_built = |what: &str| {
        Err(DaemonError::Config(format!(
            "reader = \"{what}\" is not built yet; use \"uart\" or \"sim\""
        )))
    };
    match hw.reader() {
        ReaderKind::Sim => sim
            .map(Reader::Sim)
            .ok_or_else(|| DaemonError::Config("reader = \"sim\" needs backend = \"sim\"".into())),
        #[cfg(feature = "pn532")]
        ReaderKind::Uart => {
            tracing::info!(device = %hw.reader_device, "PN532 card reader over UART");
            let config = parkgate_hal::pn532::Pn532Config::new(&hw.reader_device);
            Ok(Reader::Pn532(parkgate_hal::pn532::spawn(config)))
        }
        #[cfg(not(feature = "pn532"))]
        ReaderKind::Uart => Err(DaemonError::Config(
            "this build has no PN532 UART driver (feature `pn532`)".into(),
        )),
        ReaderKind::Spi => not_built("spi"),
        ReaderKind::I2c => not_built("i2c"),
    }
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
