//! The control socket: accepts clients, applies their requests, feeds watchers.

use std::future::Future;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::broadcast;

use super::{Shared, SimInput, SimOutput, SimRequest, WatchLine, io_err};
use crate::{Credential, HalError, ReaderEvent, ReaderHealth};

/// Serves the sim control protocol on a Unix socket until dropped.
pub struct SimServer {
    listener: UnixListener,
    path: PathBuf,
    shared: Arc<Shared>,
}

impl SimServer {
    pub(super) fn bind(path: &Path, shared: Arc<Shared>) -> Result<SimServer, HalError> {
        remove_stale(path)?;
        let listener = UnixListener::bind(path).map_err(|e| io_err("bind", path, e))?;
        Ok(SimServer {
            listener,
            path: path.to_path_buf(),
            shared,
        })
    }

    /// The socket path clients connect to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Accepts clients forever, each on its own task. Returns only if
    /// accepting fails; dropping the future stops accepting, ends every
    /// client's task with it (a daemon that stops leaves nothing running)
    /// and removes the socket file.
    pub async fn run(self) -> Result<(), HalError> {
        self.run_until(std::future::pending()).await
    }

    /// [`SimServer::run`] until `stop` resolves; then every watcher is sent
    /// the lines already queued for it (the outputs of the last commands)
    /// before its connection ends, so a watcher sees everything the
    /// hardware did up to the stop. `parkgate doctor` stops its sim so.
    pub async fn run_until(self, stop: impl Future<Output = ()>) -> Result<(), HalError> {
        let mut clients = tokio::task::JoinSet::new();
        let (drain, draining) = tokio::sync::watch::channel(false);
        tokio::pin!(stop);
        loop {
            tokio::select! {
                accepted = self.listener.accept() => {
                    let (stream, _) = accepted.map_err(|e| io_err("accept on", &self.path, e))?;
                    clients.spawn(serve(stream, self.shared.clone(), draining.clone()));
                }
                // Reap the clients that left, so the set does not grow.
                Some(_) = clients.join_next(), if !clients.is_empty() => {}
                () = &mut stop => break,
            }
        }
        let _ = drain.send(true);
        while clients.join_next().await.is_some() {}
        Ok(())
    }
}

impl Drop for SimServer {
    fn drop(&mut self) {
        // Best effort: a leftover file is replaced by the next bind anyway.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Removes a socket file nobody listens on; refuses to touch anything else.
fn remove_stale(path: &Path) -> Result<(), HalError> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err("inspect", path, e)),
    };
    let refuse = |why: &str| {
        io_err(
            "bind",
            path,
            std::io::Error::new(std::io::ErrorKind::AddrInUse, why.to_string()),
        )
    };
    if !meta.file_type().is_socket() {
        return Err(refuse("exists and is not a socket; move it away"));
    }
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        return Err(refuse("another sim is listening there; stop it first"));
    }
    std::fs::remove_file(path).map_err(|e| io_err("remove stale socket", path, e))
}

/// One client: read request lines, write one reply each, and forward watch
/// lines once it asked to watch. A watcher that closes its sending side
/// (`echo '{"cmd":"watch"}' | nc -U sim.sock`) keeps receiving; the
/// connection ends when the client is gone.
async fn serve(
    stream: UnixStream,
    shared: Arc<Shared>,
    mut draining: tokio::sync::watch::Receiver<bool>,
) {
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    let mut buf = Vec::new();
    let mut reading = true;
    let mut watch: Option<broadcast::Receiver<String>> = None;
    loop {
        let out = tokio::select! {
            // read_until is cancel-safe as long as `buf` is kept: a partial
            // line stays in it and the next call continues it.
            n = read.read_until(b'\n', &mut buf), if reading => {
                match n {
                    Ok(0) => reading = false,
                    Ok(_) => {}
                    Err(_) => break,
                }
                if buf.is_empty() {
                    // The client sent all it will; a watcher still listens.
                    if watch.is_none() {
                        break;
                    }
                    continue;
                }
                // A last line without its newline is still a request.
                // May wait for room in a queue to the daemon (the module
                // doc): the reply, and this connection's next line, wait too.
                let reply = handle(&shared, &buf, &mut watch).await;
                buf.clear();
                reply.to_string()
            }
            line = next_watch(&mut watch) => line,
            _ = draining.changed() => {
                // The server stops: what is queued for a watcher goes out,
                // then the connection ends.
                while let Some(Ok(line)) = watch.as_mut().map(|rx| rx.try_recv()) {
                    if write.write_all(format!("{line}\n").as_bytes()).await.is_err() {
                        break;
                    }
                }
                break;
            }
        };
        if write
            .write_all(format!("{out}\n").as_bytes())
            .await
            .is_err()
        {
            break;
        }
        if !reading && watch.is_none() {
            break;
        }
    }
}

