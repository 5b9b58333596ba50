//! Whether the kernel believes its wall clock. A Pi has no battery clock:
//! until NTP has synchronised it, events are stamped `"clock":"unsynced"`.
//!
//! The probe is one small function so it can give way to the daemon's own
//! kernel-sync probe once there is one (issue 9, "The clock").

use super::report::Check;

/// What the kernel says about its clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KernelClock {
    /// Synchronised (NTP or similar is disciplining it), with the kernel's
    /// estimate of its maximum error.
    Synced { max_error_ms: i64 },
    /// Not synchronised: `STA_UNSYNC`, or `adjtimex` returned `TIME_ERROR`.
    Unsynced,
    /// The kernel could not be asked.
    Unknown(String),
}

/// Asks the kernel with `adjtimex` in read-only mode (`modes = 0`, which
/// needs no privilege and changes nothing).
pub fn probe() -> KernelClock {
    // SAFETY: a zeroed timex with modes = 0 only asks; the kernel writes
    // into the struct we own.
    let mut tx: libc::timex = unsafe { std::mem::zeroed() };
    tx.modes = 0;
    let state = unsafe { libc::adjtimex(&mut tx) };
    if state < 0 {
        return KernelClock::Unknown(std::io::Error::last_os_error().to_string());
    }
    if state == libc::TIME_ERROR || tx.status & libc::STA_UNSYNC != 0 {
        KernelClock::Unsynced
    } else {
        #[allow(clippy::useless_conversion)]
        let max_error_us = i64::from(tx.maxerror);
        KernelClock::Synced {
            max_error_ms: max_error_us / 1000,
        }
    }
}

/// The clock's report line.
pub fn check(clock: &KernelClock, now: &str) -> Check {
    match clock {
        KernelClock::Synced { max_error_ms } => Check::pass(
            "clock",
            format!("synchronised, {now} (kernel's max error {max_error_ms} ms)"),
        ),
        KernelClock::Unsynced => Check::fail(
            "clock",
            format!("NOT synchronised: {now} may be wrong"),
            "the gate stamps events \"clock\":\"unsynced\" until it is: enable NTP \
             (`timedatectl set-ntp true`), make sure the NTP server is reachable, \
             then `timedatectl` should say \"System clock synchronized: yes\"",
        ),
        KernelClock::Unknown(why) => Check::fail(
            "clock",
            format!("cannot ask the kernel: {why}"),
            "check with `timedatectl` that the clock is synchronised",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::doctor::report::Outcome;

    #[test]
    fn the_probe_answers_without_privilege() {
        // Synced or not depends on the machine; an answer it must give.
        assert!(!matches!(probe(), KernelClock::Unknown(_)), "{:?}", probe());
    }

    #[test]
    fn an_unsynced_clock_fails_and_says_how_to_fix_it() {
        let c = check(&KernelClock::Unsynced, "2026-11-23 07:58:00");
        assert_eq!(c.outcome, Outcome::Fail);
        assert!(c.hint.unwrap().contains("timedatectl set-ntp true"));
        let ok = check(&KernelClock::Synced { max_error_ms: 12 }, "now");
        assert_eq!(ok.outcome, Outcome::Pass);
        assert!(ok.detail.contains("12 ms"));
    }
}
