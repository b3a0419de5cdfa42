//! Detectors for kernel splats in a guest's console log.
//!
//! A run fails on any of these even when every test passed: they mean the
//! kernel noticed something wrong (a WARN_ON, a lock-order problem, a leak)
//! that the test's own checks may not see.

/// The kind of problem a console line shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Splat {
    /// Oops, general protection fault, page fault in the kernel, panic.
    Oops,
    /// `BUG:` reports, `kernel BUG at`, SLUB debug reports.
    Bug,
    /// A Rust panic in kernel code.
    RustPanic,
    /// `WARNING:` from WARN_ON and friends.
    Warn,
    /// Lockdep and RCU-lockdep reports.
    Lockdep,
    /// KASAN, UBSAN and KFENCE reports.
    Sanitizer,
    /// kmemleak found unreferenced objects.
    Kmemleak,
    /// A task blocked past the hung-task timeout, or a soft/hard lockup.
    Hang,
    /// A failed KUnit expectation or assertion: the module's suites run at
    /// every load, also in scenarios that do not read their results.
    Kunit,
}

/// One detector hit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// What it is.
    pub kind: Splat,
    /// 1-based line number in the log.
    pub line_no: usize,
    /// The line, without its printk timestamp.
    pub text: String,
}

/// Lockdep's report headlines (after `WARNING: ` or `BUG: `); matched before
/// the generic WARNING and BUG detectors so they are named for what they are.
const LOCKDEP_HEADLINES: &[&str] = &[
    "possible recursive locking detected",
    "possible circular locking dependency detected",
    "inconsistent lock state",
    "possible irq lock inversion dependency detected",
    "HARDIRQ-safe -> HARDIRQ-unsafe lock order detected",
    "SOFTIRQ-safe -> SOFTIRQ-unsafe lock order detected",
    "suspicious RCU usage",
    "bad unlock balance detected",
    "held lock freed",
    "lock held when returning to user space",
    "lock held at task exit time",
    "Nested lock was not taken",
    "bad contention detected",
    "MAX_LOCKDEP_",
    "looking up invalid subclass",
];

/// Strips a leading `[    1.234567] ` printk timestamp (and a `[ T12]`
/// caller id after it, if the kernel prints one).
fn strip_timestamp(line: &str) -> &str {
    let mut rest = line.trim_end_matches(['\r', '\n']);
    for _ in 0..2 {
        let trimmed = rest.trim_start();
        if let Some(after) = trimmed.strip_prefix('[') {
            if let Some(end) = after.find(']') {
                let inside = after[..end].trim();
                let stamp = inside.chars().all(|c| c.is_ascii_digit() || c == '.')
                    || (inside.starts_with(['T', 'C']) && inside[1..].chars().all(|c| c.is_ascii_digit()));
                if stamp && !inside.is_empty() {
                    rest = &after[end + 1..];
                    continue;
                }
            }
        }
        break;
    }
    rest.strip_prefix(' ').unwrap_or(rest)
}

/// Classifies one console line (timestamp already stripped).
pub fn classify(text: &str) -> Option<Splat> {
    let text = text.trim_start();
    if LOCKDEP_HEADLINES.iter().any(|h| text.contains(h)) && (text.starts_with("WARNING:") || text.starts_with("BUG:") || text.contains("lockdep")) {
        return Some(Splat::Lockdep);
    }
    if text.starts_with("BUG: KASAN:") || text.starts_with("UBSAN:") || text.contains("BUG: KFENCE:") || text.contains("BUG: KCSAN:") {
        return Some(Splat::Sanitizer);
    }
    if text.starts_with("BUG: soft lockup") || text.starts_with("watchdog: BUG: soft lockup") || text.contains("Watchdog detected hard LOCKUP") || (text.starts_with("INFO: task ") && text.contains("blocked for more than")) {
        return Some(Splat::Hang);
    }
    if text.contains("rust_kernel: panicked") || text.starts_with("panicked at ") {
        return Some(Splat::RustPanic);
    }
    if text.starts_with("Oops:") || text.contains("general protection fault") || text.starts_with("Kernel panic") || text.contains("BUG: unable to handle page fault") || text.contains("BUG: kernel NULL pointer dereference") {
        return Some(Splat::Oops);
    }
    if text.starts_with("BUG:") || text.starts_with("kernel BUG at") || is_slub_report(text) {
        return Some(Splat::Bug);
    }
    if text.starts_with("WARNING:") {
        return Some(Splat::Warn);
    }
    if text.contains("new suspected memory leaks") || text.starts_with("unreferenced object 0x") {
        return Some(Splat::Kmemleak);
    }
    if text.starts_with('#') && (text.contains(": EXPECTATION FAILED at ") || text.contains(": ASSERTION FAILED at ")) {
        return Some(Splat::Kunit);
    }
    None
}

