//! What the link does with a message from the broker (routed and checked
//! by `link::inbound`): replica batches, siblings' passages, signed
//! commands, replay requests, and bad messages.

use rumqttc::AsyncClient;

use super::super::ToGate;
use super::super::inbound::Inbound;
use super::super::window::Tag;
use super::{ASK_AGAIN, Link};
use crate::domain::command;
use crate::domain::contract::{
    self, AckResult, Alert, AlertKind, ChangeBatch, Cmd, CommandAck, ReplayRequest, ReplicaRequest,
    Severity, SnapshotChunk, VERSION, Want,
};
use crate::domain::lane::Command as LaneCommand;
use crate::store::{Adopted, Applied, Staged, Staging, StoreError};

impl Link {
    /// Acts on one message from the broker.
    pub(super) async fn inbound(
        &mut self,
        inbound: Inbound,
        client: &AsyncClient,
    ) -> Result<(), String> {
        match inbound {
            Inbound::Replay(request) => self.replay_request(request).await,
            Inbound::Changes(batch) => self.changes(batch, client).await?,
            Inbound::Passage(event) => {
                let (id, gate) = (event.event_id.clone(), event.gate.clone());
                match self.store.call(move |db| db.apply_remote(&event)).await {
                    Ok(Ok(applied)) => tracing::debug!(%id, %gate, applied, "a passage of the lot"),
                    Ok(Err(e)) => {
                        tracing::error!(error = %e, %id, "applying a sibling's passage failed")
                    }
                    Err(e) => return Err(format!("store: {e}")),
                }
            }
            Inbound::Snapshot(chunk) => self.snapshot(chunk).await?,
            Inbound::Occupancy(o) => {
                let gate = o.gate.clone();
                match self.store.call(move |db| db.merge_occupancy(&o)).await {
                    Ok(Ok(rose)) => tracing::debug!(%gate, rose, "a gate's occupancy"),
                    Ok(Err(e)) => {
                        tracing::error!(error = %e, %gate, "merging a gate's occupancy failed")
                    }
                    Err(e) => return Err(format!("store: {e}")),
                }
            }
            Inbound::Command(bytes) => self.command(&bytes, client).await?,
            Inbound::Bad { topic, why } => self.bad(&topic, &why).await,
        }
        Ok(())
    }

    /// A signed command: verified, checked as never seen (kept across
    /// restarts), carried out, acked. Anything else is one
    /// `command_rejected` alert and no effect (and an ack if its id is
    /// trustworthy, i.e. its signature verified).
    async fn command(&mut self, bytes: &[u8], client: &AsyncClient) -> Result<(), String> {
        let now = self.clock.now().wall;
        let verified = match &self.hq_key {
            Some(key) => command::verify(bytes, key, &self.ident.gate, now),
            None => Err(command::Rejected {
                command_id: None,
                reason: command::RejectReason::MalformedEnvelope(
                    "this gate has no [mqtt] hq_public_key to check commands with".into(),
                ),
            }),
        };
        let verified = match verified {
            Ok(v) => v,
            Err(rejected) => return self.reject(rejected, client).await,
        };
        let body = verified.body;
        let (id, expires) = (body.command_id.clone(), body.expires_at);
        let fresh = self
            .store
            .call(move |db| db.note_command(&id, expires))
            .await
            .and_then(|r| r)
            .map_err(|e| format!("store: {e}"))?;
        if !fresh {
            let rejected = command::Rejected {
                command_id: Some(body.command_id),
                reason: command::RejectReason::Replayed,
            };
            return self.reject(rejected, client).await;
        }
        tracing::info!(command = %body.command_id, cmd = ?body.cmd, "an HQ command");
        let lane = match body.cmd {
            Cmd::Open => Some(LaneCommand::Open),
            Cmd::Lockdown => Some(LaneCommand::Lockdown),
            Cmd::Unlock => Some(LaneCommand::Unlock),
            Cmd::Resync => None,
        };
        match lane {
            Some(cmd) => {
                if self.ports.raise.send(ToGate::Command(cmd)).await.is_err() {
                    return Err("the gate loop is gone".into());
                }
            }
            None => {
                let have = self
                    .store
                    .call(|db| db.replica_seq())
                    .await
                    .and_then(|r| r)
                    .map_err(|e| format!("store: {e}"))?;
                self.request(have, Want::Snapshot, client)?;
            }
        }
        let ack = command::ack(&body.command_id, AckResult::Done, None, now);
        self.ack(ack, client)
    }

