//! The two clocks a gate lives by.
//!
//! A Pi has no battery-backed clock: at boot its wall clock can be hours or
//! months off until NTP steps it, forwards or back. So every timer, timeout
//! and repeat window runs on [`Mono`], a monotonic reading that only moves
//! forward at the pace of real time; the wall clock ([`Timestamp`]) only
//! stamps events and feeds tariffs and reservations. [`Now`] carries both,
//! read together by the daemon's clock and passed in as an argument.
//! [`ClockWatch`] compares the two from reading to reading and notices when
//! the wall clock is stepped, so events can say they were stamped by a clock
//! in doubt; and it takes in what the kernel says of the wall clock
//! ([`KernelSync`], `kernel.rs`), which puts the clock in doubt while the
//! kernel says it is not synchronised.

use std::ops::{Add, Sub};
use std::time::Duration;

use super::contract::Clock;
use super::model::Timestamp;

mod kernel;
pub use kernel::KernelSync;

/// A reading of the monotonic clock: milliseconds since an arbitrary origin
/// (the daemon's start). Never goes back; says nothing about the date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Mono(u64);

impl Mono {
    /// The origin.
    pub const ZERO: Mono = Mono(0);

    /// `ms` milliseconds after the origin.
    pub const fn from_ms(ms: u64) -> Mono {
        Mono(ms)
    }

    /// Milliseconds since the origin.
    pub const fn as_ms(self) -> u64 {
        self.0
    }

    /// Time from `earlier` to `self`; zero if `earlier` is later.
    pub fn since(self, earlier: Mono) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
}

impl Add<Duration> for Mono {
    type Output = Mono;
    fn add(self, d: Duration) -> Mono {
        Mono(
            self.0
                .saturating_add(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        )
    }
}

impl Sub<Mono> for Mono {
    type Output = Duration;
    /// Saturating: `a - b` is zero when `b` is later.
    fn sub(self, earlier: Mono) -> Duration {
        self.since(earlier)
    }
}

/// Both clocks, read at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// For timers and durations between readings.
    pub mono: Mono,
    /// For stamping events and for tariffs and reservations, with the lot's
    /// UTC offset at that instant.
    pub wall: Timestamp,
}

impl std::fmt::Display for Now {
    /// For logs: "2026-11-22T08:00:00+07:00 (mono 1234 ms)".
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} (mono {} ms)",
            self.wall.to_rfc3339(),
            self.mono.as_ms()
        )
    }
}

/// Notices steps of the wall clock by comparing it with the monotonic clock,
/// and says whether the wall clock is to be believed.
///
/// # The rule
///
/// Feed it every [`Now`] the daemon reads, in order ([`observe`](Self::observe)).
/// Between two readings the wall clock should move as far as mono did. When
/// the two moves differ by more than `threshold` plus a drift allowance of
/// [`MAX_DRIFT_PPM`](Self::MAX_DRIFT_PPM) of the time between the readings,
/// the wall clock was stepped: `observe` returns one [`Step`] and the clock
/// is *in doubt*. [`clock`](Self::clock) then says [`Clock::Unsynced`] until
/// the wall clock has run steady against mono for `settle` (measured on mono
/// from the reading that showed the step); a further step restarts the
/// settle period. A watch can also start in doubt (the kernel says the clock
/// is not synchronised at boot): the settle period then starts at the first
/// reading.
///
/// # Why
///
/// * **Each reading against the previous one**, not against an anchor kept
///   forever: a difference of a millisecond per reading is rounding and
///   jitter, and summed over days of readings it would add up to a false
///   step. Re-anchoring on every reading also reports a step once: the next
///   reading is steady against the stepped clock.
/// * **The drift allowance** covers a long gap between readings (an idle
///   gate overnight), over which the two clocks may legitimately drift
///   apart. On Linux both are slewed together by NTP, so the real drift is
///   about zero; 500 ppm is the kernel's largest frequency correction, so no
///   slew, however long, looks like a step. It is 1.8 s over an hour, while
///   the steps this is for (NTP at boot, someone setting the clock) are
///   minutes to months.
/// * **Doubt after a step:** a step shows the clock was wrong before or is
///   wrong now, and NTP often steps more than once while it syncs, so events
///   stamped meanwhile carry `"clock":"unsynced"` rather than a time HQ
///   would trust. A clock that then runs steady for the settle period is
///   believed again.
#[derive(Debug, Clone)]
pub struct ClockWatch {
    threshold: Duration,
    settle: Duration,
    /// The previous reading; `None` before the first.
    last: Option<Now>,
    doubt: Doubt,
    /// What the kernel last said (`None`: not asked yet, which alone
    /// puts nothing in doubt; the daemon asks before its first event).
    kernel: Option<KernelSync>,
}

