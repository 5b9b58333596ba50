//! Headquarters' side of the MQTT link, for tests: an MQTT client (rumqttc)
//! that subscribes, collects what arrives, and publishes with confirmation.
//!
//! ```ignore
//! let mut hq = Hq::builder(broker.port())
//!     .login("hq", "hq-password")
//!     .subscribe("parkgate/v1/#")
//!     .connect()                          // returns once the SUBACK is in
//!     .await;
//! hq.publish("parkgate/v1/b1/main/replica/changes", batch, true, false).await; // PUBACKed
//! let msg = hq.next(WAIT).await;          // (topic, payload, retain), or the test fails
//! broker.restart().await;
//! hq.wait_subscribed(2).await;            // reconnected and subscribed again
//! ```
//!
//! A background task drives the connection. It reconnects after any error
//! with a clean session and subscribes again, so a broker restart costs HQ
//! only what the broker lost. Every connection whose subscriptions were
//! granted counts as one [`Hq::subscribed`]: tests wait on that count, not
//! on time.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rumqttc::{
    AsyncClient, Event, EventLoop, Incoming, MqttOptions, Outgoing, QoS, SubscribeFilter,
    SubscribeReasonCode, TlsConfiguration, Transport,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::pki::CertFiles;

/// The longest a connect, SUBACK or PUBACK may take before the test fails.
const WAIT: Duration = Duration::from_secs(20);

/// Pause between reconnection attempts. A backoff, not a synchronisation:
/// without it a client whose broker is down spins on "connection refused".
const RETRY: Duration = Duration::from_millis(20);

/// One message HQ received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub topic: String,
    pub payload: Vec<u8>,
    /// Set when the broker delivered it from its retained store (a message
    /// retained before the subscription), as on a gate's status.
    pub retain: bool,
}

impl Message {
    /// The payload as text (the contract's payloads are UTF-8 JSON).
    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.payload)
            .unwrap_or_else(|e| panic!("payload on {} is not UTF-8: {e}", self.topic))
    }

    /// The payload parsed as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.payload).unwrap_or_else(|e| {
            panic!(
                "payload on {} is not JSON ({e}): {}",
                self.topic,
                self.text()
            )
        })
    }
}

/// How to connect; see [`Hq::builder`].
#[derive(Clone, Debug)]
pub struct HqBuilder {
    host: String,
    port: u16,
    client_id: String,
    login: Option<(String, String)>,
    tls: Option<(PathBuf, Option<CertFiles>)>,
    topics: Vec<String>,
}

impl HqBuilder {
    /// The client id (by default `hq-test-` and a random number, so two
    /// clients never take over each other's session).
    pub fn client_id(mut self, id: impl Into<String>) -> Self {
        self.client_id = id.into();
        self
    }

    /// The host name to connect to and, over TLS, to verify in the broker's
    /// certificate (by default `127.0.0.1`; the test PKI's broker
    /// certificate is valid for that and for `localhost`).
    pub fn host(mut self, host: impl Into<String>) -> Self {
        self.host = host.into();
        self
    }

    /// User name and password in CONNECT.
    pub fn login(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.login = Some((user.into(), password.into()));
        self
    }

    /// Connects over TLS, trusting only `ca`, presenting `client` if given
    /// (mutual TLS: with `use_identity_as_username` its CN is the user).
    pub fn tls(mut self, ca: &Path, client: Option<&CertFiles>) -> Self {
        self.tls = Some((ca.to_path_buf(), client.cloned()));
        self
    }

    /// Adds a topic filter to subscribe to at QoS 1, on every connection.
    pub fn subscribe(mut self, filter: impl Into<String>) -> Self {
        self.topics.push(filter.into());
        self
    }

    /// Connects and waits for the SUBACK (or the CONNACK, with no topics);
    /// fails the test if the first attempt fails.
    pub async fn connect(self) -> Hq {
        let what = format!("HQ client {} on port {}", self.client_id, self.port);
        self.try_connect()
            .await
            .unwrap_or_else(|e| panic!("{what} could not connect: {e}"))
    }

    /// Like [`HqBuilder::connect`], but the first attempt's error is
    /// returned: for tests of who the broker refuses.
    pub async fn try_connect(self) -> Result<Hq, String> {
        let hq = self.spawn();
        let mut progress = hq.progress.subscribe();
        let seen = tokio::time::timeout(
            WAIT,
            progress.wait_for(|p| p.subscribed > 0 || p.errors > 0),
        )
        .await
        .map_err(|_| format!("neither connected nor refused in {WAIT:?}"))?
        .map_err(|_| "the connection task ended".to_string())?
        .clone();
        match seen.last_error {
            Some(e) if seen.subscribed == 0 => Err(e),
            _ => Ok(hq),
        }
    }

