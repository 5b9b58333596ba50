//! Human-readable reports for technicians: the journal and free spots.
//!
//! Pure formatting; the CLI fetches, this module only lays out text.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono_tz::Tz;

use crate::daemon::status::Status;
use crate::domain::availability::Free;
use crate::domain::contract::Clock;
use crate::domain::contract::{Event, EventBody, Passage};
use crate::domain::lane::BarrierCommand;
use crate::domain::model::{Timestamp, VehicleClass};
pub use crate::domain::money::money;

/// A timestamp in the lot's zone, to the second.
pub fn local(at: Timestamp, tz: Tz) -> String {
    at.with_timezone(&tz)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// A duration as `1h05m`, or `45s` below a minute.
pub fn duration(seconds: i64) -> String {
    match seconds {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{:02}s", s / 60, s % 60),
        s => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

fn who(p: &Passage) -> String {
    match (&p.user_name, &p.user_id) {
        (Some(name), Some(id)) => format!("{name} ({id})"),
        (None, Some(id)) => id.clone(),
        _ => "-".into(),
    }
}

/// The column headings of [`event_line`].
pub const EVENT_HEADER: &str = "   SEQ  TIME                 TYPE       CARD                  WHO                       DETAILS";

/// One line per event, newest first as given, under [`EVENT_HEADER`].
pub fn events(events: &[Event], tz: Tz) -> String {
    let mut out = format!("{EVENT_HEADER}\n");
    for e in events {
        out.push_str(&event_line(e, tz));
        out.push('\n');
    }
    out
}

/// One event on one line: seq, local time, type, card, who, and what
/// happened (vehicle, plan, spot, times in and out, fee, reason, alert).
pub fn event_line(e: &Event, tz: Tz) -> String {
    let name = |v: &dyn erased::Name| v.name();
    let (card, who, details) = match &e.body {
        EventBody::CheckIn(p) => (p.card.clone(), who(p), passage_details(p)),
        EventBody::CheckOut(c) => {
            let mut d = passage_details(&c.passage);
            match (c.check_in_at, c.duration_s) {
                (Some(t), Some(s)) => {
                    let _ = write!(
                        d,
                        ", in {} out {} ({})",
                        local(t, tz),
                        local(e.at, tz),
                        duration(s)
                    );
                }
                _ => d.push_str(", entry not seen"),
            }
            if let Some(fee) = &c.fee {
                let _ = write!(d, ", fee {}", money(fee.amount_minor, &fee.currency));
            }
            if c.overstay_s > 0 {
                let _ = write!(d, ", overstay {}", duration(c.overstay_s));
            }
            (c.passage.card.clone(), who(&c.passage), d)
        }
        EventBody::Denied(d) => {
            let who = match (&d.user_name, &d.user_id) {
                (Some(n), Some(id)) => format!("{n} ({id})"),
                _ => "-".into(),
            };
            (d.card.clone(), who, format!("reason {}", name(&d.reason)))
        }
        EventBody::Alert(a) => (
            a.card.clone(),
            a.user_id.clone().unwrap_or_else(|| "-".into()),
            format!("{} ({}): {}", name(&a.alert), name(&a.severity), a.message),
        ),
        EventBody::Void { related_event_id } => {
            (None, "-".into(), format!("voids {related_event_id}"))
        }
    };
    format!(
        "{:>6}  {:<19}  {:<9}  {:<20}  {:<24}  {}",
        e.gate_seq,
        local(e.at, tz),
        e.type_name(),
        card.as_deref().unwrap_or("-"),
        who,
        details
    )
}

/// The contract's snake_case name of a unit enum value.
mod erased {
    pub trait Name {
        fn name(&self) -> String;
    }
    impl<T: serde::Serialize> Name for T {
        fn name(&self) -> String {
            match serde_json::to_value(self) {
                Ok(serde_json::Value::String(s)) => s,
                other => format!("{other:?}"),
            }
        }
    }
}

fn passage_details(p: &Passage) -> String {
    let mut d = String::new();
    if let Some(class) = p.vehicle_class {
        let _ = write!(d, "{} {class}", p.vehicle_id.as_deref().unwrap_or("-"));
    }
    if let Some(plan) = p.plan {
        let _ = write!(d, ", {}", erased::Name::name(&plan));
    }
    match (&p.reservation_id, &p.spot_id) {
        (Some(r), Some(s)) => {
            let _ = write!(d, ", reservation {r} spot {s}");
        }
        (Some(r), None) => {
            let _ = write!(d, ", reservation {r}");
        }
        _ if p.walk_in => d.push_str(", walk-in"),
        _ => {}
    }
    d
}

/// Free spots per class, as a small table.
pub fn availability(free: &BTreeMap<VehicleClass, Free>, at: &str) -> String {
    let mut out = format!(
        "Free spots at {at}\n{:<11} {:>6} {:>8} {:>4} {:>4}\n",
        "CLASS", "FREE", "GENERAL", "ADA", "EV"
    );
    for (class, f) in free {
        let _ = writeln!(
            out,
            "{:<11} {:>6} {:>8} {:>4} {:>4}",
            class.as_str(),
            f.total(),
            f.general,
            f.ada,
            f.ev
        );
    }
    out
}

/// `parkgate status` for a person.
pub fn status(s: &Status) -> String {
    let counts = |m: &BTreeMap<VehicleClass, u64>| {
        let listed: Vec<String> = m
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(k, n)| format!("{} {n}", k.as_str()))
            .collect();
        if listed.is_empty() {
            "none".to_string()
        } else {
            listed.join(", ")
        }
    };
    let flag = |on: bool, text: &'static str| if on { text } else { "" };
    let mut reader = if s.reader_online { "ok" } else { "offline" }.to_string();
    if let Some(fw) = &s.reader_firmware {
        reader.push_str(&format!(" ({fw})"));
    }
    format!(
        "gate      {}/{}/{} at {}{}\n{}lane      {} (barrier {}){}{}\nreader    {}\ninside    {}\nentered   {}\nexited    {}\noutbox    {} event(s) waiting for HQ{}\nhq link   {}\nreplica   seq {}{}\n",
        s.site,
        s.lot,
        s.gate,
        s.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
        flag(s.clock == Clock::Unsynced, " (clock unsynced)"),
        clock(s),
        s.lane.as_str(),
        match s.barrier {
            BarrierCommand::Up => "up",
            BarrierCommand::Down => "down",
        },
        flag(s.lockdown, ", LOCKDOWN"),
        flag(s.fault, ", FAULT"),
        reader,
        counts(&s.occupancy),
        counts(&s.entered),
        counts(&s.exited),
        s.outbox_depth,
        match s.outbox_oldest_age_s {
            Some(age) => format!(", the oldest for {}", duration(age as i64)),
            None => String::new(),
        },
        link(&s.link),
        s.replica_seq,
        match s.replica_age_s {
            Some(age) => format!(", last heard from HQ {} ago", duration(age as i64)),
            None => String::new(),
        },
    )
}

/// The `clock` line: whether the kernel says the wall clock is synchronised
/// and why events are stamped unsynced; none from a daemon that does not say.
fn clock(s: &Status) -> String {
    let kernel = match s.clock_synced {
        Some(true) => "kernel synchronised",
        Some(false) => "kernel NOT synchronised",
        None if s.clock_doubt.is_none() => return String::new(),
        None => "kernel not asked",
    };
    match &s.clock_doubt {
        None => format!("clock     {kernel}\n"),
        Some(why) => format!("clock     {kernel}; events stamped unsynced: {why}\n"),
    }
}

/// The HQ link in one line: off, connected since when, or why not.
fn link(l: &crate::link::LinkStatus) -> String {
    let since = l
        .since
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, false))
        .unwrap_or_default();
    let broker = l.broker.as_deref().unwrap_or("");
    match (l.enabled, l.connected) {
        (false, _) => "off ([mqtt] enabled = false): events wait in the outbox".to_string(),
        (true, true) => format!("connected to {broker} since {since}"),
        (true, false) => format!(
            "NOT connected to {broker} since {since}: {}",
            l.error.as_deref().unwrap_or("unknown")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_uses_the_currency_exponent() {
        assert_eq!(money(50_000, "VND"), "50,000 VND");
        assert_eq!(money(1_234_567, "VND"), "1,234,567 VND");
        assert_eq!(money(250, "EUR"), "2.50 EUR");
        assert_eq!(money(-5, "EUR"), "-0.05 EUR");
        assert_eq!(money(1500, "KWD"), "1.500 KWD");
        assert_eq!(money(0, "USD"), "0.00 USD");
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration(42), "42s");
        assert_eq!(duration(125), "2m05s");
        assert_eq!(duration(3 * 3600 + 7 * 60), "3h07m");
    }
}