/// Whether, and since when, a [`ClockWatch`] doubts the wall clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Doubt {
    /// The wall clock is believed (until a step).
    None,
    /// Started in doubt; the settle period starts at the first reading.
    FromFirstReading,
    /// In doubt since this reading: a step, or the first reading.
    Since(Mono),
}

impl ClockWatch {
    /// The default threshold: a wall clock 5 s off from mono was stepped.
    pub const DEFAULT_THRESHOLD: Duration = Duration::from_secs(5);
    /// The default settle period after a step: 10 minutes.
    pub const DEFAULT_SETTLE: Duration = Duration::from_secs(10 * 60);
    /// The drift allowed between the clocks, in parts per million of the
    /// time between two readings, on top of the threshold (see the type's doc).
    pub const MAX_DRIFT_PPM: u64 = 500;

    /// A watch that calls a difference of more than `threshold` between
    /// readings a step and doubts the wall clock until it has run steady for
    /// `settle`. `start_synced: false` starts in doubt (the kernel reported
    /// the clock unsynchronised), the settle period running from the first reading.
    pub fn new(threshold: Duration, settle: Duration, start_synced: bool) -> ClockWatch {
        ClockWatch {
            threshold,
            settle,
            last: None,
            kernel: None,
            doubt: if start_synced {
                Doubt::None
            } else {
                Doubt::FromFirstReading
            },
        }
    }

    /// Takes in one reading of both clocks; returns the step it shows, if
    /// any, once. The first reading only anchors. A reading older on mono
    /// than the previous one (read earlier, passed in late) says nothing
    /// and is ignored.
    pub fn observe(&mut self, now: Now) -> Option<Step> {
        let previous = match self.last {
            Some(previous) if now.mono < previous.mono => return None,
            previous => previous,
        };
        self.last = Some(now);
        if self.doubt == Doubt::FromFirstReading {
            self.doubt = Doubt::Since(now.mono);
        }
        let previous = previous?;
        // i128: neither difference can overflow, whatever the readings.
        let mono_ms = i128::from(now.mono.as_ms()) - i128::from(previous.mono.as_ms());
        let wall_ms = i128::from((now.wall - previous.wall).num_milliseconds());
        let by_ms = wall_ms - mono_ms;
        let allowed = i128::try_from(self.threshold.as_millis()).unwrap_or(i128::MAX)
            + mono_ms * i128::from(Self::MAX_DRIFT_PPM) / 1_000_000;
        if by_ms.abs() <= allowed {
            return None;
        }
        self.doubt = Doubt::Since(now.mono);
        Some(Step {
            by_ms: i64::try_from(by_ms).unwrap_or(if by_ms < 0 { i64::MIN } else { i64::MAX }),
            at: now,
            settle: self.settle,
        })
    }

    /// Whether events stamped at `mono` carry a wall clock to believe:
    /// [`Clock::Unsynced`] from a step until `settle` has passed on mono
    /// without another one, and while the kernel says the clock is not
    /// synchronised. Ask after observing the reading `mono` comes from.
    pub fn clock(&self, mono: Mono) -> Clock {
        if matches!(self.kernel, Some(KernelSync::Unsynced(_))) {
            return Clock::Unsynced;
        }
        self.step_clock(mono)
    }

    /// [`clock`](Self::clock) by the steps alone.
    fn step_clock(&self, mono: Mono) -> Clock {
        match self.doubt {
            Doubt::None => Clock::Synced,
            Doubt::FromFirstReading => Clock::Unsynced,
            Doubt::Since(since) if mono.since(since) >= self.settle => Clock::Synced,
            Doubt::Since(_) => Clock::Unsynced,
        }
    }

    /// While the clock is in doubt at `mono`: the mono reading at which
    /// [`clock`](Self::clock) turns [`Clock::Synced`] if no further step
    /// comes (the lane can wake then to publish its status). `None` when the
    /// clock is believed at `mono`, and before the first reading of a watch
    /// started in doubt (its settle period has not started).
    pub fn doubt_ends(&self, mono: Mono) -> Option<Mono> {
        match self.doubt {
            Doubt::Since(since) if mono.since(since) < self.settle => Some(since + self.settle),
            _ => None,
        }
    }
}