    async fn reject(
        &mut self,
        rejected: command::Rejected,
        client: &AsyncClient,
    ) -> Result<(), String> {
        tracing::warn!(command = ?rejected.command_id, reason = %rejected.reason, "an HQ command was rejected");
        if let Some(ack) = command::rejected_ack(&rejected, self.clock.now().wall) {
            self.ack(ack, client)?;
        }
        let now = tokio::time::Instant::now();
        let admitted = match (&rejected.command_id, &rejected.reason) {
            (None, _) => self.forged.admit(now),
            (_, command::RejectReason::Replayed) => self.replayed.admit(now),
            _ => Some(0),
        };
        if let Some(unsaid) = admitted {
            let mut alert = command::rejected_alert(&rejected);
            if unsaid > 0 {
                alert.message.push_str(&format!(
                    " {unsaid} more like it came in the minute before."
                ));
            }
            self.raise(alert).await;
        }
        Ok(())
    }

    fn ack(&mut self, ack: CommandAck, client: &AsyncClient) -> Result<(), String> {
        let payload = serde_json::to_string(&ack).map_err(|e| e.to_string())?;
        self.publish(
            client,
            self.topic("commands/ack"),
            payload,
            false,
            Tag::Other,
        )
    }

    /// A message that is not what its topic promises: logged each time,
    /// alerted at most once a minute.
    async fn bad(&mut self, topic: &str, why: &str) {
        tracing::warn!(%topic, %why, "a bad message from the broker; nothing applied");
        if let Some(unsaid) = self.bad.admit(tokio::time::Instant::now()) {
            let mut alert = bad_message(topic, why);
            if unsaid > 0 {
                alert.message.push_str(&format!(
                    " {unsaid} more bad message(s) came in the minute before."
                ));
            }
            self.raise(alert).await;
        }
    }

    /// A change batch for the lot: applied in order, a duplicate ignored, a
    /// gap answered with a request for the missing batches.
    async fn changes(&mut self, batch: ChangeBatch, client: &AsyncClient) -> Result<(), String> {
        let seq = batch.seq;
        let heard = self.clock.now().wall;
        let applied = self.store.call(move |db| {
            let applied = db.apply_batch(&batch)?;
            if !matches!(applied, Applied::Gap { .. }) {
                db.replica_heard(&heard)?;
            }
            Ok(applied)
        });
        let applied = match applied.await {
            Ok(applied) => applied,
            Err(e) => return Err(format!("store: {e}")),
        };
        match applied {
            Ok(Applied::Applied { seq }) => {
                tracing::info!(seq, "replica batch applied");
                self.status_due = true;
            }
            Ok(Applied::Duplicate { seq }) => tracing::debug!(seq, "replica batch already applied"),
            Ok(Applied::Gap { have, got }) => {
                tracing::warn!(have, got, "replica batches missing; asking HQ");
                self.asked_from(have, client)?;
            }
            Err(StoreError::Invalid { index, reason }) => {
                let why = format!("batch {seq} op {index}: {reason}; nothing of it applied");
                self.bad(&self.topic_of_lot("replica/changes"), &why).await;
            }
            Err(e) => tracing::error!(error = %e, seq, "applying a replica batch failed"),
        }
        Ok(())
    }

