//! The local control socket: how `parkgate status`, `parkgate lockdown`, the
//! demo and the black-box tests talk to a running daemon.
//!
//! A Unix socket speaking JSON lines. Each request line gets exactly one
//! reply line, `{"ok":true,...}` or `{"ok":false,"error":"..."}`:
//!
//! ```text
//! {"cmd":"status"}                 -> {"ok":true,"status":{"lane":"idle","outbox_depth":0,...}}
//! {"cmd":"lockdown","on":true}     -> {"ok":true,"lockdown":true}
//! {"cmd":"advance","ms":30000}     -> {"ok":true,"now":"2026-11-23T08:00:30+07:00"}   (manual clock only)
//! {"cmd":"step_wall","ms":-3600000}-> {"ok":true,"now":"2026-11-23T07:00:30+07:00"}   (manual clock only)
//! {"cmd":"kernel_clock","synced":false} -> {"ok":true,"synced":false}                 (manual clock only)
//! ```
//!
//! A `status` reply is sent once everything the daemon was doing when it
//! was asked has been handled and committed, so a reply also means "settled".
//! `advance` moves both of a manual clock's readings; `step_wall` moves only
//! its wall clock, as NTP stepping a Pi's clock would. `kernel_clock` sets
//! what a manual clock says the kernel says of it (the system clock asks
//! the real kernel), as on a Pi whose NTP has not synchronised yet.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};

use super::Request;
use super::status::Status;
use crate::domain::model::Timestamp;

/// A request line on the control socket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum ControlRequest {
    /// The daemon's [`Status`].
    Status,
    /// Put the gate in lockdown (`on`) or take it out; recorded as an alert
    /// and kept across restarts.
    Lockdown { on: bool },
    /// Move a manual clock forward by `ms`.
    Advance { ms: i64 },
    /// Step a manual clock's wall clock by `ms` (either way), leaving its
    /// monotonic clock alone.
    StepWall { ms: i64 },
    /// Set whether a manual clock says the kernel calls it synchronised.
    KernelClock { synced: bool },
}

/// Why the control socket failed.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The socket could not be bound, connected, read or written.
    #[error("control socket {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The daemon answered with something that is not a reply line.
    #[error("control socket {path}: bad reply {line:?}")]
    BadReply { path: PathBuf, line: String },
    /// The daemon refused the request.
    #[error("the daemon refused: {0}")]
    Refused(String),
}

/// Binds the control socket, replacing a stale socket file left by a crash.
pub fn bind(path: &Path) -> Result<UnixListener, ControlError> {
    let io = |source| ControlError::Io {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    if std::os::unix::net::UnixStream::connect(path).is_err() {
        let _ = std::fs::remove_file(path);
    }
    UnixListener::bind(path).map_err(io)
}

/// Serves the control socket until the daemon is gone (or this future is
/// dropped), passing requests to it. Each client is served on a task of its
/// own, and every one of them ends with this function.
pub async fn serve(listener: UnixListener, daemon: mpsc::Sender<Request>) {
    let mut clients = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    clients.spawn(connection(stream, daemon.clone()));
                }
                Err(e) => tracing::warn!(error = %e, "control socket accept failed"),
            },
            // Reap finished clients so the set does not grow.
            Some(_) = clients.join_next(), if !clients.is_empty() => {}
            () = daemon.closed() => return,
        }
    }
}

async fn connection(stream: UnixStream, daemon: mpsc::Sender<Request>) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let reply = answer(&line, &daemon).await;
        let mut text = reply.to_string();
        text.push('\n');
        if write.write_all(text.as_bytes()).await.is_err() {
            break;
        }
    }
}

/// Sends `make(reply)` to the daemon and waits for its answer.
async fn ask<T>(
    daemon: &mpsc::Sender<Request>,
    make: impl FnOnce(oneshot::Sender<Result<T, String>>) -> Request,
) -> Result<T, String> {
    let gone = || "the daemon is shutting down".to_string();
    let (tx, rx) = oneshot::channel();
    daemon.send(make(tx)).await.map_err(|_| gone())?;
    rx.await.map_err(|_| gone())?
}

/// `ms` as a span of time, refused past about ±292 million years.
fn span(ms: i64) -> Result<chrono::TimeDelta, String> {
    chrono::TimeDelta::try_milliseconds(ms).ok_or_else(|| format!("{ms} ms is out of range"))
}

