//! The one place that drives rumqttc: connects (and reconnects with
//! backoff), hands the uplink's rows to the client, pairs PUBACKs with them,
//! publishes status and occupancy, and hands what comes in to `inbox`.
//!
//! Each connection gets a fresh rumqttc client and event loop, dropped with
//! the connection: a publish rumqttc had not finished is never sent later
//! out of order; the uplink sends it again from the outbox instead. The
//! event loop is polled on a task of its own and its events arrive over a
//! channel, so this task may wait on the store without the connection
//! missing a keep-alive.

use std::future::Future;
use std::time::Duration;

use rumqttc::{AsyncClient, Event, EventLoop, LastWill, MqttOptions, Outgoing, Packet, QoS};
use tokio::sync::{mpsc, watch};

use super::backoff::Backoff;
use super::inbound::{self, BadMessages};
use super::uplink::{Read, Uplink};
use super::window::Tag;
use super::{GateView, LinkStatus, ToGate, WINDOW, options};
use crate::config::MqttConfig;
use crate::daemon::clock::Clock;
use crate::domain::command;
use crate::domain::contract::{self, GateStatus, LinkState, Mode, Occupancy, ReaderState, VERSION};
use crate::domain::model::Timestamp;
use crate::store::{Ident, OutboxFacts, Staging, Store, StoreError, Stored};

/// Publishes beyond the event window: status and occupancy, one each.
const EXTRA: usize = 4;
/// How often the retained status is refreshed when nothing changes.
const STATUS_EVERY: Duration = Duration::from_secs(60);
/// How often acknowledged events are marked delivered when few come in.
const MARK_EVERY: Duration = Duration::from_millis(100);
/// Acknowledged events marked in one transaction at most.
const MARK_BATCH: usize = 256;
/// Events from the connection taken at most before publishing again.
const BATCH: usize = 256;
/// How long before the same replica gap is asked for again.
const ASK_AGAIN: Duration = Duration::from_secs(30);
/// How long a clean stop waits for its `offline` status to be acknowledged.
const GOODBYE: Duration = Duration::from_secs(2);

mod inbox;

/// The link's ends of its channels to the gate loop.
pub(super) struct Ports {
    pub view: watch::Receiver<GateView>,
    pub raise: mpsc::Sender<ToGate>,
    pub status: watch::Sender<LinkStatus>,
}

/// The HQ link of one gate; see [`Link::run`].
pub struct Link {
    ident: Ident,
    root: String,
    mqtt: MqttConfig,
    store: Store,
    clock: Clock,
    ports: Ports,
    started_at: Timestamp,
    up: Uplink,
    backoff: Backoff,
    /// What the last status published said (lane, reader, clock, mode).
    status_shown: Option<StatusKey>,
    /// The counters the last occupancy published carried.
    occupancy_shown: Option<Counters>,
    /// A status is due whatever it says: the minute is up, or a new
    /// connection (the broker may have lost the retained one).
    status_due: bool,
    /// The same for occupancy: a new connection.
    occupancy_due: bool,
    /// The outbox and replica as last read, for the `offline` status.
    facts: OutboxFacts,
    /// `bad_message` alerts, rate-limited.
    bad: BadMessages,
    /// `command_rejected` alerts for what anyone able to publish could send
    /// over and over: unsigned or forged commands, and replays of a signed
    /// one. Rate-limited like bad messages; signed-but-refused ones are not.
    forged: BadMessages,
    replayed: BadMessages,
    /// The last replica request: from which seq, and when.
    asked: Option<(u64, tokio::time::Instant)>,
    /// HQ's command key, `[mqtt] hq_public_key` (None: commands refused).
    hq_key: Option<ed25519_dalek::VerifyingKey>,
    /// Where snapshots are staged (opened at the first chunk, or at start
    /// when one was left complete); `None` while in use on another thread.
    staging: Option<Staging>,
    /// A complete snapshot could not replace the replica yet (another
    /// process had it open): tried again at the next status refresh.
    adopt_due: bool,
}

/// Why a connection ended.
enum Ended {
    /// Shutdown: the link is done.
    Stopped,
    /// Lost or refused: try again after a backoff.
    Lost(String),
}