/// SLUB debug reports read `BUG kmalloc-64 (Tainted: G  O): Redzone overwritten`.
fn is_slub_report(text: &str) -> bool {
    let Some(rest) = text.strip_prefix("BUG ") else { return false };
    let cache = rest.split(' ').next().unwrap_or("");
    !cache.is_empty()
        && cache.chars().all(|c| c.is_ascii_alphanumeric() || "-_:()".contains(c))
        && rest[cache.len()..].trim_start().starts_with('(')
}

/// Scans a whole console log.
pub fn scan(log: &str) -> Vec<Finding> {
    log.lines()
        .enumerate()
        .filter_map(|(i, line)| {
            let text = strip_timestamp(line);
            classify(text).map(|kind| Finding { kind, line_no: i + 1, text: text.to_string() })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_stripped() {
        assert_eq!(strip_timestamp("[    6.576416] hv_rustic: loaded"), "hv_rustic: loaded");
        assert_eq!(strip_timestamp("[   1.0][  T42] Oops: 0000"), "Oops: 0000");
        assert_eq!(strip_timestamp("[not a stamp] x"), "[not a stamp] x");
    }

    #[test]
    fn each_kind_is_recognised() {
        let cases = [
            ("WARNING: CPU: 1 PID: 90 at lib/list_debug.c:62 __list_del_entry_valid+0x4e/0x70", Splat::Warn),
            ("WARNING: possible circular locking dependency detected", Splat::Lockdep),
            ("BUG: sleeping function called from invalid context at mm/slab.c:1", Splat::Bug),
            ("BUG: kernel NULL pointer dereference, address: 0000000000000000", Splat::Oops),
            ("Oops: general protection fault, probably for non-canonical address", Splat::Oops),
            ("BUG: KASAN: slab-out-of-bounds in foo+0x1/0x2", Splat::Sanitizer),
            ("UBSAN: array-index-out-of-bounds in drivers/x.c:10:5", Splat::Sanitizer),
            ("kmemleak: 2 new suspected memory leaks (see /sys/kernel/debug/kmemleak)", Splat::Kmemleak),
            ("unreferenced object 0xffff888003a1c000 (size 64):", Splat::Kmemleak),
            ("rust_kernel: panicked at vmbus/core/src/ring.rs:10:5:", Splat::RustPanic),
            ("INFO: task insmod:120 blocked for more than 122 seconds.", Splat::Hang),
            ("BUG kmalloc-64 (Tainted: G           O): Redzone overwritten", Splat::Bug),
            ("kernel BUG at drivers/hv/x.c:12!", Splat::Bug),
            ("    # rustic_kunit_netdev_traffic: EXPECTATION FAILED at tests/kunit/suite.c:22", Splat::Kunit),
            ("# rustic_kunit_x: ASSERTION FAILED at tests/kunit/suite.c:9", Splat::Kunit),
        ];
        for (line, kind) in cases {
            assert_eq!(classify(line), Some(kind), "{line}");
        }
    }

    #[test]
    fn ordinary_lines_are_not_splats() {
        for line in [
            "hv_rustic: RustIC 0.1.0 loaded",
            "kmemleak: Kernel memory leak detector initialized (mem pool available: 15679)",
            "    # rustic_core: pass:2 fail:0 skip:0 total:2",
            "    ok 1 rustic_kunit_netdev_traffic",
            "guest: EXPECTATION FAILED at is only KUnit's after a '#'",
            "Lock dependency validator: Copyright (c) 2006 Red Hat, Inc., Ingo Molnar",
            "... MAX_LOCKDEP_SUBCLASSES:  8",
            "BUGGY firmware table",
            "reboot: Power down",
        ] {
            assert_eq!(classify(line), None, "{line}");
        }
    }
}
