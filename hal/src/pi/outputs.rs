//! The barrier relay(s), lamps and buzzer on GPIO outputs.
//!
//! Every output has an active level (relay boards differ). A pulse is timed
//! on a task of its own: the lane's loop must never wait half a second on
//! a relay while a car drives onto the safety loop.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::seam::{GpioError, Level, OutputLine};
use crate::{Barrier, BarrierCommand, Buzz, Feedback, HalError, Light, Signal};

/// How long the buzzer sounds for [`Buzz::Short`] and [`Buzz::Long`].
pub const SHORT_BEEP: Duration = Duration::from_millis(150);
/// See [`SHORT_BEEP`].
pub const LONG_BEEP: Duration = Duration::from_millis(800);

/// An output that is on at its active level.
pub struct Relay<O> {
    line: O,
    active: Level,
}

impl<O: OutputLine> Relay<O> {
    /// `line` drives its starting level already; `active` means on.
    pub fn new(line: O, active: Level) -> Relay<O> {
        Relay { line, active }
    }

    /// Switches the output on or off.
    pub fn set(&mut self, on: bool) -> Result<(), GpioError> {
        let level = if on { self.active } else { !self.active };
        self.line.write(level)
    }
}

struct Pulsing<O> {
    relay: Relay<O>,
    /// Which pulse may end it: a later pulse or a cut makes an earlier
    /// pulse's timer do nothing.
    generation: u64,
    /// A pulse is on: only then is there anything to end.
    on: bool,
}

impl<O: OutputLine> Pulsing<O> {
    fn end(&mut self) -> Result<(), GpioError> {
        self.generation += 1;
        if self.on {
            self.relay.set(false)?;
            self.on = false;
        }
        Ok(())
    }
}

/// A relay that is only ever on for a pulse.
pub struct PulseRelay<O: OutputLine> {
    shared: Arc<Mutex<Pulsing<O>>>,
}

impl<O: OutputLine> PulseRelay<O> {
    /// `line` must drive the relay's off level already.
    pub fn new(line: O, active: Level) -> PulseRelay<O> {
        PulseRelay {
            shared: Arc::new(Mutex::new(Pulsing {
                relay: Relay::new(line, active),
                generation: 0,
                on: false,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Pulsing<O>> {
        lock(&self.shared)
    }

    /// Switches the relay on now and off after `length`, without waiting.
    /// A pulse given while one is on starts its length again.
    pub fn pulse(&self, length: Duration) -> Result<(), GpioError> {
        let generation = {
            let mut p = self.lock();
            p.generation += 1;
            p.relay.set(true)?;
            p.on = true;
            p.generation
        };
        let shared = Arc::clone(&self.shared);
        tokio::spawn(async move {
            tokio::time::sleep(length).await;
            let mut p = lock(&shared);
            if p.generation == generation
                && let Err(e) = p.end()
            {
                tracing::error!(error = %e, "a relay pulse could not be ended");
            }
        });
        Ok(())
    }

    /// Ends a pulse now, if one is on.
    pub fn cut(&self) -> Result<(), GpioError> {
        self.lock().end()
    }
}

impl<O: OutputLine> Drop for PulseRelay<O> {
    /// A pulse cut short by a stop is still over: no relay stays on after
    /// the daemon, where nobody would end it.
    fn drop(&mut self) {
        if let Err(e) = self.cut() {
            tracing::error!(error = %e, "a relay pulse could not be ended at stop");
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic under the lock leaves plain data; keep driving it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// How the boom is driven.
enum Drive<O: OutputLine> {
    /// One relay held on while the boom should be up.
    Level(Relay<O>),
    /// An open relay and a close relay, each pulsed.
    Pulse {
        open: PulseRelay<O>,
        close: PulseRelay<O>,
        length: Duration,
    },
}

/// The barrier output ([`Barrier`]), held level or pulses.
pub struct GpioBarrier<O: OutputLine> {
    drive: Drive<O>,
}

impl<O: OutputLine> GpioBarrier<O> {
    /// One relay, on = up.
    pub fn level(relay: Relay<O>) -> GpioBarrier<O> {
        GpioBarrier {
            drive: Drive::Level(relay),
        }
    }

    /// An open and a close relay, pulsed for `length` per command.
    pub fn pulse(open: PulseRelay<O>, close: PulseRelay<O>, length: Duration) -> GpioBarrier<O> {
        GpioBarrier {
            drive: Drive::Pulse {
                open,
                close,
                length,
            },
        }
    }
}

impl<O: OutputLine> Barrier for GpioBarrier<O> {
    async fn command(&mut self, cmd: BarrierCommand) -> Result<(), HalError> {
        let up = cmd == BarrierCommand::Up;
        match &mut self.drive {
            Drive::Level(relay) => relay.set(up)?,
            Drive::Pulse {
                open,
                close,
                length,
            } => {
                // Never both relays on: an operator given both may do either.
                let (go, stop) = if up { (open, close) } else { (close, open) };
                stop.cut()?;
                go.pulse(*length)?;
            }
        }
        Ok(())
    }
}

/// The lamps and buzzer ([`Feedback`]); a display line is not fitted.
pub struct GpioFeedback<O: OutputLine> {
    green: Relay<O>,
    red: Relay<O>,
    buzzer: Option<PulseRelay<O>>,
}

impl<O: OutputLine> GpioFeedback<O> {
    /// The lamps, and the buzzer if fitted.
    pub fn new(green: Relay<O>, red: Relay<O>, buzzer: Option<PulseRelay<O>>) -> GpioFeedback<O> {
        GpioFeedback { green, red, buzzer }
    }
}

impl<O: OutputLine> Feedback for GpioFeedback<O> {
    async fn show(&mut self, signal: &Signal) -> Result<(), HalError> {
        let (green, red) = (signal.light == Light::Green, signal.light == Light::Red);
        // Off before on, so a driver never sees both lamps at once.
        for (lamp, on) in [(&mut self.green, green), (&mut self.red, red)] {
            if !on {
                lamp.set(false)?;
            }
        }
        for (lamp, on) in [(&mut self.green, green), (&mut self.red, red)] {
            if on {
                lamp.set(true)?;
            }
        }
        let beep = match signal.buzzer {
            Buzz::None => None,
            Buzz::Short => Some(SHORT_BEEP),
            Buzz::Long => Some(LONG_BEEP),
        };
        if let (Some(buzzer), Some(length)) = (&self.buzzer, beep) {
            buzzer.pulse(length)?;
        }
        Ok(())
    }
}