impl Link {
    pub(super) fn new(
        ident: Ident,
        mqtt: MqttConfig,
        store: Store,
        clock: Clock,
        ports: Ports,
    ) -> Link {
        let root = contract::gate_root(&ident.site, &ident.lot, &ident.gate);
        let started_at = clock.now().wall;
        // check-config refuses a bad key; one that slipped through refuses commands.
        let hq_key = mqtt.hq_public_key.as_deref().and_then(|k| {
            command::parse_key(k)
                .inspect_err(|e| tracing::error!(error = %e, "[mqtt] hq_public_key; HQ commands will be refused"))
                .ok()
        });
        Link {
            ident,
            root,
            mqtt,
            store,
            clock,
            ports,
            started_at,
            up: Uplink::new(WINDOW),
            backoff: Backoff::default(),
            status_shown: None,
            occupancy_shown: None,
            status_due: true,
            occupancy_due: true,
            facts: OutboxFacts::default(),
            bad: BadMessages::default(),
            forged: BadMessages::default(),
            replayed: BadMessages::default(),
            asked: None,
            hq_key,
            staging: None,
            // A snapshot completed just before a restart is adopted first.
            adopt_due: true,
        }
    }

    /// The MQTT client id the contract gives this gate.
    fn client_id(&self) -> String {
        let Ident { site, lot, gate } = &self.ident;
        format!("parkgate-{site}-{lot}-{gate}")
    }

