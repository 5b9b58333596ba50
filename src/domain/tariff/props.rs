//! Property tests of [`charge`]: invariants over random zones, stays and tariffs.

use chrono::DateTime;
use chrono_tz::Tz;
use chrono_tz::{America, Asia, Europe, Pacific};
use proptest::prelude::*;

use super::tests::tariff;
use super::*;

const ZONES: [Tz; 8] = [
    Europe::Berlin,
    Asia::Ho_Chi_Minh,
    America::Havana,
    America::Santiago,
    Asia::Beirut,
    Pacific::Apia,
    chrono_tz::Australia::Lord_Howe,
    chrono_tz::UTC,
];

fn arb_tariff() -> impl Strategy<Value = Tariff> {
    (0..1_000i64, 0..120u32, 0..2_000i64, 0..500i64).prop_map(|(day, grace, cap, hour)| Tariff {
        currency: "EUR".into(),
        day_rate_minor: day,
        grace_minutes: grace,
        daily_cap_minor: cap,
        overstay_hour_minor: hour,
    })
}

fn at(secs: i64) -> Timestamp {
    DateTime::from_timestamp(secs, 0).unwrap().fixed_offset()
}

/// A stay: zone, check-in (2000..2040), length up to 40 days, an optional
/// reservation end from two days before check-in to 40 days after.
fn arb_stay() -> impl Strategy<Value = (Tz, i64, i64, Option<i64>)> {
    (
        proptest::sample::select(ZONES.to_vec()),
        946_684_800..2_208_988_800i64,
        0..40 * 86_400i64,
        proptest::option::of(-2 * 86_400..40 * 86_400i64),
    )
}

proptest! {
    #[test]
    fn charges_keep_their_invariants(t in arb_tariff(), (tz, start, len, end) in arb_stay(), extra in 0..3 * 86_400i64) {
        let end = end.map(|e| at(start + e));
        let c = charge(&t, tz, PlanKind::Daily, at(start), at(start + len), end);
        prop_assert!(c.amount_minor >= 0);
        prop_assert!(c.amount_minor <= i64::from(c.days) * t.daily_cap_minor);
        prop_assert!(c.overstay_s >= 0 && c.overstay_s <= len);
        if len > i64::from(t.grace_minutes) * 60 {
            prop_assert!(c.days >= 1);
        }
        // Never more days than local dates from check-in to check-out.
        let span = (local_date(tz, at(start + len).to_utc()) - local_date(tz, at(start).to_utc())).num_days();
        prop_assert!(i64::from(c.days) <= span + 1);

        let later = charge(&t, tz, PlanKind::Daily, at(start), at(start + len + extra), end);
        prop_assert!(later.amount_minor >= c.amount_minor);
        prop_assert!(later.days >= c.days);
        prop_assert!(later.overstay_s >= c.overstay_s);

        let monthly = charge(&t, tz, PlanKind::Monthly, at(start), at(start + len), end);
        prop_assert_eq!((monthly.amount_minor, monthly.overstay_s), (0, c.overstay_s));
        prop_assert_eq!(c.duration_s, len);
    }

    #[test]
    fn a_check_out_stepped_back_before_check_in_bills_a_zero_length_stay(
        t in arb_tariff(), (tz, start, back, end) in arb_stay(), plan in proptest::sample::select(vec![PlanKind::Daily, PlanKind::Monthly]),
    ) {
        // The wall clock was stepped back `back + 1` seconds (up to 40 days)
        // between check-in and check-out.
        let end = end.map(|e| at(start + e));
        let stepped = charge(&t, tz, plan, at(start), at(start - back - 1), end);
        prop_assert_eq!(&stepped, &charge(&t, tz, plan, at(start), at(start), end));
        prop_assert_eq!((stepped.duration_s, stepped.overstay_s), (0, 0));
        prop_assert!(stepped.amount_minor >= 0);
    }

    #[test]
    fn days_are_the_local_dates_touched(tz in proptest::sample::select(ZONES.to_vec()),
                                        start in 946_684_800..2_208_988_800i64,
                                        len in 1..10 * 86_400i64) {
        // No grace, no overstay: the day count is the number of distinct
        // local dates of the seconds in [check-in, check-out), sampled hourly
        // plus the last second (no zone has a date shorter than an hour).
        let t = Tariff { grace_minutes: 0, ..tariff() };
        let c = charge(&t, tz, PlanKind::Daily, at(start), at(start + len), None);
        let mut dates: Vec<_> = (start..start + len)
            .step_by(3600)
            .chain([start + len - 1])
            .map(|s| local_date(tz, at(s).to_utc()))
            .collect();
        dates.dedup();
        prop_assert_eq!(c.days as usize, dates.len());
        prop_assert_eq!(c.amount_minor, 50 * i64::from(c.days));
    }
}