    /// One chunk of a snapshot, staged in the staging file on a blocking
    /// thread (`store/snapshot.rs`): the store thread goes on deciding with
    /// the replica it has. The last chunk's file then replaces the replica.
    async fn snapshot(&mut self, chunk: SnapshotChunk) -> Result<(), String> {
        let (id, n) = (chunk.snapshot_id.clone(), chunk.chunk);
        let heard = self.clock.now().wall;
        let Some(mut staging) = self.take_staging().await? else {
            return Ok(());
        };
        let have = self.store.call(|db| db.replica_seq());
        let staged = match have.await.map_err(|e| format!("store: {e}"))? {
            Ok(have) => {
                let staged = tokio::task::spawn_blocking(move || {
                    let staged = staging.stage(&chunk, have);
                    (staging, staged)
                });
                let (back, staged) = staged.await.map_err(|e| format!("staging: {e}"))?;
                staging = back;
                staged
            }
            Err(e) => Err(e),
        };
        self.staging = Some(staging);
        if staged.is_ok() {
            let heard = self.store.call(move |db| db.replica_heard(&heard));
            if let Err(e) = heard.await.map_err(|e| format!("store: {e}"))? {
                tracing::error!(error = %e, "recording that HQ was heard failed");
            }
        }
        match staged {
            Ok(Staged::Complete { seq }) => {
                tracing::info!(snapshot = %id, seq, "replica snapshot staged");
                self.adopt().await;
            }
            Ok(Staged::Partial { have, of }) => {
                tracing::debug!(snapshot = %id, chunk = n, have, of, "snapshot chunk staged");
            }
            Ok(Staged::Ignored(skip)) => {
                tracing::info!(snapshot = %id, chunk = n, ?skip, "snapshot chunk ignored");
            }
            Err(StoreError::Invalid { index, reason }) => {
                let why =
                    format!("snapshot {id} chunk {n} op {index}: {reason}; nothing of it staged");
                self.bad(&self.topic("replica/snapshot"), &why).await;
            }
            Err(e) => {
                tracing::error!(error = %e, snapshot = %id, "staging a snapshot chunk failed")
            }
        }
        Ok(())
    }

    /// The staging file, opened on first use; `None` (logged) if it cannot
    /// be opened, so the chunk is dropped and HQ's next snapshot tries again.
    async fn take_staging(&mut self) -> Result<Option<Staging>, String> {
        if let Some(staging) = self.staging.take() {
            return Ok(Some(staging));
        }
        let files = self.store.call(|db| db.files().clone());
        let files = files.await.map_err(|e| format!("store: {e}"))?;
        let opened = tokio::task::spawn_blocking(move || {
            // A replica retired just before a restart may still be there.
            if let Err(e) = files.remove_retired() {
                tracing::warn!(error = %e, "removing the replaced replica failed");
            }
            Staging::open(&files.staging)
        });
        match opened.await.map_err(|e| format!("staging: {e}"))? {
            Ok(staging) => Ok(Some(staging)),
            Err(e) => {
                tracing::error!(error = %e, "the snapshot staging file cannot be opened");
                Ok(None)
            }
        }
    }

    /// Makes a complete staged snapshot the replica, on the store thread
    /// (a rename: a few milliseconds). Errors are logged: the snapshot
    /// stays staged and is tried again at the next status refresh.
    pub(super) async fn adopt(&mut self) {
        let Ok(Some(mut staging)) = self.take_staging().await else {
            return;
        };
        let adopted = self.store.call(move |db| {
            let adopted = db.adopt_snapshot(&mut staging);
            (staging, adopted)
        });
        let Ok((staging, adopted)) = adopted.await else {
            // The store has stopped: so is the daemon.
            return;
        };
        self.staging = Some(staging);
        self.adopt_due = false;
        match adopted {
            Ok(Adopted::Swapped { seq }) => {
                tracing::info!(seq, "replica snapshot applied");
                self.status_due = true;
                let files = self.store.call(|db| db.files().clone());
                if let Ok(files) = files.await {
                    let removed = tokio::task::spawn_blocking(move || files.remove_retired());
                    if let Ok(Err(e)) = removed.await {
                        tracing::warn!(error = %e, "removing the replaced replica failed");
                    }
                }
            }
            Ok(Adopted::Nothing) => {}
            Ok(Adopted::Stale { have, got }) => {
                tracing::info!(
                    have,
                    got,
                    "a staged snapshot older than the replica was dropped"
                );
            }
            Ok(Adopted::Busy) => {
                tracing::warn!("another process has the replica open; the snapshot waits");
                self.adopt_due = true;
            }
            Err(e) => {
                tracing::error!(error = %e, "replacing the replica with the snapshot failed");
                self.adopt_due = true;
            }
        }
    }

