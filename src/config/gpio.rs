//! `[hardware.gpio]`: how the Pi's pins behave (polarity, pull, debounce,
//! barrier drive), the checks of `[hardware.pins]` against the Pi header,
//! and the hal [`Wiring`] both make.

use std::collections::BTreeMap;
use std::time::Duration;

use parkgate_hal::pi::{BarrierWiring, InputWiring, Level, OutputWiring, Pull, Wiring};
use serde::{Deserialize, Serialize};

use super::locate::Locator;
use super::{Config, Hardware, ReaderKind};

/// The Pi header's usable BCM GPIO numbers (0 and 1 are the HAT EEPROM bus).
const PINS: std::ops::RangeInclusive<u8> = 2..=27;
/// Longer would hold back a car's arrival on the safety loop noticeably.
const MAX_DEBOUNCE_MS: u64 = 1000;
/// Operators want 100 ms - 1 s; outside this range it is a typo.
const PULSE_MS: std::ops::RangeInclusive<u64> = 20..=5000;

/// How the barrier operator takes its orders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BarrierMode {
    /// The barrier relay is held on while the boom should be up.
    Level,
    /// The barrier relay is pulsed to raise, the `barrier_close` relay to lower.
    Pulse,
}

/// The `[hardware.gpio]` section (Pi backend).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GpioConfig {
    /// How long an input's new level must hold before it counts, in ms.
    pub debounce_ms: u64,
    /// The built-in resistor on every input.
    pub pull: Pull,
    /// The level at which the arming loop's detector reports a vehicle.
    pub arming_loop_active: Level,
    /// The level at which the safety loop's detector reports a vehicle.
    pub safety_loop_active: Level,
    /// The level at which the limit switch reports the boom up.
    pub barrier_up_active: Level,
    /// Held level or pulses.
    pub barrier_mode: BarrierMode,
    /// The length of a pulse (pulse mode), in ms.
    pub pulse_ms: u64,
    /// The level that switches the barrier relay on.
    pub barrier_active: Level,
    /// The level that switches the close relay on (pulse mode).
    pub barrier_close_active: Level,
    /// The level that lights the green lamp.
    pub green_active: Level,
    /// The level that lights the red lamp.
    pub red_active: Level,
    /// The level that sounds the buzzer.
    pub buzzer_active: Level,
}

impl Default for GpioConfig {
    fn default() -> Self {
        // Loop detectors' relay contacts usually close to ground on a
        // vehicle, read through the pull-up: active low. Relay boards vary;
        // active high is what the pins meant before polarity was configurable.
        GpioConfig {
            debounce_ms: 50,
            pull: Pull::Up,
            arming_loop_active: Level::Low,
            safety_loop_active: Level::Low,
            barrier_up_active: Level::Low,
            barrier_mode: BarrierMode::Level,
            pulse_ms: 500,
            barrier_active: Level::High,
            barrier_close_active: Level::High,
            green_active: Level::High,
            red_active: Level::High,
            buzzer_active: Level::High,
        }
    }
}

impl Hardware {
    /// The pins as the hal drives them. Meaningful for a checked config
    /// (pulse mode then has its close pin).
    pub fn wiring(&self) -> Wiring {
        let (p, g) = (&self.pins, &self.gpio);
        let input = |pin, active| InputWiring {
            pin,
            active,
            pull: g.pull,
        };
        let output = |pin, active| OutputWiring { pin, active };
        let open = output(p.barrier, g.barrier_active);
        let barrier = match (g.barrier_mode, p.barrier_close) {
            (BarrierMode::Pulse, Some(close)) => BarrierWiring::Pulse {
                open,
                close: output(close, g.barrier_close_active),
                length: Duration::from_millis(g.pulse_ms),
            },
            _ => BarrierWiring::Level(open),
        };
        Wiring {
            arming: input(p.arming_loop, g.arming_loop_active),
            safety: input(p.safety_loop, g.safety_loop_active),
            barrier_up: p.barrier_up.map(|pin| input(pin, g.barrier_up_active)),
            debounce: Duration::from_millis(g.debounce_ms),
            barrier,
            green: output(p.green, g.green_active),
            red: output(p.red, g.red_active),
            buzzer: p.buzzer.map(|pin| output(pin, g.buzzer_active)),
        }
    }
}

