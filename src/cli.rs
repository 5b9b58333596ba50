//! The technician's side: what the CLI commands print, the demo and the
//! commissioning checks (`doctor`); and
//! the security desk's live view of alerts and denials.

pub mod alerts;
pub mod demo;
pub mod doctor;
pub mod report;