/// A step of the wall clock, as [`ClockWatch::observe`] noticed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// How much further the wall clock moved than mono, in milliseconds:
    /// positive when it was stepped forward, negative when back.
    pub by_ms: i64,
    /// The reading that showed the step; its `wall` is the stepped clock.
    pub at: Now,
    /// How long the wall clock must now run steady to be believed again.
    pub settle: Duration,
}

impl Step {
    /// One human sentence for the `message` of the `clock_unsynced` alert, e.g.
    /// "The wall clock stepped back 1 h 00 min 00 s against the monotonic
    /// clock; events are stamped "clock":"unsynced" until it has run steady for 10 min."
    pub fn message(&self) -> String {
        let direction = if self.by_ms < 0 { "back" } else { "forward" };
        format!(
            "The wall clock stepped {direction} {} against the monotonic clock; \
             events are stamped \"clock\":\"unsynced\" until it has run steady for {}.",
            exact_span(self.by_ms.unsigned_abs()),
            round_span(self.settle),
        )
    }
}

const SECOND_MS: u64 = 1_000;
const MINUTE_MS: u64 = 60 * SECOND_MS;
const HOUR_MS: u64 = 60 * MINUTE_MS;
const DAY_MS: u64 = 24 * HOUR_MS;

/// `ms` to the millisecond, from its largest unit down to seconds, later
/// units two digits: "1 h 00 min 00 s", "30 d 00 h 00 min 00.250 s", "6 s".
fn exact_span(ms: u64) -> String {
    let (d, h, m) = (ms / DAY_MS, ms / HOUR_MS % 24, ms / MINUTE_MS % 60);
    let (s, milli) = (ms / SECOND_MS % 60, ms % SECOND_MS);
    let seconds = |width: usize| match milli {
        0 => format!("{s:0width$} s"),
        _ => format!("{s:0width$}.{milli:03} s"),
    };
    if d > 0 {
        format!("{d} d {h:02} h {m:02} min {}", seconds(2))
    } else if h > 0 {
        format!("{h} h {m:02} min {}", seconds(2))
    } else if m > 0 {
        format!("{m} min {}", seconds(2))
    } else {
        seconds(1)
    }
}