    fn spawn(self) -> Hq {
        let mut options = MqttOptions::new(&self.client_id, &self.host, self.port);
        options.set_clean_session(true);
        options.set_keep_alive(Duration::from_secs(30));
        if let Some((user, password)) = &self.login {
            options.set_credentials(user, password);
        }
        if let Some((ca, client)) = &self.tls {
            options.set_transport(tls_transport(ca, client.as_ref()));
        }
        let (client, eventloop) = AsyncClient::new(options, 64);
        let (messages_tx, messages) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared::default());
        let (progress, _) = watch::channel(Progress::default());
        let task = tokio::spawn(drive(
            eventloop,
            client.clone(),
            self.topics,
            Arc::clone(&shared),
            progress.clone(),
            messages_tx,
        ));
        Hq {
            client,
            messages,
            shared,
            progress,
            publishing: tokio::sync::Mutex::new(()),
            task,
        }
    }
}

/// What the connection task has seen so far.
#[derive(Clone, Debug, Default)]
struct Progress {
    /// Connections whose subscriptions were all granted.
    subscribed: u64,
    /// Connection errors (refusals, resets, a denied subscription).
    errors: u64,
    last_error: Option<String>,
}

/// The publish waiting for its acknowledgement.
struct Pending {
    qos1: bool,
    /// Its packet id, once written.
    pkid: Option<u16>,
    /// `Err` when the connection dropped before the PUBACK: send it again.
    done: oneshot::Sender<Result<(), String>>,
}

#[derive(Default)]
struct Shared {
    pending: Mutex<Option<Pending>>,
}

/// A connected HQ client; see the module doc. Dropping it drops the
/// connection (without DISCONNECT).
pub struct Hq {
    client: AsyncClient,
    messages: mpsc::UnboundedReceiver<Message>,
    shared: Arc<Shared>,
    progress: watch::Sender<Progress>,
    /// One publish at a time, so an acknowledgement is always the one
    /// awaited.
    publishing: tokio::sync::Mutex<()>,
    task: JoinHandle<()>,
}

impl Hq {
    /// A client for the broker on loopback port `port`.
    pub fn builder(port: u16) -> HqBuilder {
        HqBuilder {
            host: "127.0.0.1".into(),
            port,
            client_id: format!("hq-test-{}", fastrand::u64(..)),
            login: None,
            tls: None,
            topics: Vec::new(),
        }
    }

    /// The next message received (in arrival order); fails the test if none
    /// comes within `within`.
    pub async fn next(&mut self, within: Duration) -> Message {
        match tokio::time::timeout(within, self.messages.recv()).await {
            Ok(Some(msg)) => msg,
            Ok(None) => panic!("the HQ client's connection task ended"),
            Err(_) => panic!(
                "HQ received nothing in {within:?} (last connection error: {:?})",
                self.progress.borrow().last_error
            ),
        }
    }

    /// A message already received and not yet taken, without waiting.
    pub fn try_next(&mut self) -> Option<Message> {
        self.messages.try_recv().ok()
    }

    /// How many connections so far had all their subscriptions granted: 1
    /// after [`HqBuilder::connect`], one more after each reconnection.
    pub fn subscribed(&self) -> u64 {
        self.progress.borrow().subscribed
    }

    /// Waits until [`Hq::subscribed`] reaches `n`: after a broker restart,
    /// `wait_subscribed(before + 1)` means HQ is back and will receive
    /// whatever is published from now on.
    pub async fn wait_subscribed(&self, n: u64) {
        let mut progress = self.progress.subscribe();
        if tokio::time::timeout(WAIT, progress.wait_for(|p| p.subscribed >= n))
            .await
            .is_err()
        {
            let p = self.progress.borrow();
            panic!(
                "HQ subscribed {} times in {WAIT:?}, not {n} (last connection error: {:?})",
                p.subscribed, p.last_error
            );
        }
    }

    /// Publishes and waits until the broker has it: for QoS 1 (`qos1`) the
    /// PUBACK, for QoS 0 the write. If the connection drops first, it is
    /// sent again after the reconnection (at least once, as QoS 1 is). Mind
    /// that Mosquitto acknowledges a publish its ACL denies, then drops it.
    pub async fn publish(
        &self,
        topic: &str,
        payload: impl Into<Vec<u8>>,
        qos1: bool,
        retain: bool,
    ) {
        let _one_at_a_time = self.publishing.lock().await;
        let payload = payload.into();
        let qos = if qos1 {
            QoS::AtLeastOnce
        } else {
            QoS::AtMostOnce
        };
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let (done, acked) = oneshot::channel();
            {
                // Registered and queued under the lock the connection task
                // takes on an error, so a publish is either queued before
                // the task discards the queue and fails it (and is sent
                // again), or after, and goes out on the next connection:
                // never both.
                let mut pending = lock(&self.shared.pending);
                *pending = Some(Pending {
                    qos1,
                    pkid: None,
                    done,
                });
                self.client
                    .try_publish(topic, qos, retain, payload.clone())
                    .unwrap_or_else(|e| panic!("HQ publish on {topic}: {e}"));
            }
            match tokio::time::timeout_at(deadline, acked).await {
                Ok(Ok(Ok(()))) => return,
                Ok(Ok(Err(_lost))) => continue,
                Ok(Err(_)) => panic!("the HQ client's connection task ended"),
                Err(_) => panic!(
                    "no PUBACK for HQ's publish on {topic} in {WAIT:?} (last connection error: {:?})",
                    self.progress.borrow().last_error
                ),
            }
        }
    }
}

