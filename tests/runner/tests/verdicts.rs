//! The runner's verdicts on canned guest runs: KTAP streams and console logs
//! with each kind of failure, and a clean run. The runner binary is run as
//! `make test` runs it, with a shell command standing in for QEMU.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata").join(name)
}

/// The clean console log with `splat` spliced in after its first 300 lines,
/// as a kernel would print it in the middle of a run.
fn console_with(splat: Option<&str>, name: &str) -> PathBuf {
    let clean = std::fs::read_to_string(data("clean-console.log")).unwrap();
    let mut lines: Vec<&str> = clean.lines().collect();
    let extra = splat.map(|s| std::fs::read_to_string(data(s)).unwrap()).unwrap_or_default();
    lines.splice(300..300, extra.lines());
    let out = std::env::temp_dir().join(format!("rustic-runner-{}-{}.log", std::process::id(), name));
    std::fs::write(&out, lines.join("\n")).unwrap();
    out
}

struct Run {
    code: i32,
    stdout: String,
    took: Duration,
}

/// Runs `rustic-runner guest` with `shell` standing in for the QEMU command,
/// then removes the console log.
fn runner(console: &PathBuf, shell: &str, extra: &[&str]) -> Run {
    let start = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_rustic-runner"))
        .arg("guest")
        .arg("--console")
        .arg(console)
        .args(extra)
        .args(["--", "sh", "-c", shell])
        .current_dir(data(""))
        .output()
        .unwrap();
    let _ = std::fs::remove_file(console);
    Run { code: out.status.code().unwrap_or(-1), stdout: String::from_utf8_lossy(&out.stdout).into_owned(), took: start.elapsed() }
}

#[test]
fn clean_run_passes() {
    let r = runner(&console_with(None, "clean"), "cat pass.ktap", &[]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(r.stdout.contains("runner: 3 passed, 0 failed, 0 skipped"), "{}", r.stdout);
}

#[test]
fn failed_kunit_case_fails_the_run() {
    let r = runner(&console_with(None, "failed"), "cat failed-case.ktap", &[]);
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("runner: 2 passed, 1 failed"), "{}", r.stdout);
    assert!(r.stdout.contains("# FAILED: rustic_kunit_guid_rejects_malformed"), "{}", r.stdout);
}

fn splat_verdict(file: &str, kind: &str) {
    let r = runner(&console_with(Some(file), file), "cat pass.ktap", &[]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(r.stdout.contains("runner: 3 passed, 1 failed"), "{}", r.stdout);
    assert!(r.stdout.contains(&format!("# console: {kind} at ")), "{}", r.stdout);
}

#[test]
fn warn_in_console_fails_the_run() {
    splat_verdict("warn.txt", "Warn");
}

#[test]
fn oops_in_console_fails_the_run() {
    // The NULL dereference and the Oops line are two findings of one splat.
    let r = runner(&console_with(Some("oops.txt"), "oops"), "cat pass.ktap", &[]);
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("# console: Oops at "), "{}", r.stdout);
    assert!(r.stdout.contains("runner: 3 passed, 2 failed"), "{}", r.stdout);
}

#[test]
fn lockdep_splat_fails_the_run() {
    splat_verdict("lockdep.txt", "Lockdep");
}

#[test]
fn kmemleak_report_fails_the_run() {
    splat_verdict("kmemleak.txt", "Kmemleak");
}

#[test]
fn hang_past_the_timeout_is_killed_and_fails() {
    // The command prints a test start with a 1 s timeout, then hangs; the
    // runner must give up after about a second and kill the whole group.
    let r = runner(&console_with(None, "hang"), "cat hang.ktap; exec sleep 600", &[]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(r.stdout.contains("not ok 2 20-stuck # TIMEOUT after 1 s"), "{}", r.stdout);
    assert!(r.took < Duration::from_secs(30), "runner took {:?}", r.took);
}

#[test]
fn silent_guest_hits_the_idle_timeout() {
    let r = runner(&console_with(None, "idle"), "exec sleep 600", &["--idle", "1"]);
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("TIMEOUT: no output for 1 s"), "{}", r.stdout);
}

#[test]
fn guest_that_stops_early_fails_the_plan() {
    let r = runner(&console_with(None, "early"), "head -n 4 pass.ktap", &[]);
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("1 of 2 planned tests never reported"), "{}", r.stdout);
}
