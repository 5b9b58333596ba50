//! What `parkgate status` shows: one typed answer from the daemon, sent over
//! the control socket as JSON and read back into the same struct by the CLI.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::domain::contract::Clock;
use crate::domain::lane::{BarrierCommand, Phase};
use crate::domain::model::{Timestamp, VehicleClass};
use crate::link::LinkStatus;

/// The running gate at one instant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub site: String,
    pub lot: String,
    pub gate: String,
    /// The wall clock's reading.
    pub at: Timestamp,
    /// Whether the wall clock is trusted (see `domain::time::ClockWatch`).
    pub clock: Clock,
    /// Whether the kernel says the wall clock is synchronised (adjtimex,
    /// `timedatectl`'s NTPSynchronized). None: not asked yet, or a daemon
    /// from before this field.
    #[serde(default)]
    pub clock_synced: Option<bool>,
    /// Why `clock` is unsynced, in words (None while it is synced).
    #[serde(default)]
    pub clock_doubt: Option<String>,
    /// The lane's phase.
    pub lane: Phase,
    /// The last command given to the barrier (or the position it was found in).
    pub barrier: BarrierCommand,
    pub lockdown: bool,
    /// A loop or the barrier switch is in a fault episode.
    pub fault: bool,
    /// The card reader answers.
    pub reader_online: bool,
    /// The reader's firmware as it last reported it, e.g. `PN532 v1.6`
    /// (None: the sim's reader, or a PN532 that has not answered yet).
    #[serde(default)]
    pub reader_firmware: Option<String>,
    /// Vehicles in the lot per class, as this gate knows them.
    pub occupancy: BTreeMap<VehicleClass, u64>,
    /// This gate's own counters (only ever growing; see `lane::Counters`).
    pub entered: BTreeMap<VehicleClass, u64>,
    pub exited: BTreeMap<VehicleClass, u64>,
    /// Events waiting for HQ's broker.
    pub outbox_depth: u64,
    /// The stamp of the oldest of them.
    pub outbox_oldest: Option<Timestamp>,
    /// How long the oldest has waited, in seconds (by the wall clock).
    pub outbox_oldest_age_s: Option<u64>,
    /// The HQ link.
    pub link: LinkStatus,
    /// When HQ's replica feed was last heard (None: never).
    pub replica_heard: Option<Timestamp>,
    /// How long ago, in seconds.
    pub replica_age_s: Option<u64>,
    /// The last replica change batch applied.
    pub replica_seq: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_reads_back_as_it_was_sent() {
        let status = Status {
            site: "b1".into(),
            lot: "main".into(),
            gate: "entry-1".into(),
            at: chrono::DateTime::parse_from_rfc3339("2026-11-23T07:58:00.123+07:00").unwrap(),
            clock: Clock::Unsynced,
            clock_synced: Some(false),
            clock_doubt: Some(
                "the kernel says not synchronised (adjtimex: STA_UNSYNC is set)".into(),
            ),
            lane: Phase::Committing,
            barrier: BarrierCommand::Up,
            lockdown: true,
            fault: false,
            reader_online: false,
            reader_firmware: Some("PN532 v1.6".into()),
            occupancy: [(VehicleClass::Standard, 3)].into(),
            entered: [(VehicleClass::Standard, 5)].into(),
            exited: [(VehicleClass::Standard, 2)].into(),
            outbox_depth: 7,
            outbox_oldest: None,
            outbox_oldest_age_s: None,
            link: LinkStatus::default(),
            replica_heard: None,
            replica_age_s: None,
            replica_seq: 42,
        };
        let text = serde_json::to_string(&status).unwrap();
        assert!(text.contains(r#""lane":"committing""#), "{text}");
        assert!(text.contains(r#""clock":"unsynced""#), "{text}");
        assert!(text.contains(r#""clock_synced":false"#), "{text}");
        assert_eq!(serde_json::from_str::<Status>(&text).unwrap(), status);
    }

    #[test]
    fn a_status_from_a_daemon_without_the_kernel_fields_still_reads() {
        let mut old: serde_json::Value = serde_json::from_str(OLD).unwrap();
        let status: Status = serde_json::from_value(old.clone()).unwrap();
        assert_eq!((status.clock_synced, status.clock_doubt), (None, None));
        // And the new fields read when present.
        old["clock_synced"] = true.into();
        let status: Status = serde_json::from_value(old).unwrap();
        assert_eq!(status.clock_synced, Some(true));
    }

    /// A status as a daemon before `clock_synced` sent it.
    const OLD: &str = r#"{"site":"b1","lot":"main","gate":"entry-1",
        "at":"2026-11-23T07:58:00+07:00","clock":"synced","lane":"idle","barrier":"down",
        "lockdown":false,"fault":false,"reader_online":true,"occupancy":{},"entered":{},
        "exited":{},"outbox_depth":0,"outbox_oldest":null,"outbox_oldest_age_s":null,
        "link":{"enabled":false,"connected":false,"broker":null,"since":null,"error":null},
        "replica_heard":null,"replica_age_s":null,"replica_seq":1}"#;
}
