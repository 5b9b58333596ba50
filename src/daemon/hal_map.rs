//! Where the hal's types meet the lane's. The lane keeps its own small
//! types so the state machine stays independent of the hardware crate; these
//! conversions are the one place the two vocabularies are matched.

use parkgate_hal as hal;

use crate::domain::lane::{self, Input, ReaderHealth};

impl From<hal::Sensor> for lane::Sensor {
    fn from(s: hal::Sensor) -> Self {
        match s {
            hal::Sensor::Arming => lane::Sensor::Arming,
            hal::Sensor::Safety => lane::Sensor::Safety,
            hal::Sensor::BarrierUp => lane::Sensor::BarrierUp,
        }
    }
}

impl From<hal::SensorState> for lane::SensorState {
    fn from(s: hal::SensorState) -> Self {
        match s {
            hal::SensorState::Clear => lane::SensorState::Clear,
            hal::SensorState::Occupied => lane::SensorState::Occupied,
            hal::SensorState::Fault => lane::SensorState::Fault,
        }
    }
}

impl From<hal::SensorEvent> for Input {
    fn from(e: hal::SensorEvent) -> Self {
        Input::Sensor(e.sensor.into(), e.state.into())
    }
}

impl From<hal::ReaderEvent> for Input {
    fn from(e: hal::ReaderEvent) -> Self {
        match e {
            hal::ReaderEvent::Card(c) => Input::Card(c.hex()),
            hal::ReaderEvent::AuthFailed(c) => Input::CardAuthFailed(c.hex()),
            hal::ReaderEvent::Misread => Input::Misread,
            hal::ReaderEvent::Health(hal::ReaderHealth::Ok) => Input::Reader(ReaderHealth::Online),
            hal::ReaderEvent::Health(hal::ReaderHealth::Offline(why)) => {
                Input::Reader(ReaderHealth::Offline(why))
            }
        }
    }
}

impl From<lane::BarrierCommand> for hal::BarrierCommand {
    fn from(c: lane::BarrierCommand) -> Self {
        match c {
            lane::BarrierCommand::Up => hal::BarrierCommand::Up,
            lane::BarrierCommand::Down => hal::BarrierCommand::Down,
        }
    }
}

impl From<&lane::Signal> for hal::Signal {
    fn from(s: &lane::Signal) -> Self {
        hal::Signal {
            light: match s.light {
                lane::Light::Off => hal::Light::Off,
                lane::Light::Green => hal::Light::Green,
                lane::Light::Red => hal::Light::Red,
            },
            buzzer: if s.beep {
                hal::Buzz::Short
            } else {
                hal::Buzz::None
            },
            text: Some(s.text.clone()),
        }
    }
}

/// The lane's view of the sensors as the hardware reads them at start-up.
pub fn sensors(presence: &impl hal::Presence) -> lane::Sensors {
    lane::Sensors {
        arming: presence.current(hal::Sensor::Arming).into(),
        safety: presence.current(hal::Sensor::Safety).into(),
        barrier_up: presence
            .fitted(hal::Sensor::BarrierUp)
            .then(|| presence.current(hal::Sensor::BarrierUp).into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_events_become_lane_inputs() {
        let card = hal::Credential::from_hex("04a1b2c3").unwrap();
        assert_eq!(
            Input::from(hal::ReaderEvent::AuthFailed(card.clone())),
            Input::CardAuthFailed("04A1B2C3".into())
        );
        assert_eq!(
            Input::from(hal::ReaderEvent::Card(card)),
            Input::Card("04A1B2C3".into())
        );
        assert_eq!(
            Input::from(hal::ReaderEvent::Health(hal::ReaderHealth::Offline(
                "gone".into()
            ))),
            Input::Reader(ReaderHealth::Offline("gone".into()))
        );
    }

    #[test]
    fn a_red_signal_beeps_and_an_idle_one_is_dark() {
        let red = lane::Signal {
            light: lane::Light::Red,
            beep: true,
            text: "No".into(),
        };
        let hal = hal::Signal::from(&red);
        assert_eq!((hal.light, hal.buzzer), (hal::Light::Red, hal::Buzz::Short));
        let off = lane::Signal {
            light: lane::Light::Off,
            beep: false,
            text: String::new(),
        };
        assert_eq!(hal::Signal::from(&off).light, hal::Light::Off);
    }
}
