//! `parkgate alerts`: the security desk follows a lot's (or a site's, or
//! every site's) alerts and denials live from the MQTT broker, one line
//! each, or the payloads as JSON lines.
//!
//! - [`AlertsArgs`]: the flags, and how they combine with a gate's config
//!   file into a broker and a [`Scope`] ([`AlertsArgs::resolve`]).
//! - [`format`](mod@format): what one message prints, pure and tested without a broker.
//! - [`follow`]: the small MQTT part: connect, subscribe, print, reconnect.
//!
//! The subscription is a clean session: the desk sees what happens while it
//! watches. What happened before is in HQ's records and each gate's journal
//! (`parkgate events`), not here.

pub mod format;

use std::future::Future;
use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS, SubscribeFilter, SubscribeReasonCode};

use crate::config::{Config, MqttConfig};
use crate::link::options::{self, SetupError};
use format::{Follower, Outcome};

/// The config file read when neither `--config` nor `PARKGATE_CONFIG` names
/// one: a gate's own, for a guard at the gate's console.
pub const DEFAULT_CONFIG: &str = "/etc/parkgate/gate.toml";

/// The flags of `parkgate alerts`. Broker flags override the config file's
/// `[mqtt]` keys; without a config file, `--host` is required.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct AlertsArgs {
    /// A gate's config file: its mqtt section names the broker and its gate
    /// section's site and lot are the default scope [default: /etc/parkgate/gate.toml,
    /// if it exists].
    #[arg(long, short, env = "PARKGATE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The broker's host name or address (overrides the config's).
    #[arg(long)]
    pub host: Option<String>,
    /// The broker's port [default: the config's, else 1883, or 8883 with TLS].
    #[arg(long)]
    pub port: Option<u16>,
    /// Connect over TLS (implied by --ca-file, --client-cert, --client-key).
    #[arg(long)]
    pub tls: bool,
    /// CA bundle to verify the broker with [default: the system's roots].
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// Client certificate for mutual TLS (with --client-key).
    #[arg(long, value_name = "FILE")]
    pub client_cert: Option<PathBuf>,
    /// Private key of --client-cert.
    #[arg(long, value_name = "FILE")]
    pub client_key: Option<PathBuf>,
    /// Broker user name.
    #[arg(long)]
    pub username: Option<String>,
    /// File whose first line is the broker password (kept off the command line,
    /// where `ps` would show it).
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// Follow this site [default: the config's site and lot].
    #[arg(long, conflicts_with = "all")]
    pub site: Option<String>,
    /// Follow only this lot of --site.
    #[arg(long, requires = "site")]
    pub lot: Option<String>,
    /// Follow every site and lot on the broker.
    #[arg(long)]
    pub all: bool,
    /// Print each event's JSON payload as received, one per line.
    #[arg(long)]
    pub json: bool,
}

/// Which gates' alerts and denials to follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every gate of one lot.
    Lot { site: String, lot: String },
    /// Every gate of every lot of one site.
    Site { site: String },
    /// Every gate on the broker.
    All,
}

impl Scope {
    /// The subscriptions: `parkgate/v1/{site}/{lot}/gates/+/events/alert`
    /// and `.../denied`, with `+` for what the scope leaves open.
    pub fn topics(&self) -> Vec<String> {
        let (site, lot) = match self {
            Scope::Lot { site, lot } => (site.as_str(), lot.as_str()),
            Scope::Site { site } => (site.as_str(), "+"),
            Scope::All => ("+", "+"),
        };
        ["alert", "denied"]
            .iter()
            .map(|kind| format!("parkgate/v1/{site}/{lot}/gates/+/events/{kind}"))
            .collect()
    }
}

/// Everything [`follow`] needs, from [`AlertsArgs::resolve`].
#[derive(Debug, Clone)]
pub struct Follow {
    /// The broker and how to reach it.
    pub mqtt: MqttConfig,
    pub scope: Scope,
    /// Payloads as JSON lines instead of human lines.
    pub json: bool,
}

