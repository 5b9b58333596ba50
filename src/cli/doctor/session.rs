//! A doctor run in progress: results printed as they come (a technician at
//! the gate reads along) and kept for the exit code; questions asked and
//! answered through the [`Console`].

use std::io::Write;

use super::console::Console;
use super::report::{Check, Report, note};

/// Prints results and notes, asks questions, and keeps the report.
pub struct Session<W: Write> {
    out: W,
    console: Console,
    interactive: bool,
    report: Report,
}

impl<W: Write> Session<W> {
    /// `interactive`: questions are asked and the technician is waited for;
    /// otherwise nothing is asked and only what flags asked for is done.
    pub fn new(out: W, console: Console, interactive: bool) -> Session<W> {
        Session {
            out,
            console,
            interactive,
            report: Report::default(),
        }
    }

    pub fn interactive(&self) -> bool {
        self.interactive
    }

    /// Prints a result and keeps it.
    pub fn record(&mut self, check: Check) {
        self.print(&check.to_string());
        self.report.checks.push(check);
    }

    /// Prints something seen live (a loop changing, a misread).
    pub fn note(&mut self, name: &str, text: &str) {
        self.print(&note('-', name, text));
    }

    /// Prints a question or an instruction for the technician. A test
    /// driving the real binary waits for these lines before acting.
    pub fn prompt(&mut self, name: &str, text: &str) {
        self.print(&note('?', name, text));
    }

    /// Asks a yes/no question; only a typed `yes` is a yes (an ended input,
    /// or not interactive, is a no: nothing moves on a guess).
    pub async fn confirm(&mut self, name: &str, question: &str) -> bool {
        if !self.interactive {
            return false;
        }
        self.prompt(name, &format!("{question} (yes/no)"));
        self.console
            .line()
            .await
            .is_some_and(|a| a.eq_ignore_ascii_case("yes"))
    }

    /// The console, to race Enter against something else.
    pub fn console(&mut self) -> &mut Console {
        &mut self.console
    }

    /// The report so far.
    pub fn report(&self) -> &Report {
        &self.report
    }

    /// Ends the run: prints the summary and returns the report and output.
    pub fn finish(mut self) -> (Report, W) {
        let summary = self.report.summary();
        self.print(&summary);
        (self.report, self.out)
    }

    fn print(&mut self, text: &str) {
        // A closed stdout must not stop the checks (a barrier half-way
        // through its test still goes down); the exit code still tells.
        let _ = writeln!(self.out, "{text}");
        let _ = self.out.flush();
    }
}
