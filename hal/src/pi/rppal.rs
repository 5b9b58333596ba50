//! The seam on a real Pi, through rppal's memory-mapped GPIO (`/dev/gpiomem`).

use rppal::gpio::{self, InputPin, Mode, OutputPin};

use super::seam::{Gpio, GpioError, InputLine, Level, OutputLine, Pull};

/// The Pi's GPIO controller.
pub struct RppalGpio(gpio::Gpio);

impl RppalGpio {
    /// Opens the GPIO peripheral. Off a Pi (or without access to
    /// `/dev/gpiomem`) this fails with [`GpioError::Unavailable`], never a panic.
    pub fn open() -> Result<RppalGpio, GpioError> {
        gpio::Gpio::new()
            .map(RppalGpio)
            .map_err(|e| GpioError::Unavailable(e.to_string()))
    }

    fn pin(&self, pin: u8, role: &'static str) -> Result<gpio::Pin, GpioError> {
        self.0.get(pin).map_err(|e| GpioError::Pin {
            pin,
            role,
            why: e.to_string(),
        })
    }
}

fn level(l: gpio::Level) -> Level {
    match l {
        gpio::Level::Low => Level::Low,
        gpio::Level::High => Level::High,
    }
}

impl Gpio for RppalGpio {
    type Input = InputPin;
    type Output = OutputPin;

    fn input(&mut self, pin: u8, pull: Pull, role: &'static str) -> Result<InputPin, GpioError> {
        let pin = self.pin(pin, role)?;
        let mut input = match pull {
            Pull::Up => pin.into_input_pullup(),
            Pull::Down => pin.into_input_pulldown(),
            Pull::Off => pin.into_input(),
        };
        // Keep the pull across a restart, so the line never floats between runs.
        input.set_reset_on_drop(false);
        Ok(input)
    }

    fn driven(&mut self, pin: u8, role: &'static str) -> Result<Option<Level>, GpioError> {
        // A plain `Pin` changes nothing when dropped; only reading here.
        let pin = self.pin(pin, role)?;
        Ok((pin.mode() == Mode::Output).then(|| level(pin.read())))
    }

    fn output(&mut self, pin: u8, to: Level, role: &'static str) -> Result<OutputPin, GpioError> {
        let pin = self.pin(pin, role)?;
        // rppal 0.22 `Pin::into_output_low/high` call `set_low/set_high`
        // first and only then `OutputPin::new`, which switches the mode to
        // output (src/gpio/pin.rs; documented as "Changes the logic level
        // to ... and then sets the mode"), so the pin never drives the
        // other level. `into_output` would keep whatever level the
        // register last held, which may be the active one.
        let mut output = match to {
            Level::Low => pin.into_output_low(),
            Level::High => pin.into_output_high(),
        };
        // The default resets the pin to an input on drop: a relay board with
        // pull-ups would then switch, moving the barrier at every stop.
        output.set_reset_on_drop(false);
        Ok(output)
    }
}

impl InputLine for InputPin {
    fn read(&self) -> Result<Level, GpioError> {
        // A register read; it cannot fail once the pin is taken.
        Ok(level(InputPin::read(self)))
    }
}

impl OutputLine for OutputPin {
    fn write(&mut self, to: Level) -> Result<(), GpioError> {
        match to {
            Level::Low => self.set_low(),
            Level::High => self.set_high(),
        }
        Ok(())
    }
}
