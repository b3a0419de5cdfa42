//! `rustic-runner`: run a guest and judge it, or judge a saved console log.
//!
//!   rustic-runner guest --console LOG [--idle S] [--test-timeout S] -- CMD...
//!   rustic-runner console LOG
//!
//! `guest` starts CMD (which boots QEMU with KTAP on its stdout and the
//! kernel console written to LOG), enforces the timeouts, kills CMD's whole
//! process group on a hang, then scans LOG for kernel splats. It prints the
//! KTAP it saw, one `# console:` line per splat, and a closing
//! `runner: N passed, N failed, N skipped` line; it exits 1 on any failure.

use rustic_runner::console;
use rustic_runner::session::{self, End, Limits};
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode, Stdio};
use std::sync::mpsc::channel;
use std::time::Duration;

fn usage() -> ExitCode {
    eprintln!("usage: rustic-runner guest --console LOG [--idle S] [--test-timeout S] -- CMD...\n       rustic-runner console LOG");
    ExitCode::from(2)
}

fn report_console(log: &str) -> usize {
    let text = match std::fs::read(log) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) => {
            println!("# console: cannot read {log}: {e}");
            return 1;
        }
    };
    let findings = console::scan(&text);
    for f in &findings {
        println!("# console: {:?} at {}:{}: {}", f.kind, log, f.line_no, f.text);
    }
    findings.len()
}

fn guest(args: &[String]) -> ExitCode {
    let mut limits = Limits::default();
    let mut console_log = None;
    let mut i = 0;
    while i < args.len() {
        let value = args.get(i + 1);
        match (args[i].as_str(), value) {
            ("--console", Some(v)) => console_log = Some(v.clone()),
            ("--idle", Some(v)) => limits.idle = Duration::from_secs(v.parse().unwrap_or(300)),
            ("--test-timeout", Some(v)) => limits.default_test = Duration::from_secs(v.parse().unwrap_or(120)),
            ("--", _) => break,
            _ => return usage(),
        }
        i += 2;
    }
    let (Some(console_log), Some(cmd)) = (console_log, args.get(i + 1..).filter(|c| !c.is_empty())) else {
        return usage();
    };
    let mut child = match Command::new(&cmd[0])
        .args(&cmd[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .process_group(0)
        .spawn()
    {
        Ok(child) => child,
        Err(e) => {
            eprintln!("rustic-runner: cannot start {}: {e}", cmd[0]);
            return ExitCode::from(2);
        }
    };
    let pgid = child.id();
    let (tx, rx) = channel();
    if let Some(stdout) = child.stdout.take() {
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).split(b'\n') {
                let Ok(line) = line else { break };
                if tx.send(String::from_utf8_lossy(&line).into_owned()).is_err() {
                    break;
                }
            }
        });
    }
    let verdict = session::run(&rx, limits, &mut std::io::stdout());
    if verdict.end != End::StreamClosed {
        // A hung guest: stop QEMU and everything else the command started.
        let _ = Command::new("kill").args(["-KILL", "--", &format!("-{pgid}")]).status();
    }
    let status = child.wait();
    let mut tally = verdict.tally;
    if let Ok(status) = status {
        if verdict.end == End::StreamClosed && !status.success() {
            println!("# guest command exited with {status}");
            tally.failed += 1;
            tally.failures.push(format!("guest command: {status}"));
        }
    }
    let splats = report_console(&console_log);
    tally.failed += splats;
    for name in &tally.failures {
        println!("# FAILED: {name}");
    }
    println!("runner: {} passed, {} failed, {} skipped", tally.passed, tally.failed, tally.skipped);
    if tally.failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("guest") => guest(&args[1..]),
        Some("console") if args.len() == 2 => {
            if report_console(&args[1]) == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }
        }
        _ => usage(),
    }
}
