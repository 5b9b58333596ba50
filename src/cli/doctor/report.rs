//! What `parkgate doctor` found, as data, and how it is printed: one line
//! per check (`PASS`, `FAIL` or `SKIP`, its name, what was seen) with a
//! hint under each failure. Pure, so the wording is tested without hardware.

use std::fmt;

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The thing checked works.
    Pass,
    /// It does not, or could not be shown to: the hint says what to look at.
    Fail,
    /// Not checked (not asked for, not configured, or not possible now).
    Skip,
}

impl Outcome {
    /// The word at the start of the line.
    pub fn word(self) -> &'static str {
        match self {
            Outcome::Pass => "PASS",
            Outcome::Fail => "FAIL",
            Outcome::Skip => "SKIP",
        }
    }
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// Short name, e.g. `store`, `reader`.
    pub name: &'static str,
    pub outcome: Outcome,
    /// What was seen, on one line.
    pub detail: String,
    /// What to do about it (failures; a skip may say how to run it).
    pub hint: Option<String>,
}

impl Check {
    pub fn pass(name: &'static str, detail: impl Into<String>) -> Check {
        Check {
            name,
            outcome: Outcome::Pass,
            detail: detail.into(),
            hint: None,
        }
    }

    pub fn fail(name: &'static str, detail: impl Into<String>, hint: impl Into<String>) -> Check {
        Check {
            name,
            outcome: Outcome::Fail,
            detail: detail.into(),
            hint: Some(hint.into()),
        }
    }

    pub fn skip(name: &'static str, detail: impl Into<String>) -> Check {
        Check {
            name,
            outcome: Outcome::Skip,
            detail: detail.into(),
            hint: None,
        }
    }

    /// The same check with a hint (a skip that says how to run it).
    pub fn with_hint(mut self, hint: impl Into<String>) -> Check {
        self.hint = Some(hint.into());
        self
    }
}

/// Width of the name column: the longest check name plus a space.
const NAME: usize = 10;

impl fmt::Display for Check {
    /// `PASS  store      ...`, then `      hint: ...` if there is a hint.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}  {:<NAME$} {}",
            self.outcome.word(),
            self.name,
            one_line(&self.detail)
        )?;
        if let Some(hint) = &self.hint {
            write!(f, "\n      hint: {}", one_line(hint))?;
        }
        Ok(())
    }
}

/// A line that is not a result: something seen live (`  -`) or a question
/// for the technician (`  ?`), indented so results stand out.
pub fn note(mark: char, name: &str, text: &str) -> String {
    format!("  {mark}   {name:<NAME$} {}", one_line(text))
}

/// Error texts can hold newlines (a config's diagnostics); a report line
/// must not, or it would read as a second check.
fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// Every check made, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub checks: Vec<Check>,
}

impl Report {
    /// Whether any check failed: the command then exits non-zero.
    pub fn failed(&self) -> bool {
        self.checks.iter().any(|c| c.outcome == Outcome::Fail)
    }

    /// The last line: how many of each.
    pub fn summary(&self) -> String {
        let count = |o| self.checks.iter().filter(|c| c.outcome == o).count();
        let (pass, fail, skip) = (
            count(Outcome::Pass),
            count(Outcome::Fail),
            count(Outcome::Skip),
        );
        if fail == 0 {
            format!("doctor: all {pass} check(s) passed, {skip} skipped")
        } else {
            format!("doctor: {fail} check(s) FAILED, {pass} passed, {skip} skipped")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_prints_its_hint_on_the_next_line() {
        let c = Check::fail("disk", "12 MB free", "free some space");
        assert_eq!(
            c.to_string(),
            "FAIL  disk       12 MB free\n      hint: free some space"
        );
        assert_eq!(
            Check::pass("config", "ok").to_string(),
            "PASS  config     ok"
        );
    }

    #[test]
    fn multi_line_details_stay_on_one_line() {
        let c = Check::fail("config", "a.toml:1:1: bad\na.toml:2:1: worse\n", "fix it");
        let text = c.to_string();
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(text.starts_with("FAIL  config     a.toml:1:1: bad; a.toml:2:1: worse"));
    }

    #[test]
    fn notes_are_indented_apart_from_results() {
        assert_eq!(
            note('-', "loops", "arming clear -> occupied"),
            "  -   loops      arming clear -> occupied"
        );
    }

    #[test]
    fn one_failure_fails_the_report_and_skips_do_not() {
        let mut r = Report::default();
        r.checks.push(Check::pass("config", "ok"));
        r.checks.push(Check::skip("broker", "mqtt disabled"));
        assert!(!r.failed());
        assert_eq!(r.summary(), "doctor: all 1 check(s) passed, 1 skipped");
        r.checks
            .push(Check::fail("clock", "unsynced", "enable NTP"));
        assert!(r.failed());
        assert_eq!(
            r.summary(),
            "doctor: 1 check(s) FAILED, 1 passed, 1 skipped"
        );
    }
}
