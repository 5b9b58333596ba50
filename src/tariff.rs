//! What a daily-plan stay costs. (Being written.)

use serde::{Deserialize, Serialize};

/// The daily-plan tariff of a lot. Money in minor units of `currency`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Tariff {
    /// ISO 4217 code, e.g. `VND` or `EUR`.
    pub currency: String,
    /// Charged once per started calendar day (lot time zone) of the stay.
    pub day_rate_minor: i64,
    /// A stay no longer than this is free.
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

/// TEMPORARY stub, replaced by the tariff branch.
pub struct Charge {
    pub amount_minor: i64,
    pub currency: String,
    pub overstay_s: i64,
    pub days: u32,
}

/// TEMPORARY stub, replaced by the tariff branch.
pub fn charge(
    tariff: &Tariff,
    _tz: chrono_tz::Tz,
    _plan: crate::model::PlanKind,
    _check_in: crate::model::Timestamp,
    _check_out: crate::model::Timestamp,
    _reservation_end: Option<crate::model::Timestamp>,
) -> Charge {
    Charge {
        amount_minor: tariff.day_rate_minor,
        currency: tariff.currency.clone(),
        overstay_s: 0,
        days: 1,
    }
}
