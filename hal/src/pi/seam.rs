//! The seam between the lane's GPIO logic and the pins themselves: a few raw
//! operations, implemented by rppal on a Pi and by [`super::fake`] in tests.
//! Everything that decides (polarity, debounce, pulses, start-up levels)
//! lives above it, so it is tested without a Pi.

use serde::{Deserialize, Serialize};

/// A pin's electrical level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// 0 V.
    Low,
    /// 3.3 V.
    High,
}

/// The other level: what an active-`self` line reads when it is off.
impl std::ops::Not for Level {
    type Output = Level;

    fn not(self) -> Level {
        match self {
            Level::Low => Level::High,
            Level::High => Level::Low,
        }
    }
}

/// The SoC's built-in resistor on an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pull {
    /// To 3.3 V: a dry contact to ground reads low when closed.
    Up,
    /// To 0 V: a contact to 3.3 V reads high when closed.
    Down,
    /// None: the detector drives the line itself.
    Off,
}

/// Why a GPIO operation failed.
#[derive(Debug, thiserror::Error)]
pub enum GpioError {
    /// The GPIO peripheral could not be opened: not a Raspberry Pi, or no
    /// access to `/dev/gpiomem`.
    #[error(
        "cannot open the Raspberry Pi's GPIO ({0}); backend = \"pi\" needs a Pi \
         and a user that may open /dev/gpiomem (group gpio)"
    )]
    Unavailable(String),
    /// A pin could not be taken: used by another driver or process, or not on this Pi.
    #[error("GPIO {pin} ({role}): {why}")]
    Pin {
        /// The BCM number.
        pin: u8,
        /// What the lane uses it for, e.g. `safety loop`.
        role: &'static str,
        /// What the GPIO driver said.
        why: String,
    },
    /// A pin was taken but could not be read or driven.
    #[error("GPIO {pin}: {why}")]
    Io {
        /// The BCM number.
        pin: u8,
        /// What went wrong.
        why: String,
    },
}

/// One input line, already configured.
pub trait InputLine: Send + 'static {
    /// The level on the pin now. An error means the line cannot be read;
    /// the presence logic reports that input as a fault.
    fn read(&self) -> Result<Level, GpioError>;
}

/// One output line, already driving a level.
pub trait OutputLine: Send + 'static {
    /// Drives `level` on the pin.
    fn write(&mut self, level: Level) -> Result<(), GpioError>;
}

/// The GPIO controller: hands out lines by BCM number.
///
/// Dropping a line must leave the pin as it is (mode and level): a daemon
/// that stops or restarts must not move the barrier or flash a lamp.
pub trait Gpio {
    /// The input line type.
    type Input: InputLine;
    /// The output line type.
    type Output: OutputLine;

    /// Takes `pin` as an input with its built-in resistor set to `pull`.
    fn input(&mut self, pin: u8, pull: Pull, role: &'static str) -> Result<Self::Input, GpioError>;

    /// The level `pin` drives if it is an output already (left so by an
    /// earlier run of the daemon), or `None` if it is not an output.
    fn driven(&mut self, pin: u8, role: &'static str) -> Result<Option<Level>, GpioError>;

    /// Takes `pin` as an output driving `level`. The level is latched
    /// *before* the pin becomes an output, so the pin never drives any other
    /// level, not even for an instant.
    fn output(
        &mut self,
        pin: u8,
        level: Level,
        role: &'static str,
    ) -> Result<Self::Output, GpioError>;
}
