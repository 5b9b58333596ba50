//! parkgate: the daemon at one parking barrier.
//!
//! Pure cores ([`policy`], [`lane`], [`tariff`], [`availability`]) decide;
//! the [`store`], the [`daemon`] and the hardware edges do I/O.

pub mod availability;
pub mod clock;
pub mod config;
pub mod contract;
pub mod control;
pub mod daemon;
pub mod demo;
pub mod lane;
pub mod model;
pub mod notify;
pub mod policy;
pub mod report;
pub mod store;
pub mod tariff;
