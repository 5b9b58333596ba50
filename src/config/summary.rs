//! What a good config makes the gate do, in words, on one screen
//! (printed by `parkgate check-config`).

use crate::domain::money::money;
use std::fmt::Write as _;

use parkgate_hal::{Sensor, SensorState};

use super::{Backend, BarrierMode, Config, ReaderKind};
use crate::domain::model::{AntiPassback, Role, VehicleClass};

/// A one-screen description of what the gate will do with `cfg`.
pub fn summary(cfg: &Config) -> String {
    let mut s = String::new();
    let mut line = |text: String| {
        s.push_str(&text);
        s.push('\n');
    };
    let g = &cfg.gate;
    let role = match g.role {
        Role::Entry => "entry lane: lets vehicles in",
        Role::Exit => "exit lane: lets vehicles out",
        Role::Both => "entry and exit in one lane (inside: exit, else entry)",
    };
    line(format!("Gate {}/{}/{}: {role}", g.site, g.lot, g.gate));
    line(format!(
        "Time zone: {} (for calendar days and reservations)",
        g.timezone
    ));

    let c = &cfg.capacity;
    let total: u32 = VehicleClass::ALL.iter().map(|&k| c.of(k)).sum();
    line(format!("Capacity: {total} spots"));
    let mut unserved = Vec::new();
    for class in VehicleClass::ALL {
        let spots = c.of(class);
        if spots == 0 {
            unserved.push(class.as_str());
            continue;
        }
        let mut held = Vec::new();
        if c.ada_of(class) > 0 {
            held.push(format!("{} ADA", c.ada_of(class)));
        }
        if c.ev_of(class) > 0 {
            held.push(format!("{} EV", c.ev_of(class)));
        }
        let held = if held.is_empty() {
            String::new()
        } else {
            format!("  ({})", held.join(", "))
        };
        line(format!("  {:<11}{spots:>5}{held}", class.as_str()));
    }
    if !unserved.is_empty() {
        line(format!("  not served: {}", unserved.join(", ")));
    }

    let l = &cfg.lane;
    let arming = if l.require_vehicle {
        "a card counts only with a vehicle on the arming loop"
    } else {
        "a card counts even with no vehicle on the arming loop"
    };
    line(format!("Lane: {arming};"));
    line(format!(
        "  re-reads within {} ms are one tap; pass within {} s or the grant is void;",
        l.repeat_read_ms, l.pass_timeout_s
    ));
    line(format!(
        "  alert if held open {} s or a loop busy {} s; lower {} ms after it clears;",
        l.held_open_s, l.loop_fault_s, l.close_delay_ms
    ));
    let idle = match l.idle_light {
        crate::domain::lane::IdleLight::Dark => "dark",
        crate::domain::lane::IdleLight::Red => "red",
    };
    line(format!(
        "  a green or red shows {} s, then the lamps go {idle}",
        l.signal_s
    ));

    let a = &cfg.access;
    let apb = match a.anti_passback {
        AntiPassback::Hard => "hard (a second entry, or an exit without one, is refused)",
        AntiPassback::Soft => "soft (a second entry is let through with an alert)",
        AntiPassback::Off => "off (entries and exits are not matched)",
    };
    line(format!("Anti-passback: {apb}"));
    line(format!(
        "Reservations: honoured from {} min before their start to {} min after",
        a.early_grace_min, a.late_grace_min
    ));

    let t = &cfg.tariff;
    let m = |minor: i64| money(minor, &t.currency);
    line(format!(
        "Tariff (no plan): {} per started day, first {} min free;",
        m(t.day_rate_minor),
        t.grace_minutes,
    ));
    line(format!(
        "  at most {} a day; past a reservation's end {} per started hour",
        m(t.daily_cap_minor),
        m(t.overstay_hour_minor)
    ));

    let st = &cfg.store;
    line(format!(
        "Store: {} (delivered events kept {} days)",
        st.path.display(),
        st.retention_days
    ));
    let mq = &cfg.mqtt;
    line(if mq.enabled {
        let scheme = if mq.tls { "mqtts" } else { "mqtt" };
        format!(
            "HQ link: on, {scheme}://{}:{} (keep-alive {} s)",
            mq.host, mq.port, mq.keep_alive_s
        )
    } else {
        "HQ link: off (runs alone; events wait in the outbox)".into()
    });
    let h = &cfg.hardware;
    let pn532 = |bus: &str| format!("PN532 reader over {bus} at {}", h.reader_device());
    let reader = match h.reader() {
        ReaderKind::Sim => None,
        ReaderKind::Uart => Some(pn532("UART")),
        ReaderKind::Spi => Some(pn532("SPI")),
        ReaderKind::I2c => Some(pn532("I2C")),
    };
    line(match h.backend {
        Backend::Sim => {
            let mut text = format!(
                "Hardware: simulated, driven over {}{}",
                h.sim_socket.display(),
                if h.demo_data { ", demo data" } else { "" }
            );
            // The default (all clear) goes without saying; anything else
            // changes what the lane does first.
            let found: Vec<String> = Sensor::ALL
                .into_iter()
                .filter(|&s| h.sim_start.get(s) != SensorState::Clear)
                .map(|s| format!("{s} {}", h.sim_start.get(s)))
                .collect();
            if !found.is_empty() {
                let _ = write!(text, ";\n  starts with {}", found.join(", "));
            }
            if let Some(reader) = reader {
                let _ = write!(text, ";\n  cards from a real {reader}");
            }
            text
        }
        Backend::Pi => {
            let p = &h.pins;
            let opt = |pin: Option<u8>| pin.map_or("none".to_string(), |p| p.to_string());
            let mut text = format!(
                "Hardware: Raspberry Pi, {};\n",
                reader.unwrap_or_else(|| "the sim's card reader".into())
            );
            // Writing to a String cannot fail.
            let _ = write!(
                text,
                "  pins: arming loop {}, safety loop {}, barrier {}, barrier up {},\n  \
                 green {}, red {}, buzzer {}",
                p.arming_loop,
                p.safety_loop,
                p.barrier,
                opt(p.barrier_up),
                p.green,
                p.red,
                opt(p.buzzer)
            );
            let g = &h.gpio;
            let drive = match p.barrier_close {
                Some(close) if g.barrier_mode == BarrierMode::Pulse => {
                    format!("pulses of {} ms (close relay {close})", g.pulse_ms)
                }
                _ => "a held level".into(),
            };
            let _ = write!(
                text,
                ";
  inputs debounced {} ms, barrier driven by {drive}",
                g.debounce_ms
            );
            text
        }
    });
    line(format!("Control socket: {}", cfg.control.socket.display()));
    s
}
