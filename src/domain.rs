//! The gate's rules, pure: nothing here does I/O, reads a clock or knows
//! tokio, SQLite, MQTT or a pin. Each function takes the time it needs as an
//! argument and returns data, so the rules are tested in microseconds and
//! property-tested by the million.

pub mod availability;
pub mod command;
pub mod contract;
pub mod lane;
pub mod lot;
pub mod model;
pub mod money;
pub mod policy;
pub mod tariff;
pub mod time;
