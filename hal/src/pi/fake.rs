//! A GPIO controller in memory, for tests: inputs are set by the test,
//! outputs are recorded, and every operation is logged in order, so a test
//! can check that a level was latched before its pin became an output.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use super::seam::{Gpio, GpioError, InputLine, Level, OutputLine, Pull};

/// One operation on the fake, in the order it happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// The pin became an input with this pull.
    Input(u8, Pull),
    /// The pin's output level was latched (it drives it only once an output).
    Latch(u8, Level),
    /// The pin became an output, driving its latched level.
    MakeOutput(u8),
    /// An output was driven to a level.
    Write(u8, Level),
}

#[derive(Debug, Default)]
struct Pin {
    output: bool,
    level: Option<Level>,
    unreadable: bool,
}

#[derive(Debug, Default)]
struct State {
    pins: BTreeMap<u8, Pin>,
    ops: Vec<Op>,
}

/// The fake controller; clones share the same pins.
#[derive(Debug, Clone, Default)]
pub struct FakeGpio(Arc<Mutex<State>>);

impl FakeGpio {
    /// A controller whose pins are all unclaimed inputs reading low.
    pub fn new() -> FakeGpio {
        FakeGpio::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The world puts `level` on input `pin`.
    pub fn set_input(&self, pin: u8, level: Level) {
        self.lock().pins.entry(pin).or_default().level = Some(level);
    }

    /// From now on reads of `pin` fail (a broken line), or work again.
    pub fn set_unreadable(&self, pin: u8, unreadable: bool) {
        self.lock().pins.entry(pin).or_default().unreadable = unreadable;
    }

    /// Leaves `pin` as an output driving `level`, as an earlier run would.
    pub fn leave_output(&self, pin: u8, level: Level) {
        let mut s = self.lock();
        let p = s.pins.entry(pin).or_default();
        p.output = true;
        p.level = Some(level);
    }

    /// The level `pin` drives, if it is an output.
    pub fn driven(&self, pin: u8) -> Option<Level> {
        let s = self.lock();
        s.pins.get(&pin).filter(|p| p.output).and_then(|p| p.level)
    }

    /// Every operation so far, in order.
    pub fn ops(&self) -> Vec<Op> {
        self.lock().ops.clone()
    }

    /// The operations so far, forgetting them.
    pub fn take_ops(&self) -> Vec<Op> {
        std::mem::take(&mut self.lock().ops)
    }
}

/// An input of a [`FakeGpio`].
#[derive(Debug)]
pub struct FakeInput {
    gpio: FakeGpio,
    pin: u8,
}

impl InputLine for FakeInput {
    fn read(&self) -> Result<Level, GpioError> {
        let s = self.gpio.lock();
        let p = s.pins.get(&self.pin);
        if p.is_some_and(|p| p.unreadable) {
            return Err(GpioError::Io {
                pin: self.pin,
                why: "unreadable (fake)".into(),
            });
        }
        Ok(p.and_then(|p| p.level).unwrap_or(Level::Low))
    }
}

/// An output of a [`FakeGpio`].
#[derive(Debug)]
pub struct FakeOutput {
    gpio: FakeGpio,
    pin: u8,
}

impl OutputLine for FakeOutput {
    fn write(&mut self, level: Level) -> Result<(), GpioError> {
        let mut s = self.gpio.lock();
        s.pins.entry(self.pin).or_default().level = Some(level);
        s.ops.push(Op::Write(self.pin, level));
        Ok(())
    }
}

impl Gpio for FakeGpio {
    type Input = FakeInput;
    type Output = FakeOutput;

    fn input(&mut self, pin: u8, pull: Pull, _: &'static str) -> Result<FakeInput, GpioError> {
        let mut s = self.lock();
        s.pins.entry(pin).or_default().output = false;
        s.ops.push(Op::Input(pin, pull));
        Ok(FakeInput {
            gpio: self.clone(),
            pin,
        })
    }

    fn driven(&mut self, pin: u8, _: &'static str) -> Result<Option<Level>, GpioError> {
        Ok(FakeGpio::driven(self, pin))
    }

    fn output(&mut self, pin: u8, level: Level, _: &'static str) -> Result<FakeOutput, GpioError> {
        // Latch, then switch the mode: the order rppal's into_output_* use.
        let mut s = self.lock();
        let p = s.pins.entry(pin).or_default();
        p.level = Some(level);
        p.output = true;
        s.ops.push(Op::Latch(pin, level));
        s.ops.push(Op::MakeOutput(pin));
        Ok(FakeOutput {
            gpio: self.clone(),
            pin,
        })
    }
}