async fn answer(line: &str, daemon: &mpsc::Sender<Request>) -> Value {
    let request = match serde_json::from_str::<ControlRequest>(line) {
        Ok(request) => request,
        Err(e) => return json!({"ok": false, "error": format!("bad request: {e}")}),
    };
    let reply = match request {
        ControlRequest::Status => ask(daemon, Request::Status)
            .await
            .map(|s| json!({"ok": true, "status": s})),
        ControlRequest::Lockdown { on } => ask(daemon, |tx| Request::Lockdown(on, tx))
            .await
            .map(|on| json!({"ok": true, "lockdown": on})),
        ControlRequest::Advance { ms } => match span(ms) {
            Ok(by) => ask(daemon, |tx| Request::Advance(by, tx)).await,
            Err(e) => Err(e),
        }
        .map(|now| json!({"ok": true, "now": now})),
        ControlRequest::StepWall { ms } => match span(ms) {
            Ok(by) => ask(daemon, |tx| Request::StepWall(by, tx)).await,
            Err(e) => Err(e),
        }
        .map(|now| json!({"ok": true, "now": now})),
        ControlRequest::KernelClock { synced } => {
            ask(daemon, |tx| Request::KernelSynced(synced, tx))
                .await
                .map(|synced| json!({"ok": true, "synced": synced}))
        }
    };
    reply.unwrap_or_else(|e| json!({"ok": false, "error": e}))
}

/// Sends one request line and returns the daemon's reply as it came.
pub async fn request(path: &Path, request: &ControlRequest) -> Result<Value, ControlError> {
    let io = |source| ControlError::Io {
        path: path.to_owned(),
        source,
    };
    let stream = UnixStream::connect(path).await.map_err(io)?;
    let (read, mut write) = stream.into_split();
    let mut text = serde_json::to_string(request).expect("a request serialises");
    text.push('\n');
    write.write_all(text.as_bytes()).await.map_err(io)?;
    let line = BufReader::new(read)
        .lines()
        .next_line()
        .await
        .map_err(io)?
        .unwrap_or_default();
    serde_json::from_str(&line).map_err(|_| ControlError::BadReply {
        path: path.to_owned(),
        line,
    })
}

/// Sends `request` and reads field `key` of an `ok` reply as a `T`.
async fn typed<T: serde::de::DeserializeOwned>(
    path: &Path,
    ask: &ControlRequest,
    key: &str,
) -> Result<T, ControlError> {
    let reply = request(path, ask).await?;
    if reply["ok"] != true {
        let error = reply["error"].as_str().unwrap_or("no reason given");
        return Err(ControlError::Refused(error.to_string()));
    }
    serde_json::from_value(reply[key].clone()).map_err(|_| ControlError::BadReply {
        path: path.to_owned(),
        line: reply.to_string(),
    })
}

/// The running daemon's [`Status`].
pub async fn status(path: &Path) -> Result<Status, ControlError> {
    typed(path, &ControlRequest::Status, "status").await
}

/// Sets or lifts the lockdown; returns whether the gate is now in lockdown.
pub async fn lockdown(path: &Path, on: bool) -> Result<bool, ControlError> {
    typed(path, &ControlRequest::Lockdown { on }, "lockdown").await
}

/// Moves a manual clock forward; returns its new wall-clock reading.
pub async fn advance(path: &Path, ms: i64) -> Result<Timestamp, ControlError> {
    typed(path, &ControlRequest::Advance { ms }, "now").await
}

/// Steps a manual clock's wall clock; returns its new reading.
pub async fn step_wall(path: &Path, ms: i64) -> Result<Timestamp, ControlError> {
    typed(path, &ControlRequest::StepWall { ms }, "now").await
}

/// Sets whether a manual clock says the kernel calls it synchronised.
pub async fn kernel_clock(path: &Path, synced: bool) -> Result<bool, ControlError> {
    typed(path, &ControlRequest::KernelClock { synced }, "synced").await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_junk_or_out_of_range_request_is_refused_and_the_daemon_not_asked() {
        let (tx, mut rx) = mpsc::channel(1);
        for line in [
            r#"{"cmd":"advance","ms":-9223372036854775808}"#,
            r#"{"cmd":"fly"}"#,
            "not json",
        ] {
            let reply = answer(line, &tx).await;
            assert_eq!(reply["ok"], false, "{line}: {reply}");
        }
        assert!(rx.try_recv().is_err(), "nothing reached the daemon");
    }
}
