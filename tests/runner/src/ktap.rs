//! An incremental KTAP parser that counts leaf results.
//!
//! Scenarios may nest subtests (a KUnit suite inside a guest scenario); the
//! count is over leaves, so a suite of five cases counts five. A parent that
//! failed with all of its children passing still counts as one failure.

/// One result line, `ok N name` or `not ok N name # directive`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestResult {
    /// Nesting depth: 0 for top-level tests.
    pub depth: usize,
    /// Whether the line said `ok`.
    pub ok: bool,
    /// `# SKIP` directive present.
    pub skipped: bool,
    /// The test's name.
    pub name: String,
    /// Text after `#`, if any.
    pub directive: String,
}

/// What a line of the stream is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// `KTAP version 1` (or `TAP version 14`).
    Version { depth: usize },
    /// `1..N`.
    Plan { depth: usize, count: usize },
    /// A result.
    Result(TestResult),
    /// `# rustic-test-start NAME timeout=SECS`: the guest is starting a test.
    TestStart { name: String, timeout_secs: u64 },
    /// A diagnostic or anything else.
    Other,
}

/// Parses one line. Indentation is four spaces per level.
pub fn parse_line(raw: &str) -> Line {
    let raw = raw.trim_end_matches(['\r', '\n']);
    let body = raw.trim_start_matches(' ');
    let depth = (raw.len() - body.len()) / 4;
    if body.starts_with("KTAP version") || body.starts_with("TAP version") {
        return Line::Version { depth };
    }
    if let Some(rest) = body.strip_prefix("# rustic-test-start ") {
        let mut name = String::new();
        let mut timeout_secs = 0;
        for word in rest.split_whitespace() {
            match word.strip_prefix("timeout=") {
                Some(t) => timeout_secs = t.parse().unwrap_or(0),
                None if name.is_empty() => name = word.to_string(),
                None => {}
            }
        }
        return Line::TestStart { name, timeout_secs };
    }
    if let Some(count) = body.strip_prefix("1..") {
        if let Ok(count) = count.trim().parse() {
            return Line::Plan { depth, count };
        }
    }
    let (ok, rest) = if let Some(rest) = body.strip_prefix("ok ") {
        (true, rest)
    } else if let Some(rest) = body.strip_prefix("not ok ") {
        (false, rest)
    } else {
        return Line::Other;
    };
    let mut parts = rest.splitn(2, ' ');
    if parts.next().and_then(|n| n.parse::<u64>().ok()).is_none() {
        return Line::Other;
    }
    let rest = parts.next().unwrap_or("");
    let (name, directive) = match rest.split_once('#') {
        Some((name, directive)) => (name.trim(), directive.trim()),
        None => (rest.trim(), ""),
    };
    let name = name.trim_start_matches("- ").to_string();
    let skipped = directive.to_ascii_uppercase().starts_with("SKIP");
    Line::Result(TestResult { depth, ok, skipped, name, directive: directive.to_string() })
}

/// Running totals over a KTAP stream.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tally {
    /// Leaf tests that passed.
    pub passed: usize,
    /// Leaf tests that failed (and failed parents whose children all passed).
    pub failed: usize,
    /// Leaf tests skipped.
    pub skipped: usize,
    /// Names of the failures, for the report.
    pub failures: Vec<String>,
    /// The top-level plan, once seen.
    pub plan: Option<usize>,
    /// Top-level results seen so far.
    pub top_level_results: usize,
    /// Per depth: (results, failures counted) of the test now open there.
    frames: Vec<(usize, usize)>,
}

impl Tally {
    /// Accounts for one parsed line.
    pub fn add(&mut self, line: &Line) {
        match line {
            Line::Plan { depth: 0, count } if self.plan.is_none() => self.plan = Some(*count),
            Line::Result(r) => self.add_result(r),
            _ => {}
        }
    }

    fn add_result(&mut self, r: &TestResult) {
        if self.frames.len() < r.depth + 2 {
            self.frames.resize(r.depth + 2, (0, 0));
        }
        // Results one level down belonged to this test; close them.
        let (children, children_failed) = self.frames[r.depth + 1];
        self.frames.truncate(r.depth + 1);
        let mut failed_here = children_failed;
        if children == 0 {
            if r.skipped {
                self.skipped += 1;
            } else if r.ok {
                self.passed += 1;
            } else {
                self.record_failure(r);
                failed_here += 1;
            }
        } else if !r.ok && children_failed == 0 {
            // The parent failed on its own (a timeout, a crash after its
            // children reported).
            self.record_failure(r);
            failed_here += 1;
        }
        let frame = &mut self.frames[r.depth];
        frame.0 += 1;
        frame.1 += failed_here;
        if r.depth == 0 {
            self.top_level_results += 1;
        }
    }

    fn record_failure(&mut self, r: &TestResult) {
        self.failed += 1;
        if r.directive.is_empty() {
            self.failures.push(r.name.clone());
        } else {
            self.failures.push(format!("{} # {}", r.name, r.directive));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally(text: &str) -> Tally {
        let mut t = Tally::default();
        for line in text.lines() {
            t.add(&parse_line(line));
        }
        t
    }

    #[test]
    fn leaves_are_counted_through_nesting() {
        let t = tally(
            "KTAP version 1\n1..2\n    KTAP version 1\n    1..1\n        ok 1 a\n        not ok 2 b\n    not ok 1 suite\nnot ok 1 kunit\nok 2 plain\n",
        );
        assert_eq!((t.passed, t.failed, t.skipped), (2, 1, 0));
        assert_eq!(t.failures, vec!["b".to_string()]);
        assert_eq!((t.plan, t.top_level_results), (Some(2), 2));
    }

    #[test]
    fn a_parent_failing_alone_counts_once() {
        let t = tally("1..1\n    ok 1 a\n    ok 2 b\nnot ok 1 parent # TIMEOUT\n");
        assert_eq!((t.passed, t.failed), (2, 1));
        assert_eq!(t.failures, vec!["parent # TIMEOUT".to_string()]);
    }

    #[test]
    fn skip_directive_and_dash_names() {
        let t = tally("1..2\nok 1 - first # SKIP no device\nok 2 - second\n");
        assert_eq!((t.passed, t.failed, t.skipped), (1, 0, 1));
    }

    #[test]
    fn test_start_marker_carries_timeout() {
        assert_eq!(
            parse_line("# rustic-test-start 10-load timeout=90\r"),
            Line::TestStart { name: "10-load".into(), timeout_secs: 90 }
        );
        assert_eq!(parse_line("# just a comment"), Line::Other);
        assert_eq!(parse_line("ok x not a number"), Line::Other);
    }
}
