//! Asking the kernel whether the wall clock is synchronised: `adjtimex(2)`
//! with `modes = 0`, which only reads (no `CAP_SYS_TIME` needed). Its
//! return value is the clock state, `TIME_ERROR` when unsynchronised, and
//! `status` has `STA_UNSYNC` set until a time daemon has synchronised the
//! clock: the same two facts `timedatectl`'s `NTPSynchronized` is made of.
//!
//! Under systemd the call needs `SystemCallFilter=` to allow it
//! (`@system-service` does not; glibc makes it `clock_adjtime`), and
//! `ProtectClock=yes` must stay off: its filter refuses reads too
//! (systemd issue 26413). A refused call reads as unsynchronised, saying
//! why, so a gate that cannot ask still tells.

use crate::domain::time::KernelSync;

/// The kernel's word on the wall clock, now.
pub fn read() -> KernelSync {
    // SAFETY: `timex` is plain integers, for which all zeroes is valid (and
    // `modes = 0`: read only); the kernel writes only within the struct
    // we pass, which outlives the call.
    let (state, status) = unsafe {
        let mut tx: libc::timex = std::mem::zeroed();
        let state = libc::adjtimex(&mut tx);
        (state, tx.status)
    };
    if state == -1 {
        let e = std::io::Error::last_os_error();
        return KernelSync::Unsynced(format!("adjtimex failed: {e}"));
    }
    interpret(state, status)
}

/// What `adjtimex` returning `state` with `status` means.
pub fn interpret(state: libc::c_int, status: libc::c_int) -> KernelSync {
    let mut why = Vec::new();
    if status & libc::STA_UNSYNC != 0 {
        why.push("STA_UNSYNC is set");
    }
    if state == libc::TIME_ERROR {
        why.push("the clock state is TIME_ERROR");
    }
    match why.is_empty() {
        true => KernelSync::Synced,
        false => KernelSync::Unsynced(format!("adjtimex: {}", why.join(", "))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_bit_and_the_state_each_mean_unsynchronised() {
        assert_eq!(interpret(libc::TIME_OK, 0), KernelSync::Synced);
        // STA_PLL and STA_NANO as timesyncd leaves them: synchronised.
        assert_eq!(
            interpret(libc::TIME_OK, libc::STA_PLL | libc::STA_NANO),
            KernelSync::Synced
        );
        assert_eq!(
            interpret(libc::TIME_OK, libc::STA_UNSYNC),
            KernelSync::Unsynced("adjtimex: STA_UNSYNC is set".into())
        );
        assert_eq!(
            interpret(libc::TIME_ERROR, libc::STA_UNSYNC | libc::STA_PLL),
            KernelSync::Unsynced(
                "adjtimex: STA_UNSYNC is set, the clock state is TIME_ERROR".into()
            )
        );
        // A leap second pending is still synchronised.
        assert_eq!(interpret(libc::TIME_INS, 0), KernelSync::Synced);
    }

    #[test]
    fn the_real_kernel_answers_one_way_or_the_other() {
        // Whatever this machine's clock is, the call is allowed and says
        // something definite; a refusal would read "adjtimex failed".
        if let KernelSync::Unsynced(why) = read() {
            assert!(why.starts_with("adjtimex: "), "{why}");
        }
    }
}
