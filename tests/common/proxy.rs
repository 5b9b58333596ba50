//! A TCP proxy between a client and a broker that a test can break on
//! purpose while connections are live: cut them, stall them, or slow them
//! down.
//!
//! ```ignore
//! let proxy = Proxy::start(broker.port()).await;   // point the gate at proxy.port()
//! proxy.cut().await;      // every connection reset; new ones too, until...
//! proxy.restore();
//! proxy.stall();          // connections stay up, nothing moves (a dead link
//! proxy.resume();         // TCP can't see); what was held arrives, in order
//! proxy.set_delay(Duration::from_millis(20));   // added latency each way
//! ```
//!
//! Each direction of a connection is a delay line: a reader stamps every
//! chunk it reads with "due at read time + delay" and queues it, a writer
//! sends chunks in order once due. The reader never waits for the writer
//! (up to a deep queue), so a delay adds latency without cutting
//! throughput. A stall holds the writers; a cut resets both sockets (RST,
//! so the client notices at once, as after a broker or NAT reset).
//!
//! Only std and tokio here: benches include this file with
//! `#[path = "../tests/common/proxy.rs"] mod proxy;`.

// A bench including this file uses only part of it.
#![allow(dead_code)]

use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// The longest [`Proxy::cut`] and [`Proxy::wait_accepted`] wait before
/// failing the test.
const WAIT: Duration = Duration::from_secs(20);

/// Chunks queued per direction before the reader stops reading (then TCP's
/// own flow control pushes back on the sender).
const QUEUE: usize = 4096;

/// What the proxy does with traffic right now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Open,
    Stalled,
    Cut,
}

struct Shared {
    mode: watch::Sender<Mode>,
    delay_us: AtomicU64,
    /// Connections being served now.
    live: watch::Sender<usize>,
    /// Connections accepted and served since the start.
    accepted: watch::Sender<u64>,
}

impl Shared {
    fn delay(&self) -> Duration {
        Duration::from_micros(self.delay_us.load(Ordering::Relaxed))
    }

    /// Resolves once the proxy is cut (at once if it is already).
    fn cut(&self) -> impl Future<Output = ()> + use<> {
        let mut mode = self.mode.subscribe();
        async move {
            let _ = mode.wait_for(|m| *m == Mode::Cut).await;
        }
    }
}

/// A loopback TCP proxy to one target port; see the module doc. Dropping it
/// closes every connection.
pub struct Proxy {
    port: u16,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

impl Proxy {
    /// Listens on a free loopback port and forwards each connection to
    /// `127.0.0.1:target_port`.
    pub async fn start(target_port: u16) -> Proxy {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("proxy listens");
        let port = listener.local_addr().expect("proxy address").port();
        let shared = Arc::new(Shared {
            mode: watch::Sender::new(Mode::Open),
            delay_us: AtomicU64::new(0),
            live: watch::Sender::new(0),
            accepted: watch::Sender::new(0),
        });
        let target = SocketAddr::from((Ipv4Addr::LOCALHOST, target_port));
        let accept = tokio::spawn(accept_loop(listener, target, Arc::clone(&shared)));
        Proxy {
            port,
            shared,
            accept,
        }
    }

    /// The port clients connect to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Resets every live connection and every new one until
    /// [`Proxy::restore`]. Returns once all live connections are closed, so
    /// the test can rely on the client having been disconnected.
    pub async fn cut(&self) {
        self.shared.mode.send_replace(Mode::Cut);
        let mut live = self.shared.live.subscribe();
        tokio::time::timeout(WAIT, live.wait_for(|n| *n == 0))
            .await
            .unwrap_or_else(|_| panic!("proxy connections still open {WAIT:?} after a cut"))
            .expect("the proxy's state lives as long as the proxy");
    }

    /// Ends a [`Proxy::cut`]: new connections are forwarded again.
    pub fn restore(&self) {
        let was = self.shared.mode.send_replace(Mode::Open);
        assert_eq!(was, Mode::Cut, "restore() undoes cut()");
    }

    /// Holds every byte in both directions, on live and new connections,
    /// while keeping them open: to the endpoints the link looks silent, as
    /// when a cable or a NAT drops packets. Bytes keep being read and are
    /// delivered, in order, after [`Proxy::resume`].
    pub fn stall(&self) {
        let was = self.shared.mode.send_replace(Mode::Stalled);
        assert_eq!(was, Mode::Open, "stall() on a proxy that is not open");
    }

    /// Ends a [`Proxy::stall`]: held bytes flow on.
    pub fn resume(&self) {
        let was = self.shared.mode.send_replace(Mode::Open);
        assert_eq!(was, Mode::Stalled, "resume() undoes stall()");
    }

