//! One guest run: KTAP lines arrive on a channel, each test is held to its
//! timeout, and the run ends when the stream ends or a deadline passes.

use crate::ktap::{parse_line, Line, Tally, TestResult};
use std::io::Write;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// How long the guest may take.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// From the start until the first test starts (boot), and between tests.
    pub idle: Duration,
    /// For a test whose start marker names no timeout.
    pub default_test: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { idle: Duration::from_secs(300), default_test: Duration::from_secs(120) }
    }
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// The stream closed (the guest powered off).
    StreamClosed,
    /// A test ran past its timeout; the caller must stop the guest.
    TestTimedOut { name: String, after: Duration },
    /// Nothing arrived for `Limits::idle` outside a test.
    Idle { after: Duration },
}

/// The outcome of a run.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// Counts over every result seen, plus the failures the runner adds.
    pub tally: Tally,
    /// How it ended.
    pub end: End,
}

struct OpenTest {
    name: String,
    started: Instant,
    deadline: Instant,
    timeout: Duration,
}

/// Consumes lines until the stream closes or a deadline passes, echoing each
/// line to `echo`. Failures the guest could not report itself (a timeout,
/// results missing from the plan) are added to the tally as failed tests.
pub fn run(lines: &Receiver<String>, limits: Limits, echo: &mut dyn Write) -> Verdict {
    let mut tally = Tally::default();
    let mut open: Option<OpenTest> = None;
    let mut last_activity = Instant::now();
    let end = loop {
        let now = Instant::now();
        let deadline = match &open {
            Some(test) => test.deadline,
            None => last_activity + limits.idle,
        };
        let line = match lines.recv_timeout(deadline.saturating_duration_since(now)) {
            Ok(line) => line,
            Err(RecvTimeoutError::Disconnected) => break End::StreamClosed,
            Err(RecvTimeoutError::Timeout) => match open.take() {
                Some(test) => break End::TestTimedOut { name: test.name, after: test.timeout },
                None => break End::Idle { after: limits.idle },
            },
        };
        let _ = writeln!(echo, "{}", line.trim_end_matches(['\r', '\n']));
        last_activity = Instant::now();
        let parsed = parse_line(&line);
        match &parsed {
            Line::TestStart { name, timeout_secs } => {
                let timeout = match timeout_secs {
                    0 => limits.default_test,
                    secs => Duration::from_secs(*secs),
                };
                open = Some(OpenTest {
                    name: name.clone(),
                    started: last_activity,
                    deadline: last_activity + timeout,
                    timeout,
                });
            }
            Line::Result(TestResult { depth: 0, .. }) => {
                // How long each scenario ran, wall clock on the host: what
                // keeps `make test` inside its time budget is read off these.
                if let Some(test) = open.take() {
                    let _ = writeln!(echo, "# runner: {} took {} s", test.name, test.started.elapsed().as_secs());
                }
            }
            _ => {}
        }
        tally.add(&parsed);
    };

    let mut add_failure = |tally: &mut Tally, name: String, directive: String| {
        let result = TestResult { depth: 0, ok: false, skipped: false, name, directive };
        let _ = writeln!(echo, "not ok {} {} # {}", tally.top_level_results + 1, result.name, result.directive);
        tally.add(&Line::Result(result));
    };
    match &end {
        End::TestTimedOut { name, after } => {
            add_failure(&mut tally, name.clone(), format!("TIMEOUT after {} s", after.as_secs()));
        }
        End::Idle { after } => {
            add_failure(&mut tally, "guest".into(), format!("TIMEOUT: no output for {} s", after.as_secs()));
        }
        End::StreamClosed => {}
    }
    match tally.plan {
        None => add_failure(&mut tally, "ktap-plan".into(), "the guest printed no KTAP plan".into()),
        Some(plan) if tally.top_level_results < plan => {
            let missing = plan - tally.top_level_results;
            add_failure(&mut tally, "ktap-plan".into(), format!("{missing} of {plan} planned tests never reported"));
        }
        Some(_) => {}
    }
    Verdict { tally, end }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::channel;

    fn feed(lines: &[&str]) -> Receiver<String> {
        let (tx, rx) = channel();
        for l in lines {
            tx.send(l.to_string()).unwrap();
        }
        rx
    }

    #[test]
    fn clean_stream_passes() {
        let rx = feed(&["KTAP version 1", "1..2", "# rustic-test-start a timeout=5", "ok 1 a", "ok 2 b"]);
        let v = run(&rx, Limits::default(), &mut Vec::new());
        assert_eq!(v.end, End::StreamClosed);
        assert_eq!((v.tally.passed, v.tally.failed), (2, 0));
    }

    #[test]
    fn each_scenario_reports_its_duration() {
        let rx = feed(&["KTAP version 1", "1..1", "# rustic-test-start a timeout=5", "ok 1 a"]);
        let mut echo = Vec::new();
        run(&rx, Limits::default(), &mut echo);
        let echo = String::from_utf8(echo).unwrap();
        assert!(echo.contains("# runner: a took 0 s"), "{echo}");
    }

    #[test]
    fn missing_results_fail_the_plan() {
        let rx = feed(&["KTAP version 1", "1..3", "ok 1 a"]);
        let v = run(&rx, Limits::default(), &mut Vec::new());
        assert_eq!((v.tally.passed, v.tally.failed), (1, 1));
        assert!(v.tally.failures[0].contains("2 of 3"));
    }
}
