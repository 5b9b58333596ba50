//! The technician's side: what the CLI commands print, and the demo.

pub mod demo;
pub mod report;
