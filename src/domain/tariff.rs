//! What a stay costs at check-out.
//!
//! [`charge`] is pure: it takes the lot's [`Tariff`] and time zone, the plan,
//! and the stay's instants, and returns a [`Charge`]. Money is an integer in
//! minor units plus the tariff's ISO 4217 currency, as the contract has it.
//!
//! # The model
//!
//! * **Monthly plans** pay nothing at the gate (amount 0, `days` 0); the
//!   overstay is still measured and reported.
//! * **Days are local calendar days** of the lot's time zone. Every calendar
//!   day the stay touches, from the check-in's local date to the check-out's,
//!   costs [`Tariff::day_rate_minor`]. A 23- or 25-hour day around a
//!   daylight-saving change is still one day. A check-out exactly at the
//!   start of a local day does not start that day (the stay is half-open,
//!   `[check_in, check_out)`), and a date the zone skips entirely (Samoa's
//!   2011-12-30) is not touched, so not charged.
//! * **Overstay** is real elapsed time past the reservation's end, counted
//!   from `max(end, check_in)`: a car that arrives after its reservation
//!   ended overstays from the moment it enters, never before. It costs
//!   [`Tariff::overstay_hour_minor`] per *started* real hour (one second past
//!   the end is one hour), and each started hour belongs to the local day in
//!   which it starts, even if it runs past midnight. `overstay_s` is the
//!   overstay in whole seconds, rounded up so that it is positive exactly
//!   when an hour is charged.
//! * **Cap:** each day's total (day rate plus that day's overstay hours) is
//!   capped at [`Tariff::daily_cap_minor`], even if the cap is below the day
//!   rate. A day never costs less than 0, whatever the tariff says.
//! * **Grace:** a stay no longer than [`Tariff::grace_minutes`] of real time
//!   (the boundary included) waives the day rate. It does *not* waive
//!   overstay: a short stay that still runs past a reservation's end pays
//!   its overstay hours (capped per day), because grace is there for a
//!   driver who turns around, not for one who was due out already. With no
//!   overstay a stay within grace is free and bills 0 days.
//! * **Clock steps:** a check-out before its check-in (the wall clock was
//!   stepped back between them, e.g. by NTP after a boot with a wrong clock)
//!   is a zero-length stay: duration 0, no overstay, free.
//!
//! Day starts are found as the earliest instant of the next local midnight.
//! Where midnight does not exist (zones that switch to summer time at 00:00,
//! like America/Havana or Asia/Beirut) or the zone does something odder, the
//! first instant of the next local date is found by bisection over whole
//! seconds, which relies only on time-zone offsets changing on whole seconds.

use chrono::{DateTime, NaiveDate, NaiveTime, TimeDelta, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::domain::model::{PlanKind, Timestamp};

/// The daily-plan tariff of a lot. Money in minor units of `currency`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Tariff {
    /// ISO 4217 code, e.g. `VND` or `EUR`.
    pub currency: String,
    /// Charged once per started calendar day (lot time zone) of the stay.
    pub day_rate_minor: i64,
    /// A stay no longer than this is free of the day rate (overstay is still charged).
    pub grace_minutes: u32,
    /// The most one calendar day can cost, overstay included.
    pub daily_cap_minor: i64,
    /// Per started hour past a reservation's end.
    pub overstay_hour_minor: i64,
}

impl Default for Tariff {
    fn default() -> Self {
        Tariff {
            currency: "VND".into(),
            day_rate_minor: 50_000,
            grace_minutes: 15,
            daily_cap_minor: 80_000,
            overstay_hour_minor: 10_000,
        }
    }
}

/// What one stay costs, as its `check_out` event reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge {
    /// The fee in minor units of `currency`; never negative, 0 on a monthly plan.
    pub amount_minor: i64,
    /// The tariff's ISO 4217 currency, also on a zero charge.
    pub currency: String,
    /// Real seconds the stay ran past the reservation's end (rounded up); 0 without one.
    pub overstay_s: i64,
    /// Local calendar days billed (each capped at the daily cap): the days the
    /// stay touched, or 0 when nothing is billed (monthly plan, or grace without overstay).
    pub days: u32,
    /// The stay's length in whole seconds (rounded down), as the check-out
    /// event's `duration_s` reports it; never negative.
    pub duration_s: i64,
}

const SEC_NS: i128 = 1_000_000_000;
const HOUR_NS: i128 = 3_600 * SEC_NS;

