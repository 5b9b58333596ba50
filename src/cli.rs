//! The technician's side: what the CLI commands print, and the demo; and
//! the security desk's live view of alerts and denials.

pub mod alerts;
pub mod demo;
pub mod report;
