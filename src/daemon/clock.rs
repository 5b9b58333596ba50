//! Where the daemon's "now" comes from.
//!
//! Logic never reads the time itself: the daemon asks a [`Clock`] and passes
//! the [`Now`] in. A clock reads two clocks at once: a monotonic one
//! ([`Mono`]) for timers and timeouts, which NTP cannot step, and the wall
//! clock in the lot's zone, which only stamps events and feeds tariffs and
//! reservations. Wake-ups are on the monotonic clock, so a wall clock
//! stepped by hours at boot neither fires a 30-second timeout early nor
//! holds it for hours.
//!
//! In production that is [`Clock::system`]. The demo and the black-box tests
//! use [`Clock::manual`], whose [`ManualClock`] moves only when told, so a
//! 30-second pass timeout is tested by advancing 30 s, not by waiting, and
//! an NTP step by [`ManualClock::step_wall`].
//!
//! A clock also says whether the kernel calls its wall clock synchronised
//! ([`Clock::kernel_sync`]): the system clock asks the kernel (`kernel.rs`);
//! a manual clock is not the kernel's, so it says what it was told
//! ([`ManualClock::set_kernel_synced`], synchronised unless told otherwise).

pub mod kernel;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::domain::model::Timestamp;
use crate::domain::time::{KernelSync, Mono, Now};

/// A source of [`Now`] and of wake-ups on the monotonic clock. Cheap to clone;
/// clones share one origin (or one manual clock).
#[derive(Debug, Clone)]
pub struct Clock(Source);

#[derive(Debug, Clone)]
enum Source {
    /// The system's clocks: mono from tokio's [`Instant`] since `origin`,
    /// wall from the system's wall clock.
    System {
        tz: Tz,
        origin: Instant,
    },
    Manual(Arc<ManualClock>),
}

impl Clock {
    /// The system's clocks, stamped in the lot's zone `tz`. Mono counts
    /// from this call, on tokio's clock, so tests on a paused tokio runtime
    /// drive it with `tokio::time::advance` (construct it inside that runtime).
    pub fn system(tz: Tz) -> Clock {
        Clock(Source::System {
            tz,
            origin: Instant::now(),
        })
    }

    /// A manual clock whose mono starts at zero and whose wall clock starts
    /// at `start` (to the millisecond), stamped in the lot's zone `tz`; and
    /// the handle that moves it.
    pub fn manual(start: Timestamp, tz: Tz) -> (Clock, Arc<ManualClock>) {
        let manual = Arc::new(ManualClock::new(start, tz));
        (Clock(Source::Manual(manual.clone())), manual)
    }

    /// The manual clock behind this one, if it is manual (for the control
    /// socket's `advance`).
    pub fn as_manual(&self) -> Option<&Arc<ManualClock>> {
        match &self.0 {
            Source::System { .. } => None,
            Source::Manual(manual) => Some(manual),
        }
    }

    /// Both clocks, now. The wall clock is in whole milliseconds (what the
    /// contract's timestamps and the store keep), with the lot's UTC offset
    /// at that instant.
    pub fn now(&self) -> Now {
        match &self.0 {
            Source::System { tz, origin } => {
                let mono = Instant::now().saturating_duration_since(*origin);
                let wall = Utc::now();
                Now {
                    mono: Mono::from_ms(u64::try_from(mono.as_millis()).unwrap_or(u64::MAX)),
                    wall: in_zone(whole_ms(wall), *tz),
                }
            }
            Source::Manual(manual) => manual.now(),
        }
    }

    /// Whether the kernel says the wall clock is synchronised: asked of the
    /// kernel on the system clock (a system call, cheap), or what a manual
    /// clock was told.
    pub fn kernel_sync(&self) -> KernelSync {
        match &self.0 {
            Source::System { .. } => kernel::read(),
            Source::Manual(manual) => manual.kernel_sync(),
        }
    }

    /// Resolves once mono reads `at` or later, whatever the wall clock does.
    pub async fn sleep_until(&self, at: Mono) {
        match &self.0 {
            Source::System { origin, .. } => {
                match origin.checked_add(Duration::from_millis(at.as_ms())) {
                    Some(deadline) => tokio::time::sleep_until(deadline).await,
                    // Past the end of Instant: never, for all practical purposes.
                    None => std::future::pending().await,
                }
            }
            Source::Manual(manual) => manual.reached(at).await,
        }
    }
}

