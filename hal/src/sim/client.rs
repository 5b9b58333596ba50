//! A client of the sim control socket, for `parkgate sim ...` and for tests.

use std::path::{Path, PathBuf};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

use super::{SimRequest, SimSnapshot, WatchLine, io_err};
use crate::HalError;

/// One connection to a sim control socket, sending requests one at a time.
///
/// ```no_run
/// # async fn demo() -> Result<(), parkgate_hal::HalError> {
/// use parkgate_hal::sim::{SimClient, SimRequest};
/// use parkgate_hal::{Sensor, SensorState};
/// let mut sim = SimClient::connect("/run/parkgate/sim.sock").await?;
/// sim.request(&SimRequest::Vehicle { sensor: Sensor::Arming, state: SensorState::Occupied }).await?;
/// sim.request(&SimRequest::Tap { card: "04A1B2C3D4E5F6".into() }).await?;
/// # Ok(()) }
/// ```
pub struct SimClient {
    lines: Lines,
    write: OwnedWriteHalf,
}

impl SimClient {
    /// Connects to the sim listening at `path`.
    pub async fn connect(path: impl AsRef<Path>) -> Result<SimClient, HalError> {
        let path = path.as_ref();
        let stream = UnixStream::connect(path)
            .await
            .map_err(|e| io_err("connect to sim socket", path, e))?;
        let (read, write) = stream.into_split();
        Ok(SimClient {
            lines: Lines {
                read: BufReader::new(read),
                buf: Vec::new(),
                path: path.to_path_buf(),
            },
            write,
        })
    }

    /// Sends a request and waits for its reply. Returns the reply object
    /// (with `"ok":true`); an `{"ok":false}` reply becomes
    /// [`HalError::Refused`] carrying the server's message.
    ///
    /// Use [`SimClient::watch`], not this, to watch: once watching, watch
    /// lines and replies share the connection.
    pub async fn request(&mut self, request: &SimRequest) -> Result<Value, HalError> {
        let line = serde_json::to_string(request).expect("requests serialise");
        let reply = self.request_line(&line).await?;
        if reply["ok"] == Value::Bool(true) {
            return Ok(reply);
        }
        let error = reply["error"].as_str().unwrap_or("no error given");
        Err(HalError::Refused(error.to_string()))
    }

    /// Sends one raw line (a newline is added) and returns whatever reply
    /// comes back, `ok` or not: for a `raw` CLI subcommand and for tests of
    /// malformed input.
    pub async fn request_line(&mut self, line: &str) -> Result<Value, HalError> {
        let path = &self.lines.path;
        self.write
            .write_all(format!("{line}\n").as_bytes())
            .await
            .map_err(|e| io_err("write to sim socket", path, e))?;
        let reply = self.lines.next().await?.ok_or(HalError::Stopped(
            "sim control server (it closed the connection before replying)",
        ))?;
        serde_json::from_str(&reply)
            .map_err(|e| HalError::Protocol(format!("reply {reply:?} is not JSON: {e}")))
    }

    /// The whole simulated lane as it is now.
    pub async fn state(&mut self) -> Result<SimSnapshot, HalError> {
        let reply = self.request(&SimRequest::State).await?;
        serde_json::from_value(reply["state"].clone())
            .map_err(|e| HalError::Protocol(format!("state reply {reply}: {e}")))
    }

    /// Turns this connection into a watcher. Everything that happens after
    /// this returns is seen, in order.
    pub async fn watch(mut self) -> Result<SimWatch, HalError> {
        self.request(&SimRequest::Watch).await?;
        Ok(SimWatch {
            lines: self.lines,
            _write: self.write,
        })
    }
}

/// A watching connection: a stream of [`WatchLine`]s.
pub struct SimWatch {
    lines: Lines,
    /// Dropping the write half would shut the connection down for the
    /// server, which then stops serving this watcher.
    _write: OwnedWriteHalf,
}

impl SimWatch {
    /// The next line as text (for printing as-is); `None` once the server is gone.
    pub async fn next_line(&mut self) -> Result<Option<String>, HalError> {
        self.lines.next().await
    }

    /// The next line, parsed; `None` once the server is gone. Cancel-safe.
    pub async fn next(&mut self) -> Result<Option<WatchLine>, HalError> {
        let Some(line) = self.lines.next().await? else {
            return Ok(None);
        };
        serde_json::from_str(&line)
            .map(Some)
            .map_err(|e| HalError::Protocol(format!("watch line {line:?}: {e}")))
    }
}

/// The reading half of a connection, split into lines.
struct Lines {
    read: BufReader<OwnedReadHalf>,
    /// A partial line survives a cancelled `next` (read_until is cancel-safe
    /// with a kept buffer), so `SimWatch::next` can sit in a `select!`.
    buf: Vec<u8>,
    path: PathBuf,
}

impl Lines {
    /// The next line without its newline; `None` at end of stream.
    async fn next(&mut self) -> Result<Option<String>, HalError> {
        let n = self
            .read
            .read_until(b'\n', &mut self.buf)
            .await
            .map_err(|e| io_err("read from sim socket", &self.path, e))?;
        if n == 0 && self.buf.is_empty() {
            return Ok(None);
        }
        let bytes = std::mem::take(&mut self.buf);
        let line = String::from_utf8(bytes)
            .map_err(|_| HalError::Protocol("a line from the sim is not UTF-8".into()))?;
        Ok(Some(line.trim_end_matches('\n').to_string()))
    }
}
