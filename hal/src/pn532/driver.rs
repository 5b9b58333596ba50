//! The task that owns the serial port: connect, poll, and on failure report
//! offline and reconnect with backoff (see the module doc of `pn532`).

use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, watch};

use super::command::{self, Firmware};
use super::port::{Port, PortError};
use super::{Pn532Config, Timing};
use crate::{Credential, ReaderEvent, ReaderHealth};

/// Runs until the reader handle is dropped.
pub(super) async fn run(
    config: Pn532Config,
    tx: mpsc::Sender<ReaderEvent>,
    fw: watch::Sender<Option<Firmware>>,
) {
    let device = config.device.display().to_string();
    let timing = config.timing;
    // The lane starts out assuming its reader works; only a change is news.
    let mut online = true;
    let mut backoff = timing.retry_min;
    loop {
        let why = match connect(&config).await {
            Ok((port, firmware)) => {
                fw.send_replace(Some(firmware));
                tracing::info!(%device, %firmware, "PN532 answering");
                if !online {
                    online = true;
                    if tx
                        .send(ReaderEvent::Health(ReaderHealth::Ok))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                backoff = timing.retry_min;
                match poll(port, &timing, &tx).await {
                    Some(e) => e,
                    None => return,
                }
            }
            Err(e) => e,
        };
        let why = format!("PN532 on {device}: {why}");
        if online {
            online = false;
            tracing::warn!(reason = %why, "card reader offline");
            let event = ReaderEvent::Health(ReaderHealth::Offline(why));
            if tx.send(event).await.is_err() {
                return;
            }
        } else {
            tracing::debug!(reason = %why, ?backoff, "card reader still offline");
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = tx.closed() => return,
        }
        backoff = (backoff * 2).min(timing.retry_max);
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
    let mut present = Present::new(timing.absent_polls);
    let mut misses = 0;
    loop {
        let listed = port
            .exchange(command::IN_LIST_PASSIVE_TARGET, &command::LIST_ONE_TYPE_A)
            .await
            .and_then(|data| Ok(command::listed_card(&data)?));
        let event = match listed {
            Ok(card) => {
                misses = 0;
                present.seen(card).map(ReaderEvent::Card)
            }
            Err(PortError::Answer(e)) => {
                // The PN532 answered, so it works; the card did not read cleanly.
                misses = 0;
                tracing::warn!(error = %e, "PN532: card not read cleanly");
                Some(ReaderEvent::Misread)
            }
            Err(e @ PortError::Io(_)) => return Some(e),
            Err(e) => {
                misses += 1;
                tracing::warn!(error = %e, misses, "PN532: exchange failed");
                if misses >= timing.misses {
                    return Some(e);
                }
                None
            }
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

/// Which card is in the field, so a held card is one read.
struct Present {
    card: Option<Credential>,
    empty: u32,
    absent_polls: u32,
}

impl Present {
    fn new(absent_polls: u32) -> Present {
        Present {
            card: None,
            empty: 0,
            absent_polls: absent_polls.max(1),
        }
    }

    /// What one poll saw; returns a card to report if it is new to the field.
    fn seen(&mut self, card: Option<Credential>) -> Option<Credential> {
        match card {
            None => {
                self.empty += 1;
                // One empty poll can be RF noise under a held card.
                if self.empty >= self.absent_polls {
                    self.card = None;
                }
                None
            }
            Some(card) => {
                self.empty = 0;
                if self.card.as_ref() == Some(&card) {
                    return None;
                }
                self.card = Some(card.clone());
                Some(card)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card(b: u8) -> Option<Credential> {
        Some(Credential {
            uid: vec![b, 2, 3, 4],
        })
    }

    #[test]
    fn a_held_card_is_one_read_and_a_swap_two() {
        let mut p = Present::new(2);
        assert_eq!(p.seen(card(1)), card(1));
        assert_eq!(p.seen(card(1)), None);
        // One empty poll is noise: still the same card.
        assert_eq!(p.seen(None), None);
        assert_eq!(p.seen(card(1)), None);
        // Swapped with no empty poll in between.
        assert_eq!(p.seen(card(2)), card(2));
        // Gone for two polls, then back: a new read.
        assert_eq!(p.seen(None), None);
        assert_eq!(p.seen(None), None);
        assert_eq!(p.seen(card(2)), card(2));
    }
}