/// A clock for the demo and black-box tests: mono starts at zero and the
/// wall clock at a given instant, and both move only when told. Sleepers
/// wake when mono reaches them; the wall clock can also be stepped alone,
/// as NTP does.
#[derive(Debug)]
pub struct ManualClock {
    tz: Tz,
    /// The one reading; receivers are sleepers waiting on its mono.
    reading: watch::Sender<Reading>,
    /// What it says the kernel says of its wall clock.
    kernel_synced: AtomicBool,
}

/// A manual clock's state: the wall clock is kept in UTC and put in the
/// lot's zone on every read, so its offset follows the instant across a
/// daylight-saving change.
#[derive(Debug, Clone, Copy)]
struct Reading {
    mono: Mono,
    wall: DateTime<Utc>,
}

impl ManualClock {
    fn new(start: Timestamp, tz: Tz) -> ManualClock {
        let reading = Reading {
            mono: Mono::ZERO,
            wall: whole_ms(start.to_utc()),
        };
        ManualClock {
            tz,
            reading: watch::channel(reading).0,
            kernel_synced: AtomicBool::new(true),
        }
    }

    /// Both clocks, now; the wall clock with the lot's UTC offset at that instant.
    pub fn now(&self) -> Now {
        self.read(*self.reading.borrow())
    }

    /// Moves both clocks forward by `by` in whole milliseconds, waking the
    /// sleepers it passes. A negative `by` is ignored (mono never runs back),
    /// and so is one that would carry the wall clock past chrono's range.
    pub fn advance(&self, by: TimeDelta) -> Now {
        let ms = by.num_milliseconds().max(0);
        self.update(|r| {
            let Some(wall) = r.wall.checked_add_signed(TimeDelta::milliseconds(ms)) else {
                return false;
            };
            r.wall = wall;
            r.mono = r.mono + Duration::from_millis(ms.unsigned_abs());
            ms > 0
        })
    }

    /// Steps the wall clock alone by `by` (whole milliseconds), forwards or
    /// back, as NTP does; mono does not move, so no sleeper wakes or waits
    /// longer. A step past chrono's range is ignored.
    pub fn step_wall(&self, by: TimeDelta) -> Now {
        let by = TimeDelta::milliseconds(by.num_milliseconds());
        self.update(|r| {
            if let Some(wall) = r.wall.checked_add_signed(by) {
                r.wall = wall;
            }
            // Not a change sleepers wait for: they watch mono only.
            false
        })
    }

    /// Sets what this clock says the kernel says of its wall clock (tests
    /// of a Pi whose NTP has not synchronised yet, or lost sync).
    pub fn set_kernel_synced(&self, synced: bool) {
        self.kernel_synced.store(synced, Ordering::SeqCst);
    }

    /// What [`set_kernel_synced`](Self::set_kernel_synced) said last.
    pub fn kernel_sync(&self) -> KernelSync {
        match self.kernel_synced.load(Ordering::SeqCst) {
            true => KernelSync::Synced,
            false => KernelSync::Unsynced("the manual clock was told so".into()),
        }
    }

    /// Applies `change` to the reading, waking the sleepers if it returns
    /// true, and returns the reading it left (not a later one another
    /// thread made meanwhile).
    fn update(&self, change: impl FnOnce(&mut Reading) -> bool) -> Now {
        let mut after = None;
        self.reading.send_if_modified(|r| {
            let wake = change(r);
            after = Some(*r);
            wake
        });
        self.read(after.expect("send_if_modified runs its closure"))
    }

    /// `reading` as a [`Now`], the wall clock with the lot's offset at that instant.
    fn read(&self, reading: Reading) -> Now {
        Now {
            mono: reading.mono,
            wall: in_zone(reading.wall, self.tz),
        }
    }

    async fn reached(&self, at: Mono) {
        let mut rx = self.reading.subscribe();
        // The sender lives as long as self, so wait_for only ends by the predicate.
        let _ = rx.wait_for(|r| r.mono >= at).await;
    }
}

/// `t` truncated to whole milliseconds.
fn whole_ms(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}