/// The header pins the card reader's bus takes, and a name for them: a
/// loop or relay there would fight the reader. The sim's reader and a
/// serial reader on USB take none.
fn reader_pins(hw: &Hardware) -> (&'static str, &'static [u8]) {
    match hw.reader() {
        ReaderKind::Sim => ("", &[]),
        ReaderKind::Uart
            if ["/dev/ttyUSB", "/dev/ttyACM"]
                .iter()
                .any(|usb| hw.reader_device().starts_with(usb)) =>
        {
            ("", &[])
        }
        ReaderKind::Uart => ("reader = \"uart\" uses GPIO 14 and 15", &[14, 15]),
        // SPI1 is the Pi's auxiliary SPI, on other pins (dtoverlay=spi1-3cs).
        ReaderKind::Spi if hw.reader_device().starts_with("/dev/spidev1.") => (
            "reader = \"spi\" on SPI1 uses GPIO 16-21",
            &[16, 17, 18, 19, 20, 21],
        ),
        ReaderKind::Spi => ("reader = \"spi\" uses GPIO 7-11 (SPI0)", &[7, 8, 9, 10, 11]),
        ReaderKind::I2c if hw.reader_device() == "/dev/i2c-1" => {
            ("reader = \"i2c\" uses GPIO 2 and 3 (I2C1)", &[2, 3])
        }
        // Another bus is an overlay on pins of its own choosing, which the
        // config does not say.
        ReaderKind::I2c => ("", &[]),
    }
}

/// Every pin on the header, each once, none on the reader's bus; the
/// barrier mode and its close pin agree; times in range. Checked for every
/// backend, so a file can be moved to a Pi as is.
pub(super) fn check(cfg: &Config, loc: &Locator, bad: &mut super::validate::Report) {
    let (p, g) = (&cfg.hardware.pins, &cfg.hardware.gpio);
    let all = [
        ("arming_loop", Some(p.arming_loop)),
        ("safety_loop", Some(p.safety_loop)),
        ("barrier_up", p.barrier_up),
        ("barrier", Some(p.barrier)),
        ("barrier_close", p.barrier_close),
        ("green", Some(p.green)),
        ("red", Some(p.red)),
        ("buzzer", p.buzzer),
    ];
    let (bus, reserved) = reader_pins(&cfg.hardware);
    let mut seen: BTreeMap<u8, &str> = BTreeMap::new();
    for (key, pin) in all {
        let Some(pin) = pin else { continue };
        if !PINS.contains(&pin) {
            bad(
                &["hardware", "pins", key],
                format!("pin {pin} is not on the Pi header (valid: 2-27) for `{key}`"),
            );
            continue;
        }
        if reserved.contains(&pin) {
            bad(
                &["hardware", "pins", key],
                format!(
                    "pin {pin} for `{key}` is taken by the card reader ([hardware] {bus}); \
                     use another pin"
                ),
            );
            continue;
        }
        if let Some(first) = seen.insert(pin, key) {
            // Blame the one the technician wrote (the later one if both).
            let at = |k: &str| loc.find(&["hardware", "pins", k]);
            let blamed = if at(key) >= at(first) { key } else { first };
            let other = if blamed == key { first } else { key };
            bad(
                &["hardware", "pins", blamed],
                format!(
                    "pin {pin} is used by both `{other}` and `{blamed}`; give each its own pin"
                ),
            );
        }
    }

    match (g.barrier_mode, p.barrier_close) {
        (BarrierMode::Pulse, None) => bad(
            &["hardware", "gpio", "barrier_mode"],
            "barrier_mode = \"pulse\" needs the close relay's pin: set barrier_close in \
             [hardware.pins] (barrier is then the open relay)"
                .into(),
        ),
        (BarrierMode::Level, Some(_)) => bad(
            &["hardware", "pins", "barrier_close"],
            "barrier_close is only used with barrier_mode = \"pulse\" in [hardware.gpio]; \
             set that, or remove barrier_close"
                .into(),
        ),
        _ => {}
    }
    if g.debounce_ms > MAX_DEBOUNCE_MS {
        bad(
            &["hardware", "gpio", "debounce_ms"],
            format!(
                "debounce_ms {} would hide a car on the safety loop that long; \
                 use at most {MAX_DEBOUNCE_MS} (typically 20-100)",
                g.debounce_ms
            ),
        );
    }
    if !PULSE_MS.contains(&g.pulse_ms) {
        bad(
            &["hardware", "gpio", "pulse_ms"],
            format!(
                "pulse_ms {} is not a relay pulse; use {}-{} (the operator's manual \
                 gives it, often 500)",
                g.pulse_ms,
                PULSE_MS.start(),
                PULSE_MS.end()
            ),
        );
    }
}

#[cfg(test)]
mod tests;