/// Why `parkgate alerts` cannot start, or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum AlertsError {
    /// No config file to read the broker from, and no `--host`.
    #[error(
        "no broker to follow: no config file at {} and no --host; \
         give --config FILE (a gate's config) or --host HOST",
        path.display()
    )]
    NoBroker { path: PathBuf },
    /// Broker from flags only, and no scope flag.
    #[error("without a config file, say what to follow: --site S [--lot L], or --all")]
    NoScope,
    /// A site or lot that is not a contract name; as a topic level, `+` or
    /// `#` would widen the subscription instead of failing.
    #[error("--{flag} {value:?} is not a site or lot name: use 1-32 of a-z, 0-9 and '-'")]
    BadName { flag: &'static str, value: String },
    /// A password file without a user name: the broker would never see it.
    #[error("--password-file (or password_file) needs --username (or username)")]
    PasswordWithoutUser,
    /// The broker's files (CA, certificate, key, password) are unusable.
    #[error(transparent)]
    Setup(#[from] SetupError),
    /// The broker refused a subscription (its ACL forbids the topic).
    #[error("the broker {broker} refused the subscription to {topic}")]
    Refused { broker: String, topic: String },
    /// Stdout is gone (e.g. the reader of a pipe quit).
    #[error("writing to stdout: {0}")]
    Output(#[source] std::io::Error),
}

impl AlertsArgs {
    /// The config file to read: the named one (which must then exist), or
    /// [`DEFAULT_CONFIG`] if it exists; `None` if neither.
    pub fn config_file(&self) -> Option<PathBuf> {
        match &self.config {
            Some(path) => Some(path.clone()),
            None => Some(PathBuf::from(DEFAULT_CONFIG)).filter(|p| p.exists()),
        }
    }

    /// The broker and scope from `cfg` (the file [`Self::config_file`] names,
    /// loaded) with the flags laid over it.
    pub fn resolve(&self, cfg: Option<&Config>) -> Result<Follow, AlertsError> {
        let follow = self.laid_over(cfg)?;
        if follow.mqtt.password_file.is_some() && follow.mqtt.username.is_none() {
            return Err(AlertsError::PasswordWithoutUser);
        }
        Ok(follow)
    }

    fn laid_over(&self, cfg: Option<&Config>) -> Result<Follow, AlertsError> {
        let Some(cfg) = cfg else {
            let Some(host) = &self.host else {
                return Err(AlertsError::NoBroker {
                    path: self
                        .config
                        .clone()
                        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG)),
                });
            };
            let mut mqtt = MqttConfig {
                host: host.clone(),
                ..MqttConfig::default()
            };
            self.overlay(&mut mqtt);
            mqtt.port = self.port.unwrap_or(if mqtt.tls { 8883 } else { 1883 });
            return Ok(Follow {
                mqtt,
                scope: self.scope(None)?,
                json: self.json,
            });
        };
        let mut mqtt = cfg.mqtt.clone();
        if let Some(host) = &self.host {
            mqtt.host = host.clone();
        }
        if let Some(port) = self.port {
            mqtt.port = port;
        }
        self.overlay(&mut mqtt);
        Ok(Follow {
            mqtt,
            scope: self.scope(Some((&cfg.gate.site, &cfg.gate.lot)))?,
            json: self.json,
        })
    }

    /// The TLS and credential flags over `m`.
    fn overlay(&self, m: &mut MqttConfig) {
        let replace = |slot: &mut Option<PathBuf>, flag: &Option<PathBuf>| {
            if flag.is_some() {
                slot.clone_from(flag);
            }
        };
        replace(&mut m.ca_file, &self.ca_file);
        replace(&mut m.client_cert, &self.client_cert);
        replace(&mut m.client_key, &self.client_key);
        replace(&mut m.password_file, &self.password_file);
        if self.username.is_some() {
            m.username.clone_from(&self.username);
        }
        // A CA or a client certificate is only ever used over TLS; taking
        // one without TLS would silently connect in plain text.
        let tls_files = [&self.ca_file, &self.client_cert, &self.client_key];
        m.tls |= self.tls || tls_files.iter().any(|f| f.is_some());
    }

    fn scope(&self, default: Option<(&str, &str)>) -> Result<Scope, AlertsError> {
        if self.all {
            return Ok(Scope::All);
        }
        let name = |flag: &'static str, value: &str| {
            let ok = (1..=32).contains(&value.len())
                && value
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if ok {
                Ok(value.to_string())
            } else {
                Err(AlertsError::BadName {
                    flag,
                    value: value.to_string(),
                })
            }
        };
        match (&self.site, &self.lot, default) {
            (Some(site), Some(lot), _) => Ok(Scope::Lot {
                site: name("site", site)?,
                lot: name("lot", lot)?,
            }),
            (Some(site), None, _) => Ok(Scope::Site {
                site: name("site", site)?,
            }),
            // A config's names were checked when it was loaded.
            (None, _, Some((site, lot))) => Ok(Scope::Lot {
                site: site.to_string(),
                lot: lot.to_string(),
            }),
            (None, _, None) => Err(AlertsError::NoScope),
        }
    }
}

