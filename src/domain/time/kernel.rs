//! What the kernel says of the wall clock, and what the watch makes of it.
//!
//! The kernel knows whether a time daemon (systemd-timesyncd, chrony, ntpd)
//! has synchronised its clock: `adjtimex(2)` reports it, and it is what
//! `timedatectl` shows as `NTPSynchronized`. A Pi boots with no battery
//! clock, so until then its wall clock is whatever `fake-hwclock` saved at
//! the last shutdown, or 1970. The daemon reads the kernel's word at start
//! and every few seconds and passes it in ([`ClockWatch::kernel`]); this
//! module decides, purely, what follows:
//!
//! * while the kernel says unsynchronised, events are stamped
//!   `"clock":"unsynced"`, whatever the step detector thinks;
//! * one `clock_unsynced` alert per spell: when the kernel first says so,
//!   and again only after it said synchronised in between (a gate on a
//!   network without NTP gets one alert per start, not one per reading);
//! * once it says synchronised, only a step still in doubt keeps events
//!   unsynced. Synchronising usually steps the clock too, which the step
//!   detector notices on its own and settles as usual.
//!
//! A gate cannot be told to ignore the kernel: a gate without NTP must say
//! that its stamps are not to be trusted.

use super::{ClockWatch, Doubt, Mono, round_span};
use crate::domain::contract::Clock;

/// The kernel's word on the wall clock, as the daemon read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KernelSync {
    /// A time daemon keeps the clock synchronised.
    Synced,
    /// Not synchronised, or the kernel could not be asked: why, in words
    /// (e.g. "adjtimex: STA_UNSYNC is set").
    Unsynced(String),
}

impl ClockWatch {
    /// Takes in what the kernel says now. Returns the sentence for a
    /// `clock_unsynced` alert when the kernel has just said the clock is
    /// not synchronised: on the first reading that says so, and again only
    /// after a reading that said it was synchronised. A change of reason
    /// within one spell raises nothing.
    pub fn kernel(&mut self, said: KernelSync) -> Option<String> {
        let was_unsynced = matches!(self.kernel, Some(KernelSync::Unsynced(_)));
        let alert = match &said {
            KernelSync::Unsynced(why) if !was_unsynced => Some(format!(
                "The kernel says the wall clock is not synchronised ({why}); events are \
                 stamped \"clock\":\"unsynced\" until it is."
            )),
            _ => None,
        };
        self.kernel = Some(said);
        alert
    }

    /// Whether the kernel last said the clock is synchronised; `None`
    /// before it was asked.
    pub fn kernel_synced(&self) -> Option<bool> {
        self.kernel.as_ref().map(|k| *k == KernelSync::Synced)
    }