    /// Connects, publishes, reconnects, until `shutdown` resolves; then says
    /// `offline` and disconnects cleanly. Never returns early: a broker that
    /// cannot be reached is logged and shown in the status, and tried again.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        self.adopt().await;
        loop {
            let ended = match options::mqtt_options(&self.mqtt, &self.client_id()) {
                Ok(options) => self.connection(options, &mut shutdown).await,
                Err(e) => Ended::Lost(e.to_string()),
            };
            let why = match ended {
                Ended::Stopped => break,
                Ended::Lost(why) => why,
            };
            self.up.disconnected();
            let wait = self.backoff.next(fastrand::f64());
            tracing::warn!(
                broker = %format!("{}:{}", self.mqtt.host, self.mqtt.port),
                error = %why,
                retry_in_ms = wait.as_millis() as u64,
                "the HQ broker is not reachable; events wait in the outbox"
            );
            let now = self.clock.now().wall;
            self.ports.status.send_modify(|s| {
                if s.connected || s.since.is_none() {
                    s.since = Some(now);
                }
                s.connected = false;
                s.error = Some(why);
            });
            tokio::select! {
                _ = &mut shutdown => break,
                _ = tokio::time::sleep(wait) => {}
            }
        }
        self.flush_marks().await;
        tracing::info!("the HQ link stopped");
    }

    async fn connection(
        &mut self,
        mut options: MqttOptions,
        shutdown: &mut std::pin::Pin<&mut impl Future<Output = ()>>,
    ) -> Ended {
        let offline = self.status_payload(LinkState::Offline, &self.ports.view.borrow().clone());
        options
            .set_max_packet_size(inbound::MAX_PACKET, inbound::MAX_PACKET)
            .set_clean_session(false)
            .set_inflight((WINDOW + EXTRA) as u16)
            .set_last_will(LastWill::new(
                self.topic("status"),
                offline,
                QoS::AtLeastOnce,
                true,
            ));
        let (client, eventloop) = AsyncClient::new(options, WINDOW + EXTRA + 8);
        let (tx, mut events) = mpsc::channel(1024);
        let driver = tokio::spawn(drive(eventloop, tx));
        let _abort = AbortOnDrop(driver);
        let mut mark = tokio::time::interval(MARK_EVERY);
        // The first status goes out on CONNACK; the refresh a minute after.
        let mut refresh =
            tokio::time::interval_at(tokio::time::Instant::now() + STATUS_EVERY, STATUS_EVERY);
        let mut connected = false;
        loop {
            tokio::select! {
                biased;
                _ = shutdown.as_mut() => {
                    if connected {
                        self.goodbye(&client, &mut events).await;
                    }
                    return Ended::Stopped;
                }
                event = events.recv() => {
                    // Everything already queued, then one pump: a draining
                    // backlog brings PUBACKs by the hundred.
                    let mut next = event;
                    for taken in 1.. {
                        match next {
                            Some(Ok(event)) => {
                                if let Err(why) = self.on_event(event, &client, &mut connected).await {
                                    return Ended::Lost(why);
                                }
                            }
                            Some(Err(e)) => return Ended::Lost(e.to_string()),
                            None => return Ended::Lost("the connection task ended".into()),
                        }
                        if taken == BATCH {
                            break;
                        }
                        match events.try_recv() {
                            Ok(event) => next = Some(event),
                            Err(_) => break,
                        }
                    }
                }
                changed = self.ports.view.changed() => {
                    if changed.is_err() {
                        // The gate loop is gone: shutdown is under way.
                        self.goodbye(&client, &mut events).await;
                        return Ended::Stopped;
                    }
                    self.on_view();
                }
                _ = mark.tick() => self.mark(),
                _ = refresh.tick() => {
                    self.status_due = true;
                    if self.adopt_due {
                        self.adopt().await;
                    }
                }
            }
            if connected && let Err(why) = self.pump(&client).await {
                return Ended::Lost(why);
            }
        }
    }

    async fn on_event(
        &mut self,
        event: Event,
        client: &AsyncClient,
        connected: &mut bool,
    ) -> Result<(), String> {
        match event {
            Event::Incoming(Packet::ConnAck(ack)) => {
                *connected = true;
                self.up.connected();
                self.backoff.reset();
                self.status_due = true;
                self.occupancy_due = true;
                // Always, session kept or not: subscribing again is harmless.
                let filters = inbound::subscriptions(&self.ident)
                    .into_iter()
                    .map(|path| rumqttc::SubscribeFilter::new(path, QoS::AtLeastOnce));
                client
                    .try_subscribe_many(filters)
                    .map_err(|e| e.to_string())?;
                let now = self.clock.now().wall;
                self.ports.status.send_modify(|s| {
                    s.connected = true;
                    s.since = Some(now);
                    s.error = None;
                });
                tracing::info!(
                    session_present = ack.session_present,
                    "connected to the HQ broker"
                );
            }
            Event::Outgoing(Outgoing::Publish(pkid)) => {
                self.up.outgoing(pkid).map_err(|e| e.to_string())?;
            }
            Event::Incoming(Packet::PubAck(ack)) => {
                self.up.acked(ack.pkid);
                // A full batch, or the last of a burst: marked at once, so
                // an outbox that has drained reads empty.
                if self.up.unmarked() >= MARK_BATCH || self.up.idle() {
                    self.mark();
                }
            }
            Event::Incoming(Packet::Publish(publish)) => {
                let inbound = inbound::route(&self.ident, &publish.topic, &publish.payload);
                self.inbound(inbound, client).await?;
            }
            _ => {}
        }
        Ok(())
    }

    /// The gate changed: maybe more events; whether the status or the
    /// occupancy must go out again is worked out when publishing, against
    /// what each last said.
    fn on_view(&mut self) {
        self.ports.view.borrow_and_update();
        self.up.more_events();
    }

    /// Publishes what is due and what fits in the window, reading the
    /// outbox as it goes.
    async fn pump(&mut self, client: &AsyncClient) -> Result<(), String> {
        let view = self.ports.view.borrow().clone();
        let key = status_key(&view);
        let status_due = self.status_due || self.status_shown.as_ref() != Some(&key);
        if status_due && !self.up.in_flight(Tag::Status) {
            let facts = self
                .store
                .call(|db| db.outbox_facts())
                .await
                .and_then(|r| r)
                .map_err(|e| format!("store: {e}"))?;
            self.facts = facts;
            let payload = self.status_payload(LinkState::Online, &view);
            self.publish(client, self.topic("status"), payload, true, Tag::Status)?;
            self.status_due = false;
            self.status_shown = Some(key);
        }
        let counters = (view.entered.clone(), view.exited.clone());
        let occupancy_due = self.occupancy_due || self.occupancy_shown.as_ref() != Some(&counters);
        if occupancy_due && !self.up.in_flight(Tag::Occupancy) {
            let occupancy = Occupancy {
                v: VERSION,
                gate: self.ident.gate.clone(),
                at: self.clock.now().wall,
                entered: view.entered.clone(),
                exited: view.exited.clone(),
            };
            let payload = serde_json::to_string(&occupancy).map_err(|e| e.to_string())?;
            self.publish(
                client,
                self.topic("occupancy"),
                payload,
                true,
                Tag::Occupancy,
            )?;
            self.occupancy_due = false;
            self.occupancy_shown = Some(counters);
        }
        loop {
            while let Some(row) = self.up.next_publish() {
                let topic = contract::event_type_topic(&self.root, &row.type_name);
                self.publish(client, topic, row.json, false, Tag::Event(row.gate_seq))?;
            }
            let Some(read) = self.up.next_read() else {
                return Ok(());
            };
            let marks = self.up.take_delivered();
            let rows = self
                .store
                .call(move |db| read_rows(db, &marks, read))
                .await
                .and_then(|r| r)
                .map_err(|e| format!("store: {e}"))?;
            self.up.read(read, rows);
        }
    }

    fn publish(
        &mut self,
        client: &AsyncClient,
        topic: String,
        payload: String,
        retain: bool,
        tag: Tag,
    ) -> Result<(), String> {
        // The request channel has room for the whole window, so this never
        // finds it full; if it did, the connection starts over.
        client
            .try_publish(topic, QoS::AtLeastOnce, retain, payload.into_bytes())
            .map_err(|e| format!("handing a publish to the MQTT client: {e}"))?;
        self.up.handed(tag);
        Ok(())
    }

    /// Marks acknowledged events delivered, without waiting (the store runs
    /// jobs in order, so a later outbox read sees the marks).
    fn mark(&mut self) {
        let marks = self.up.take_delivered();
        if marks.is_empty() {
            return;
        }
        let sent = self.store.submit(move |db| {
            if let Err(e) = db.mark_all_delivered(&marks) {
                // Not lost: they stay in the outbox and are sent again.
                tracing::warn!(error = %e, "marking events delivered failed");
            }
        });
        if sent.is_err() {
            tracing::warn!("the store is gone; acknowledged events will be sent again");
        }
    }

    async fn flush_marks(&mut self) {
        let marks = self.up.take_delivered();
        if !marks.is_empty() {
            let _ = self
                .store
                .call(move |db| db.mark_all_delivered(&marks))
                .await;
        }
    }

    /// A clean stop: `offline` (retained) in place of the last will, then
    /// DISCONNECT; bounded, so a dead link never holds up a stop.
    async fn goodbye(
        &mut self,
        client: &AsyncClient,
        events: &mut mpsc::Receiver<Result<Event, rumqttc::ConnectionError>>,
    ) {
        let payload = self.status_payload(LinkState::Offline, &self.ports.view.borrow().clone());
        let said = client.try_publish(self.topic("status"), QoS::AtLeastOnce, true, payload);
        if said.is_ok() {
            self.up.handed(Tag::Status);
        }
        let wait = async {
            while let Some(Ok(event)) = events.recv().await {
                let done = match event {
                    Event::Outgoing(Outgoing::Publish(pkid)) => self.up.outgoing(pkid).is_err(),
                    Event::Incoming(Packet::PubAck(ack)) => {
                        self.up.acked(ack.pkid) == Some(Tag::Status)
                    }
                    _ => false,
                };
                if done {
                    return;
                }
            }
        };
        let _ = tokio::time::timeout(GOODBYE, wait).await;
        let _ = client.try_disconnect();
        let _ = tokio::time::timeout(GOODBYE, async {
            while let Some(Ok(event)) = events.recv().await {
                if event == Event::Outgoing(Outgoing::Disconnect) {
                    return;
                }
            }
        })
        .await;
        self.ports.status.send_modify(|s| {
            s.connected = false;
            s.error = Some("stopped".into());
        });
    }

    fn topic(&self, leaf: &str) -> String {
        format!("{}/{leaf}", self.root)
    }

    /// The status as of now; `offline` is also the last will, set at
    /// connect time (so its `at` is when the connection was made).
    fn status_payload(&self, state: LinkState, view: &GateView) -> String {
        let status = GateStatus {
            v: VERSION,
            state,
            at: self.clock.now().wall,
            version: env!("CARGO_PKG_VERSION").to_string(),
            started_at: self.started_at,
            replica_seq: self.facts.replica_seq,
            outbox_depth: self.facts.depth,
            lane: view.lane,
            reader: if view.reader_online {
                ReaderState::Ok
            } else {
                ReaderState::Offline
            },
            clock: view.clock,
            mode: if view.lockdown {
                Mode::Lockdown
            } else {
                Mode::Normal
            },
        };
        serde_json::to_string(&status).expect("a status always serialises")
    }
}

