//! Whether the kernel believes its wall clock. A Pi has no battery clock:
//! until NTP has synchronised it, events are stamped `"clock":"unsynced"`.
//! The kernel is asked the way the daemon asks it
//! (`daemon::clock::kernel::read`), so doctor and the gate agree.

use super::report::Check;
use crate::domain::time::KernelSync;

/// What the kernel says about its clock, now.
pub fn probe() -> KernelSync {
    crate::daemon::clock::kernel::read()
}

/// The clock's report line.
pub fn check(clock: &KernelSync, now: &str) -> Check {
    match clock {
        KernelSync::Synced => Check::pass("clock", format!("synchronised, {now}")),
        KernelSync::Unsynced(why) => Check::fail(
            "clock",
            format!("NOT synchronised ({why}): {now} may be wrong"),
            "the gate stamps events \"clock\":\"unsynced\" until it is: enable NTP \
             (`timedatectl set-ntp true`), make sure the NTP server is reachable, \
             then `timedatectl` should say \"System clock synchronized: yes\"",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::doctor::report::Outcome;

    #[test]
    fn an_unsynced_clock_fails_and_says_how_to_fix_it() {
        let why = "adjtimex: STA_UNSYNC is set".to_string();
        let c = check(&KernelSync::Unsynced(why), "2026-11-23 07:58:00");
        assert_eq!(c.outcome, Outcome::Fail);
        assert!(c.detail.contains("STA_UNSYNC"), "{}", c.detail);
        assert!(c.hint.unwrap().contains("timedatectl set-ntp true"));
        let ok = check(&KernelSync::Synced, "now");
        assert_eq!(ok.outcome, Outcome::Pass);
    }
}