/// The next line for a watcher; never resolves for a connection not watching.
async fn next_watch(watch: &mut Option<broadcast::Receiver<String>>) -> String {
    let Some(rx) = watch else {
        return std::future::pending().await;
    };
    match rx.recv().await {
        Ok(line) => line,
        Err(broadcast::error::RecvError::Lagged(missed)) => {
            serde_json::to_string(&WatchLine::Out(SimOutput::Lagged { missed }))
                .expect("watch lines serialise")
        }
        // The sender lives in `shared`, which this connection holds.
        Err(broadcast::error::RecvError::Closed) => std::future::pending().await,
    }
}

/// Applies one request line and builds its reply.
pub(super) async fn handle(
    shared: &Shared,
    line: &[u8],
    watch: &mut Option<broadcast::Receiver<String>>,
) -> Value {
    let request = std::str::from_utf8(line)
        .map_err(|_| "request is not UTF-8".to_string())
        .and_then(|text| {
            serde_json::from_str::<SimRequest>(text.trim()).map_err(|e| {
                format!("bad request: {e} (one JSON object per line, e.g. {{\"cmd\":\"state\"}})")
            })
        });
    let result = match request {
        Ok(request) => apply(shared, request, watch).await,
        Err(error) => Err(error),
    };
    match result {
        Ok(Value::Object(mut fields)) => {
            fields.insert("ok".into(), true.into());
            Value::Object(fields)
        }
        Ok(_) => unreachable!("apply returns objects"),
        Err(error) => {
            tracing::debug!(%error, "sim request refused");
            json!({"ok": false, "error": error})
        }
    }
}

/// Applies a parsed request; returns the reply fields beyond `ok`.
async fn apply(
    shared: &Shared,
    request: SimRequest,
    watch: &mut Option<broadcast::Receiver<String>>,
) -> Result<Value, String> {
    let reply = match request {
        SimRequest::Vehicle { sensor, state } => {
            // Room first, without the lock: an edge is never dropped, so the
            // client waits while the queue is full (even for a request that
            // turns out to change nothing).
            let room = shared.edge_room().await;
            let mut s = shared.lock();
            let event = shared.set_sensor(&mut s, sensor, state);
            if let (Some(event), Some(room)) = (event, room) {
                room.send(event);
            }
            json!({ "changed": event.is_some() })
        }
        SimRequest::Tap { card } => {
            let credential = Credential::from_hex(&card).map_err(|e| e.to_string())?;
            let echo = SimInput::Tap {
                card: credential.hex(),
            };
            tap(shared, ReaderEvent::Card(credential), echo)?
        }
        SimRequest::TapAuthFailed { card } => {
            let credential = Credential::from_hex(&card).map_err(|e| e.to_string())?;
            let echo = SimInput::TapAuthFailed {
                card: credential.hex(),
            };
            tap(shared, ReaderEvent::AuthFailed(credential), echo)?
        }
        SimRequest::TapCorrupt => tap(shared, ReaderEvent::Misread, SimInput::TapCorrupt)?,
        SimRequest::Reader { online, reason } => {
            // Like a sensor edge, a health change is never dropped: room
            // first, without the lock (see HEALTH_ROOM).
            let room = shared.health_room().await;
            let mut s = shared.lock();
            let changed = s.reader_online != online;
            if changed {
                s.reader_online = online;
                let reason =
                    (!online).then(|| reason.unwrap_or_else(|| "simulated: reader offline".into()));
                let health = match &reason {
                    None => ReaderHealth::Ok,
                    Some(r) => ReaderHealth::Offline(r.clone()),
                };
                // No room means nobody holds the reader: health changes
                // happen even with nobody reading; not an error.
                if let Some(room) = room {
                    room.send(ReaderEvent::Health(health));
                }
                shared.publish(WatchLine::In(SimInput::Reader { online, reason }));
            }
            json!({ "changed": changed })
        }
        SimRequest::BarrierFollows { value } => {
            shared.lock().barrier_follows = value;
            json!({})
        }
        SimRequest::State => json!({ "state": shared.snapshot() }),
        SimRequest::Watch => {
            // Subscribe before replying, so everything after the reply is seen.
            if watch.is_none() {
                *watch = Some(shared.watch_tx.subscribe());
            }
            json!({})
        }
    };
    Ok(reply)
}

/// Queues a reader event, unless the reader is offline, nobody reads it or
/// its queue is full: then the read is lost, and neither queued nor watched.
fn tap(shared: &Shared, event: ReaderEvent, echo: SimInput) -> Result<Value, String> {
    let s = shared.lock();
    if !s.reader_online {
        return Err(
            "the reader is offline; bring it back with {\"cmd\":\"reader\",\"online\":true}".into(),
        );
    }
    // Under the lock, so the read is queued after any health change made
    // before it: a tap is refused while offline, so the daemon always hears
    // the reader came back before it hears a read made after that.
    shared.read_room()?.send(event);
    shared.publish(WatchLine::In(echo));
    drop(s);
    Ok(json!({}))
}