    /// Adds `delay` of latency in each direction to bytes read from now on
    /// (so a round trip takes at least twice that). Order is kept; chunks
    /// in flight overlap, so throughput does not drop.
    pub fn set_delay(&self, delay: Duration) {
        let us = u64::try_from(delay.as_micros()).expect("a sane delay");
        self.shared.delay_us.store(us, Ordering::Relaxed);
    }

    /// Connections being forwarded now.
    pub fn live(&self) -> usize {
        *self.shared.live.borrow()
    }

    /// Connections accepted and forwarded since the start (refused ones
    /// during a cut not counted).
    pub fn accepted(&self) -> u64 {
        *self.shared.accepted.borrow()
    }

    /// Waits until `n` connections have been accepted in all: "the client
    /// reconnected" after a cut is `wait_accepted(before + 1)`.
    pub async fn wait_accepted(&self, n: u64) {
        let mut accepted = self.shared.accepted.subscribe();
        tokio::time::timeout(WAIT, accepted.wait_for(|a| *a >= n))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "the proxy accepted {} connections in {WAIT:?}, not {n}",
                    self.accepted()
                )
            })
            .expect("the proxy's state lives as long as the proxy");
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        // Each connection task ends on a cut.
        self.shared.mode.send_replace(Mode::Cut);
    }
}

async fn accept_loop(listener: TcpListener, target: SocketAddr, shared: Arc<Shared>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            // Out of file descriptors or a connection reset before accept:
            // the next accept may work.
            continue;
        };
        if *shared.mode.borrow() == Mode::Cut {
            reset(&client);
            continue;
        }
        // Counted here, not in the task, so a cut() right now waits for it.
        shared.live.send_modify(|n| *n += 1);
        shared.accepted.send_modify(|n| *n += 1);
        tokio::spawn(serve(client, target, Arc::clone(&shared)));
    }
}

/// Counts a connection as live until its task ends, however it ends.
struct Live(Arc<Shared>);

impl Drop for Live {
    fn drop(&mut self) {
        self.0.live.send_modify(|n| *n -= 1);
    }
}

async fn serve(client: TcpStream, target: SocketAddr, shared: Arc<Shared>) {
    let _live = Live(Arc::clone(&shared));
    let upstream = tokio::select! {
        upstream = TcpStream::connect(target) => upstream,
        () = shared.cut() => {
            reset(&client);
            return;
        }
    };
    let Ok(upstream) = upstream else {
        // Nothing listens on the target (a killed broker): the client sees
        // the same refusal it would get connecting directly.
        reset(&client);
        return;
    };
    // MQTT packets are small: do not let Nagle add latency of its own.
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let (mut client_read, mut client_write) = client.into_split();
    let (mut upstream_read, mut upstream_write) = upstream.into_split();
    let finished = tokio::select! {
        both = async {
            tokio::try_join!(
                pipe(&mut client_read, &mut upstream_write, &shared),
                pipe(&mut upstream_read, &mut client_write, &shared),
            )
        } => both.is_ok(),
        () = shared.cut() => false,
    };
    if !finished {
        reset(client_write.as_ref());
        reset(upstream_write.as_ref());
    }
}

/// Makes the coming close a reset (RST) rather than a clean FIN.
fn reset(stream: &TcpStream) {
    let _ = stream.set_zero_linger();
}

/// Forwards one direction through a delay line until EOF, then passes the
/// EOF on (half-close), as TCP would.
async fn pipe(
    src: &mut OwnedReadHalf,
    dst: &mut OwnedWriteHalf,
    shared: &Shared,
) -> io::Result<()> {
    let (tx, mut rx) = mpsc::channel::<(Instant, Vec<u8>)>(QUEUE);
    let read = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = src.read(&mut buf).await?;
            if n == 0 {
                return Ok(());
            }
            let due = Instant::now() + shared.delay();
            if tx.send((due, buf[..n].to_vec())).await.is_err() {
                // The writer failed; it reports the error.
                return Ok(());
            }
        }
    };
    let write = async {
        let mut mode = shared.mode.subscribe();
        while let Some((due, bytes)) = rx.recv().await {
            // A sleep to a past deadline can still wait for the next timer
            // tick; chunks already due go out at once.
            if due > Instant::now() {
                tokio::time::sleep_until(due).await;
            }
            // Held while stalled; when cut, the caller drops this future.
            let _ = mode.wait_for(|m| *m == Mode::Open).await;
            dst.write_all(&bytes).await?;
        }
        dst.shutdown().await
    };
    tokio::try_join!(read, write).map(|_| ())
}
