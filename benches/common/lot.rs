//! What the benches share: the size knobs read from the environment, and
//! the lot they seed (the example config with 1,000 spots) with the
//! decision context the daemon would build from it.

// Each bench uses a part.
#![allow(dead_code)]

use parkgate::config::{self, Config};
use parkgate::domain::model::{AntiPassback, Role};
use parkgate::domain::policy::Context;

/// The knob `name` from the environment, or `default`.
pub fn env(name: &str, default: usize) -> usize {
    std::env::var(name).map_or(default, |s| s.parse().expect(name))
}

/// The lot "main": 1,000 spots, 800 of them standard.
pub fn lot_config() -> Config {
    let mut cfg = config::parse(include_str!("../../config/example.toml")).expect("example config");
    cfg.gate.lot = "main".into();
    cfg.capacity.total = Some(1_000);
    cfg.capacity.standard = 800;
    cfg.capacity.compact = 100;
    cfg.capacity.large = 50;
    cfg.capacity.oversize = 10;
    cfg.capacity.motorcycle = 40;
    cfg
}

/// A gate of that lot taking entries and exits, soft anti-passback.
pub fn context(cfg: &Config) -> Context<'_> {
    Context {
        lot: "main",
        role: Role::Both,
        anti_passback: AntiPassback::Soft,
        early_grace_min: 30,
        late_grace_min: 60,
        lockdown: false,
        capacity: &cfg.capacity,
        tariff: &cfg.tariff,
        tz: cfg.tz(),
    }
}
