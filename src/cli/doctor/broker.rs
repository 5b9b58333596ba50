//! One connection to HQ's broker with the gate's own `[mqtt]` settings
//! (address, TLS, certificates, password), reporting the CONNACK or why
//! there was none.

use std::time::Duration;

use rumqttc::{AsyncClient, ConnectionError, Event, Packet};

use super::report::Check;
use crate::config::Config;
use crate::link::options::mqtt_options;

/// How long the broker has to answer.
pub const WAIT: Duration = Duration::from_secs(10);

/// Connects once and reports; a skip when `[mqtt]` is off.
pub async fn check(cfg: &Config, wait: Duration) -> Check {
    if !cfg.mqtt.enabled {
        return Check::skip("broker", "[mqtt] enabled = false: the gate runs without HQ");
    }
    let url = crate::link::broker_url(cfg);
    // Its own client id: the gate's would take over the gate's session.
    let id = format!(
        "{}-{}-{}-doctor",
        cfg.gate.site, cfg.gate.lot, cfg.gate.gate
    );
    let mut options = match mqtt_options(&cfg.mqtt, &id) {
        Ok(o) => o,
        Err(e) => {
            return Check::fail(
                "broker",
                format!("{url}: {e}"),
                "fix the files named in [mqtt] (paths, permissions, PEM contents); \
                 `parkgate check-config` checks the keys",
            );
        }
    };
    options.set_clean_session(true);
    let (client, mut eventloop) = AsyncClient::new(options, 10);
    let answer = tokio::time::timeout(wait, async {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(ack))) => return Ok(ack),
                Ok(_) => continue,
                Err(e) => return Err(e),
            }
        }
    })
    .await;
    match answer {
        Ok(Ok(ack)) => {
            // Said politely, but a broker that does not answer it changes nothing.
            let _ = client.try_disconnect();
            let _ = tokio::time::timeout(Duration::from_secs(1), eventloop.poll()).await;
            Check::pass("broker", format!("{url}: CONNACK {:?}", ack.code))
        }
        Ok(Err(e)) => Check::fail("broker", format!("{url}: {e}"), hint(&e)),
        Err(_) => Check::fail(
            "broker",
            format!("{url}: no answer in {wait:?}"),
            "packets are lost on the way: check routing and firewalls between the gate and the broker, \
             and that [mqtt] port is the broker's (8883 for TLS)",
        ),
    }
}

/// What to look at, by the kind of failure.
fn hint(e: &ConnectionError) -> String {
    match e {
        ConnectionError::ConnectionRefused(code) => format!(
            "the broker refused us ({code:?}): check [mqtt] username and password_file, \
             or that the client certificate's name is allowed in the broker's ACL"
        ),
        ConnectionError::Tls(_) => "TLS failed: [mqtt] host must match the broker certificate's name, \
             ca_file must be the CA that signed it, and client_cert/client_key must be the gate's pair"
            .into(),
        ConnectionError::Io(io) => io_hint(io.kind()),
        _ => "see the error; `mosquitto_sub -h HOST -p PORT -t test` from the gate tells the same story".into(),
    }
}

fn io_hint(kind: std::io::ErrorKind) -> String {
    use std::io::ErrorKind::*;
    match kind {
        ConnectionRefused => "nothing listens there: is the broker running, is [mqtt] port right \
             (1883 plain, 8883 TLS), is a firewall rejecting us?"
            .into(),
        TimedOut | HostUnreachable | NetworkUnreachable => {
            "the broker cannot be reached: check the network, routing and firewalls".into()
        }
        _ => "check [mqtt] host (DNS) and port, and the gate's network".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::doctor::report::Outcome;

    fn config(enabled: bool, port: u16) -> Config {
        let mut cfg = crate::config::parse(include_str!("../../../config/demo.toml")).unwrap();
        cfg.mqtt.enabled = enabled;
        cfg.mqtt.host = "127.0.0.1".into();
        cfg.mqtt.port = port;
        cfg
    }

    #[tokio::test]
    async fn a_disabled_link_is_skipped() {
        let c = check(&config(false, 1), WAIT).await;
        assert_eq!(c.outcome, Outcome::Skip);
    }

    #[tokio::test]
    async fn a_port_nobody_listens_on_fails_with_a_hint() {
        // A port just freed: nothing listens there now.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let c = check(&config(true, port), WAIT).await;
        assert_eq!(c.outcome, Outcome::Fail, "{c:?}");
        assert!(
            c.detail.starts_with(&format!("mqtt://127.0.0.1:{port}: ")),
            "{c:?}"
        );
        assert!(c.hint.unwrap().contains("nothing listens"));
    }

    #[tokio::test]
    async fn a_listener_that_never_answers_times_out() {
        // Accepted by the kernel's backlog, never answered.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = silent.local_addr().unwrap().port();
        let c = check(&config(true, port), Duration::from_millis(300)).await;
        assert_eq!(c.outcome, Outcome::Fail, "{c:?}");
        assert!(c.detail.ends_with("no answer in 300ms"), "{c:?}");
    }
}
