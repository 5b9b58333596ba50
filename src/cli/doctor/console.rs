//! Where the technician's answers come from: lines on a channel, fed by a
//! thread reading stdin in the binary and by the test itself in tests, so
//! every interactive step can be driven without a terminal.

use std::io::BufRead as _;

use tokio::sync::mpsc;

/// The lines the technician types, one at a time.
pub struct Console {
    /// `None` once the input has ended (or there never was any).
    lines: Option<mpsc::Receiver<String>>,
}

impl Console {
    /// Lines from this process's stdin. The reading thread blocks in
    /// `read_line`, which tokio could not cancel; a plain thread is left
    /// behind harmlessly when the command ends.
    pub fn stdin() -> Console {
        let (tx, rx) = mpsc::channel(16);
        let spawned = std::thread::Builder::new()
            .name("doctor-stdin".into())
            .spawn(move || {
                let stdin = std::io::stdin();
                for line in stdin.lock().lines() {
                    let Ok(line) = line else { break };
                    if tx.blocking_send(line).is_err() {
                        break;
                    }
                }
            });
        match spawned {
            Ok(_) => Console { lines: Some(rx) },
            // Without a thread there is no input: every question gets "no".
            Err(_) => Console::none(),
        }
    }

    /// Lines sent on the returned sender (tests); dropping it ends the input.
    pub fn channel() -> (mpsc::Sender<String>, Console) {
        let (tx, rx) = mpsc::channel(16);
        (tx, Console { lines: Some(rx) })
    }

    /// No input at all (`--no-wait`).
    pub fn none() -> Console {
        Console { lines: None }
    }

    /// The next line, trimmed; `None` once the input has ended.
    /// Cancel-safe (a channel receive).
    pub async fn line(&mut self) -> Option<String> {
        let rx = self.lines.as_mut()?;
        match rx.recv().await {
            Some(line) => Some(line.trim().to_string()),
            None => {
                self.lines = None;
                None
            }
        }
    }

    /// Waits for Enter (any line). Once the input has ended this never
    /// resolves, so a race between Enter and something else (a card, a
    /// deadline) is then decided by the something else, not by a closed
    /// stdin resolving at once, again and again.
    pub async fn enter(&mut self) {
        if self.line().await.is_none() {
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lines_come_trimmed_then_none_when_the_input_ends() {
        let (tx, mut console) = Console::channel();
        tx.send("  yes \n".into()).await.unwrap();
        drop(tx);
        assert_eq!(console.line().await.as_deref(), Some("yes"));
        assert_eq!(console.line().await, None);
        assert_eq!(console.line().await, None);
    }

    #[tokio::test(start_paused = true)]
    async fn enter_on_an_ended_input_waits_for_ever() {
        let mut console = Console::none();
        let raced = tokio::time::timeout(std::time::Duration::from_secs(60), console.enter()).await;
        assert!(raced.is_err(), "enter resolved on an ended input");
    }
}
