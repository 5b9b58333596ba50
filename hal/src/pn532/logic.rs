//! The decisions every PN532 driver makes the same way, whatever the wire
//! (UART here, SPI or I2C on a thread): which poll is a new card, when a
//! reader counts as offline, and how long to wait before trying it again.
//! Pure, so both drivers keep one behaviour and it is tested once.

use std::time::Duration;

use super::Timing;
use super::command::AnswerError;
use crate::{Credential, ReaderEvent, ReaderHealth};

/// What one InListPassiveTarget poll came to, as a driver saw it.
pub(super) enum Polled<E> {
    /// The PN532 answered: this card is in the field, or none.
    Listed(Option<Credential>),
    /// The PN532 answered, so it works, but the card did not read cleanly.
    BadAnswer(AnswerError),
    /// The exchange failed in a way worth retrying (no answer in time, a
    /// corrupt frame): offline only after [`Timing::misses`] in a row.
    Failed(E),
    /// The device itself failed (unplugged, EIO): offline at once. Only
    /// a serial port fails so; a bus outlives the PN532 on it.
    #[cfg(feature = "pn532")]
    Fatal(E),
}

/// Follows the polls of one connected reader.
pub(super) struct Poller {
    present: Present,
    misses: u32,
    max_misses: u32,
}

impl Poller {
    pub fn new(timing: &Timing) -> Poller {
        Poller {
            present: Present::new(timing.absent_polls),
            misses: 0,
            max_misses: timing.misses.max(1),
        }
    }

    /// Takes one poll's outcome: `Ok` with the event to report, if any, or
    /// `Err` with why the reader is to be taken offline.
    pub fn polled<E: std::fmt::Display>(
        &mut self,
        polled: Polled<E>,
    ) -> Result<Option<ReaderEvent>, E> {
        match polled {
            Polled::Listed(card) => {
                self.misses = 0;
                Ok(self.present.seen(card).map(ReaderEvent::Card))
            }
            Polled::BadAnswer(e) => {
                self.misses = 0;
                tracing::warn!(error = %e, "PN532: card not read cleanly");
                Ok(Some(ReaderEvent::Misread))
            }
            #[cfg(feature = "pn532")]
            Polled::Fatal(e) => Err(e),
            Polled::Failed(e) => {
                self.misses += 1;
                tracing::warn!(error = %e, misses = self.misses, "PN532: exchange failed");
                if self.misses >= self.max_misses {
                    return Err(e);
                }
                Ok(None)
            }
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

/// Whether the reader is online, and the backoff while it is not.
pub(super) struct Link {
    online: bool,
    backoff: Duration,
    retry_min: Duration,
    retry_max: Duration,
}

impl Link {
    /// The lane starts out assuming its reader works; only a change is news.
    pub fn new(timing: &Timing) -> Link {
        Link {
            online: true,
            backoff: timing.retry_min,
            retry_min: timing.retry_min,
            retry_max: timing.retry_max.max(timing.retry_min),
        }
    }

    /// The reader answered: the event to send if it had been offline.
    pub fn up(&mut self) -> Option<ReaderEvent> {
        self.backoff = self.retry_min;
        if self.online {
            return None;
        }
        self.online = true;
        tracing::info!("card reader online");
        Some(ReaderEvent::Health(ReaderHealth::Ok))
    }

    /// The reader failed for reason `why`: the event to send if it had been
    /// online, and how long to wait before trying it again (doubling up to
    /// [`Timing::retry_max`] while it stays down).
    pub fn down(&mut self, why: String) -> (Option<ReaderEvent>, Duration) {
        let wait = self.backoff;
        self.backoff = (self.backoff * 2).min(self.retry_max);
        if !self.online {
            tracing::debug!(reason = %why, ?wait, "card reader still offline");
            return (None, wait);
        }
        self.online = false;
        tracing::warn!(reason = %why, "card reader offline");
        (Some(ReaderEvent::Health(ReaderHealth::Offline(why))), wait)
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

    fn timing() -> Timing {
        Timing {
            misses: 3,
            retry_min: Duration::from_millis(10),
            retry_max: Duration::from_millis(35),
            ..Timing::default()
        }
    }

    #[test]
    fn failures_take_a_reader_offline_only_in_a_row_and_fatal_ones_at_once() {
        let mut p = Poller::new(&timing());
        let failed = || Polled::Failed("no answer");
        assert!(matches!(p.polled(failed()), Ok(None)));
        assert!(matches!(p.polled(failed()), Ok(None)));
        // An answer in between starts the count again.
        assert!(matches!(p.polled(Polled::<&str>::Listed(None)), Ok(None)));
        assert!(matches!(p.polled(failed()), Ok(None)));
        assert!(matches!(p.polled(failed()), Ok(None)));
        assert_eq!(p.polled(failed()).unwrap_err(), "no answer");
        #[cfg(feature = "pn532")]
        {
            let mut p = Poller::new(&timing());
            assert_eq!(p.polled(Polled::Fatal("EIO")).unwrap_err(), "EIO");
        }
    }

    #[test]
    fn a_bad_answer_is_a_misread_and_a_new_card_a_read() {
        let mut p = Poller::new(&timing());
        let bad = Polled::<&str>::BadAnswer(AnswerError::UidLength(5));
        assert_eq!(p.polled(bad).unwrap(), Some(ReaderEvent::Misread));
        let c = Credential::from_hex("01020304").unwrap();
        assert_eq!(
            p.polled(Polled::<&str>::Listed(Some(c.clone()))).unwrap(),
            Some(ReaderEvent::Card(c.clone()))
        );
        assert_eq!(p.polled(Polled::<&str>::Listed(Some(c))).unwrap(), None);
    }

    #[test]
    fn health_is_reported_on_change_only_with_a_doubling_backoff() {
        let mut link = Link::new(&timing());
        assert_eq!(link.up(), None, "online from the start: no news");
        let (event, wait) = link.down("gone".into());
        assert_eq!(
            event,
            Some(ReaderEvent::Health(ReaderHealth::Offline("gone".into())))
        );
        assert_eq!(wait, Duration::from_millis(10));
        let waits: Vec<_> = (0..3).map(|_| link.down("gone".into())).collect();
        assert!(waits.iter().all(|(event, _)| event.is_none()));
        let ms: Vec<_> = waits.iter().map(|(_, w)| w.as_millis()).collect();
        assert_eq!(ms, [20, 35, 35]);
        assert_eq!(link.up(), Some(ReaderEvent::Health(ReaderHealth::Ok)));
        assert_eq!(link.up(), None);
        // Back online, the backoff starts again from the shortest.
        assert_eq!(link.down("again".into()).1, Duration::from_millis(10));
    }
}
