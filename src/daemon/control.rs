//! The local control socket: how `parkgate status` (and the demo, and the
//! black-box tests) talk to a running daemon.
//!
//! A Unix socket speaking JSON lines. Each request line gets exactly one
//! reply line, `{"ok":true,...}` or `{"ok":false,"error":"..."}`:
//!
//! ```text
//! {"cmd":"status"}               -> {"ok":true,"status":{"lane":"idle","outbox_depth":0,...}}
//! {"cmd":"advance","ms":30000}   -> {"ok":true,"now":"2026-11-23T08:00:30+07:00"}   (manual clock only)
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};

use crate::daemon::Request;

/// A request line on the control socket.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum ControlRequest {
    Status,
    Advance { ms: i64 },
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

/// Serves the control socket forever, passing requests to the daemon.
pub async fn serve(listener: UnixListener, daemon: mpsc::Sender<Request>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(connection(stream, daemon.clone()));
            }
            Err(e) => tracing::warn!(error = %e, "control socket accept failed"),
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

async fn answer(line: &str, daemon: &mpsc::Sender<Request>) -> Value {
    let gone = || json!({"ok": false, "error": "the daemon is shutting down"});
    match serde_json::from_str::<ControlRequest>(line) {
        Err(e) => json!({"ok": false, "error": format!("bad request: {e}")}),
        Ok(ControlRequest::Status) => {
            let (tx, rx) = oneshot::channel();
            if daemon.send(Request::Status(tx)).await.is_err() {
                return gone();
            }
            match rx.await {
                Ok(Ok(status)) => json!({"ok": true, "status": status}),
                Ok(Err(e)) => json!({"ok": false, "error": e}),
                Err(_) => gone(),
            }
        }
        Ok(ControlRequest::Advance { ms }) => {
            let (tx, rx) = oneshot::channel();
            if daemon
                .send(Request::Advance(chrono::TimeDelta::milliseconds(ms), tx))
                .await
                .is_err()
            {
                return gone();
            }
            match rx.await {
                Ok(Ok(now)) => json!({"ok": true, "now": now}),
                Ok(Err(e)) => json!({"ok": false, "error": e}),
                Err(_) => gone(),
            }
        }
    }
}

/// Sends one request line and returns the daemon's reply.
pub async fn request(path: &Path, request: &Value) -> Result<Value, ControlError> {
    let io = |source| ControlError::Io {
        path: path.to_owned(),
        source,
    };
    let stream = UnixStream::connect(path).await.map_err(io)?;
    let (read, mut write) = stream.into_split();
    let mut text = request.to_string();
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