impl Drop for Hq {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock(pending: &Mutex<Option<Pending>>) -> std::sync::MutexGuard<'_, Option<Pending>> {
    pending.lock().unwrap_or_else(|e| e.into_inner())
}

/// The connection task: polls rumqttc's event loop for ever.
async fn drive(
    mut eventloop: EventLoop,
    client: AsyncClient,
    topics: Vec<String>,
    shared: Arc<Shared>,
    progress: watch::Sender<Progress>,
    messages: mpsc::UnboundedSender<Message>,
) {
    let settle = |pending: &mut Option<Pending>, result: Result<(), String>| {
        if let Some(p) = pending.take() {
            let _ = p.done.send(result);
        }
    };
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Incoming::ConnAck(_))) => {
                if topics.is_empty() {
                    progress.send_modify(|p| p.subscribed += 1);
                } else {
                    let filters = topics
                        .iter()
                        .map(|t| SubscribeFilter::new(t.clone(), QoS::AtLeastOnce));
                    // The channel has room: one publish at a time and one
                    // subscribe per connection.
                    client
                        .try_subscribe_many(filters)
                        .expect("room in the HQ client's request queue");
                }
            }
            Ok(Event::Incoming(Incoming::SubAck(ack))) => {
                if ack
                    .return_codes
                    .iter()
                    .all(|c| matches!(c, SubscribeReasonCode::Success(_)))
                {
                    progress.send_modify(|p| p.subscribed += 1);
                } else {
                    progress.send_modify(|p| {
                        p.errors += 1;
                        p.last_error =
                            Some(format!("SUBACK for {topics:?}: {:?}", ack.return_codes));
                    });
                }
            }
            Ok(Event::Incoming(Incoming::Publish(publish))) => {
                let _ = messages.send(Message {
                    topic: publish.topic,
                    payload: publish.payload.to_vec(),
                    retain: publish.retain,
                });
            }
            Ok(Event::Outgoing(Outgoing::Publish(pkid))) => {
                let mut pending = lock(&shared.pending);
                match pending.as_mut() {
                    Some(p) if !p.qos1 => settle(&mut pending, Ok(())),
                    Some(p) if p.pkid.is_none() => p.pkid = Some(pkid),
                    _ => {}
                }
            }
            Ok(Event::Incoming(Incoming::PubAck(ack))) => {
                let mut pending = lock(&shared.pending);
                if pending.as_ref().is_some_and(|p| p.pkid == Some(ack.pkid)) {
                    settle(&mut pending, Ok(()));
                }
            }
            Ok(_) => {}
            Err(e) => {
                {
                    let mut pending = lock(&shared.pending);
                    // Whatever was queued or in flight is dropped at the
                    // next CONNACK (a clean session resumes nothing), and
                    // its stale "sent" events with it; received messages
                    // stay.
                    eventloop.clean();
                    eventloop
                        .state
                        .events
                        .retain(|e| !matches!(e, Event::Outgoing(_)));
                    settle(&mut pending, Err(e.to_string()));
                }
                progress.send_modify(|p| {
                    p.errors += 1;
                    p.last_error = Some(e.to_string());
                });
                tokio::time::sleep(RETRY).await;
            }
        }
    }
}

/// rustls on ring (the crate's only provider), trusting `ca` alone.
fn tls_transport(ca: &Path, client: Option<&CertFiles>) -> Transport {
    let mut roots = rustls::RootCertStore::empty();
    for cert in
        CertificateDer::pem_file_iter(ca).unwrap_or_else(|e| panic!("{}: {e}", ca.display()))
    {
        roots
            .add(cert.expect("a CA certificate"))
            .expect("a usable CA certificate");
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("ring supports the default TLS versions")
    .with_root_certificates(roots);
    let config = match client {
        None => builder.with_no_client_auth(),
        Some(files) => {
            let chain = CertificateDer::pem_file_iter(&files.cert)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .unwrap_or_else(|e| panic!("{}: {e}", files.cert.display()));
            let key = PrivateKeyDer::from_pem_file(&files.key)
                .unwrap_or_else(|e| panic!("{}: {e}", files.key.display()));
            builder
                .with_client_auth_cert(chain, key)
                .expect("a usable client certificate")
        }
    };
    Transport::tls_with_config(TlsConfiguration::Rustls(Arc::new(config)))
}