/// What the status topic says of a gate, besides the outbox: a change of
/// any of it publishes a new status.
type StatusKey = (
    crate::domain::lane::Phase,
    bool,
    crate::domain::contract::Clock,
    bool,
);

/// A gate's counters, entered and exited.
type Counters = (
    std::collections::BTreeMap<crate::domain::model::VehicleClass, u64>,
    std::collections::BTreeMap<crate::domain::model::VehicleClass, u64>,
);

fn status_key(view: &GateView) -> StatusKey {
    (view.lane, view.reader_online, view.clock, view.lockdown)
}

/// Marks `marks` delivered, then makes `read`.
fn read_rows(
    db: &mut crate::store::Db,
    marks: &[u64],
    read: Read,
) -> Result<Vec<Stored>, StoreError> {
    db.mark_all_delivered(marks)?;
    match read {
        Read::Outbox { after, limit } => db.outbox_after(after, limit),
        Read::Journal { from, to, limit } => db.journal_range(from, to, limit),
    }
}

/// Polls one connection's event loop until it fails or the link stops
/// listening; the first error is the last thing sent.
async fn drive(
    mut eventloop: EventLoop,
    tx: mpsc::Sender<Result<Event, rumqttc::ConnectionError>>,
) {
    loop {
        let event = eventloop.poll().await;
        let failed = event.is_err();
        if tx.send(event).await.is_err() || failed {
            return;
        }
    }
}

/// Aborts the event loop's task when the connection is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
