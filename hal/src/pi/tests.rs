//! The GPIO logic on the fake controller. Time is tokio's paused clock, so
//! debounce and pulse lengths are exact and no test waits in real time.

use std::time::Duration;

use tokio::time::{Instant, sleep, timeout};

use super::fake::{FakeGpio, Op};
use super::*;
use crate::{
    Barrier, BarrierCommand, Buzz, Feedback, Light, Presence, SensorEvent, SensorState, Signal,
};

const HOLD: Duration = Duration::from_millis(50);
const PULSE: Duration = Duration::from_millis(400);
const MS: Duration = Duration::from_millis(1);

fn input(pin: u8) -> InputWiring {
    InputWiring {
        pin,
        active: Level::Low,
        pull: Pull::Up,
    }
}

fn output(pin: u8) -> OutputWiring {
    OutputWiring {
        pin,
        active: Level::High,
    }
}

/// The default header: loops active-low with pull-ups, relays active-high.
fn wiring() -> Wiring {
    Wiring {
        arming: input(17),
        safety: input(27),
        barrier_up: Some(input(22)),
        debounce: HOLD,
        barrier: BarrierWiring::Level(output(23)),
        green: output(5),
        red: output(6),
        buzzer: Some(output(13)),
    }
}

fn pulse_wiring() -> Wiring {
    Wiring {
        barrier: BarrierWiring::Pulse {
            open: output(23),
            close: output(24),
            length: PULSE,
        },
        ..wiring()
    }
}

/// A fake with every input idle (high, for active-low loops).
fn idle() -> FakeGpio {
    let gpio = FakeGpio::new();
    for pin in [17, 27, 22] {
        gpio.set_input(pin, Level::High);
    }
    gpio
}

fn event(sensor: Sensor, state: SensorState) -> SensorEvent {
    SensorEvent { sensor, state }
}

/// The next event within `within`, or `None`.
async fn next_within(
    p: &mut GpioPresence<fake::FakeInput>,
    within: Duration,
) -> Option<SensorEvent> {
    timeout(within, p.next_event())
        .await
        .ok()
        .map(|r| r.unwrap())
}

#[test]
fn something_there_counts_at_once_and_clear_only_once_it_has_held() {
    let t0 = Instant::now();
    let at = |ms: u64| t0 + Duration::from_millis(ms);
    let mut d = Debounce::new(SensorState::Clear, HOLD);
    // A car arriving is never seen late.
    assert_eq!(
        d.sample(SensorState::Occupied, at(0)),
        Some(SensorState::Occupied)
    );
    assert_eq!(d.sample(SensorState::Occupied, at(10)), None);
    // Clear must hold; a bounce back (a trailer's gap) restarts the wait.
    assert_eq!(d.sample(SensorState::Clear, at(20)), None);
    assert_eq!(d.sample(SensorState::Clear, at(69)), None);
    assert_eq!(d.sample(SensorState::Occupied, at(70)), None);
    assert_eq!(d.sample(SensorState::Clear, at(80)), None);
    assert_eq!(d.sample(SensorState::Clear, at(129)), None);
    assert_eq!(d.state(), SensorState::Occupied);
    assert_eq!(
        d.sample(SensorState::Clear, at(130)),
        Some(SensorState::Clear)
    );
    // A fault counts at once too, even from occupied; clear after it holds.
    assert_eq!(
        d.sample(SensorState::Occupied, at(200)),
        Some(SensorState::Occupied)
    );
    assert_eq!(
        d.sample(SensorState::Fault, at(210)),
        Some(SensorState::Fault)
    );
    assert_eq!(d.sample(SensorState::Clear, at(220)), None);
    assert_eq!(
        d.sample(SensorState::Clear, at(270)),
        Some(SensorState::Clear)
    );
}

#[test]
fn no_debounce_counts_the_first_sample() {
    let now = Instant::now();
    let mut d = Debounce::new(SensorState::Clear, Duration::ZERO);
    assert_eq!(d.sample(SensorState::Fault, now), Some(SensorState::Fault));
}

