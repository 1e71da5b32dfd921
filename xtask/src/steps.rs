//! Named steps run in order: each prints `==> name` when it starts and its result and duration when
//! it ends; the first failure stops the plan, and a summary line lists what passed, failed, was
//! skipped and was not run.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use crate::cmd::{Error, Result};

/// How a step that did not fail ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The step did its work.
    Passed,
    /// The step had nothing to do or could not run here; the reason says why. A `loud` skip hides
    /// a gap in the checks (for example miri without a nightly), so it is repeated after the summary.
    Skipped { reason: String, loud: bool },
}

impl Outcome {
    /// A skip that is expected (a package that does not exist yet, a flag).
    pub fn skipped(reason: impl Into<String>) -> Self {
        Self::Skipped {
            reason: reason.into(),
            loud: false,
        }
    }

    /// A skip that leaves something unchecked, to be noticed in a CI log.
    pub fn skipped_loudly(reason: impl Into<String>) -> Self {
        Self::Skipped {
            reason: reason.into(),
            loud: true,
        }
    }
}

impl From<()> for Outcome {
    fn from((): ()) -> Self {
        Self::Passed
    }
}

type Action<'a> = Box<dyn FnOnce() -> Result<Outcome> + 'a>;

/// A step of a plan: something to run, or a skip known before the plan starts.
enum Planned<'a> {
    Run(Action<'a>),
    Skip(String),
}

/// An ordered list of named steps, built with [`Plan::step`] and [`Plan::skip`], run by
/// [`Plan::run`]. Adding a step is one `.step(name, closure)` line.
pub struct Plan<'a> {
    title: String,
    steps: Vec<(&'static str, Planned<'a>)>,
}

impl<'a> Plan<'a> {
    /// An empty plan; `title` names it in the summary (`xtask test: ...`).
    pub fn new(title: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            steps: Vec::new(),
        }
    }

    /// Adds a step. The closure returns `Ok(())` (passed), `Ok(Outcome::...)` or an error.
    pub fn step<F, O>(mut self, name: &'static str, action: F) -> Self
    where
        F: FnOnce() -> Result<O> + 'a,
        O: Into<Outcome>,
    {
        let action: Action<'a> = Box::new(move || action().map(Into::into));
        self.steps.push((name, Planned::Run(action)));
        self
    }

    /// Adds a step that is known up front not to run (for example because of `--quick`).
    /// It is reported as skipped even when an earlier step fails.
    pub fn skip(mut self, name: &'static str, reason: impl Into<String>) -> Self {
        self.steps.push((name, Planned::Skip(reason.into())));
        self
    }

    /// Adds `action` as a step when `skip_reason` is `None`, else a skipped step.
    pub fn step_unless<F, O>(self, skip_reason: Option<&str>, name: &'static str, action: F) -> Self
    where
        F: FnOnce() -> Result<O> + 'a,
        O: Into<Outcome>,
    {
        match skip_reason {
            Some(reason) => self.skip(name, reason),
            None => self.step(name, action),
        }
    }

    /// Runs the steps in order and stops at the first failure. Prints the summary line either way;
    /// the error (if any) says which step failed and why.
    pub fn run(self) -> Result {
        let started = Instant::now();
        let title = self.title.clone();
        let report = self.execute();
        report.finish(&title, started.elapsed())
    }

    /// Runs the steps up to the first failure and records what happened to each.
    fn execute(self) -> Report {
        let mut report = Report::default();
        let mut steps = self.steps.into_iter();
        for (name, planned) in steps.by_ref() {
            let action = match planned {
                Planned::Run(action) => action,
                Planned::Skip(reason) => {
                    eprintln!("\n==> {name}: skipped: {reason}");
                    report.skipped.push((name, reason, false));
                    continue;
                }
            };
            eprintln!("\n==> {name}");
            let step_started = Instant::now();
            let result = action();
            let took = step_started.elapsed();
            match result {
                Ok(Outcome::Passed) => {
                    eprintln!("<== {name}: ok ({})", format_duration(took));
                    report.passed.push((name, took));
                }
                Ok(Outcome::Skipped { reason, loud }) => {
                    eprintln!("<== {name}: skipped: {reason}");
                    report.skipped.push((name, reason, loud));
                }
                Err(err) => {
                    eprintln!("<== {name}: FAILED after {}: {err}", format_duration(took));
                    report.failed = Some((name, err));
                    break;
                }
            }
        }
        for (name, planned) in steps {
            match planned {
                Planned::Run(_) => report.not_run.push(name),
                Planned::Skip(reason) => report.skipped.push((name, reason, false)),
            }
        }
        report
    }
}

impl std::fmt::Debug for Plan<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<_> = self.steps.iter().map(|(name, _)| *name).collect();
        f.debug_struct("Plan")
            .field("title", &self.title)
            .field("steps", &names)
            .finish()
    }
}

