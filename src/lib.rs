//! parkgate: the daemon at one parking barrier.
//!
//! The folders tell the story, from the pure rules out to the edges:
//!
//! - [`domain`]: the rules, pure: the replica's shapes, the HQ contract's
//!   types, the lane state machine, the access policy, tariffs and free
//!   spots. No I/O, no tokio, no clock: time comes in as an argument.
//! - [`config`]: the gate's config file, loaded and validated.
//! - [`store`]: SQLite on its own thread: replica, journal + outbox, presence.
//! - [`daemon`]: the running gate: hardware, lane, policy and store wired in
//!   one `select!` loop, its clock and its control socket.
//! - [`cli`]: what the technician's commands print, and the demo.

pub mod cli;
pub mod config;
pub mod daemon;
pub mod domain;
pub mod link;
pub mod store;
