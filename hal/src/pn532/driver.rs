//! The task that owns the serial port: connect, poll, and on failure report
//! offline and reconnect with backoff (see the module doc of `pn532`).

use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, watch};

use super::command::{self, Firmware};
use super::logic::{Link, Polled, Poller};
use super::port::{Port, PortError};
use super::{Pn532Config, Timing};
use crate::ReaderEvent;

/// Runs until the reader handle is dropped.
pub(super) async fn run(
    config: Pn532Config,
    tx: mpsc::Sender<ReaderEvent>,
    fw: watch::Sender<Option<Firmware>>,
) {
    let device = config.device.display().to_string();
    let timing = config.timing;
    let mut link = Link::new(&timing);
    loop {
        let why = match connect(&config).await {
            Ok((port, firmware)) => {
                fw.send_replace(Some(firmware));
                tracing::info!(%device, %firmware, "PN532 answering");
                if let Some(event) = link.up()
                    && tx.send(event).await.is_err()
                {
                    return;
                }
                match poll(port, &timing, &tx).await {
                    Some(e) => e,
                    None => return,
                }
            }
            Err(e) => e,
        };
        let (event, wait) = link.down(format!("PN532 on {device}: {why}"));
        if let Some(event) = event
            && tx.send(event).await.is_err()
        {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = tx.closed() => return,
        }
    }
}

/// Opens the port and brings the PN532 up: wake-up, normal mode, firmware
/// version, bounded activation retries.
async fn connect(config: &Pn532Config) -> Result<(Port, Firmware), PortError> {
    let mut port = Port::open(&config.device, config.baud, config.timing)?;
    port.wake().await?;
    port.exchange(command::SAM_CONFIGURATION, &command::SAM_NORMAL)
        .await?;
    let firmware = command::firmware(&port.exchange(command::GET_FIRMWARE_VERSION, &[]).await?)?;
    let retries = command::max_retries(config.timing.passive_retries);
    port.exchange(command::RF_CONFIGURATION, &retries).await?;
    Ok((port, firmware))
}

/// Polls for cards until the reader fails (`Some(why)`) or the handle is
/// dropped (`None`).
async fn poll(
    mut port: Port,
    timing: &Timing,
    tx: &mpsc::Sender<ReaderEvent>,
) -> Option<PortError> {
    let mut poller = Poller::new(timing);
    loop {
        let listed = port
            .exchange(command::IN_LIST_PASSIVE_TARGET, &command::LIST_ONE_TYPE_A)
            .await
            .and_then(|data| Ok(command::listed_card(&data)?));
        let polled = match listed {
            Ok(card) => Polled::Listed(card),
            Err(PortError::Answer(e)) => Polled::BadAnswer(e),
            Err(e @ PortError::Io(_)) => Polled::Fatal(e),
            Err(e) => Polled::Failed(e),
        };
        let event = match poller.polled(polled) {
            Ok(event) => event,
            Err(e) => return Some(e),
        };
        if let Some(event) = event {
            match tx.try_send(event) {
                Ok(()) => {}
                Err(TrySendError::Full(event)) => {
                    tracing::warn!(?event, "card read dropped: the daemon is not taking reads");
                }
                Err(TrySendError::Closed(_)) => return None,
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(timing.poll) => {}
            _ = tx.closed() => return None,
        }
    }
}