/// What happened to each step of a plan.
#[derive(Debug, Default)]
struct Report {
    passed: Vec<(&'static str, Duration)>,
    skipped: Vec<(&'static str, String, bool)>,
    failed: Option<(&'static str, Error)>,
    not_run: Vec<&'static str>,
}

impl Report {
    /// Prints the summary line (and the loud skips again), and turns a failure into the error.
    fn finish(self, title: &str, took: Duration) -> Result {
        eprintln!("\n{}", self.summary(title, took));
        for (name, reason, _) in self.skipped.iter().filter(|(_, _, loud)| *loud) {
            banner(&format!("{} SKIPPED: {reason}", name.to_uppercase()));
        }
        match self.failed {
            Some((name, err)) => Err(Error::new(format!("step `{name}` failed: {err}"))),
            None => Ok(()),
        }
    }

    /// One line: `xtask test: FAILED in 1m 2s; passed: fmt (1.0s); failed: clippy; not run: test`.
    fn summary(&self, title: &str, took: Duration) -> String {
        let verdict = if self.failed.is_some() {
            "FAILED"
        } else {
            "ok"
        };
        let mut line = format!("{title}: {verdict} in {}", format_duration(took));
        if !self.passed.is_empty() {
            let passed: Vec<_> = self
                .passed
                .iter()
                .map(|(name, took)| format!("{name} ({})", format_duration(*took)))
                .collect();
            let _ = write!(line, "; passed: {}", passed.join(", "));
        }
        if let Some((name, _)) = &self.failed {
            let _ = write!(line, "; failed: {name}");
        }
        if !self.skipped.is_empty() {
            let skipped: Vec<_> = self
                .skipped
                .iter()
                .map(|(name, reason, _)| format!("{name} ({reason})"))
                .collect();
            let _ = write!(line, "; skipped: {}", skipped.join(", "));
        }
        if !self.not_run.is_empty() {
            let _ = write!(line, "; not run: {}", self.not_run.join(", "));
        }
        line
    }
}

/// Prints a message framed so that it cannot be missed in a CI log.
pub fn banner(message: &str) {
    let rule = "!".repeat(78);
    eprintln!("\n{rule}\n{rule}");
    for line in message.lines() {
        eprintln!("!!!  {line}");
    }
    eprintln!("{rule}\n{rule}\n");
}

/// `850ms`, `12.3s` or `4m 05s`.
pub fn format_duration(took: Duration) -> String {
    let secs = took.as_secs_f64();
    if secs < 1.0 {
        format!("{}ms", took.as_millis())
    } else if secs < 60.0 {
        format!("{secs:.1}s")
    } else {
        let whole = took.as_secs();
        format!("{}m {:02}s", whole / 60, whole % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn stops_at_the_first_failure_and_reports_every_step() {
        let ran_after_failure = Cell::new(false);
        let report = Plan::new("xtask test")
            .step("fmt", || Ok(()))
            .step("clippy", || -> Result { Err(Error::new("boom")) })
            .step("test", || {
                ran_after_failure.set(true);
                Ok(())
            })
            .skip("miri", "--skip-miri")
            .execute();
        assert!(!ran_after_failure.get());
        let passed: Vec<_> = report.passed.iter().map(|(name, _)| *name).collect();
        assert_eq!(passed, ["fmt"]);
        assert_eq!(report.skipped, [("miri", "--skip-miri".to_owned(), false)]);
        assert_eq!(report.not_run, ["test"]);
        let err = report.finish("xtask test", Duration::ZERO).unwrap_err();
        assert_eq!(err.to_string(), "step `clippy` failed: boom");
    }

    #[test]
    fn a_plan_without_failures_succeeds() {
        let plan = Plan::new("xtask demo")
            .step("a", || Ok(()))
            .step("b", || Ok(Outcome::skipped("not there yet")));
        assert!(plan.run().is_ok());
    }

    #[test]
    fn summary_lists_passed_failed_skipped_and_not_run() {
        let report = Report {
            passed: vec![("fmt", Duration::from_millis(1500))],
            skipped: vec![("miri", "--quick".into(), false)],
            failed: Some(("clippy", Error::new("x"))),
            not_run: vec!["test"],
        };
        assert_eq!(
            report.summary("xtask test", Duration::from_secs(61)),
            "xtask test: FAILED in 1m 01s; passed: fmt (1.5s); failed: clippy; \
             skipped: miri (--quick); not run: test"
        );
    }

    #[test]
    fn durations_are_short() {
        assert_eq!(format_duration(Duration::from_millis(850)), "850ms");
        assert_eq!(format_duration(Duration::from_millis(12_340)), "12.3s");
        assert_eq!(format_duration(Duration::from_secs(245)), "4m 05s");
    }
}
