//! Named cases of [`charge`]; the properties are in `props`.

use chrono::DateTime;
use chrono_tz::Tz;
use chrono_tz::{America, Asia, Europe, Pacific};

use super::*;

/// Small numbers so the expected sums read at a glance: 50 a day, 10 an
/// overstay hour, at most 80 a day, 15 minutes' grace.
pub(super) fn tariff() -> Tariff {
    Tariff {
        currency: "EUR".into(),
        day_rate_minor: 50,
        grace_minutes: 15,
        daily_cap_minor: 80,
        overstay_hour_minor: 10,
    }
}

fn ts(s: &str) -> Timestamp {
    DateTime::parse_from_rfc3339(s).unwrap()
}

/// A daily-plan stay under [`tariff`].
fn daily(tz: Tz, check_in: &str, check_out: &str, end: Option<&str>) -> Charge {
    charge(
        &tariff(),
        tz,
        PlanKind::Daily,
        ts(check_in),
        ts(check_out),
        end.map(ts),
    )
}

/// `(amount_minor, days, overstay_s)`, the part most cases assert on.
fn summary(c: &Charge) -> (i64, u32, i64) {
    (c.amount_minor, c.days, c.overstay_s)
}

// --- grace ---

#[test]
fn a_stay_within_grace_is_free() {
    let c = daily(
        Europe::Berlin,
        "2026-05-04T10:00:00+02:00",
        "2026-05-04T10:10:00+02:00",
        None,
    );
    assert_eq!(summary(&c), (0, 0, 0));
    assert_eq!(c.currency, "EUR");
}

#[test]
fn a_stay_of_exactly_the_grace_is_free() {
    let c = daily(
        Europe::Berlin,
        "2026-05-04T10:00:00+02:00",
        "2026-05-04T10:15:00+02:00",
        None,
    );
    assert_eq!(summary(&c), (0, 0, 0));
}

#[test]
fn a_stay_one_millisecond_past_grace_pays_a_day() {
    let c = daily(
        Europe::Berlin,
        "2026-05-04T10:00:00+02:00",
        "2026-05-04T10:15:00.001+02:00",
        None,
    );
    assert_eq!(summary(&c), (50, 1, 0));
}

#[test]
fn grace_is_real_time_across_midnight() {
    // Ten minutes across local midnight: within grace, so not two days.
    let c = daily(
        Europe::Berlin,
        "2026-05-04T23:55:00+02:00",
        "2026-05-05T00:05:00+02:00",
        None,
    );
    assert_eq!(summary(&c), (0, 0, 0));
}

#[test]
fn grace_waives_the_day_rate_but_not_overstay() {
    // A ten-minute stay whose reservation ended five minutes in.
    let c = daily(
        Europe::Berlin,
        "2026-05-04T10:00:00+02:00",
        "2026-05-04T10:10:00+02:00",
        Some("2026-05-04T10:05:00+02:00"),
    );
    assert_eq!(summary(&c), (10, 1, 300));
}

// --- days ---

#[test]
fn one_day() {
    let c = daily(
        Europe::Berlin,
        "2026-05-04T09:00:00+02:00",
        "2026-05-04T17:00:00+02:00",
        None,
    );
    assert_eq!(summary(&c), (50, 1, 0));
}

#[test]
fn crossing_local_midnight_is_two_days() {
    let c = daily(
        Europe::Berlin,
        "2026-05-04T22:00:00+02:00",
        "2026-05-05T02:00:00+02:00",
        None,
    );
    assert_eq!(summary(&c), (100, 2, 0));
}

#[test]
fn a_check_out_at_local_midnight_does_not_start_a_day() {
    let c = daily(
        Europe::Berlin,
        "2026-05-04T20:00:00+02:00",
        "2026-05-05T00:00:00+02:00",
        None,
    );
    assert_eq!(summary(&c), (50, 1, 0));
    let c = daily(
        Europe::Berlin,
        "2026-05-04T20:00:00+02:00",
        "2026-05-05T00:00:01+02:00",
        None,
    );
    assert_eq!(summary(&c), (100, 2, 0));
}

