//! The outputs, only on request: a lamp test, and the barrier up and down.
//!
//! The barrier moves only with the safety loop clear and an explicit yes
//! (typed, or `--move-barrier`), and is never lowered while the safety
//! loop reads occupied or faulted: doctor runs without the lane's state
//! machine, so it keeps the one rule that matters itself.

use std::io::Write;
use std::time::Duration;

use parkgate_hal::{
    Barrier, BarrierCommand, Buzz, Feedback, HalError, Light, Presence, Sensor, SensorState, Signal,
};
use tokio::time::{Instant, sleep};

use super::loops::{LoopWatch, wait_until};
use super::report::Check;
use super::session::Session;

/// How long each output is held and how long the boom may take.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    /// Each lamp (and the buzzer) is held this long, to be seen.
    pub lamp: Duration,
    /// The barrier-up switch must follow a command within this.
    pub boom: Duration,
    /// A safety loop occupied while the boom is up has this long to clear
    /// before the barrier is left up.
    pub clear: Duration,
}

/// Green, red, then the buzzer, if asked (flag, or a yes).
pub async fn lamps<F: Feedback, W: Write>(
    s: &mut Session<W>,
    feedback: &mut F,
    asked: bool,
    pace: Pace,
) {
    if !asked && !s.interactive() {
        s.record(Check::skip("lamps", "not asked (--lamp-test)"));
        return;
    }
    if !asked
        && !s
            .confirm("lamps", "Lamp test: green, then red, then the buzzer?")
            .await
    {
        s.record(Check::skip("lamps", "not tested (no yes)"));
        return;
    }
    let steps = [
        ("green", Light::Green, Buzz::None),
        ("red", Light::Red, Buzz::None),
        ("buzzer", Light::Off, Buzz::Long),
    ];
    for (what, light, buzzer) in steps {
        s.note("lamps", what);
        let shown = feedback
            .show(&Signal {
                light,
                buzzer,
                text: Some(format!("doctor: {what}")),
            })
            .await;
        if let Err(e) = shown {
            s.record(Check::fail("lamps", format!("{what}: {e}"), OUTPUT_WIRING));
            return;
        }
        sleep(pace.lamp).await;
    }
    if let Err(e) = feedback.show(&Signal::default()).await {
        s.record(Check::fail("lamps", format!("off: {e}"), OUTPUT_WIRING));
        return;
    }
    if !s.interactive() {
        s.record(Check::pass(
            "lamps",
            "green, red and buzzer commanded (not observed: run without --no-wait to confirm)",
        ));
    } else if s
        .confirm(
            "lamps",
            "Did the green lamp, the red lamp and the buzzer each work?",
        )
        .await
    {
        s.record(Check::pass("lamps", "green, red and buzzer seen and heard"));
    } else {
        s.record(Check::fail(
            "lamps",
            "not all of green, red and buzzer were seen and heard",
            OUTPUT_WIRING,
        ));
    }
}

const OUTPUT_WIRING: &str = "check [hardware.pins] green, red and buzzer, [hardware.gpio] polarity, \
     the relay board's supply, and each lamp's own supply and fuse (a relay click means the output works)";

/// The barrier up and down again, if asked and only with the lane clear.
pub async fn barrier<B: Barrier, P: Presence, W: Write>(
    s: &mut Session<W>,
    barrier: &mut B,
    presence: &mut P,
    asked: bool,
    pace: Pace,
) {
    if !asked && !s.interactive() {
        s.record(Check::skip("barrier", "not asked (--move-barrier)"));
        return;
    }
    if let Some(refusal) = unsafe_to_move(presence) {
        s.record(refusal);
        return;
    }
    if !asked
        && !s
            .confirm(
                "barrier",
                "Raise the barrier and lower it again? Nobody and nothing may be under it.",
            )
            .await
    {
        s.record(Check::skip("barrier", "not moved (no yes)"));
        return;
    }
    // Again: the lane may have changed while the question was read.
    if let Some(refusal) = unsafe_to_move(presence) {
        s.record(refusal);
        return;
    }
    let check = match cycle(s, barrier, presence, pace).await {
        Ok(check) => check,
        Err(e) => Check::fail(
            "barrier",
            format!("the hardware failed: {e}"),
            BARRIER_WIRING,
        ),
    };
    s.record(check);
}