/// The fee for one stay in a lot in time zone `tz`, under the model in the
/// module doc. Pure. `plan` Monthly => amount 0 (`overstay_s` still reported).
/// `reservation_end` is the end of the stay's reservation, if it has one.
pub fn charge(
    tariff: &Tariff,
    tz: Tz,
    plan: PlanKind,
    check_in: Timestamp,
    check_out: Timestamp,
    reservation_end: Option<Timestamp>,
) -> Charge {
    let check_in = check_in.with_timezone(&Utc);
    // The one clamp of the stay's length, which the duration, the fee and
    // the overstay all derive from: the wall clock can be stepped back (NTP
    // correcting a Pi that booted with a clock in the future), so a check-out
    // can read earlier than its check-in. Bill a zero-length stay rather than
    // a negative one or a guess at how long the car really stayed.
    let check_out = check_out.with_timezone(&Utc).max(check_in);
    let stay_ns = nanos(check_out) - nanos(check_in);
    let overstay_from = reservation_end.map(|end| end.with_timezone(&Utc).max(check_in));
    let overstay_ns = overstay_from
        .map_or(0, |from| nanos(check_out) - nanos(from))
        .max(0);
    let in_grace = stay_ns <= i128::from(tariff.grace_minutes) * 60 * SEC_NS;

    let mut charge = Charge {
        amount_minor: 0,
        currency: tariff.currency.clone(),
        // Both fit: chrono's whole range is far below i64::MAX seconds.
        overstay_s: ceil_div(overstay_ns, SEC_NS) as i64,
        days: 0,
        duration_s: (stay_ns / SEC_NS) as i64,
    };
    if plan == PlanKind::Monthly || (in_grace && overstay_ns == 0) {
        return charge;
    }
    let day_rate = if in_grace { 0 } else { tariff.day_rate_minor };

    // Walk the local days the stay touches; each is [from, until).
    let mut from = check_in;
    loop {
        let until = match next_day_start(tz, from) {
            Some(next) if next < check_out => next,
            _ => check_out,
        };
        let hours = overstay_from.map_or(0, |start| {
            hour_starts_within(start, overstay_ns, from, until)
        });
        let day_total = day_rate
            .saturating_add(hours.saturating_mul(tariff.overstay_hour_minor))
            .min(tariff.daily_cap_minor)
            .max(0);
        charge.amount_minor = charge.amount_minor.saturating_add(day_total);
        charge.days = charge.days.saturating_add(1);
        if until == check_out {
            return charge;
        }
        from = until;
    }
}

/// How many of the started overstay hours `start + k h` (for `k` below
/// `ceil(overstay_ns / 1 h)`) begin within `[from, until)`.
fn hour_starts_within(
    start: DateTime<Utc>,
    overstay_ns: i128,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> i64 {
    let total = ceil_div(overstay_ns, HOUR_NS);
    let first = ceil_div(nanos(from) - nanos(start), HOUR_NS).clamp(0, total);
    let past_last = ceil_div(nanos(until) - nanos(start), HOUR_NS).clamp(0, total);
    // A day holds at most a few dozen hours; saturate rather than wrap on absurd input.
    i64::try_from(past_last - first).unwrap_or(i64::MAX).max(0)
}

/// The first instant after `t` whose local date in `tz` differs from `t`'s,
/// or `None` if there is none within two days or chrono's range ends first
/// (the caller then treats the rest of the stay as one day).
fn next_day_start(tz: Tz, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let day = local_date(tz, t);
    let midnight = day.succ_opt()?.and_time(NaiveTime::MIN);
    // The usual case: next midnight exists (the earliest one, if it happens twice).
    if let Some(start) = midnight.and_local_timezone(tz).earliest() {
        let start = start.with_timezone(&Utc);
        let just_before = start.checked_sub_signed(TimeDelta::seconds(1))?;
        if start > t && local_date(tz, just_before) == day {
            return Some(start);
        }
    }
    // Midnight was skipped (or stranger): bisect over whole seconds, keeping
    // `lo` on `day` and `hi` past it. Offsets change on whole seconds, so the
    // first second of the new date is the day's true start.
    let moved = |secs: i64| DateTime::from_timestamp(secs, 0).map(|u| local_date(tz, u) != day);
    let mut lo = t.timestamp();
    let mut hi = lo.checked_add(48 * 3_600)?;
    if !moved(hi)? {
        return None;
    }
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if moved(mid)? {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    DateTime::from_timestamp(hi, 0)
}

fn local_date(tz: Tz, t: DateTime<Utc>) -> NaiveDate {
    t.with_timezone(&tz).date_naive()
}

/// Nanoseconds since the Unix epoch; i128 so differences never overflow.
fn nanos(t: DateTime<Utc>) -> i128 {
    i128::from(t.timestamp()) * SEC_NS + i128::from(t.timestamp_subsec_nanos())
}

/// `ceil(a / b)` for any sign of `a` and positive `b`.
fn ceil_div(a: i128, b: i128) -> i128 {
    -((-a).div_euclid(b))
}

#[cfg(test)]
mod props;
#[cfg(test)]
mod tests;