#[test]
fn days_follow_the_lot_zone_not_the_timestamps_offset() {
    // 22:00Z to 02:00Z crosses UTC midnight, but in Ho Chi Minh City (UTC+7)
    // it is 05:00 to 09:00 on one day.
    let c = daily(
        Asia::Ho_Chi_Minh,
        "2026-11-21T22:00:00Z",
        "2026-11-22T02:00:00Z",
        None,
    );
    assert_eq!(summary(&c), (50, 1, 0));
    // And 16:30Z to 17:30Z crosses local midnight there, though not UTC's.
    let c = daily(
        Asia::Ho_Chi_Minh,
        "2026-11-21T16:30:00Z",
        "2026-11-21T17:30:00Z",
        None,
    );
    assert_eq!(summary(&c), (100, 2, 0));
}

#[test]
fn a_multi_day_stay_pays_each_day() {
    let c = daily(
        Europe::Berlin,
        "2026-05-04T09:00:00+02:00",
        "2026-05-08T09:00:00+02:00",
        None,
    );
    assert_eq!(summary(&c), (250, 5, 0));
}

#[test]
fn a_multi_day_overstay_is_capped_per_day() {
    // Overstay from noon on the 4th to 10:00 on the 6th: 12, 24 and 10 hours,
    // each day 50 + hours * 10, capped at 80.
    let c = daily(
        Europe::Berlin,
        "2026-05-04T09:00:00+02:00",
        "2026-05-06T10:00:00+02:00",
        Some("2026-05-04T12:00:00+02:00"),
    );
    assert_eq!(summary(&c), (240, 3, 46 * 3600));
}

#[test]
fn a_cap_below_the_day_rate_wins() {
    let t = Tariff {
        daily_cap_minor: 30,
        ..tariff()
    };
    let c = charge(
        &t,
        Europe::Berlin,
        PlanKind::Daily,
        ts("2026-05-04T09:00:00+02:00"),
        ts("2026-05-06T09:00:00+02:00"),
        None,
    );
    assert_eq!(summary(&c), (90, 3, 0));
}

#[test]
fn month_end_is_a_new_day() {
    let c = daily(
        Europe::Berlin,
        "2026-01-31T23:00:00+01:00",
        "2026-02-01T01:00:00+01:00",
        None,
    );
    assert_eq!(summary(&c), (100, 2, 0));
}

#[test]
fn year_end_is_a_new_day() {
    let c = daily(
        Europe::Berlin,
        "2026-12-31T20:00:00+01:00",
        "2027-01-01T08:00:00+01:00",
        None,
    );
    assert_eq!(summary(&c), (100, 2, 0));
}

#[test]
fn a_leap_day_is_a_day() {
    // 27, 28, 29 February and 1 March 2028.
    let c = daily(
        Europe::Berlin,
        "2028-02-27T12:00:00+01:00",
        "2028-03-01T12:00:00+01:00",
        None,
    );
    assert_eq!(summary(&c), (200, 4, 0));
}

// --- daylight saving ---

#[test]
fn berlin_spring_forward_day_is_one_day() {
    // 2026-03-29 has 23 hours: 00:30 CET to 23:30 CEST is 22 real hours.
    let c = daily(
        Europe::Berlin,
        "2026-03-29T00:30:00+01:00",
        "2026-03-29T23:30:00+02:00",
        None,
    );
    assert_eq!(summary(&c), (50, 1, 0));
}

#[test]
fn berlin_spring_forward_overstay_is_real_hours() {
    // 01:30 CET to 03:30 CEST reads as two hours on the clock but is one real hour.
    let c = daily(
        Europe::Berlin,
        "2026-03-29T00:30:00+01:00",
        "2026-03-29T03:30:00+02:00",
        Some("2026-03-29T01:30:00+01:00"),
    );
    assert_eq!(summary(&c), (60, 1, 3600));
}

#[test]
fn berlin_fall_back_day_is_one_day() {
    // 2026-10-25 has 25 hours; a stay over all of it is 24h59m58s of real time.
    let c = daily(
        Europe::Berlin,
        "2026-10-25T00:00:01+02:00",
        "2026-10-25T23:59:59+01:00",
        None,
    );
    assert_eq!(summary(&c), (50, 1, 0));
}