#[tokio::test(start_paused = true)]
async fn inputs_map_to_their_sensors_with_their_polarity() {
    let gpio = idle();
    let mut w = wiring();
    w.safety.active = Level::High;
    w.safety.pull = Pull::Down;
    gpio.set_input(27, Level::Low);
    let parts = build(&mut gpio.clone(), &w).unwrap();
    let mut p = parts.presence;
    assert!(gpio.ops().starts_with(&[
        Op::Input(17, Pull::Up),
        Op::Input(27, Pull::Down),
        Op::Input(22, Pull::Up),
    ]));
    for s in Sensor::ALL {
        assert_eq!(p.current(s), SensorState::Clear, "{s}");
    }

    gpio.set_input(17, Level::Low);
    assert_eq!(
        next_within(&mut p, HOLD * 2).await,
        Some(event(Sensor::Arming, SensorState::Occupied))
    );
    gpio.set_input(27, Level::High);
    assert_eq!(
        next_within(&mut p, HOLD * 2).await,
        Some(event(Sensor::Safety, SensorState::Occupied))
    );
    gpio.set_input(22, Level::Low);
    assert_eq!(
        next_within(&mut p, HOLD * 2).await,
        Some(event(Sensor::BarrierUp, SensorState::Occupied))
    );
    assert_eq!(p.current(Sensor::Arming), SensorState::Occupied);
}

#[tokio::test(start_paused = true)]
async fn a_vehicle_counts_at_the_next_poll_and_a_clear_blip_never() {
    let gpio = idle();
    let mut p = build(&mut gpio.clone(), &wiring()).unwrap().presence;
    let start = Instant::now();
    gpio.set_input(27, Level::Low);
    let e = next_within(&mut p, HOLD * 10).await;
    assert_eq!(e, Some(event(Sensor::Safety, SensorState::Occupied)));
    assert!(start.elapsed() <= POLL * 2, "{:?}", start.elapsed());

    // The loop reads clear for less than the debounce time (the gap
    // between a car and its trailer): no event, ever.
    gpio.set_input(27, Level::High);
    assert_eq!(next_within(&mut p, HOLD / 2).await, None);
    gpio.set_input(27, Level::Low);
    assert_eq!(next_within(&mut p, HOLD * 10).await, None);
    assert_eq!(p.current(Sensor::Safety), SensorState::Occupied);

    let start = Instant::now();
    gpio.set_input(27, Level::High);
    let e = next_within(&mut p, HOLD * 10).await;
    assert_eq!(e, Some(event(Sensor::Safety, SensorState::Clear)));
    let took = start.elapsed();
    assert!(took >= HOLD && took <= HOLD + POLL * 2, "{took:?}");
}

#[tokio::test(start_paused = true)]
async fn the_start_state_is_read_before_any_event() {
    let gpio = idle();
    gpio.set_input(27, Level::Low); // a car under the barrier at boot
    gpio.set_input(22, Level::Low); // and the boom up
    let mut p = build(&mut gpio.clone(), &wiring()).unwrap().presence;
    assert_eq!(p.current(Sensor::Safety), SensorState::Occupied);
    assert_eq!(p.current(Sensor::BarrierUp), SensorState::Occupied);
    assert_eq!(p.current(Sensor::Arming), SensorState::Clear);
    // No event for what was so at start, as none comes from a real boot.
    assert_eq!(next_within(&mut p, HOLD * 10).await, None);
}

#[tokio::test(start_paused = true)]
async fn an_unreadable_loop_is_a_fault_which_the_lane_counts_as_present() {
    let gpio = idle();
    gpio.set_unreadable(17, true);
    let mut p = build(&mut gpio.clone(), &wiring()).unwrap().presence;
    assert_eq!(p.current(Sensor::Arming), SensorState::Fault);

    gpio.set_unreadable(17, false);
    assert_eq!(
        next_within(&mut p, HOLD * 2).await,
        Some(event(Sensor::Arming, SensorState::Clear))
    );
    gpio.set_unreadable(27, true);
    assert_eq!(
        next_within(&mut p, HOLD * 2).await,
        Some(event(Sensor::Safety, SensorState::Fault))
    );
}