/// `mqtt://host:port` or `mqtts://host:port`, as `parkgate status` shows a broker.
pub fn broker_url(m: &MqttConfig) -> String {
    let scheme = if m.tls { "mqtts" } else { "mqtt" };
    format!("{scheme}://{}:{}", m.host, m.port)
}

/// `parkgate-alerts-{host}-{random}`: the host tells the broker's log which
/// desk it is, the random part lets two desks (or two windows of one) on
/// the same host connect at once instead of taking over each other's id.
pub fn client_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let host: String = host
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(32)
        .collect();
    let host = if host.is_empty() {
        std::process::id().to_string()
    } else {
        host
    };
    format!("parkgate-alerts-{host}-{:08x}", fastrand::u32(..))
}

/// The first wait before connecting again, and the longest: a broker
/// restart takes seconds, and a guard should not wait a minute after it.
const RETRY_FIRST: Duration = Duration::from_millis(250);
const RETRY_MOST: Duration = Duration::from_secs(5);

/// Follows `f.scope` on the broker until `shutdown` resolves: prints each
/// alert and denial on stdout and `following <topics> on <broker>` on stderr
/// each time the subscription is in place. A lost or refused connection is
/// reported on stderr and tried again; only unusable TLS or password files
/// (before the first connection), a refused subscription or a closed stdout
/// end it with an error.
///
/// `following` means the broker took the subscription, not that its ACL
/// lets this user read it: Mosquitto 2 grants a forbidden subscription and
/// then delivers nothing. With the shipped ACL only user `security` reads
/// alerts and denials.
pub async fn follow(f: Follow, shutdown: impl Future<Output = ()>) -> Result<(), AlertsError> {
    tokio::pin!(shutdown);
    let topics = f.scope.topics();
    let broker = broker_url(&f.mqtt);
    let id = client_id();
    let mut follower = Follower::new(f.json);
    let mut wait = RETRY_FIRST;
    let mut connected_once = false;
    loop {
        let why = match options::mqtt_options(&f.mqtt, &id) {
            Ok(options) => {
                let mut session = Session {
                    topics: &topics,
                    broker: &broker,
                    follower: &mut follower,
                };
                match session.run(options, shutdown.as_mut()).await {
                    Ended::Stopped => return Ok(()),
                    Ended::Failed(e) => return Err(e),
                    Ended::Lost { why, subscribed } => {
                        if subscribed {
                            connected_once = true;
                            wait = RETRY_FIRST;
                        }
                        why
                    }
                }
            }
            // At start a bad file is a mistake to fix now; later, perhaps a
            // certificate being renewed on disk, so try again.
            Err(e) if !connected_once => return Err(e.into()),
            Err(e) => e.to_string(),
        };
        eprintln!(
            "lost {broker}: {why}; trying again in {} ms",
            wait.as_millis()
        );
        tokio::select! {
            _ = shutdown.as_mut() => return Ok(()),
            _ = tokio::time::sleep(wait) => {}
        }
        wait = (wait * 2).min(RETRY_MOST);
    }
}