#[test]
fn berlin_fall_back_overstay_is_real_hours() {
    // 01:30 CEST to 02:30 CET reads as one hour on the clock but is two real hours.
    let c = daily(
        Europe::Berlin,
        "2026-10-25T00:30:00+02:00",
        "2026-10-25T02:30:00+01:00",
        Some("2026-10-25T01:30:00+02:00"),
    );
    assert_eq!(summary(&c), (70, 1, 7200));
}

#[test]
fn berlin_fall_back_night_is_two_days() {
    let c = daily(
        Europe::Berlin,
        "2026-10-24T20:00:00+02:00",
        "2026-10-25T23:30:00+01:00",
        None,
    );
    assert_eq!(summary(&c), (100, 2, 0));
}

#[test]
fn a_zone_without_dst_counts_plainly() {
    // Same calendar dates as Berlin's changes; Ho Chi Minh City stays at +07.
    let c = daily(
        Asia::Ho_Chi_Minh,
        "2026-03-29T00:30:00+07:00",
        "2026-03-29T03:30:00+07:00",
        Some("2026-03-29T01:30:00+07:00"),
    );
    assert_eq!(summary(&c), (70, 1, 7200));
    let c = daily(
        Asia::Ho_Chi_Minh,
        "2026-10-24T20:00:00+07:00",
        "2026-10-25T23:30:00+07:00",
        None,
    );
    assert_eq!(summary(&c), (100, 2, 0));
}

#[test]
fn havana_day_starts_at_one_when_midnight_is_skipped() {
    // Cuba springs forward at 00:00 on 2026-03-08 (-05 to -04), so that day
    // starts at 01:00 CDT = 05:00Z. Midnight does not exist: the bisection path.
    let check_in = "2026-03-07T22:00:00-05:00";
    let c = daily(America::Havana, check_in, "2026-03-08T05:00:00Z", None);
    assert_eq!(summary(&c), (50, 1, 0));
    let c = daily(America::Havana, check_in, "2026-03-08T05:00:01Z", None);
    assert_eq!(summary(&c), (100, 2, 0));
}

#[test]
fn overstay_hours_follow_a_skipped_midnight() {
    // Overstay from 23:30 on the 7th: the hour starting 23:30 CST belongs to
    // the 7th, the next one starts 01:30 CDT on the 8th.
    let c = daily(
        America::Havana,
        "2026-03-07T20:00:00-05:00",
        "2026-03-08T01:45:00-04:00",
        Some("2026-03-07T23:30:00-05:00"),
    );
    assert_eq!(summary(&c), (60 + 60, 2, 3600 + 15 * 60));
}

#[test]
fn santiago_fall_back_at_midnight_is_one_day() {
    // Chile fell back at 24:00 on 2022-04-02 (-03 to -04): 23:30 happened
    // twice, and an hour from the first to the second is still one day.
    let c = daily(
        America::Santiago,
        "2022-04-02T23:30:00-03:00",
        "2022-04-02T23:30:00-04:00",
        None,
    );
    assert_eq!(summary(&c), (50, 1, 0));
    let c = daily(
        America::Santiago,
        "2022-04-02T23:30:00-03:00",
        "2022-04-03T00:00:01-04:00",
        None,
    );
    assert_eq!(summary(&c), (100, 2, 0));
}

#[test]
fn a_skipped_date_is_not_charged() {
    // Samoa skipped 2011-12-30 (-10 to +14): noon on the 29th to noon on the
    // 31st is 24 real hours over two local dates.
    let c = daily(
        Pacific::Apia,
        "2011-12-29T12:00:00-10:00",
        "2011-12-31T12:00:00+14:00",
        None,
    );
    assert_eq!(summary(&c), (100, 2, 0));
}

// --- overstay ---

#[test]
fn leaving_at_the_reservation_end_is_no_overstay() {
    let c = daily(
        Europe::Berlin,
        "2026-05-04T09:00:00+02:00",
        "2026-05-04T12:00:00+02:00",
        Some("2026-05-04T12:00:00+02:00"),
    );
    assert_eq!(summary(&c), (50, 1, 0));
}

#[test]
fn one_second_of_overstay_is_one_hour() {
    let c = daily(
        Europe::Berlin,
        "2026-05-04T09:00:00+02:00",
        "2026-05-04T12:00:01+02:00",
        Some("2026-05-04T12:00:00+02:00"),
    );
    assert_eq!(summary(&c), (60, 1, 1));
}

