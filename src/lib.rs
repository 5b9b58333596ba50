//! parkgate: the daemon at one parking barrier.
//!
//! Pure cores ([`policy`], [`tariff`], [`availability`]) decide; the
//! [`store`] and the edges do I/O.

pub mod availability;
pub mod config;
pub mod contract;
pub mod lane;
pub mod model;
pub mod policy;
pub mod store;
pub mod tariff;