/// How one connection ended.
enum Ended {
    Stopped,
    Failed(AlertsError),
    /// Try again; `subscribed`: it had worked this time.
    Lost {
        why: String,
        subscribed: bool,
    },
}

/// One connection: a fresh client, so a reconnect starts from a clean
/// session and subscribes anew.
struct Session<'a> {
    topics: &'a [String],
    broker: &'a str,
    follower: &'a mut Follower,
}

impl Session<'_> {
    async fn run(
        &mut self,
        mut options: MqttOptions,
        mut shutdown: std::pin::Pin<&mut impl Future<Output = ()>>,
    ) -> Ended {
        options.set_clean_session(true);
        let (client, mut eventloop) = AsyncClient::new(options, 16);
        let mut subscribed = false;
        loop {
            let event = tokio::select! {
                biased;
                _ = shutdown.as_mut() => return Ended::Stopped,
                event = eventloop.poll() => event,
            };
            let lost = |why: String| Ended::Lost { why, subscribed };
            match event {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    let filters = self
                        .topics
                        .iter()
                        .map(|t| SubscribeFilter::new(t.clone(), QoS::AtLeastOnce));
                    if let Err(e) = client.try_subscribe_many(filters) {
                        return lost(e.to_string());
                    }
                }
                Ok(Event::Incoming(Packet::SubAck(ack))) => {
                    let refused = ack
                        .return_codes
                        .iter()
                        .zip(self.topics)
                        .find(|(code, _)| **code == SubscribeReasonCode::Failure);
                    if let Some((_, topic)) = refused {
                        return Ended::Failed(AlertsError::Refused {
                            broker: self.broker.to_string(),
                            topic: topic.clone(),
                        });
                    }
                    subscribed = true;
                    eprintln!("following {} on {}", self.topics.join(", "), self.broker);
                }
                Ok(Event::Incoming(Packet::Publish(publish))) => {
                    match self.follower.on_message(&publish.topic, &publish.payload) {
                        Outcome::Print(line) => {
                            if let Err(e) = writeln!(std::io::stdout(), "{line}") {
                                return Ended::Failed(AlertsError::Output(e));
                            }
                        }
                        Outcome::Bad(line) => eprintln!("{line}"),
                        Outcome::Repeat => {}
                    }
                }
                Ok(_) => {}
                Err(e) => return lost(e.to_string()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use clap::Parser as _;

    use super::*;

    #[derive(clap::Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        args: AlertsArgs,
    }

    fn parse(flags: &[&str]) -> Result<AlertsArgs, clap::Error> {
        let argv = std::iter::once("alerts").chain(flags.iter().copied());
        Cli::try_parse_from(argv).map(|cli| cli.args)
    }

    fn args(flags: &[&str]) -> AlertsArgs {
        parse(flags).unwrap()
    }

    fn gate_config() -> Config {
        crate::config::parse(
            "[gate]\nsite = \"b1\"\nlot = \"main\"\ngate = \"entry-1\"\nrole = \"entry\"\n\
             timezone = \"Asia/Ho_Chi_Minh\"\n\n[capacity]\nstandard = 20\n\n[mqtt]\nhost = \"hq.example\"\nport = 8883\n\
             tls = true\nusername = \"gate\"\n",
        )
        .unwrap()
    }

    #[test]
    fn scopes_make_lot_site_and_all_topics() {
        let lot = Scope::Lot {
            site: "b1".into(),
            lot: "main".into(),
        };
        assert_eq!(
            lot.topics(),
            [
                "parkgate/v1/b1/main/gates/+/events/alert",
                "parkgate/v1/b1/main/gates/+/events/denied"
            ]
        );
        let site = Scope::Site { site: "b1".into() };
        assert_eq!(site.topics()[0], "parkgate/v1/b1/+/gates/+/events/alert");
        assert_eq!(
            Scope::All.topics()[1],
            "parkgate/v1/+/+/gates/+/events/denied"
        );
    }

    #[test]
    fn the_config_gives_broker_and_lot_and_flags_override_it() {
        let cfg = gate_config();
        let f = args(&[]).resolve(Some(&cfg)).unwrap();
        assert_eq!(broker_url(&f.mqtt), "mqtts://hq.example:8883");
        assert_eq!(f.mqtt.username.as_deref(), Some("gate"));
        assert_eq!(
            f.scope,
            Scope::Lot {
                site: "b1".into(),
                lot: "main".into()
            }
        );
        let f = args(&[
            "--host", "10.0.0.5", "--port", "1884", "--site", "b2", "--json",
        ])
        .resolve(Some(&cfg))
        .unwrap();
        assert_eq!(broker_url(&f.mqtt), "mqtts://10.0.0.5:1884");
        assert_eq!(f.scope, Scope::Site { site: "b2".into() });
        assert!(f.json);
        let f = args(&["--all"]).resolve(Some(&cfg)).unwrap();
        assert_eq!(f.scope, Scope::All);
    }

    #[test]
    fn flags_alone_need_a_host_and_a_scope() {
        let err = args(&["--site", "b1"]).resolve(None).unwrap_err();
        assert!(matches!(err, AlertsError::NoBroker { .. }), "{err}");
        assert!(err.to_string().contains("--host"), "{err}");
        let err = args(&["--host", "h"]).resolve(None).unwrap_err();
        assert!(matches!(err, AlertsError::NoScope), "{err}");
        let f = args(&["--host", "h", "--site", "b1", "--lot", "main"])
            .resolve(None)
            .unwrap();
        assert_eq!(broker_url(&f.mqtt), "mqtt://h:1883");
    }

    #[test]
    fn a_tls_file_means_tls_and_its_default_port() {
        let f = args(&["--host", "h", "--all", "--ca-file", "/etc/ssl/ca.pem"])
            .resolve(None)
            .unwrap();
        assert!(f.mqtt.tls);
        assert_eq!(f.mqtt.port, 8883);
        assert_eq!(
            f.mqtt.ca_file.as_deref(),
            Some(Path::new("/etc/ssl/ca.pem"))
        );
    }

    #[test]
    fn a_password_needs_a_user_name() {
        let err = args(&["--host", "h", "--all", "--password-file", "/etc/pass"])
            .resolve(None)
            .unwrap_err();
        assert!(matches!(err, AlertsError::PasswordWithoutUser), "{err}");
        let cfg = gate_config();
        let f = args(&["--password-file", "/etc/pass"])
            .resolve(Some(&cfg))
            .unwrap();
        assert_eq!(
            f.mqtt.username.as_deref(),
            Some("gate"),
            "the config's user"
        );
    }

    #[test]
    fn wildcards_and_odd_names_are_refused_as_scope() {
        for bad in ["+", "#", "B1", "", "a/b"] {
            let err = args(&["--host", "h", "--site", bad])
                .resolve(None)
                .unwrap_err();
            assert!(matches!(err, AlertsError::BadName { .. }), "{bad:?}: {err}");
        }
    }

    #[test]
    fn lot_needs_site_and_all_excludes_site() {
        assert!(parse(&["--lot", "main"]).is_err());
        assert!(parse(&["--all", "--site", "b1"]).is_err());
    }

    #[test]
    fn client_ids_differ_between_runs() {
        let (a, b) = (client_id(), client_id());
        assert!(a.starts_with("parkgate-alerts-"), "{a}");
        assert_ne!(a, b);
    }
}