/// A configured period in its non-zero units: "10 min", "1 h 30 min",
/// "45 s"; under a second in milliseconds.
fn round_span(d: Duration) -> String {
    let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    if ms < SECOND_MS {
        return format!("{ms} ms");
    }
    let units = [
        (ms / DAY_MS, "d"),
        (ms / HOUR_MS % 24, "h"),
        (ms / MINUTE_MS % 60, "min"),
        (ms / SECOND_MS % 60, "s"),
    ];
    let parts: Vec<String> = units
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n} {unit}"))
        .collect();
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mono_arithmetic_saturates_instead_of_going_negative() {
        let a = Mono::from_ms(1_000);
        let b = a + Duration::from_millis(500);
        assert_eq!(b.as_ms(), 1_500);
        assert_eq!(b - a, Duration::from_millis(500));
        assert_eq!(a - b, Duration::ZERO);
        assert_eq!(
            Mono::from_ms(u64::MAX) + Duration::from_secs(1),
            Mono::from_ms(u64::MAX)
        );
    }

    // --- ClockWatch ---

    use chrono::{DateTime, TimeDelta};

    const SEC: u64 = 1_000;
    const MIN: u64 = 60 * SEC;
    const HOUR: i64 = 3_600_000;
    const DAY: i64 = 24 * HOUR;

    fn t0() -> Timestamp {
        DateTime::parse_from_rfc3339("2026-11-22T08:00:00+07:00").unwrap()
    }

    /// A reading `mono_ms` after the origin whose wall clock is `off_ms` off
    /// from where an unstepped clock (t0 at the origin) would be.
    fn at(mono_ms: u64, off_ms: i64) -> Now {
        Now {
            mono: Mono::from_ms(mono_ms),
            wall: t0() + TimeDelta::milliseconds(mono_ms as i64 + off_ms),
        }
    }

    fn watch() -> ClockWatch {
        ClockWatch::new(
            ClockWatch::DEFAULT_THRESHOLD,
            ClockWatch::DEFAULT_SETTLE,
            true,
        )
    }

    const SETTLE: u64 = 10 * MIN;

    #[test]
    fn steps_of_an_hour_and_a_month_either_way_are_each_noticed_once() {
        for by in [HOUR, -HOUR, 30 * DAY, -30 * DAY] {
            let mut w = watch();
            assert_eq!(w.observe(at(0, 0)), None);
            assert_eq!(w.observe(at(SEC, 0)), None);
            let step = w.observe(at(2 * SEC, by)).expect("a step");
            assert_eq!((step.by_ms, step.at), (by, at(2 * SEC, by)), "by {by}");
            assert_eq!(step.settle, ClockWatch::DEFAULT_SETTLE);
            // The stepped clock runs steady from there: no second report.
            assert_eq!(w.observe(at(3 * SEC, by)), None, "by {by}");
            assert_eq!(w.observe(at(MIN, by)), None, "by {by}");
            assert_eq!(w.clock(Mono::from_ms(MIN)), Clock::Unsynced);
        }
    }

    #[test]
    fn jitter_up_to_the_threshold_is_no_step() {
        let mut w = watch();
        w.observe(at(0, 0));
        // Readings a second apart, the wall swinging 5 s either way: no
        // reading differs from the previous one by more than the threshold.
        for (i, off) in [2_500, -2_500, 2_500, -2_500, 0].into_iter().enumerate() {
            assert_eq!(w.observe(at((i as u64 + 1) * SEC, off)), None);
        }
        assert_eq!(w.clock(Mono::from_ms(5 * SEC)), Clock::Synced);
        // One millisecond more is a step.
        let step = w.observe(at(6 * SEC, 5_001)).expect("a step");
        assert_eq!(step.by_ms, 5_001);
    }

    #[test]
    fn a_slow_drift_never_adds_up_to_a_step() {
        // A reading a minute for 30 days, the wall clock gaining 1 ms on each:
        // 43 s in all, far over the threshold, but never in one reading.
        let mut w = watch();
        for i in 0..30 * 24 * 60u64 {
            assert_eq!(w.observe(at(i * MIN, i as i64)), None, "reading {i}");
        }
        assert_eq!(w.clock(Mono::from_ms(30 * 24 * 60 * MIN)), Clock::Synced);
    }

    #[test]
    fn a_month_between_readings_without_a_step_is_none() {
        let month = 30 * DAY as u64;
        let mut w = watch();
        w.observe(at(0, 0));
        assert_eq!(w.observe(at(month, 0)), None);
        // 60 s of drift over the month (23 ppm): within the allowance.
        assert_eq!(w.observe(at(2 * month, 60_000)), None);
        // A step of an hour after a month's gap is still one.
        assert_eq!(
            w.observe(at(3 * month, 60_000 - HOUR)).map(|s| s.by_ms),
            Some(-HOUR)
        );
        assert_eq!(w.clock(Mono::from_ms(3 * month)), Clock::Unsynced);
    }

    #[test]
    fn the_drift_allowance_is_500_ppm_of_the_gap() {
        // An hour between readings allows 5 s + 1.8 s.
        let gap = 3_600 * SEC;
        let mut w = watch();
        w.observe(at(0, 0));
        assert_eq!(w.observe(at(gap, 6_800)), None);
        assert_eq!(
            w.observe(at(2 * gap, 6_800 - 6_801)).map(|s| s.by_ms),
            Some(-6_801)
        );
    }

    #[test]
    fn doubt_lasts_exactly_the_settle_period() {
        let mut w = watch();
        assert_eq!(w.clock(Mono::ZERO), Clock::Synced);
        w.observe(at(0, 0));
        w.observe(at(MIN, -HOUR)).expect("a step");
        assert_eq!(
            w.doubt_ends(Mono::from_ms(MIN)),
            Some(Mono::from_ms(MIN + SETTLE))
        );
        // Steady readings every minute through the settle period.
        for m in 2..=10 {
            assert_eq!(w.observe(at(m * MIN, -HOUR)), None);
            assert_eq!(
                w.clock(Mono::from_ms(m * MIN)),
                Clock::Unsynced,
                "minute {m}"
            );
        }
        assert_eq!(w.observe(at(MIN + SETTLE - 1, -HOUR)), None);
        assert_eq!(w.clock(Mono::from_ms(MIN + SETTLE - 1)), Clock::Unsynced);
        assert_eq!(w.observe(at(MIN + SETTLE, -HOUR)), None);
        assert_eq!(w.clock(Mono::from_ms(MIN + SETTLE)), Clock::Synced);
        assert_eq!(w.doubt_ends(Mono::from_ms(MIN + SETTLE)), None);
    }

    #[test]
    fn a_second_step_restarts_the_settle_period() {
        let mut w = watch();
        w.observe(at(0, 0));
        w.observe(at(MIN, HOUR)).expect("first step");
        let second = MIN + 9 * MIN;
        w.observe(at(second, HOUR - 30 * SEC as i64))
            .expect("second step");
        // The first step's settle period would have ended here.
        assert_eq!(w.observe(at(MIN + SETTLE, HOUR - 30 * SEC as i64)), None);
        assert_eq!(w.clock(Mono::from_ms(MIN + SETTLE)), Clock::Unsynced);
        assert_eq!(
            w.doubt_ends(Mono::from_ms(MIN + SETTLE)),
            Some(Mono::from_ms(second + SETTLE))
        );
        assert_eq!(w.clock(Mono::from_ms(second + SETTLE - 1)), Clock::Unsynced);
        assert_eq!(w.clock(Mono::from_ms(second + SETTLE)), Clock::Synced);
    }

    #[test]
    fn a_watch_started_in_doubt_settles_from_its_first_reading() {
        let mut w = ClockWatch::new(Duration::from_secs(5), Duration::from_secs(60), false);
        assert_eq!(w.clock(Mono::ZERO), Clock::Unsynced);
        assert_eq!(w.doubt_ends(Mono::ZERO), None);
        // The daemon's first reading comes 2 s after the origin.
        assert_eq!(w.observe(at(2 * SEC, 0)), None);
        assert_eq!(
            w.doubt_ends(Mono::from_ms(2 * SEC)),
            Some(Mono::from_ms(62 * SEC))
        );
        assert_eq!(w.observe(at(62 * SEC - 1, 0)), None);
        assert_eq!(w.clock(Mono::from_ms(62 * SEC - 1)), Clock::Unsynced);
        assert_eq!(w.observe(at(62 * SEC, 0)), None);
        assert_eq!(w.clock(Mono::from_ms(62 * SEC)), Clock::Synced);
    }

    #[test]
    fn ntp_stepping_a_watch_started_in_doubt_restarts_its_settle_period() {
        let mut w = ClockWatch::new(Duration::from_secs(5), Duration::from_secs(60), false);
        w.observe(at(0, -90 * DAY));
        let step = w.observe(at(30 * SEC, 0)).expect("NTP's step");
        assert_eq!(step.by_ms, 90 * DAY);
        assert_eq!(w.clock(Mono::from_ms(60 * SEC)), Clock::Unsynced);
        assert_eq!(w.clock(Mono::from_ms(90 * SEC)), Clock::Synced);
    }

    #[test]
    fn a_reading_passed_in_late_is_ignored() {
        let mut w = watch();
        w.observe(at(10 * SEC, 0));
        // Read at 5 s, before a step, but passed in after the 10 s reading.
        assert_eq!(w.observe(at(5 * SEC, -HOUR)), None);
        // The next reading is compared with the 10 s one, not the late one.
        assert_eq!(w.observe(at(11 * SEC, 0)), None);
        assert_eq!(w.clock(Mono::from_ms(11 * SEC)), Clock::Synced);
    }

    #[test]
    fn now_displays_both_clocks() {
        assert_eq!(
            at(1_234, 0).to_string(),
            "2026-11-22T08:00:01.234+07:00 (mono 1234 ms)"
        );
    }

    #[test]
    fn a_step_reads_as_one_sentence() {
        let mut w = watch();
        w.observe(at(0, 0));
        let back = w.observe(at(SEC, -HOUR)).unwrap();
        assert_eq!(
            back.message(),
            "The wall clock stepped back 1 h 00 min 00 s against the monotonic clock; \
             events are stamped \"clock\":\"unsynced\" until it has run steady for 10 min."
        );
        let mut w = ClockWatch::new(Duration::from_secs(5), Duration::from_secs(90), true);
        w.observe(at(0, 0));
        let forward = w.observe(at(SEC, 30 * DAY + 250)).unwrap();
        assert_eq!(
            forward.message(),
            "The wall clock stepped forward 30 d 00 h 00 min 00.250 s against the monotonic \
             clock; events are stamped \"clock\":\"unsynced\" until it has run steady for 1 min 30 s."
        );
    }

    #[test]
    fn spans_read_naturally() {
        assert_eq!(exact_span(6_000), "6 s");
        assert_eq!(exact_span(250), "0.250 s");
        assert_eq!(exact_span(5 * MIN + 7 * SEC), "5 min 07 s");
        assert_eq!(
            exact_span(2 * DAY as u64 + 3 * HOUR as u64 + 4 * MIN + 5_006),
            "2 d 03 h 04 min 05.006 s"
        );
        assert_eq!(
            round_span(Duration::from_secs(3_600 + 30 * 60)),
            "1 h 30 min"
        );
        assert_eq!(round_span(Duration::from_secs(45)), "45 s");
        assert_eq!(round_span(Duration::from_millis(500)), "500 ms");
    }
}
