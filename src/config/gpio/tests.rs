//! `[hardware.gpio]` and the pin checks, each problem at its `line:col`.

use std::time::Duration;

use parkgate_hal::pi::{BarrierWiring, InputWiring, Level, OutputWiring, Pull, Wiring};

use crate::config::{BarrierMode, GpioConfig, parse};

/// A minimal good file: 8 lines, so a section appended to it starts on line 9.
const BASE: &str = "[gate]
site = \"b1\"
lot = \"main\"
gate = \"e1\"
role = \"entry\"
timezone = \"UTC\"
[capacity]
standard = 10
";

/// `(line, col, message)` of every diagnostic for `BASE` + `extra`.
fn problems(extra: &str) -> Vec<(usize, usize, String)> {
    match parse(&format!("{BASE}{extra}")) {
        Ok(_) => Vec::new(),
        Err(ds) => ds.into_iter().map(|d| (d.line, d.col, d.message)).collect(),
    }
}

/// The one problem's `(line, col)`, checking its message holds `needle`.
fn one(extra: &str, needle: &str) -> (usize, usize) {
    let ps = problems(extra);
    assert_eq!(ps.len(), 1, "{ps:#?}");
    assert!(ps[0].2.contains(needle), "{:?} lacks {needle:?}", ps[0].2);
    (ps[0].0, ps[0].1)
}

fn wiring(extra: &str) -> Wiring {
    let cfg = parse(&format!("{BASE}{extra}")).unwrap_or_else(|ds| panic!("{ds:#?}"));
    cfg.hardware.wiring()
}

#[test]
fn a_file_without_gpio_keys_gets_the_defaults() {
    let low = |pin| InputWiring {
        pin,
        active: Level::Low,
        pull: Pull::Up,
    };
    let high = |pin| OutputWiring {
        pin,
        active: Level::High,
    };
    assert_eq!(
        wiring(""),
        Wiring {
            arming: low(17),
            safety: low(27),
            barrier_up: Some(low(22)),
            debounce: Duration::from_millis(50),
            barrier: BarrierWiring::Level(high(23)),
            green: high(5),
            red: high(6),
            buzzer: Some(high(13)),
        }
    );
    let example = parse(include_str!("../../../config/example.toml")).unwrap();
    assert_eq!(example.hardware.gpio, GpioConfig::default());
    assert_eq!(example.hardware.pins.barrier_close, None);
}

#[test]
fn polarity_pull_and_debounce_come_from_the_file() {
    let w = wiring(
        "[hardware.gpio]\nsafety_loop_active = \"high\"\npull = \"off\"\ndebounce_ms = 0\n\
         red_active = \"low\"\n",
    );
    assert_eq!(w.safety.active, Level::High);
    assert_eq!(w.arming.active, Level::Low);
    assert_eq!(w.arming.pull, Pull::Off);
    assert_eq!(w.debounce, Duration::ZERO);
    assert_eq!(w.red.active, Level::Low);
    assert_eq!(w.green.active, Level::High);
}

#[test]
fn pulse_mode_takes_the_close_pin() {
    let w = wiring(
        "[hardware.pins]\nbarrier_close = 24\n[hardware.gpio]\nbarrier_mode = \"pulse\"\n\
         pulse_ms = 300\nbarrier_close_active = \"low\"\n",
    );
    assert_eq!(
        w.barrier,
        BarrierWiring::Pulse {
            open: OutputWiring {
                pin: 23,
                active: Level::High
            },
            close: OutputWiring {
                pin: 24,
                active: Level::Low
            },
            length: Duration::from_millis(300),
        }
    );
    assert_eq!(
        one(
            "[hardware.gpio]\nbarrier_mode = \"pulse\"\n",
            "set barrier_close in [hardware.pins]"
        ),
        (10, 1)
    );
    assert_eq!(
        one(
            "[hardware.pins]\nbarrier_close = 24\n",
            "only used with barrier_mode = \"pulse\""
        ),
        (10, 1)
    );
}