#[test]
fn overstay_is_charged_per_started_hour() {
    let end = Some("2026-05-04T12:00:00+02:00");
    let c = daily(
        Europe::Berlin,
        "2026-05-04T09:00:00+02:00",
        "2026-05-04T13:00:00+02:00",
        end,
    );
    assert_eq!(summary(&c), (60, 1, 3600));
    let c = daily(
        Europe::Berlin,
        "2026-05-04T09:00:00+02:00",
        "2026-05-04T13:00:01+02:00",
        end,
    );
    assert_eq!(summary(&c), (70, 1, 3601));
}

#[test]
fn overstay_is_split_across_midnight_by_hour_start_and_capped() {
    // Hours start 20:30, 21:30, 22:30, 23:30 (the 4th: 50 + 40, capped at 80)
    // and 00:30, 01:30, 02:30 (the 5th: 50 + 30 = 80). The 23:30 hour runs
    // past midnight but belongs to the 4th.
    let t = Tariff {
        daily_cap_minor: 85,
        ..tariff()
    };
    let c = charge(
        &t,
        Europe::Berlin,
        PlanKind::Daily,
        ts("2026-05-04T09:00:00+02:00"),
        ts("2026-05-05T03:00:00+02:00"),
        Some(ts("2026-05-04T20:30:00+02:00")),
    );
    assert_eq!(summary(&c), (85 + 80, 2, 6 * 3600 + 1800));
}

#[test]
fn overstay_starts_at_check_in_when_arriving_after_the_end() {
    let c = daily(
        Europe::Berlin,
        "2026-05-04T14:00:00+02:00",
        "2026-05-04T15:30:00+02:00",
        Some("2026-05-04T12:00:00+02:00"),
    );
    assert_eq!(summary(&c), (70, 1, 5400));
}

#[test]
fn an_end_in_the_future_is_no_overstay() {
    let c = daily(
        Europe::Berlin,
        "2026-05-04T09:00:00+02:00",
        "2026-05-04T11:00:00+02:00",
        Some("2026-05-04T12:00:00+02:00"),
    );
    assert_eq!(summary(&c), (50, 1, 0));
}

// --- plans and clocks ---

#[test]
fn a_monthly_plan_pays_nothing_but_reports_overstay() {
    let c = charge(
        &tariff(),
        Europe::Berlin,
        PlanKind::Monthly,
        ts("2026-05-04T09:00:00+02:00"),
        ts("2026-05-06T13:00:00+02:00"),
        Some(ts("2026-05-06T12:00:00+02:00")),
    );
    assert_eq!(summary(&c), (0, 0, 3600));
    assert_eq!(c.currency, "EUR");
}

#[test]
fn a_check_out_before_check_in_is_a_zero_length_stay() {
    // The wall clock was stepped back three hours between the two. Even
    // without grace a zero-length stay costs nothing, and the reservation
    // that ended before the check-in counts no overstay.
    let t = Tariff {
        grace_minutes: 0,
        ..tariff()
    };
    let c = charge(
        &t,
        Europe::Berlin,
        PlanKind::Daily,
        ts("2026-05-04T12:00:00+02:00"),
        ts("2026-05-04T09:00:00+02:00"),
        Some(ts("2026-05-04T08:00:00+02:00")),
    );
    assert_eq!(summary(&c), (0, 0, 0));
    assert_eq!(c.duration_s, 0);
}

#[test]
fn the_duration_is_the_stay_in_whole_seconds() {
    let c = daily(
        Europe::Berlin,
        "2026-05-04T09:00:00+02:00",
        "2026-05-04T17:25:01.999+02:00",
        None,
    );
    assert_eq!(c.duration_s, 8 * 3600 + 25 * 60 + 1);
}

#[test]
fn the_default_tariff_is_in_vnd() {
    let c = charge(
        &Tariff::default(),
        Asia::Ho_Chi_Minh,
        PlanKind::Daily,
        ts("2026-11-22T08:00:00+07:00"),
        ts("2026-11-22T18:00:00+07:00"),
        None,
    );
    assert_eq!((c.amount_minor, c.currency.as_str()), (50_000, "VND"));
}