/// `t` with the UTC offset `tz` has at that instant.
fn in_zone(t: DateTime<Utc>, tz: Tz) -> Timestamp {
    t.with_timezone(&tz).fixed_offset()
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::pin;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::task::{Context, Poll, Wake, Waker};

    use chrono::Offset;
    use chrono_tz::{Asia, Europe};

    use super::*;
    use crate::domain::contract::Clock as Stamp;
    use crate::domain::time::ClockWatch;

    fn ts(s: &str) -> Timestamp {
        DateTime::parse_from_rfc3339(s).unwrap()
    }

    fn t0() -> Timestamp {
        ts("2026-11-23T08:00:00+07:00")
    }

    fn hcm() -> (Clock, Arc<ManualClock>) {
        Clock::manual(t0(), Asia::Ho_Chi_Minh)
    }

    /// Records whether a future's waker was called.
    #[derive(Default)]
    struct Woken(AtomicBool);

    impl Wake for Woken {
        fn wake(self: Arc<Self>) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    impl Woken {
        /// Whether the waker was called since the last ask.
        fn take(&self) -> bool {
            self.0.swap(false, Ordering::SeqCst)
        }
    }

    /// Polls `fut` once with a waker that records into `woken`.
    fn poll_once<F: Future>(fut: std::pin::Pin<&mut F>, woken: &Arc<Woken>) -> Poll<F::Output> {
        let waker = Waker::from(woken.clone());
        fut.poll(&mut Context::from_waker(&waker))
    }

    #[test]
    fn manual_sleepers_wake_only_when_mono_reaches_them() {
        let (clock, manual) = hcm();
        let woken = Arc::new(Woken::default());
        let mut sleeper = pin!(clock.sleep_until(Mono::from_ms(30_000)));
        assert!(poll_once(sleeper.as_mut(), &woken).is_pending());
        manual.advance(TimeDelta::milliseconds(29_999));
        assert!(poll_once(sleeper.as_mut(), &woken).is_pending());
        woken.take();
        let now = manual.advance(TimeDelta::milliseconds(1));
        assert!(woken.take(), "reaching the deadline wakes the sleeper");
        assert!(poll_once(sleeper.as_mut(), &woken).is_ready());
        assert_eq!(now.mono, Mono::from_ms(30_000));
        assert_eq!(now.wall, t0() + TimeDelta::seconds(30));
    }

    #[test]
    fn stepping_the_wall_clock_neither_wakes_nor_delays_a_sleeper() {
        let (clock, manual) = hcm();
        let woken = Arc::new(Woken::default());
        let mut sleeper = pin!(clock.sleep_until(Mono::from_ms(30_000)));
        assert!(poll_once(sleeper.as_mut(), &woken).is_pending());

        // Forward a month: the wall clock is far past the deadline's wall time.
        let now = manual.step_wall(TimeDelta::days(30));
        assert_eq!(
            (now.mono, now.wall),
            (Mono::ZERO, t0() + TimeDelta::days(30))
        );
        assert!(!woken.take(), "a wall step must not wake a sleeper");
        assert!(poll_once(sleeper.as_mut(), &woken).is_pending());

        // Back two months: 30 s of mono must still be enough.
        let now = manual.step_wall(TimeDelta::days(-60));
        assert_eq!(
            (now.mono, now.wall),
            (Mono::ZERO, t0() - TimeDelta::days(30))
        );
        assert!(!woken.take());
        assert!(poll_once(sleeper.as_mut(), &woken).is_pending());

        manual.advance(TimeDelta::seconds(30));
        assert!(woken.take());
        assert!(poll_once(sleeper.as_mut(), &woken).is_ready());
    }

    #[test]
    fn a_sleeper_already_due_resolves_at_once() {
        let (clock, manual) = hcm();
        manual.advance(TimeDelta::seconds(5));
        let woken = Arc::new(Woken::default());
        let sleeper = pin!(clock.sleep_until(Mono::from_ms(5_000)));
        assert!(poll_once(sleeper, &woken).is_ready());
    }

    #[test]
    fn the_manual_clock_never_runs_mono_back_and_keeps_whole_milliseconds() {
        let (clock, manual) = hcm();
        let start = clock.now();
        assert_eq!((start.mono, start.wall), (Mono::ZERO, t0()));
        assert_eq!(manual.advance(TimeDelta::seconds(-5)), start);
        // Sub-millisecond parts are dropped, from both clocks alike.
        let now = manual.advance(TimeDelta::microseconds(1_500));
        assert_eq!(now.mono, Mono::from_ms(1));
        assert_eq!(now.wall, t0() + TimeDelta::milliseconds(1));
        let (clock, _) = Clock::manual(ts("2026-11-23T08:00:00.123456+07:00"), Asia::Ho_Chi_Minh);
        assert_eq!(clock.now().wall, ts("2026-11-23T08:00:00.123+07:00"));
    }

    #[test]
    fn the_manual_wall_clock_carries_the_offset_of_its_instant() {
        // Berlin leaves summer time at 03:00 CEST on 2026-10-25.
        let (clock, manual) = Clock::manual(ts("2026-10-24T12:00:00+02:00"), Europe::Berlin);
        assert_eq!(clock.now().wall.offset().local_minus_utc(), 2 * 3600);
        let later = manual.advance(TimeDelta::days(2));
        assert_eq!(later.wall, ts("2026-10-26T11:00:00+01:00"));
        assert_eq!(later.wall.to_rfc3339(), "2026-10-26T11:00:00+01:00");
        // An hour before and after the change, 02:30 local both times.
        let (_, manual) = Clock::manual(ts("2026-10-25T00:30:00Z"), Europe::Berlin);
        assert_eq!(manual.now().wall.to_rfc3339(), "2026-10-25T02:30:00+02:00");
        assert_eq!(
            manual.advance(TimeDelta::hours(1)).wall.to_rfc3339(),
            "2026-10-25T02:30:00+01:00"
        );
        // Stepping the wall clock back across the change restores summer time.
        assert_eq!(
            manual.step_wall(TimeDelta::days(-1)).wall.to_rfc3339(),
            "2026-10-24T03:30:00+02:00"
        );
        // A start given in another offset is put in the lot's.
        let (clock, _) = Clock::manual(ts("2026-03-01T09:00:00Z"), Europe::Berlin);
        assert_eq!(clock.now().wall.to_rfc3339(), "2026-03-01T10:00:00+01:00");
    }

    #[test]
    fn a_clock_watch_notices_a_manual_step_of_the_wall_clock() {
        let (clock, manual) = hcm();
        let mut watch = ClockWatch::new(
            ClockWatch::DEFAULT_THRESHOLD,
            ClockWatch::DEFAULT_SETTLE,
            true,
        );
        assert_eq!(watch.observe(clock.now()), None);
        assert_eq!(watch.observe(manual.advance(TimeDelta::minutes(1))), None);
        manual.step_wall(TimeDelta::hours(-1));
        let step = watch.observe(manual.advance(TimeDelta::seconds(1)));
        assert_eq!(step.map(|s| s.by_ms), Some(-3_600_000));
        assert_eq!(watch.clock(clock.now().mono), Stamp::Unsynced);
    }

    #[tokio::test(start_paused = true)]
    async fn the_system_mono_follows_tokio_time_exactly() {
        let clock = Clock::system(Asia::Ho_Chi_Minh);
        assert_eq!(clock.now().mono, Mono::ZERO);
        tokio::time::advance(Duration::from_millis(1_234)).await;
        assert_eq!(clock.now().mono, Mono::from_ms(1_234));
        // Clones share the origin.
        let copy = clock.clone();
        tokio::time::advance(Duration::from_secs(86_400)).await;
        assert_eq!(copy.now().mono, Mono::from_ms(86_401_234));
    }

    #[tokio::test(start_paused = true)]
    async fn the_system_clock_sleeps_on_mono() {
        let clock = Clock::system(Europe::Berlin);
        let woken = Arc::new(Woken::default());
        let mut sleeper = pin!(clock.sleep_until(Mono::from_ms(30_000)));
        assert!(poll_once(sleeper.as_mut(), &woken).is_pending());
        tokio::time::advance(Duration::from_millis(29_999)).await;
        assert!(poll_once(sleeper.as_mut(), &woken).is_pending());
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(poll_once(sleeper.as_mut(), &woken).is_ready());
        assert_eq!(clock.now().mono, Mono::from_ms(30_000));
        // A deadline past the end of Instant never comes (and does not panic).
        let mut never = pin!(clock.sleep_until(Mono::from_ms(u64::MAX)));
        assert!(poll_once(never.as_mut(), &woken).is_pending());
    }

    #[test]
    fn the_system_wall_clock_has_the_lot_offset_and_whole_milliseconds() {
        let now = Clock::system(Asia::Ho_Chi_Minh).now();
        assert_eq!(now.wall.offset().local_minus_utc(), 7 * 3600);
        assert_eq!(now.wall.timestamp_subsec_nanos() % 1_000_000, 0);
        // Berlin's offset is that of the instant read, summer or winter.
        let berlin = Clock::system(Europe::Berlin).now().wall;
        let expected = berlin.with_timezone(&Europe::Berlin).offset().fix();
        assert_eq!(*berlin.offset(), expected);
    }
}
