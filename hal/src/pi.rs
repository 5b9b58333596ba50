//! A lane on a Raspberry Pi's GPIO header (feature `pi`): loop detectors and
//! the barrier-up switch on inputs, the barrier relay(s), lamps and buzzer
//! on outputs.
//!
//! [`open`] builds the lane's [`Presence`](crate::Presence),
//! [`Barrier`](crate::Barrier) and [`Feedback`](crate::Feedback) from a
//! [`Wiring`] through rppal. The logic sits above a small [`seam`]
//! ([`Gpio`]), so [`build`] runs the same code on [`fake::FakeGpio`] in tests.
//!
//! Start-up and stop move nothing: the loops are read before the lane acts;
//! an output is latched to its level before it becomes an output (a held
//! barrier relay or a lamp left on by an earlier run keeps its level, every
//! other output starts off); and pins are left as they are when dropped, so
//! a restart neither drops nor raises the boom.

mod outputs;
mod presence;
mod rppal;
pub mod seam;

pub mod fake;
#[cfg(test)]
mod tests;

use std::time::Duration;

use crate::{HalError, Sensor};

pub use outputs::{GpioBarrier, GpioFeedback, LONG_BEEP, PulseRelay, Relay, SHORT_BEEP};
pub use presence::{Debounce, GpioPresence, POLL};
pub use rppal::RppalGpio;
pub use seam::{Gpio, GpioError, InputLine, Level, OutputLine, Pull};

/// An input: its pin, the level at which it reports a vehicle (or the boom
/// up), and its pull resistor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputWiring {
    /// BCM number.
    pub pin: u8,
    /// The level that means occupied.
    pub active: Level,
    /// The built-in resistor.
    pub pull: Pull,
}

/// An output: its pin and the level at which it is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputWiring {
    /// BCM number.
    pub pin: u8,
    /// The level that switches it on.
    pub active: Level,
}

/// How the barrier operator is driven.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BarrierWiring {
    /// One relay, held on while the boom should be up.
    Level(OutputWiring),
    /// An open relay and a close relay, each pulsed for `length` per command.
    Pulse {
        /// Pulsed to raise.
        open: OutputWiring,
        /// Pulsed to lower.
        close: OutputWiring,
        /// How long each pulse lasts.
        length: Duration,
    },
}

/// Everything on the header, as the config describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wiring {
    /// The loop before the barrier.
    pub arming: InputWiring,
    /// The loop under the barrier.
    pub safety: InputWiring,
    /// The barrier-up limit switch, if fitted.
    pub barrier_up: Option<InputWiring>,
    /// How long an input's new level must hold before it counts.
    pub debounce: Duration,
    /// The barrier output(s).
    pub barrier: BarrierWiring,
    /// The green lamp.
    pub green: OutputWiring,
    /// The red lamp.
    pub red: OutputWiring,
    /// The buzzer, if fitted.
    pub buzzer: Option<OutputWiring>,
}

/// A lane's GPIO hardware, one handle per trait.
pub struct GpioParts<G: Gpio> {
    /// The loops and barrier-up switch.
    pub presence: GpioPresence<G::Input>,
    /// The barrier relay(s).
    pub barrier: GpioBarrier<G::Output>,
    /// The lamps and buzzer.
    pub feedback: GpioFeedback<G::Output>,
}

/// Opens the Pi's GPIO and builds the lane on it. Off a Pi this is
/// [`GpioError::Unavailable`]. Must be called inside a tokio runtime.
pub fn open(wiring: &Wiring) -> Result<GpioParts<RppalGpio>, HalError> {
    build(&mut RppalGpio::open()?, wiring)
}

/// Builds the lane on `gpio`: the inputs first, read once, then the
/// outputs. Must be called inside a tokio runtime.
pub fn build<G: Gpio>(gpio: &mut G, wiring: &Wiring) -> Result<GpioParts<G>, HalError> {
    let inputs = [
        (Sensor::Arming, Some(wiring.arming), "arming loop"),
        (Sensor::Safety, Some(wiring.safety), "safety loop"),
        (Sensor::BarrierUp, wiring.barrier_up, "barrier-up switch"),
    ];
    let mut lines = Vec::new();
    for (sensor, input, role) in inputs {
        if let Some(w) = input {
            lines.push((sensor, gpio.input(w.pin, w.pull, role)?, w.active));
        }
    }
    let presence = GpioPresence::new(lines, wiring.debounce);

    let barrier = match wiring.barrier {
        BarrierWiring::Level(w) => GpioBarrier::level(held(gpio, w, "barrier relay")?),
        BarrierWiring::Pulse {
            open,
            close,
            length,
        } => GpioBarrier::pulse(
            pulsed(gpio, open, "barrier open relay")?,
            pulsed(gpio, close, "barrier close relay")?,
            length,
        ),
    };
    let green = held(gpio, wiring.green, "green lamp")?;
    let red = held(gpio, wiring.red, "red lamp")?;
    let buzzer = match wiring.buzzer {
        Some(w) => Some(pulsed(gpio, w, "buzzer")?),
        None => None,
    };
    Ok(GpioParts {
        presence,
        barrier,
        feedback: GpioFeedback::new(green, red, buzzer),
    })
}

/// An output that holds a level: it keeps the level an earlier run left it
/// at (a restart must not drop a raised boom), else it starts off.
fn held<G: Gpio>(
    gpio: &mut G,
    w: OutputWiring,
    role: &'static str,
) -> Result<Relay<G::Output>, HalError> {
    let level = gpio.driven(w.pin, role)?.unwrap_or(!w.active);
    Ok(Relay::new(gpio.output(w.pin, level, role)?, w.active))
}

/// An output only ever on for a pulse: it starts off (one found on was cut
/// short by a stop, and nobody would end it now).
fn pulsed<G: Gpio>(
    gpio: &mut G,
    w: OutputWiring,
    role: &'static str,
) -> Result<PulseRelay<G::Output>, HalError> {
    let line = gpio.output(w.pin, !w.active, role)?;
    Ok(PulseRelay::new(line, w.active))
}
