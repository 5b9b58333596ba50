//! Tests of the MQTT test harness itself (`tests/common/{broker,proxy,pki,hq}.rs`):
//! if these fail, a failure in a link test says nothing about the link.

mod common;

use std::time::Duration;

use common::WAIT;
use common::broker::{Broker, BrokerTls};
use common::hq::Hq;
use common::pki::Pki;
use common::proxy::Proxy;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, timeout};

/// A TCP echo server on a free loopback port; returns the port.
async fn echo_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("echo listens");
    let port = listener.local_addr().expect("echo address").port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut read, mut write) = stream.split();
                let _ = tokio::io::copy(&mut read, &mut write).await;
            });
        }
    });
    port
}

async fn connect(port: u16) -> TcpStream {
    let stream = timeout(WAIT, TcpStream::connect(("127.0.0.1", port)))
        .await
        .expect("connected in time")
        .expect("connected");
    stream.set_nodelay(true).expect("nodelay");
    stream
}

/// Reads exactly `n` bytes, failing the test if they take longer than `WAIT`.
async fn read_n(stream: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0; n];
    timeout(WAIT, stream.read_exact(&mut buf))
        .await
        .unwrap_or_else(|_| panic!("{n} bytes did not come back in {WAIT:?}"))
        .expect("read");
    buf
}

/// Whether the peer closed or reset the connection (waiting at most `WAIT`).
async fn closed(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 16];
    match timeout(WAIT, stream.read(&mut buf)).await {
        Ok(Ok(0)) | Ok(Err(_)) => true,
        Ok(Ok(_)) => false,
        Err(_) => panic!("the connection neither closed nor sent anything in {WAIT:?}"),
    }
}

#[tokio::test]
async fn proxy_forwards_both_ways() {
    let proxy = Proxy::start(echo_server().await).await;
    let mut stream = connect(proxy.port()).await;
    stream.write_all(b"hello, broker").await.expect("write");
    assert_eq!(read_n(&mut stream, 13).await, b"hello, broker");
    assert_eq!(proxy.accepted(), 1);
    assert_eq!(proxy.live(), 1);
}

#[tokio::test]
async fn proxy_cut_closes_live_and_new_connections_until_restored() {
    let proxy = Proxy::start(echo_server().await).await;
    let mut live = connect(proxy.port()).await;
    live.write_all(b"up").await.expect("write");
    assert_eq!(read_n(&mut live, 2).await, b"up");

    proxy.cut().await;
    assert_eq!(proxy.live(), 0);
    assert!(
        closed(&mut live).await,
        "a live connection survived the cut"
    );
    let mut during = connect(proxy.port()).await;
    assert!(
        closed(&mut during).await,
        "a new connection was served while cut"
    );
    assert_eq!(
        proxy.accepted(),
        1,
        "connections during a cut are not served"
    );

    proxy.restore();
    let mut after = connect(proxy.port()).await;
    after.write_all(b"back").await.expect("write");
    assert_eq!(read_n(&mut after, 4).await, b"back");
    assert_eq!(proxy.accepted(), 2);
}

#[tokio::test]
async fn proxy_stall_holds_bytes_and_resume_delivers_them_in_order() {
    let proxy = Proxy::start(echo_server().await).await;
    let mut live = connect(proxy.port()).await;
    live.write_all(b"0").await.expect("write");
    assert_eq!(read_n(&mut live, 1).await, b"0");

    proxy.stall();
    for chunk in [b"1", b"2", b"3"] {
        live.write_all(chunk).await.expect("write while stalled");
    }
    let mut new = connect(proxy.port()).await;
    new.write_all(b"new").await.expect("write while stalled");
    // A lower bound on "nothing moves", not a synchronisation: a broken
    // stall shows up here as bytes arriving.
    let mut buf = [0u8; 8];
    let early = timeout(Duration::from_millis(300), live.read(&mut buf)).await;
    assert!(early.is_err(), "bytes passed a stalled proxy: {early:?}");
    assert_eq!(proxy.live(), 2, "a stall keeps connections open");

    proxy.resume();
    assert_eq!(read_n(&mut live, 3).await, b"123");
    assert_eq!(read_n(&mut new, 3).await, b"new");
}

#[tokio::test]
async fn proxy_delay_adds_latency_each_way_and_keeps_order() {
    let proxy = Proxy::start(echo_server().await).await;
    let mut stream = connect(proxy.port()).await;
    let delay = Duration::from_millis(50);
    proxy.set_delay(delay);
    let sent = Instant::now();
    stream.write_all(b"ping").await.expect("write");
    assert_eq!(read_n(&mut stream, 4).await, b"ping");
    let round_trip = sent.elapsed();
    assert!(
        round_trip >= 2 * delay,
        "round trip {round_trip:?} with {delay:?} each way"
    );

    // Bytes sent after the delay drops must not overtake earlier ones.
    stream.write_all(b"a").await.expect("write");
    proxy.set_delay(Duration::ZERO);
    stream.write_all(b"b").await.expect("write");
    assert_eq!(read_n(&mut stream, 2).await, b"ab");
}