    /// Asks for the changes after `have`, once per gap a while: HQ's
    /// answer is a burst of batches, each of which would ask again.
    fn asked_from(&mut self, have: u64, client: &AsyncClient) -> Result<(), String> {
        let now = tokio::time::Instant::now();
        if let Some((asked, at)) = self.asked
            && asked == have
            && now.duration_since(at) < ASK_AGAIN
        {
            return Ok(());
        }
        self.asked = Some((have, now));
        self.request(have, Want::Changes, client)
    }

    /// Publishes a replica request: `want` what comes after `have_seq`.
    fn request(&mut self, have_seq: u64, want: Want, client: &AsyncClient) -> Result<(), String> {
        let request = ReplicaRequest {
            v: VERSION,
            have_seq,
            want,
        };
        let payload = serde_json::to_string(&request).map_err(|e| e.to_string())?;
        self.publish(
            client,
            self.topic("replica/request"),
            payload,
            false,
            Tag::Other,
        )
    }

    fn topic_of_lot(&self, leaf: &str) -> String {
        format!(
            "{}/{leaf}",
            contract::lot_root(&self.ident.site, &self.ident.lot)
        )
    }

    pub(super) async fn replay_request(&mut self, request: ReplayRequest) {
        let topic = self.topic("replay");
        if request.from_seq < 1 || request.from_seq > request.to_seq {
            let why = format!(
                "from_seq {} to_seq {} is not a range",
                request.from_seq, request.to_seq
            );
            return self.bad(&topic, &why).await;
        }
        let bounds = self
            .store
            .call(|db| Ok::<_, StoreError>((db.first_seq()?, db.last_seq()?)))
            .await
            .and_then(|r| r);
        let (first, last) = match bounds {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "reading the journal for a replay failed");
                return;
            }
        };
        let (from, to) = (request.from_seq, request.to_seq);
        tracing::info!(from, to, ?first, last, "HQ asked for a replay");
        // Events before the first kept one were recorded and since pruned.
        let kept_from = first.unwrap_or(last + 1);
        if from < kept_from && from <= last {
            self.raise(replay_unavailable(from, to, first)).await;
        }
        let from = from.max(kept_from);
        if from <= to.min(last) && !self.up.replay(from, to.min(last)) {
            tracing::warn!(
                from,
                to,
                "too many replay requests waiting; this one is dropped"
            );
        }
    }

    pub(super) async fn raise(&mut self, alert: Alert) {
        tracing::warn!(alert = ?alert.alert, message = %alert.message, "raising an alert");
        if self.ports.raise.send(ToGate::Raise(alert)).await.is_err() {
            tracing::warn!("the gate loop is gone; the alert was not recorded");
        }
    }
}

fn bad_message(topic: &str, why: &str) -> Alert {
    Alert {
        alert: AlertKind::BadMessage,
        severity: Severity::Warning,
        message: format!("A message on {topic} was refused: {why}."),
        card: None,
        user_id: None,
        related_event_id: None,
    }
}

fn replay_unavailable(from: u64, to: u64, first: Option<u64>) -> Alert {
    let message = match first {
        Some(first) => format!(
            "HQ asked for events {from} to {to}; those before {first} are past retention and gone: the first seq still kept is {first}."
        ),
        None => format!(
            "HQ asked for events {from} to {to}; they are past retention and gone: no event is kept."
        ),
    };
    Alert {
        alert: AlertKind::ReplayUnavailable,
        severity: Severity::Warning,
        message,
        card: None,
        user_id: None,
        related_event_id: None,
    }
}