#[test]
fn a_pin_used_twice_is_blamed_where_written() {
    assert_eq!(
        one(
            "[hardware.pins]\nbarrier_close = 23\n[hardware.gpio]\nbarrier_mode = \"pulse\"\n",
            "pin 23 is used by both `barrier` and `barrier_close`"
        ),
        (10, 1)
    );
    assert_eq!(
        one(
            "[hardware.pins]\nbuzzer = 5\n",
            "used by both `green` and `buzzer`"
        ),
        (10, 1)
    );
}

#[test]
fn pins_off_the_header_are_refused() {
    assert_eq!(
        one(
            "[hardware.pins]\nbarrier_close = 28\n[hardware.gpio]\nbarrier_mode = \"pulse\"\n",
            "pin 28 is not on the Pi header (valid: 2-27) for `barrier_close`"
        ),
        (10, 1)
    );
    assert_eq!(one("[hardware.pins]\nsafety_loop = 0\n", "pin 0 "), (10, 1));
}

#[test]
fn pins_of_the_readers_bus_are_refused() {
    assert_eq!(
        one(
            "[hardware]\nbackend = \"pi\"\n[hardware.pins]\ngreen = 14\n",
            "pin 14 for `green` is taken by the card reader ([hardware] reader = \"uart\" uses GPIO 14 and 15)"
        ),
        (12, 1)
    );
    // The sim's reader (a sim config's default) takes no header pin.
    assert!(problems("[hardware.pins]\ngreen = 14\n").is_empty());
    assert_eq!(
        one(
            "[hardware]\nreader = \"spi\"\nreader_device = \"/dev/spidev0.0\"\n\
             [hardware.pins]\nred = 26\narming_loop = 9\n",
            "reader = \"spi\" uses GPIO 7-11 (SPI0)"
        ),
        (14, 1)
    );
    assert_eq!(
        one(
            "[hardware]\nreader = \"i2c\"\n[hardware.pins]\nbuzzer = 3\n",
            "reader = \"i2c\" uses GPIO 2 and 3 (I2C1)"
        ),
        (12, 1)
    );
    assert_eq!(
        one(
            "[hardware]\nreader = \"spi\"\nreader_device = \"/dev/spidev1.0\"\n\
             [hardware.pins]\narming_loop = 24\nbuzzer = 19\n",
            "reader = \"spi\" on SPI1 uses GPIO 16-21"
        ),
        (14, 1)
    );
    assert!(
        problems(
            "[hardware]\nreader = \"spi\"\nreader_device = \"/dev/spidev1.0\"\n\
             [hardware.pins]\narming_loop = 24\ngreen = 9\n"
        )
        .is_empty()
    );
    // Free again once the reader is elsewhere: SPI leaves the UART pins,
    // a USB serial adapter takes no header pin at all.
    assert!(problems("[hardware]\nreader = \"spi\"\n[hardware.pins]\ngreen = 14\n").is_empty());
    assert!(
        problems("[hardware]\nreader_device = \"/dev/ttyUSB0\"\n[hardware.pins]\nred = 15\n")
            .is_empty()
    );
}

#[test]
fn times_must_be_sensible() {
    assert_eq!(
        one("[hardware.gpio]\ndebounce_ms = 5000\n", "use at most 1000"),
        (10, 1)
    );
    assert_eq!(
        one(
            "[hardware.gpio]\n\npulse_ms = 0\n",
            "pulse_ms 0 is not a relay pulse"
        ),
        (11, 1)
    );
}

#[test]
fn a_bad_level_or_an_unknown_key_points_at_it() {
    let (line, col) = one(
        "[hardware.gpio]\ngreen_active = \"on\"\n",
        "unknown variant",
    );
    assert_eq!((line, col), (10, 16));
    assert_eq!(
        one(
            "[hardware.gpio]\npulse_s = 30\n",
            "did you mean `pulse_ms`?"
        ),
        (10, 1)
    );
    assert_eq!(GpioConfig::default().barrier_mode, BarrierMode::Level);
}
