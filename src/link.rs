//! The link to HQ over MQTT (`shared/CONTRACT.md`): the outbox up to the
//! broker, the gate's retained status and occupancy; and down from it, the
//! replica's changes and snapshots, sibling gates' passages and counters,
//! signed commands and replay requests.
//!
//! The link is a task of its own. It talks to the gate loop through
//! [`GateSide`]: a `watch` of what the gate looks like ([`GateView`]: the
//! last event recorded, the lane, the counters), a bounded channel of what
//! the gate must act on ([`ToGate`]: alerts to record, HQ's commands), and
//! a `watch` of the link's own state for `parkgate status`.
//! Neither side ever waits on the other: the gate loop never waits on the
//! network. The link reads and marks the outbox through its own store calls.
//!
//! - [`uplink`] and [`window`]: pure bookkeeping of what to publish and what
//!   a PUBACK acknowledged, tested without a broker.
//! - [`inbound`]: what a message from the broker is, checked against the
//!   contract before anything acts on it (pure).
//! - `session`: the one place that drives rumqttc; `session/inbox.rs` acts
//!   on what comes in.
//! - [`options`]: TLS, mutual TLS, credentials (shared with `parkgate alerts`).

mod backoff;
pub mod inbound;
pub mod options;
mod session;
pub mod uplink;
pub mod window;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};

use crate::config::Config;
use crate::daemon::clock::Clock;
use crate::domain::contract::{Alert, Clock as ClockState};
use crate::domain::lane::Phase;
use crate::domain::model::{Timestamp, VehicleClass};
use crate::store::{Ident, Store};

pub use session::Link;

/// Events in flight to the broker at most: enough to keep a link with
/// 40 ms of round trip busy (2048 / 40 ms is 51,200 events a second), and
/// few enough that rumqttc's state for them stays small (a pkid each).
pub const WINDOW: usize = 2048;
/// Room for alerts from the link that wait for the gate loop to record them.
pub const RAISED_QUEUE: usize = 16;

/// What the gate looks like, as the link needs it for the status and
/// occupancy topics and to know there is more to send.
#[derive(Debug, Clone, PartialEq)]
pub struct GateView {
    /// The highest `gate_seq` recorded so far (0: none since start).
    pub last_seq: u64,
    pub lane: Phase,
    pub reader_online: bool,
    pub clock: ClockState,
    pub lockdown: bool,
    /// This gate's counters (only ever growing).
    pub entered: BTreeMap<VehicleClass, u64>,
    pub exited: BTreeMap<VehicleClass, u64>,
}

impl Default for GateView {
    fn default() -> Self {
        GateView {
            last_seq: 0,
            lane: Phase::Idle,
            reader_online: true,
            clock: ClockState::Synced,
            lockdown: false,
            entered: BTreeMap::new(),
            exited: BTreeMap::new(),
        }
    }
}

/// The link as `parkgate status` shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LinkStatus {
    /// `[mqtt] enabled`.
    pub enabled: bool,
    /// `mqtt://host:port` or `mqtts://host:port`.
    pub broker: Option<String>,
    /// Connected to the broker right now.
    pub connected: bool,
    /// Since when it has been connected (or, if not, since when not).
    pub since: Option<Timestamp>,
    /// Why the last connection failed or ended, while not connected.
    pub error: Option<String>,
}

/// The gate loop's ends of the link's channels.
pub struct GateSide {
    /// What the gate looks like; the loop updates it after every step.
    pub view: watch::Sender<GateView>,
    /// Alerts to record and HQ commands to carry out.
    pub raised: mpsc::Receiver<ToGate>,
    /// The link's state.
    pub status: watch::Receiver<LinkStatus>,
}

/// What the link hands the gate loop.
#[derive(Debug, Clone, PartialEq)]
pub enum ToGate {
    /// An alert to record (a replay it cannot serve, a bad message, a
    /// rejected command).
    Raise(Alert),
    /// A verified, first-seen HQ command for the lane.
    Command(crate::domain::lane::Command),
}

/// The channels between a gate loop and its link, and the link itself if
/// `[mqtt] enabled` (to be run on a task of its own, see [`Link::run`]).
pub fn start(cfg: &Config, store: Store, clock: Clock) -> (GateSide, Option<Link>) {
    let (view_tx, view_rx) = watch::channel(GateView::default());
    let (raise_tx, raise_rx) = mpsc::channel(RAISED_QUEUE);
    let m = &cfg.mqtt;
    let status = LinkStatus {
        enabled: m.enabled,
        broker: m.enabled.then(|| broker_url(cfg)),
        connected: false,
        since: Some(clock.now().wall),
        error: m.enabled.then(|| "not connected yet".to_string()),
    };
    let (status_tx, status_rx) = watch::channel(status);
    let side = GateSide {
        view: view_tx,
        raised: raise_rx,
        status: status_rx,
    };
    let link = m.enabled.then(|| {
        Link::new(
            Ident::from(cfg),
            m.clone(),
            store,
            clock,
            session::Ports {
                view: view_rx,
                raise: raise_tx,
                status: status_tx,
            },
        )
    });
    (side, link)
}

/// The broker's address as a URL, for logs and status.
pub fn broker_url(cfg: &Config) -> String {
    let m = &cfg.mqtt;
    let scheme = if m.tls { "mqtts" } else { "mqtt" };
    format!("{scheme}://{}:{}", m.host, m.port)
}