/// A refusal if the safety loop reads anything but clear.
fn unsafe_to_move(presence: &impl Presence) -> Option<Check> {
    match presence.current(Sensor::Safety) {
        SensorState::Clear => None,
        state => Some(Check::fail(
            "barrier",
            format!("refused: the safety loop reads {state}"),
            "doctor never moves the barrier over the safety loop unless it reads clear: clear the lane; \
             if nothing is on it, the loop or its detector is faulty (see the loops line)",
        )),
    }
}

const BARRIER_WIRING: &str = "check [hardware.pins] barrier (and barrier_close in pulse mode), the relay \
     to the barrier operator, the operator's own mode switch, and the barrier-up switch and its pin";

/// Up, wait for the switch, down once the safety loop is clear, wait for
/// the switch again.
async fn cycle<B: Barrier, P: Presence, W: Write>(
    s: &mut Session<W>,
    barrier: &mut B,
    presence: &mut P,
    pace: Pace,
) -> Result<Check, HalError> {
    let switch = presence.fitted(Sensor::BarrierUp);
    let mut seen = LoopWatch::new(presence);
    let is = |want: SensorState| move |p: &P| p.current(Sensor::BarrierUp) == want;

    s.note("barrier", "up");
    barrier.command(BarrierCommand::Up).await?;
    let rose = Instant::now();
    let up_ok = !switch
        || wait_until(
            s,
            presence,
            &mut seen,
            "barrier",
            rose + pace.boom,
            is(SensorState::Occupied),
        )
        .await?;
    let rise_ms = rose.elapsed().as_millis();

    let clear = |p: &P| p.current(Sensor::Safety) == SensorState::Clear;
    if !clear(presence) {
        s.note(
            "barrier",
            "waiting for the safety loop to clear before lowering",
        );
    }
    let deadline = Instant::now() + pace.clear;
    if !wait_until(s, presence, &mut seen, "barrier", deadline, clear).await? {
        return Ok(Check::fail(
            "barrier",
            format!(
                "left UP: the safety loop still reads {}",
                presence.current(Sensor::Safety)
            ),
            "clear the lane, then run doctor again with the barrier test to lower it \
             (or start the daemon: the lane lowers it once the loops are clear)",
        ));
    }
    s.note("barrier", "down");
    barrier.command(BarrierCommand::Down).await?;
    let fell = Instant::now();
    let down_ok = !switch
        || wait_until(
            s,
            presence,
            &mut seen,
            "barrier",
            fell + pace.boom,
            is(SensorState::Clear),
        )
        .await?;
    let fall_ms = fell.elapsed().as_millis();

    Ok(match (switch, up_ok, down_ok) {
        (false, _, _) => Check::pass(
            "barrier",
            "up and down commanded (no barrier-up switch fitted: watch the boom)",
        ),
        (true, true, true) => Check::pass(
            "barrier",
            format!(
                "up and down; the barrier-up switch closed in {rise_ms} ms and opened in {fall_ms} ms"
            ),
        ),
        (true, up, _) => Check::fail(
            "barrier",
            format!(
                "the barrier-up switch did not {} within {:?}",
                if up {
                    "open after lowering"
                } else {
                    "close after raising"
                },
                pace.boom
            ),
            BARRIER_WIRING,
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::super::console::Console;
    use super::super::fakes::World;
    use super::super::report::Outcome;
    use super::*;
    use parkgate_hal::sim::SensorStates;

    const PACE: Pace = Pace {
        lamp: Duration::from_millis(500),
        boom: Duration::from_secs(10),
        clear: Duration::from_secs(60),
    };

    fn quiet() -> Session<Vec<u8>> {
        Session::new(Vec::new(), Console::none(), false)
    }

    fn safety(state: SensorState) -> SensorStates {
        SensorStates {
            safety: state,
            ..Default::default()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_occupied_or_faulted_safety_loop_refuses_the_barrier() {
        for state in [SensorState::Occupied, SensorState::Fault] {
            let (world, mut hw) = World::new(safety(state));
            let mut s = quiet();
            barrier(&mut s, &mut hw.barrier, &mut hw.presence, true, PACE).await;
            let c = &s.report().checks[0];
            assert_eq!(c.outcome, Outcome::Fail);
            assert_eq!(c.detail, format!("refused: the safety loop reads {state}"));
            assert!(world.commands().is_empty(), "{:?}", world.commands());
        }
    }

    #[tokio::test(start_paused = true)]
    async fn no_yes_no_movement() {
        let (world, mut hw) = World::new(SensorStates::default());
        let (tx, console) = Console::channel();
        let mut s = Session::new(Vec::new(), console, true);
        tx.send("y".into()).await.unwrap();
        barrier(&mut s, &mut hw.barrier, &mut hw.presence, false, PACE).await;
        assert_eq!(s.report().checks[0].outcome, Outcome::Skip);
        assert!(world.commands().is_empty());
        // Not interactive and no flag: not even asked.
        let mut s = quiet();
        barrier(&mut s, &mut hw.barrier, &mut hw.presence, false, PACE).await;
        assert_eq!(s.report().checks[0].detail, "not asked (--move-barrier)");
        assert!(world.commands().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_clear_lane_sees_the_boom_go_up_and_down() {
        let (world, mut hw) = World::new(SensorStates::default());
        let (tx, console) = Console::channel();
        let mut s = Session::new(Vec::new(), console, true);
        tx.send("yes".into()).await.unwrap();
        barrier(&mut s, &mut hw.barrier, &mut hw.presence, false, PACE).await;
        let c = &s.report().checks[0];
        assert_eq!(c.outcome, Outcome::Pass, "{c:?}");
        assert_eq!(world.commands(), [BarrierCommand::Up, BarrierCommand::Down]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_car_under_the_raised_boom_keeps_it_up_until_it_has_gone() {
        let (world, mut hw) = World::new(SensorStates::default());
        // A car drives under the boom the moment it rises, and has not left
        // when the wait for it runs out.
        *world.on_command.lock().unwrap() = Some(Box::new(|w: &World, cmd| {
            if cmd == BarrierCommand::Up {
                w.set(Sensor::Safety, SensorState::Occupied);
            }
        }));
        let mut s = quiet();
        barrier(&mut s, &mut hw.barrier, &mut hw.presence, true, PACE).await;
        let c = &s.report().checks[0];
        assert_eq!(c.outcome, Outcome::Fail);
        assert_eq!(c.detail, "left UP: the safety loop still reads occupied");
        assert_eq!(world.commands(), [BarrierCommand::Up]);
    }

    #[tokio::test(start_paused = true)]
    async fn the_boom_comes_down_once_the_car_has_gone() {
        let (world, mut hw) = World::new(SensorStates::default());
        *world.on_command.lock().unwrap() = Some(Box::new(|w: &World, cmd| {
            if cmd == BarrierCommand::Up {
                w.set(Sensor::Safety, SensorState::Occupied);
            }
        }));
        let driver = world.clone();
        let mut s = quiet();
        let test = barrier(&mut s, &mut hw.barrier, &mut hw.presence, true, PACE);
        let leave = async {
            // Lowering must wait for this: the car leaves 5 s in.
            tokio::time::sleep(Duration::from_secs(5)).await;
            assert_eq!(driver.commands(), [BarrierCommand::Up]);
            driver.set(Sensor::Safety, SensorState::Clear);
        };
        tokio::join!(test, leave);
        assert_eq!(s.report().checks[0].outcome, Outcome::Pass);
        assert_eq!(world.commands(), [BarrierCommand::Up, BarrierCommand::Down]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stuck_switch_fails_the_barrier_test() {
        let (world, mut hw) = World::new(SensorStates::default());
        *world.follows.lock().unwrap() = false;
        let mut s = quiet();
        barrier(&mut s, &mut hw.barrier, &mut hw.presence, true, PACE).await;
        let c = &s.report().checks[0];
        assert_eq!(c.outcome, Outcome::Fail);
        assert_eq!(
            c.detail,
            "the barrier-up switch did not close after raising within 10s"
        );
        assert_eq!(world.commands(), [BarrierCommand::Up, BarrierCommand::Down]);
    }

    #[tokio::test(start_paused = true)]
    async fn the_lamp_test_shows_green_red_buzzer_then_off() {
        let (world, mut hw) = World::new(SensorStates::default());
        let (tx, console) = Console::channel();
        let mut s = Session::new(Vec::new(), console, true);
        tx.send("yes".into()).await.unwrap();
        tx.send("no".into()).await.unwrap();
        lamps(&mut s, &mut hw.feedback, false, PACE).await;
        let shown: Vec<_> = world
            .signals
            .lock()
            .unwrap()
            .iter()
            .map(|s| (s.light, s.buzzer))
            .collect();
        assert_eq!(
            shown,
            [
                (Light::Green, Buzz::None),
                (Light::Red, Buzz::None),
                (Light::Off, Buzz::Long),
                (Light::Off, Buzz::None)
            ]
        );
        // The technician said they did not all work.
        assert_eq!(s.report().checks[0].outcome, Outcome::Fail);
    }
}