#[tokio::test(start_paused = true)]
async fn a_switch_not_fitted_is_not_read() {
    let gpio = idle();
    let w = Wiring {
        barrier_up: None,
        ..wiring()
    };
    let p = build(&mut gpio.clone(), &w).unwrap().presence;
    assert!(!p.fitted(Sensor::BarrierUp));
    assert!(p.fitted(Sensor::Safety));
    assert_eq!(p.current(Sensor::BarrierUp), SensorState::Clear);
    assert!(!gpio.ops().iter().any(|op| matches!(op, Op::Input(22, _))));
}

/// For each output pin: its level is latched, and only then the pin becomes
/// an output, with nothing written in between or before.
fn assert_latched_then_output(ops: &[Op], pins: &[(u8, Level)]) {
    for &(pin, level) in pins {
        let mine: Vec<Op> = ops
            .iter()
            .copied()
            .filter(|op| matches!(op, Op::Latch(p, _) | Op::MakeOutput(p) | Op::Write(p, _) if *p == pin))
            .collect();
        assert_eq!(
            mine,
            [Op::Latch(pin, level), Op::MakeOutput(pin)],
            "pin {pin}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn outputs_start_off_latched_before_they_drive() {
    let gpio = idle();
    let mut w = wiring();
    w.red.active = Level::Low; // an active-low relay board: off is high
    build(&mut gpio.clone(), &w).unwrap();
    assert_latched_then_output(
        &gpio.ops(),
        &[
            (23, Level::Low),
            (5, Level::Low),
            (6, Level::High),
            (13, Level::Low),
        ],
    );
}

#[tokio::test(start_paused = true)]
async fn a_restart_keeps_held_outputs_and_ends_pulses() {
    let gpio = idle();
    // An earlier run left the boom up, the green lamp on, the buzzer sounding.
    gpio.leave_output(23, Level::High);
    gpio.leave_output(5, Level::High);
    gpio.leave_output(13, Level::High);
    build(&mut gpio.clone(), &wiring()).unwrap();
    assert_latched_then_output(
        &gpio.ops(),
        &[
            (23, Level::High),
            (5, Level::High),
            (6, Level::Low),
            (13, Level::Low),
        ],
    );

    let gpio = idle();
    gpio.leave_output(23, Level::High); // the open relay, mid-pulse at the stop
    build(&mut gpio.clone(), &pulse_wiring()).unwrap();
    assert_latched_then_output(&gpio.ops(), &[(23, Level::Low), (24, Level::Low)]);
}

#[tokio::test(start_paused = true)]
async fn a_held_barrier_relay_follows_commands_and_stays_at_drop() {
    let gpio = idle();
    let mut w = wiring();
    w.barrier = BarrierWiring::Level(OutputWiring {
        pin: 23,
        active: Level::Low,
    });
    let mut b = build(&mut gpio.clone(), &w).unwrap().barrier;
    gpio.take_ops();
    b.command(BarrierCommand::Up).await.unwrap();
    assert_eq!(gpio.driven(23), Some(Level::Low));
    b.command(BarrierCommand::Down).await.unwrap();
    b.command(BarrierCommand::Up).await.unwrap();
    drop(b);
    assert_eq!(
        gpio.take_ops(),
        [
            Op::Write(23, Level::Low),
            Op::Write(23, Level::High),
            Op::Write(23, Level::Low)
        ]
    );
    assert_eq!(
        gpio.driven(23),
        Some(Level::Low),
        "still up after the daemon"
    );
}

#[tokio::test(start_paused = true)]
async fn pulse_mode_pulses_open_to_raise_and_close_to_lower() {
    let gpio = idle();
    let mut b = build(&mut gpio.clone(), &pulse_wiring()).unwrap().barrier;
    b.command(BarrierCommand::Up).await.unwrap();
    assert_eq!(gpio.driven(23), Some(Level::High));
    sleep(PULSE - MS).await;
    assert_eq!(gpio.driven(23), Some(Level::High));
    sleep(MS * 2).await;
    assert_eq!(gpio.driven(23), Some(Level::Low), "the pulse ended");
    assert_eq!(gpio.driven(24), Some(Level::Low), "close never pulsed");

    b.command(BarrierCommand::Down).await.unwrap();
    assert_eq!(gpio.driven(24), Some(Level::High));
    sleep(PULSE + MS).await;
    assert_eq!(gpio.driven(24), Some(Level::Low));
}

#[tokio::test(start_paused = true)]
async fn a_pulse_overtaken_by_the_other_command_is_cut_first() {
    let gpio = idle();
    let mut b = build(&mut gpio.clone(), &pulse_wiring()).unwrap().barrier;
    gpio.take_ops();
    b.command(BarrierCommand::Up).await.unwrap();
    sleep(PULSE / 2).await;
    b.command(BarrierCommand::Down).await.unwrap();
    // Open released before close is pulled: never both.
    assert_eq!(
        gpio.take_ops(),
        [
            Op::Write(23, Level::High),
            Op::Write(23, Level::Low),
            Op::Write(24, Level::High)
        ]
    );
    // The raise pulse's timer ends nothing: close keeps its full length.
    sleep(PULSE - MS).await;
    assert_eq!(gpio.driven(24), Some(Level::High));
    sleep(MS * 2).await;
    assert_eq!(gpio.driven(24), Some(Level::Low));
    assert_eq!(gpio.take_ops(), [Op::Write(24, Level::Low)]);
}

#[tokio::test(start_paused = true)]
async fn a_repeated_command_restarts_its_pulse() {
    let gpio = idle();
    let mut b = build(&mut gpio.clone(), &pulse_wiring()).unwrap().barrier;
    b.command(BarrierCommand::Up).await.unwrap();
    sleep(PULSE / 2).await;
    b.command(BarrierCommand::Up).await.unwrap();
    sleep(PULSE - MS).await;
    assert_eq!(
        gpio.driven(23),
        Some(Level::High),
        "the first timer did not cut it"
    );
    sleep(MS * 2).await;
    assert_eq!(gpio.driven(23), Some(Level::Low));
}

#[tokio::test(start_paused = true)]
async fn a_stop_mid_pulse_releases_the_relay() {
    let gpio = idle();
    let mut b = build(&mut gpio.clone(), &pulse_wiring()).unwrap().barrier;
    b.command(BarrierCommand::Up).await.unwrap();
    drop(b);
    assert_eq!(gpio.driven(23), Some(Level::Low));
}

#[tokio::test(start_paused = true)]
async fn feedback_lights_one_lamp_and_beeps_once() {
    let gpio = idle();
    let mut f = build(&mut gpio.clone(), &wiring()).unwrap().feedback;
    gpio.take_ops();
    let show = |light, buzzer| Signal {
        light,
        buzzer,
        text: Some("ignored: no display on GPIO".into()),
    };
    f.show(&show(Light::Green, Buzz::Short)).await.unwrap();
    assert_eq!(
        gpio.take_ops(),
        [
            Op::Write(6, Level::Low),
            Op::Write(5, Level::High),
            Op::Write(13, Level::High)
        ]
    );
    sleep(SHORT_BEEP + MS).await;
    assert_eq!(gpio.take_ops(), [Op::Write(13, Level::Low)]);

    // Off before on: never both lamps lit.
    f.show(&show(Light::Red, Buzz::Long)).await.unwrap();
    assert_eq!(
        gpio.take_ops(),
        [
            Op::Write(5, Level::Low),
            Op::Write(6, Level::High),
            Op::Write(13, Level::High)
        ]
    );
    sleep(LONG_BEEP - MS).await;
    assert_eq!(gpio.driven(13), Some(Level::High));
    sleep(MS * 2).await;
    assert_eq!(gpio.driven(13), Some(Level::Low));

    f.show(&show(Light::Off, Buzz::None)).await.unwrap();
    assert_eq!(gpio.driven(5), Some(Level::Low));
    assert_eq!(gpio.driven(6), Some(Level::Low));
}

#[test]
fn off_a_pi_opening_the_gpio_is_an_error_not_a_panic() {
    if std::path::Path::new("/dev/gpiomem").exists() {
        return; // on a Pi this would take real pins
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let err = rt.block_on(async { open(&wiring()).err().expect("no GPIO here") });
    let msg = err.to_string();
    assert!(msg.contains("cannot open the Raspberry Pi's GPIO"), "{msg}");
    assert!(msg.contains("/dev/gpiomem"), "{msg}");
}