    /// Why events stamped at `mono` are [`Clock::Unsynced`], in words (the
    /// kernel's reason and the step's, either or both); `None` when they
    /// are stamped synced.
    pub fn doubt_why(&self, mono: Mono) -> Option<String> {
        let mut why = Vec::new();
        if let Some(KernelSync::Unsynced(reason)) = &self.kernel {
            why.push(format!("the kernel says not synchronised ({reason})"));
        }
        if self.step_clock(mono) == Clock::Unsynced {
            why.push(match (self.doubt, self.doubt_ends(mono)) {
                (Doubt::FromFirstReading, _) | (_, None) => {
                    "in doubt since the daemon started".to_string()
                }
                (_, Some(ends)) => format!(
                    "the wall clock stepped; believed again if it runs steady for {} more",
                    round_span(ends - mono)
                ),
            });
        }
        (!why.is_empty()).then(|| why.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::domain::time::Now;

    fn at(mono_ms: u64, off_ms: i64) -> Now {
        let t0 = chrono::DateTime::parse_from_rfc3339("2026-11-22T08:00:00+07:00").unwrap();
        Now {
            mono: Mono::from_ms(mono_ms),
            wall: t0 + chrono::TimeDelta::milliseconds(mono_ms as i64 + off_ms),
        }
    }

    fn watch() -> ClockWatch {
        ClockWatch::new(Duration::from_secs(5), Duration::from_secs(600), true)
    }

    fn unsynced(why: &str) -> KernelSync {
        KernelSync::Unsynced(why.into())
    }

    #[test]
    fn not_asking_the_kernel_leaves_the_step_detector_alone() {
        let mut w = watch();
        w.observe(at(0, 0));
        assert_eq!(w.kernel_synced(), None);
        assert_eq!(w.clock(Mono::ZERO), Clock::Synced);
        assert_eq!(w.doubt_why(Mono::ZERO), None);
    }

    #[test]
    fn an_unsynchronised_kernel_is_alerted_once_per_spell() {
        let mut w = watch();
        w.observe(at(0, 0));
        let first = w.kernel(unsynced("adjtimex: STA_UNSYNC is set"));
        assert_eq!(
            first.as_deref(),
            Some(
                "The kernel says the wall clock is not synchronised (adjtimex: STA_UNSYNC \
                 is set); events are stamped \"clock\":\"unsynced\" until it is."
            )
        );
        // Readings every 10 s for an hour, the reason changing once: no flood.
        for i in 1..=360u64 {
            let why = if i < 100 { "STA_UNSYNC" } else { "TIME_ERROR" };
            w.observe(at(i * 10_000, 0));
            assert_eq!(w.kernel(unsynced(why)), None, "reading {i}");
            assert_eq!(w.clock(Mono::from_ms(i * 10_000)), Clock::Unsynced);
        }
        assert_eq!(w.kernel_synced(), Some(false));

        // Synchronised (with no step): believed at once.
        assert_eq!(w.kernel(KernelSync::Synced), None);
        assert_eq!(w.clock(Mono::from_ms(3_600_000)), Clock::Synced);
        assert_eq!(w.kernel_synced(), Some(true));
        assert_eq!(w.kernel(KernelSync::Synced), None);

        // Sync lost again: a second alert, then quiet again.
        assert!(w.kernel(unsynced("STA_UNSYNC")).is_some());
        assert_eq!(w.kernel(unsynced("STA_UNSYNC")), None);
        assert_eq!(w.clock(Mono::from_ms(3_600_000)), Clock::Unsynced);
    }

    #[test]
    fn a_kernel_synchronised_from_the_start_alerts_nothing() {
        let mut w = watch();
        for i in 0..10u64 {
            w.observe(at(i * 10_000, 0));
            assert_eq!(w.kernel(KernelSync::Synced), None);
            assert_eq!(w.clock(Mono::from_ms(i * 10_000)), Clock::Synced);
        }
    }

    #[test]
    fn the_kernel_synchronising_with_a_step_still_waits_out_the_step() {
        let mut w = watch();
        w.observe(at(0, -90 * 86_400_000));
        assert!(w.kernel(unsynced("STA_UNSYNC")).is_some());
        // NTP steps the clock forward 90 days and the kernel says synchronised.
        let step = w.observe(at(30_000, 0)).expect("NTP's step");
        assert_eq!(w.kernel(KernelSync::Synced), None);
        assert!(step.by_ms > 0);
        assert_eq!(w.clock(Mono::from_ms(30_000)), Clock::Unsynced);
        assert_eq!(
            w.doubt_why(Mono::from_ms(30_000)).as_deref(),
            Some("the wall clock stepped; believed again if it runs steady for 10 min more")
        );
        w.observe(at(630_000, 0));
        assert_eq!(w.clock(Mono::from_ms(630_000)), Clock::Synced);
        assert_eq!(w.doubt_why(Mono::from_ms(630_000)), None);
    }

    #[test]
    fn the_reasons_for_doubt_are_both_given() {
        let mut w = watch();
        w.observe(at(0, 0));
        w.kernel(unsynced("adjtimex failed: Operation not permitted"));
        w.observe(at(60_000, 3_600_000)).expect("a step");
        assert_eq!(
            w.doubt_why(Mono::from_ms(120_000)).as_deref(),
            Some(
                "the kernel says not synchronised (adjtimex failed: Operation not permitted); \
                 the wall clock stepped; believed again if it runs steady for 9 min more"
            )
        );
        let started_in_doubt =
            ClockWatch::new(Duration::from_secs(5), Duration::from_secs(60), false);
        assert_eq!(
            started_in_doubt.doubt_why(Mono::ZERO).as_deref(),
            Some("in doubt since the daemon started")
        );
    }
}