/// The delay is a delay line, not a pause per read: 20 ms each way must not
/// cap a chatty connection at a few dozen writes a second.
#[tokio::test]
async fn proxy_delay_keeps_throughput() {
    const RECORDS: u32 = 30_000;
    let proxy = Proxy::start(echo_server().await).await;
    let stream = connect(proxy.port()).await;
    proxy.set_delay(Duration::from_millis(20));
    let (mut read, mut write) = stream.into_split();
    let started = Instant::now();
    let writer = tokio::spawn(async move {
        for i in 0..RECORDS {
            // One small write per record, like MQTT packets.
            write.write_all(&i.to_be_bytes()).await.expect("write");
        }
        write
    });
    let mut buf = [0u8; 4];
    for i in 0..RECORDS {
        timeout(WAIT, read.read_exact(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("record {i} did not come back in {WAIT:?}"))
            .expect("read");
        assert_eq!(u32::from_be_bytes(buf), i, "records out of order");
    }
    let elapsed = started.elapsed();
    let _write = writer.await.expect("writer");
    // Serialised (sleep per read) this takes minutes; a delay line about the
    // 40 ms round trip. The bound leaves room for a loaded CI machine.
    assert!(
        elapsed < Duration::from_secs(10),
        "{RECORDS} records took {elapsed:?}"
    );
}

#[tokio::test]
async fn hq_publishes_and_receives_and_survives_a_broker_crash() {
    let mut broker = Broker::start().await;
    let mut hq = Hq::builder(broker.port()).subscribe("t/#").connect().await;
    let other = Hq::builder(broker.port()).connect().await;
    other.publish("t/a", "one", true, false).await;
    let msg = hq.next(WAIT).await;
    assert_eq!(
        (msg.topic.as_str(), msg.text(), msg.retain),
        ("t/a", "one", false)
    );
    other.publish("r/a", "before the crash", true, true).await;

    broker.kill();
    assert!(!broker.is_running());
    broker.restart().await;
    assert!(broker.is_running());
    hq.wait_subscribed(2).await;
    other.wait_subscribed(2).await;
    other.publish("t/b", "two", true, false).await;
    let msg = hq.next(WAIT).await;
    assert_eq!((msg.topic.as_str(), msg.text()), ("t/b", "two"));

    // Retained messages come right after the SUBACK, before anything
    // published later: the marker arriving first shows the crash lost it.
    let mut late = Hq::builder(broker.port()).subscribe("r/a").connect().await;
    other.publish("r/a", "after the restart", true, false).await;
    let msg = late.next(WAIT).await;
    assert_eq!(
        msg.text(),
        "after the restart",
        "a retained message survived the crash"
    );
    assert!(hq.try_next().is_none());
}

#[tokio::test]
async fn hq_reconnects_through_a_cut_proxy() {
    let broker = Broker::start().await;
    let proxy = Proxy::start(broker.port()).await;
    let mut hq = Hq::builder(proxy.port()).subscribe("t/#").connect().await;
    proxy.cut().await;
    proxy.restore();
    hq.wait_subscribed(2).await;
    assert!(proxy.accepted() >= 2);
    hq.publish("t/x", "through", true, false).await;
    assert_eq!(hq.next(WAIT).await.text(), "through");
}

#[tokio::test]
async fn mutual_tls_lets_in_a_client_certificate_and_refuses_none() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let pki = Pki::new(dir.path());
    let hq_cert = pki.client("hq");
    let broker = Broker::builder().tls(BrokerTls::mutual(&pki)).start().await;

    let mut hq = Hq::builder(broker.port())
        .tls(&pki.ca, Some(&hq_cert))
        .subscribe("t/#")
        .connect()
        .await;
    hq.publish("t/tls", "secret", true, false).await;
    assert_eq!(hq.next(WAIT).await.text(), "secret");
    // use_identity_as_username: the certificate's CN is the user.
    assert!(broker.log().contains("u'hq'"), "{}", broker.log());

    let refused = Hq::builder(broker.port())
        .tls(&pki.ca, None)
        .subscribe("t/#")
        .try_connect()
        .await;
    // rustls' words for the broker's TLS alert.
    let error = refused
        .err()
        .expect("a client without a certificate got in");
    assert!(error.contains("CertificateRequired"), "{error}");

    // The broker's certificate is checked too: a client trusting another
    // CA refuses it.
    let other_dir = tempfile::tempdir().expect("a temp dir");
    let other = Pki::new(other_dir.path());
    let stranger = other.client("hq");
    let refused = Hq::builder(broker.port())
        .tls(&other.ca, Some(&stranger))
        .try_connect()
        .await;
    let error = refused
        .err()
        .expect("a client trusted a broker of another CA");
    assert!(error.contains("invalid peer certificate"), "{error}");
}

#[tokio::test]
async fn tls_by_name_localhost() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let pki = Pki::new(dir.path());
    let broker = Broker::builder()
        .tls(BrokerTls::server_only(&pki))
        .start()
        .await;
    let hq = Hq::builder(broker.port())
        .host("localhost")
        .tls(&pki.ca, None)
        .connect()
        .await;
    hq.publish("t/name", "ok", true, false).await;
}
